package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/firstrender/firstrender/httpcache/httpcachetest"
	"github.com/firstrender/firstrender/store"
)

// testTimeout bounds every wait of these tests (an embedded NATS server
// under -race on a small shared machine is slow, but never this slow).
const testTimeout = 30 * time.Second

// softAnnotation is the mark the tests' SoftMark sets.
const softAnnotation = "test.soft-purged"

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// Kept, and printed only when the test fails: a failure in CI then
	// comes with what the nodes saw. The cleanup is registered before the
	// node's own, so it runs after the node has stopped logging.
	buf := &httpcachetest.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startNATS runs an embedded NATS server on a free loopback port (or on
// addr, to restart one) with its data in dir.
func startNATS(t testing.TB, addr, dir string) *Embedded {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var e *Embedded
	var err error
	// A restart on the same port may race the old listener's close.
	for range 50 {
		e, err = StartEmbedded(EmbeddedOptions{Addr: addr, Dir: dir, Name: "test", MaxStore: 256 << 20})
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // retrying a bind, not synchronizing
	}
	if err != nil {
		t.Fatalf("StartEmbedded(%s) = %v", addr, err)
	}
	t.Cleanup(e.Close)
	return e
}

// recPurger is a Purger that records the selectors it was given, like a
// proxy forgetting its memory, and checks commit is called once.
type recPurger struct {
	mu   sync.Mutex
	sels []Selector
	// hold, when set, is called before commit (outside mu): a test can
	// stop an apply there until it has done something first.
	hold func(sels []Selector)
}

func (p *recPurger) Invalidate(ctx context.Context, sels []Selector, commit func(context.Context) error) error {
	p.mu.Lock()
	p.sels = append(p.sels, sels...)
	hold := p.hold
	p.mu.Unlock()
	if hold != nil {
		hold(sels)
	}
	return commit(ctx)
}

func (p *recPurger) setHold(hold func(sels []Selector)) {
	p.mu.Lock()
	p.hold = hold
	p.mu.Unlock()
}

func (p *recPurger) count(pred func(Selector) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.sels {
		if pred(s) {
			n++
		}
	}
	return n
}

// testNode is one node: its own bbolt file, its Node, and what it applied.
type testNode struct {
	id     string
	path   string
	st     *store.Store
	n      *Node
	purger *recPurger

	mu        sync.Mutex
	applied   map[string]int       // message id -> times applied
	appliedAt map[string]time.Time // message id -> when first applied
	kinds     map[Kind]int
}

func (tn *testNode) appliedCount(id string) int {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.applied[id]
}

type nodeOpt func(*Config, *store.Options)

// startNode opens (or reopens) the store at path and starts a node on it.
func startNode(t testing.TB, id, path, natsURL string, opts ...nodeOpt) *testNode {
	t.Helper()
	sopts := store.Options{NoSync: true}
	cfg := Config{
		NATSURL:           natsURL,
		ClusterName:       "test",
		NodeID:            id,
		Address:           "127.0.0.1:0",
		Version:           "test",
		Blind:             600 * time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond,
		GoneAfter:         time.Second,
		ReconnectWait:     50 * time.Millisecond,
		PublishTimeout:    5 * time.Second, // generous: a loaded machine, not a failure
		MaxBytes:          16 << 20,        // within the test server's MaxStore
	}
	for _, o := range opts {
		o(&cfg, &sopts)
	}
	st, err := store.Open(path, sopts)
	if err != nil {
		t.Fatalf("store.Open(%s) = %v", path, err)
	}
	tn := &testNode{id: id, path: path, st: st, purger: &recPurger{}, applied: map[string]int{}, appliedAt: map[string]time.Time{}, kinds: map[Kind]int{}}
	n, err := New(cfg, Deps{
		Store:    st,
		Purger:   tn.purger,
		SoftMark: func() map[string]string { return map[string]string{softAnnotation: "1"} },
		Figures:  func() Figures { return Figures{HitRatio: 0.5, OpenSockets: 2} },
		OnApply: func(a Applied) {
			tn.mu.Lock()
			if tn.applied[a.Message.ID] == 0 {
				tn.appliedAt[a.Message.ID] = time.Now()
			}
			tn.applied[a.Message.ID]++
			tn.kinds[a.Message.Kind]++
			tn.mu.Unlock()
		},
		Logger: testLogger(t).With("test_node", id),
	})
	if err != nil {
		st.Close()
		t.Fatalf("New(%s) = %v", id, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		st.Close()
		t.Fatalf("Start(%s) = %v", id, err)
	}
	tn.n = n
	t.Cleanup(tn.stop)
	return tn
}

// stop closes the node and its store (a clean shutdown; idempotent).
func (tn *testNode) stop() {
	tn.n.Close()
	tn.st.Close()
}

// waitFor waits, on the node's change notifications, until cond holds.
// A ticker re-checks conditions that no notification covers (NATS-side
// state), bounded by testTimeout.
func waitFor(t testing.TB, n *Node, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ch := n.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", testTimeout, what)
		}
	}
}

func waitServing(t testing.TB, tn *testNode) {
	t.Helper()
	waitFor(t, tn.n, tn.id+" serving", tn.n.Serving)
}

// waitApplied waits until tn applied message id.
func waitApplied(t testing.TB, tn *testNode, id string) {
	t.Helper()
	waitFor(t, tn.n, tn.id+" applied "+id, func() bool { return tn.appliedCount(id) > 0 })
}

// cluster is three nodes on one NATS.
type cluster struct {
	nats  *Embedded
	nodes []*testNode
	dir   string
}

func newCluster(t testing.TB, opts ...nodeOpt) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{dir: dir, nats: startNATS(t, "", filepath.Join(dir, "nats"))}
	for i := range 3 {
		id := fmt.Sprintf("node-%c", 'a'+i)
		c.nodes = append(c.nodes, startNode(t, id, c.path(id), c.nats.ClientURL(), opts...))
	}
	for _, tn := range c.nodes {
		waitServing(t, tn)
	}
	waitView(t, c.nodes...)
	return c
}

// waitView waits until every node has heard every other's heartbeat (a
// node WaitApplied does not know of is not waited for).
func waitView(t testing.TB, nodes ...*testNode) {
	t.Helper()
	for _, tn := range nodes {
		waitFor(t, tn.n, tn.id+" hearing every node", func() bool {
			live := 0
			for _, ni := range tn.n.Nodes() {
				if !ni.Gone {
					live++
				}
			}
			return live == len(nodes)
		})
	}
}

func (c *cluster) path(id string) string { return filepath.Join(c.dir, id+".db") }

// js is a separate JetStream client for the test's own look at the stream.
func (c *cluster) js(t testing.TB) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(c.nats.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func put(t testing.TB, st *store.Store, key, variant string, tags ...string) {
	t.Helper()
	if err := st.Put(context.Background(), &store.Record{Key: key, Variant: variant, Status: 200, Body: []byte("body of " + key), Tags: tags}); err != nil {
		t.Fatalf("Put(%q) = %v", key, err)
	}
}

func has(st *store.Store, key, variant string) bool {
	_, err := st.Get(context.Background(), key, variant)
	return err == nil
}

func get(t testing.TB, st *store.Store, key, variant string) *store.Record {
	t.Helper()
	r, err := st.Get(context.Background(), key, variant)
	if err != nil {
		t.Fatalf("Get(%q, %q) = %v", key, variant, err)
	}
	return r
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
