package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/firstrender/firstrender/store"
)

// Errors of a Node's methods.
var (
	// ErrNotDurable is matched (errors.Is) by the *NotDurableError Purge
	// returns when the stream did not acknowledge the purge in time.
	ErrNotDurable = errors.New("cluster: applied locally, not cluster-durable")
	// ErrClosed is returned by methods called before Start or after Close.
	ErrClosed = errors.New("cluster: node not running")
)

// NotDurableError is Purge's error when the purge was applied locally (and
// queued in the outbox) but the stream did not acknowledge it within
// Config.PublishTimeout. The admin API answers it with 503. The purge is
// published when the stream answers again; retrying it is harmless.
type NotDurableError struct {
	ID    string // the message id
	Count int    // records deleted or marked locally
	Err   error  // why the publication failed
}

func (e *NotDurableError) Error() string {
	return fmt.Sprintf("cluster: purge %s applied locally, not cluster-durable (queued, published when the stream answers): %v", e.ID, e.Err)
}

// Unwrap returns e.Err.
func (e *NotDurableError) Unwrap() error { return e.Err }

// Is reports whether target is ErrNotDurable.
func (e *NotDurableError) Is(target error) bool { return target == ErrNotDurable }

// Result is what a purge did.
type Result struct {
	ID       string // message id (Nats-Msg-Id)
	Count    int    // records deleted or marked on this node
	Sequence uint64 // the stream sequence it was acknowledged at (0: not acknowledged)
}

// Node is one firstrender node in a cluster. Its methods are safe for
// concurrent use.
type Node struct {
	cfg  Config
	deps Deps
	st   *store.Store
	log  *slog.Logger

	streamName, subj, hbSubj string

	serving      atomic.Bool
	applyLatency atomic.Int64 // ns
	outboxN      atomic.Int64
	running      atomic.Bool

	emb *Embedded
	nc  *nats.Conn
	js  jetstream.JetStream

	startedAt time.Time
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	restartC chan struct{} // the consumer should be recreated
	checkC   chan struct{} // check the stream now
	drainC   chan struct{} // publish the outbox now
	sweepC   chan struct{} // sweep the epoch

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every state change
	peers       map[string]*peer
	gated       bool   // no hits until caught up to target
	target      uint64 // the stream's last sequence read after (re)gaining contact
	targetSet   bool
	blind       bool
	consuming   bool
	lastContact time.Time
	lastSeq     uint64
	inflight    map[string]bool // message ids Purge is publishing itself
	published   map[string]bool // message ids acknowledged, still in the outbox
	// local holds the ids of this node's own messages whose whole effect it
	// committed before publishing them, with the stream sequence once
	// acknowledged (0 before). The consumer records such a message's
	// sequence without applying it again (a second apply would delete pages
	// stored since). Entries go when the message is applied or the applied
	// sequence passes theirs; at most maxLocal (beyond, a message is simply
	// applied again: extra misses only). Lost on restart, with the same
	// consequence.
	local map[string]uint64
}

// maxLocal bounds Node.local.
const maxLocal = 1 << 16

type peer struct {
	info NodeInfo
	seen time.Time
}

// gone reports whether the peer said it was leaving or has been silent
// for longer than after.
func (p *peer) gone(now time.Time, after time.Duration) bool {
	return p.info.Leaving || now.Sub(p.seen) > after
}

// New validates cfg and returns a Node; nothing runs until Start.
func New(cfg Config, deps Deps) (*Node, error) {
	if deps.Store == nil {
		return nil, fmt.Errorf("%w: Deps.Store is nil", ErrConfig)
	}
	if err := cfg.setDefaults(deps.Store); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	n := &Node{
		cfg:        cfg,
		deps:       deps,
		st:         deps.Store,
		log:        deps.Logger.With("cluster", cfg.ClusterName, "node", cfg.NodeID),
		streamName: "FIRSTRENDER_" + cfg.ClusterName,
		subj:       "firstrender." + cfg.ClusterName + ".inv",
		hbSubj:     "firstrender." + cfg.ClusterName + ".hb",
		restartC:   make(chan struct{}, 1),
		checkC:     make(chan struct{}, 1),
		drainC:     make(chan struct{}, 1),
		sweepC:     make(chan struct{}, 1),
		changed:    make(chan struct{}),
		peers:      map[string]*peer{},
		gated:      true,
		inflight:   map[string]bool{},
		published:  map[string]bool{},
		local:      map[string]uint64{},
	}
	return n, nil
}

// Start starts the embedded NATS server (if configured), connects (an
// unreachable NATS is not an error: the node keeps trying and serves no
// hits meanwhile), and starts consuming, heartbeating and publishing the
// outbox. ctx bounds the start only. Start may be called once.
func (n *Node) Start(ctx context.Context) error {
	if n.running.Load() || n.cancel != nil {
		return fmt.Errorf("cluster: Start called twice")
	}
	url := n.cfg.NATSURL
	if n.cfg.EmbeddedAddr != "" {
		emb, err := StartEmbedded(EmbeddedOptions{Addr: n.cfg.EmbeddedAddr, Dir: n.cfg.EmbeddedDir, Name: "firstrender-" + n.cfg.NodeID})
		if err != nil {
			return err
		}
		n.emb = emb
		url = emb.ClientURL()
	}
	if err := ctx.Err(); err != nil {
		n.closeEmbedded()
		return err
	}
	opts := []nats.Option{
		nats.Name("firstrender " + n.cfg.NodeID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(n.cfg.ReconnectWait),
		nats.ReconnectJitter(n.cfg.ReconnectWait/5, n.cfg.ReconnectWait/5),
		nats.RetryOnFailedConnect(true),
		nats.Timeout(max(n.cfg.PublishTimeout, time.Second)),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.log.Warn("cluster: disconnected from NATS", "err", err)
			n.notify()
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			n.log.Info("cluster: reconnected to NATS")
			n.kick(n.checkC)
			n.kick(n.restartC)
			n.kick(n.drainC)
		}),
		nats.ConnectHandler(func(*nats.Conn) {
			n.kick(n.checkC)
			n.kick(n.restartC)
			n.kick(n.drainC)
		}),
	}
	opts = append(opts, n.cfg.NATSOptions...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		n.closeEmbedded()
		return fmt.Errorf("cluster: connect to NATS %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		n.closeEmbedded()
		return fmt.Errorf("cluster: JetStream: %w", err)
	}
	n.nc, n.js = nc, js
	if _, err := nc.Subscribe(n.hbSubj, n.onHeartbeat); err != nil {
		nc.Close()
		n.closeEmbedded()
		return fmt.Errorf("cluster: subscribe to heartbeats: %w", err)
	}
	if k, err := n.st.OutboxLen(ctx); err == nil {
		n.outboxN.Store(int64(k))
	}
	n.startedAt = time.Now()
	bg, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.running.Store(true)
	n.wg.Add(5)
	go n.supervise(bg)
	go n.checkLoop(bg)
	go n.watchdog(bg)
	go n.drainLoop(bg)
	go n.sweepLoop(bg)
	n.log.Info("cluster: started", "nats", url, "stream", n.streamName, "applied", n.st.AppliedSequence())
	return nil
}

// Close stops the node: it tells the others it is leaving, stops
// consuming, closes the connection and the embedded server. It does not
// close the store. Safe to call more than once.
func (n *Node) Close() error {
	if !n.running.Swap(false) {
		return nil
	}
	if n.nc.IsConnected() {
		n.sendHeartbeat(true)
		_ = n.nc.FlushTimeout(200 * time.Millisecond)
	}
	n.cancel()
	n.wg.Wait()
	n.nc.Close()
	n.closeEmbedded()
	n.serving.Store(false)
	n.notify()
	return nil
}

func (n *Node) closeEmbedded() {
	if n.emb != nil {
		n.emb.Close()
	}
}

// Embedded returns the embedded NATS server, nil when Config.EmbeddedAddr
// is not set or before Start.
func (n *Node) Embedded() *Embedded { return n.emb }

// Serving reports whether the proxy may serve hits: the node has caught
// up with the stream since it started or last regained contact. It is
// one atomic load, for the hit path.
func (n *Node) Serving() bool { return n.serving.Load() }

// Changed returns a channel that is closed at the next change of the
// node's state (applied sequence, serving, heartbeats received). Take a
// new one after each wake-up.
func (n *Node) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}

func (n *Node) notify() {
	n.mu.Lock()
	n.notifyLocked()
	n.mu.Unlock()
}

func (n *Node) notifyLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

func (n *Node) kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// updateServingLocked lifts the gate when the node has caught up.
func (n *Node) updateServingLocked() {
	if n.gated && n.targetSet && !n.blind && n.st.AppliedSequence() >= n.target {
		n.gated = false
		n.log.Info("cluster: caught up, serving hits", "applied", n.st.AppliedSequence())
	}
	n.serving.Store(!n.gated && n.running.Load())
}

// gateLocked stops hits until the node has caught up to a target read
// afterwards.
func (n *Node) gateLocked(why string) {
	if !n.gated {
		n.log.Warn("cluster: serving no hits until caught up", "why", why)
	}
	n.gated, n.targetSet = true, false
	n.serving.Store(false)
	n.notifyLocked()
}

// contact records a successful exchange with the stream.
func (n *Node) contact() {
	n.mu.Lock()
	n.lastContact = time.Now()
	n.mu.Unlock()
}

// Purge applies sel on this node, queues it in the outbox in the same
// transaction, publishes it and returns after the stream acknowledged it,
// with its sequence. Errors: ErrInvalid (wrapped) for a bad selector,
// before anything is applied; the store's error if the local apply failed;
// a *NotDurableError (ErrNotDurable) when it was applied locally but not
// acknowledged in time. Result.Count is set in every case the local apply
// committed.
func (n *Node) Purge(ctx context.Context, sel Selector) (Result, error) {
	if err := sel.Validate(); err != nil {
		return Result{}, err
	}
	return n.publish(ctx, kindOf(sel), sel, true)
}

// Unsafe is the RFC 9111 §4.4 invalidation after an unsafe method the
// proxy forwarded: keys (the target URI's and same-origin Location /
// Content-Location keys, normalized) are invalidated here, queued in the
// outbox in the same transaction, and published in the background, so it
// returns after the local commit without waiting for NATS. Result.Count
// is the records deleted here; Result.Sequence is 0 (not waited for).
func (n *Node) Unsafe(ctx context.Context, keys []string) (Result, error) {
	sel := Selector{Keys: keys}
	if err := sel.Validate(); err != nil {
		return Result{}, err
	}
	return n.publish(ctx, KindUnsafe, sel, false)
}

func (n *Node) publish(ctx context.Context, kind Kind, sel Selector, wait bool) (Result, error) {
	if !n.running.Load() {
		return Result{}, ErrClosed
	}
	m := newMessage(n.cfg.NodeID, kind, sel, time.Now())
	data, err := m.encode()
	if err != nil {
		return Result{}, err
	}
	res := Result{ID: m.ID}
	inv := n.invalidation(sel)
	if wait {
		n.mu.Lock()
		n.inflight[m.ID] = true
		n.mu.Unlock()
		defer func() {
			n.mu.Lock()
			delete(n.inflight, m.ID)
			n.mu.Unlock()
		}()
	}
	err = n.through(ctx, []Selector{sel}, func(ctx context.Context) error {
		c, err := n.st.ApplyAndQueue(ctx, inv, store.OutboxItem{ID: m.ID, Data: data})
		res.Count = c
		return err
	})
	if err != nil {
		n.kick(n.drainC) // the first step may have queued it
		return res, err
	}
	n.outboxN.Add(1)
	n.mu.Lock()
	if len(n.local) < maxLocal {
		n.local[m.ID] = 0
	}
	n.mu.Unlock()
	if kind == KindAll {
		n.kick(n.sweepC)
	}
	if !wait {
		n.kick(n.drainC)
		return res, nil
	}
	pctx, cancel := context.WithTimeout(ctx, n.cfg.PublishTimeout)
	defer cancel()
	ack, err := n.js.Publish(pctx, n.subj, data, jetstream.WithMsgID(m.ID), jetstream.WithExpectStream(n.streamName))
	if err != nil {
		n.log.Warn("cluster: purge not acknowledged by the stream", "id", m.ID, "err", err)
		return res, &NotDurableError{ID: m.ID, Count: res.Count, Err: err}
	}
	n.contact()
	// The drainer's next tick removes it from the outbox, with others in
	// one commit: no extra fsync on the purge's path.
	n.mu.Lock()
	n.published[m.ID] = true
	n.ackedLocked(m.ID, ack.Sequence)
	n.mu.Unlock()
	res.Sequence = ack.Sequence
	return res, nil
}

// ackedLocked records the stream sequence of an own message in n.local
// (if it is there). n.mu is held.
func (n *Node) ackedLocked(id string, seq uint64) {
	if _, ok := n.local[id]; ok {
		n.local[id] = seq
	}
}

// pruneLocalLocked forgets own messages at or below the applied sequence
// (passed by a reset, say): they will not be delivered. n.mu is held.
func (n *Node) pruneLocalLocked(applied uint64) {
	for id, seq := range n.local {
		if seq != 0 && seq <= applied {
			delete(n.local, id)
		}
	}
}

// through applies sels through the proxy (Deps.Purger) around commit. With
// no sels (nothing to invalidate) it only commits.
func (n *Node) through(ctx context.Context, sels []Selector, commit func(context.Context) error) error {
	if n.deps.Purger == nil || len(sels) == 0 {
		return commit(ctx)
	}
	called := false
	err := n.deps.Purger.Invalidate(ctx, sels, func(ctx context.Context) error {
		called = true
		return commit(ctx)
	})
	if err == nil && !called {
		return errors.New("cluster: Purger.Invalidate returned without calling commit")
	}
	return err
}

// streamIdentity names one incarnation of the stream: a recreated stream
// has a new creation time.
func streamIdentity(info *jetstream.StreamInfo) string {
	return info.Config.Name + "@" + strconv.FormatInt(info.Created.UnixNano(), 10)
}

func (n *Node) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        n.streamName,
		Description: "firstrender invalidations of cluster " + n.cfg.ClusterName,
		Subjects:    []string{n.subj},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		MaxAge:      n.cfg.MaxAge,
		MaxBytes:    n.cfg.MaxBytes,
		MaxMsgs:     orUnlimited(n.cfg.MaxMsgs),
		MaxMsgSize:  maxMessageSz,
		Duplicates:  n.cfg.DedupeWindow,
		Replicas:    n.cfg.Replicas,
	}
}

func orUnlimited(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}

// ensureStream returns the stream, creating it if it does not exist.
func (n *Node) ensureStream(ctx context.Context) (jetstream.Stream, error) {
	s, err := n.js.Stream(ctx, n.streamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = n.js.CreateStream(ctx, n.streamConfig())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = n.js.Stream(ctx, n.streamName)
		} else if err == nil {
			n.log.Info("cluster: created the stream", "stream", n.streamName)
		}
	}
	return s, err
}
