package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/firstrender/firstrender/store"
)

// maxBatch is how many delivered messages one store transaction applies
// (fewer commits, so fewer fsyncs, when catching up).
const maxBatch = 4096

var errRestart = errors.New("cluster: consumer restart requested")

// supervise keeps a consumer running from applied+1, recreating it after
// errors (backing off) and when asked (reconnect, stream recreated).
func (n *Node) supervise(ctx context.Context) {
	defer n.wg.Done()
	wait := n.cfg.ReconnectWait
	var lastErr string
	var lastWarn time.Time
	for ctx.Err() == nil {
		err := n.runConsumer(ctx)
		n.mu.Lock()
		n.consuming = false
		n.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRestart) {
			wait = n.cfg.ReconnectWait
			continue
		}
		// Warn about a new kind of failure, and again every 30s it lasts.
		if msg := err.Error(); msg != lastErr || time.Since(lastWarn) > 30*time.Second {
			n.log.Warn("cluster: not consuming the stream", "err", err, "retry_in", wait)
			lastErr, lastWarn = msg, time.Now()
		} else {
			n.log.Debug("cluster: not consuming the stream", "err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-n.restartC:
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// runConsumer checks the stream against what the store applied (dropping
// the cache when it cannot catch up), sets the catch-up target, and
// applies delivered messages until an error or a restart request.
func (n *Node) runConsumer(ctx context.Context) error {
	select { // a request made before this start is served by it
	case <-n.restartC:
	default:
	}
	sctx, cancel := context.WithTimeout(ctx, max(n.cfg.PublishTimeout, time.Second))
	s, err := n.ensureStream(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	info := s.CachedInfo()
	id := streamIdentity(info)
	first, last := info.State.FirstSeq, info.State.LastSeq
	applied := n.st.AppliedSequence()
	known := n.st.ClusterStream()
	switch {
	case known == "" && applied == 0 && first <= 1:
		// The whole history is there: nothing to drop.
		if err := n.st.SetClusterStream(ctx, id); err != nil {
			return err
		}
	case known != id:
		if err := n.reset(ctx, id, max(first, 1)-1, "the stream is not the one this store followed (recreated, or a new node)"); err != nil {
			return err
		}
	case applied+1 < first && applied < last:
		if err := n.reset(ctx, id, first-1, fmt.Sprintf("messages %d..%d aged out of the stream before this node applied them", applied+1, first-1)); err != nil {
			return err
		}
	case applied > last:
		if err := n.reset(ctx, id, last, fmt.Sprintf("applied sequence %d is beyond the stream's last %d", applied, last)); err != nil {
			return err
		}
	}
	// The server's idle heartbeats tell a silent consumer from a dead one;
	// it accepts 500ms..30s, and a pull must last at least two of them.
	hb := min(max(n.cfg.Blind/2, 500*time.Millisecond), 5*time.Second)
	expiry := 3 * hb
	cctx, cancel := context.WithTimeout(ctx, max(n.cfg.PublishTimeout, time.Second))
	cons, err := s.CreateOrUpdateConsumer(cctx, jetstream.ConsumerConfig{
		Description:       "firstrender node " + n.cfg.NodeID,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       n.st.AppliedSequence() + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     n.subj,
		InactiveThreshold: max(30*time.Second, 2*n.cfg.Blind),
		MemoryStorage:     true,
		Replicas:          1,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.DeleteConsumer(dctx, cons.CachedInfo().Name)
		cancel()
	}()
	mc, err := cons.Messages(jetstream.PullMaxMessages(maxBatch), jetstream.PullExpiry(expiry), jetstream.PullHeartbeat(hb))
	if err != nil {
		return fmt.Errorf("consumer messages: %w", err)
	}
	msgs := make(chan jetstream.Msg, maxBatch)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		for {
			m, err := mc.Next()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-done:
				return
			}
		}
	}()
	defer func() {
		mc.Stop()
		close(done)
	}()
	// Contact, and the catch-up target, count only once a consumer runs:
	// a node that reaches NATS but cannot consume must not serve.
	n.mu.Lock()
	n.consuming = true
	n.lastContact = time.Now()
	n.lastSeq = max(n.lastSeq, last)
	if !n.targetSet {
		n.target, n.targetSet = last, true
	}
	n.updateServingLocked()
	n.notifyLocked()
	n.mu.Unlock()
	batch := make([]jetstream.Msg, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.restartC:
			return errRestart
		case err := <-errc:
			return fmt.Errorf("consumer: %w", err)
		case m := <-msgs:
			batch = append(batch[:0], m)
		more:
			for len(batch) < maxBatch {
				select {
				case m := <-msgs:
					batch = append(batch, m)
				default:
					break more
				}
			}
			if err := n.applyBatch(ctx, id, batch); err != nil {
				return err
			}
		}
	}
}

// applyBatch applies delivered messages in order, skipping what was
// applied already, and drops the cache at a gap (a message the node never
// saw) or at a message it cannot decode (it might have been a purge).
func (n *Node) applyBatch(ctx context.Context, id string, msgs []jetstream.Msg) error {
	applied := n.st.AppliedSequence()
	var (
		run     []store.Sequenced
		decoded []Message
		sels    []Selector
		stored  []time.Time
		last    uint64
	)
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		err := n.through(ctx, sels, func(ctx context.Context) error {
			_, err := n.st.ApplyInvalidations(ctx, run)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		n.mu.Lock()
		for i := range run {
			if run[i].Done {
				delete(n.local, decoded[i].ID)
			}
		}
		n.mu.Unlock()
		now := time.Now()
		lat := now.Sub(stored[len(stored)-1])
		n.applyLatency.Store(int64(lat))
		sweep := false
		for i := range run {
			sweep = sweep || decoded[i].All
			if n.deps.OnApply != nil {
				n.deps.OnApply(Applied{Seq: run[i].Seq, Message: decoded[i], Count: run[i].Count, Self: decoded[i].Node == n.cfg.NodeID, Local: run[i].Done, Latency: now.Sub(stored[i])})
			}
		}
		if sweep {
			n.kick(n.sweepC)
		}
		run, decoded, sels, stored = run[:0], decoded[:0], sels[:0], stored[:0]
		return nil
	}
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		seq := md.Sequence.Stream
		if seq <= applied {
			continue
		}
		last = max(last, seq+md.NumPending)
		if seq != applied+1 {
			if err := flush(); err != nil {
				return err
			}
			if err := n.reset(ctx, id, seq-1, fmt.Sprintf("messages %d..%d are missing from the stream", applied+1, seq-1)); err != nil {
				return err
			}
		}
		applied = seq
		msg, err := DecodeMessage(m.Data())
		if err != nil {
			if err := flush(); err != nil {
				return err
			}
			if err := n.reset(ctx, id, seq, fmt.Sprintf("message %d cannot be applied: %v", seq, err)); err != nil {
				return err
			}
			continue
		}
		// This node's own message, applied in full when it was made: record
		// the sequence only (applying it again would delete pages stored
		// since, by fills that started after it).
		n.mu.Lock()
		_, done := n.local[msg.ID]
		n.mu.Unlock()
		if done {
			run = append(run, store.Sequenced{Seq: seq, Done: true})
		} else {
			run = append(run, store.Sequenced{Seq: seq, Inv: n.invalidation(msg.Selector)})
			sels = append(sels, msg.Selector)
		}
		decoded = append(decoded, msg)
		stored = append(stored, md.Timestamp)
	}
	if err := flush(); err != nil {
		return err
	}
	n.mu.Lock()
	n.pruneLocalLocked(n.st.AppliedSequence())
	n.lastContact = time.Now()
	n.lastSeq = max(n.lastSeq, last)
	n.updateServingLocked()
	n.notifyLocked()
	n.mu.Unlock()
	n.sendHeartbeat(false)
	return nil
}

// reset drops the whole cache (an epoch) and records stream id and the
// applied sequence, through the proxy so that it forgets its memory too.
func (n *Node) reset(ctx context.Context, id string, applied uint64, why string) error {
	var dropped int
	err := n.through(ctx, []Selector{{All: true}}, func(ctx context.Context) error {
		k, err := n.st.ResetCluster(ctx, id, applied)
		dropped = k
		return err
	})
	if err != nil {
		return fmt.Errorf("drop the cache: %w", err)
	}
	n.log.Warn("cluster: cannot catch up, dropped the whole cache", "why", why, "entries", dropped, "applied", applied, "stream", id)
	n.kick(n.sweepC)
	return nil
}

// checkLoop reads the stream's state every heartbeat interval (and when
// kicked): it is the node's contact with the stream, sets the catch-up
// target after a loss of contact, and notices a recreated stream or
// missed messages. Then it publishes the heartbeat.
func (n *Node) checkLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		n.check(ctx)
		n.sendHeartbeat(false)
		n.prunePeers()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.checkC:
		}
	}
}

func (n *Node) check(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, min(n.cfg.PublishTimeout, n.cfg.Blind))
	defer cancel()
	s, err := n.js.Stream(cctx, n.streamName)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			n.mu.Lock()
			n.gateLocked("the stream is gone")
			n.mu.Unlock()
			n.kick(n.restartC)
		}
		return
	}
	info := s.CachedInfo()
	id := streamIdentity(info)
	applied := n.st.AppliedSequence()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lastSeq = max(n.lastSeq, info.State.LastSeq)
	switch {
	case id != n.st.ClusterStream():
		n.gateLocked("the stream was recreated")
		n.kick(n.restartC)
		return
	case applied+1 < info.State.FirstSeq && applied < info.State.LastSeq:
		n.gateLocked("messages this node had not applied aged out")
		n.kick(n.restartC)
		return
	}
	if !n.consuming {
		return // no contact until a consumer runs (the supervisor retries)
	}
	n.lastContact = time.Now()
	if n.blind {
		n.blind = false
		n.log.Info("cluster: in contact with the stream again", "applied", applied, "last", info.State.LastSeq)
	}
	if !n.targetSet {
		n.target, n.targetSet = info.State.LastSeq, true
	}
	n.updateServingLocked()
	n.notifyLocked()
}

// watchdog makes the node blind (no hits) when it has had no contact with
// the stream for longer than Config.Blind.
func (n *Node) watchdog(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(max(n.cfg.Blind/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		if !n.blind && !n.lastContact.IsZero() && time.Since(n.lastContact) > n.cfg.Blind {
			n.blind = true
			n.gateLocked(fmt.Sprintf("no contact with the stream for %v", n.cfg.Blind))
		}
		n.mu.Unlock()
	}
}

// sweepLoop removes the records a purge-all epoch hides, in the
// background, one sweep at a time.
func (n *Node) sweepLoop(ctx context.Context) {
	defer n.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.sweepC:
		}
		k, err := n.st.SweepEpoch(ctx)
		if err != nil && ctx.Err() == nil {
			n.log.Warn("cluster: sweep after purge-all", "err", err)
		} else if k > 0 {
			n.log.Info("cluster: swept entries hidden by purge-all", "entries", k)
		}
	}
}

// drainLoop publishes the outbox: purges not acknowledged in time and
// unsafe-method invalidations, in the order they were made. The stream
// deduplicates by message id, so publishing one twice is harmless.
func (n *Node) drainLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(max(n.cfg.ReconnectWait, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n.outboxN.Load() == 0 {
				continue
			}
		case <-n.drainC:
		}
		n.drain(ctx)
	}
}

func (n *Node) drain(ctx context.Context) {
	const page = 256
	var after uint64
	for ctx.Err() == nil {
		items, err := n.st.Outbox(ctx, after, page)
		if err != nil || len(items) == 0 {
			break
		}
		var done []uint64
		stop := false
		for _, it := range items {
			after = it.Seq
			if it.ID == "" {
				n.log.Error("cluster: damaged outbox item dropped", "seq", it.Seq)
				done = append(done, it.Seq)
				continue
			}
			n.mu.Lock()
			pub, busy := n.published[it.ID], n.inflight[it.ID]
			delete(n.published, it.ID)
			n.mu.Unlock()
			if pub {
				done = append(done, it.Seq)
				continue
			}
			if busy || !n.nc.IsConnected() {
				if !busy {
					stop = true
					break
				}
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, n.cfg.PublishTimeout)
			ack, err := n.js.Publish(pctx, n.subj, it.Data, jetstream.WithMsgID(it.ID), jetstream.WithExpectStream(n.streamName))
			cancel()
			if err != nil {
				stop = true
				break
			}
			n.mu.Lock()
			n.ackedLocked(it.ID, ack.Sequence)
			n.mu.Unlock()
			n.contact()
			done = append(done, it.Seq)
		}
		if len(done) > 0 {
			if err := n.st.OutboxRemove(context.WithoutCancel(ctx), done...); err != nil {
				n.log.Warn("cluster: outbox remove", "err", err)
			}
		}
		if stop || len(items) < page {
			break
		}
	}
	if k, err := n.st.OutboxLen(context.WithoutCancel(ctx)); err == nil {
		n.outboxN.Store(int64(k))
	}
}
