// Package cluster is firstrender's cluster mode: several nodes, each with
// its own bbolt store, purge and invalidate as one through a NATS
// JetStream stream (one ordered log of invalidations). It is opt-in: a
// single node needs none of it.
//
// # The log
//
// Every invalidation (a purge by key, prefix, tag or all, soft or hard,
// and the RFC 9111 §4.4 invalidation after an unsafe method a node
// proxied) is one [Message] on the stream's subject, published with its
// ID as the Nats-Msg-Id, so the stream deduplicates a message published
// twice. Every node consumes the stream in order from the sequence after
// the last one it applied ([store.Store.AppliedSequence]) and applies
// each message with its sequence in the same bbolt transaction
// ([store.Store.ApplyInvalidations]): progress and effect commit
// together, and a redelivered message is a no-op. Purge-all is an epoch
// ([store.Store.Epoch]), not a scan.
//
// # Acknowledged means durable
//
// [Node.Purge] applies the purge locally, queues it in the store's
// outbox in the same transaction, publishes it and returns only after the
// stream acknowledged it, with its sequence. If the stream does not answer
// within Config.PublishTimeout, Purge returns a [*NotDurableError]
// (errors.Is [ErrNotDurable]): applied locally, not cluster-durable; the
// admin API answers 503. The message stays in the outbox and is published
// (deduplicated) when the stream answers again. [Node.WaitApplied] waits
// until every live node reports it applied (heartbeats carry each node's
// applied sequence). [Node.Unsafe] is the proxy's invalidation after an
// unsafe method: applied locally and queued at once, published in the
// background, so a node cut off from NATS loses none.
//
// # Never serve what was purged while away
//
// [Node.Serving] is false from [Node.Start] until the node has applied
// everything up to the stream's last sequence as read after connecting,
// and again whenever the node has had no contact with the stream for
// longer than Config.Blind, until it has caught up once more. The proxy
// serves no hits while it is false (it forwards). A node that cannot catch
// up (the stream was recreated, or messages it missed have aged out) drops
// its whole cache ([store.Store.ResetCluster]) before serving: the gap is
// seen in the stream's first sequence and creation time, and in a jump of
// the delivered sequence. A message this binary cannot decode drops the
// cache too, so a purge is never skipped.
//
// # The cluster view
//
// Each node publishes a heartbeat ([NodeInfo]: id, address, version,
// uptime, applied sequence, lag, connected or blind, entries, bytes, hit
// ratio, open sockets, last apply latency) every Config.HeartbeatInterval
// and after each applied batch; [Node.Nodes] lists them, marking nodes not
// heard from for Config.GoneAfter as gone.
//
// # Wiring
//
// The proxy implements [Purger] so that every invalidation, local or from
// another node, goes through it (it forgets what it keeps in memory and
// fences fills under way); it checks [Node.Serving] on the hit path and
// calls [Node.Unsafe] after an unsafe method. The admin API calls
// [Node.Purge], [Node.WaitApplied] and [Node.Nodes]. docs/cluster.md has
// the design, the guarantees and the failure modes.
package cluster
