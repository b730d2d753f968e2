package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
)

// TestCluster_FanOut purges every kind through different nodes and checks
// the effect on all three stores, waiting on applied sequences.
func TestCluster_FanOut(t *testing.T) {
	c := newCluster(t)
	ctx := ctxT(t)
	fill := func() {
		for _, tn := range c.nodes {
			put(t, tn.st, "https://a.test/k1", "")
			put(t, tn.st, "https://a.test/k1", "br")
			put(t, tn.st, "https://a.test/k2", "")
			put(t, tn.st, "https://a.test/p/1", "")
			put(t, tn.st, "https://a.test/p/2", "")
			put(t, tn.st, "https://a.test/tagged", "", "blog")
			put(t, tn.st, "https://a.test/soft", "", "soft-tag")
			put(t, tn.st, "https://a.test/unsafe", "")
			put(t, tn.st, "https://a.test/keep", "")
		}
	}
	fill()
	tests := []struct {
		name  string
		from  int
		sel   Selector
		kind  Kind
		gone  []string // keys (default variant) that must be gone
		check func(t *testing.T, tn *testNode)
	}{
		{name: "key purges every variant", from: 0, sel: Selector{Keys: []string{"https://a.test/k1"}}, kind: KindKey,
			gone: []string{"https://a.test/k1"},
			check: func(t *testing.T, tn *testNode) {
				if has(tn.st, "https://a.test/k1", "br") {
					t.Errorf("%s: variant br of a purged key is still there", tn.id)
				}
				if !has(tn.st, "https://a.test/k2", "") {
					t.Errorf("%s: key purge removed another key", tn.id)
				}
			}},
		{name: "prefix", from: 1, sel: Selector{Prefix: "https://a.test/p/"}, kind: KindPrefix,
			gone: []string{"https://a.test/p/1", "https://a.test/p/2"}},
		{name: "tag", from: 2, sel: Selector{Tag: "blog"}, kind: KindTag, gone: []string{"https://a.test/tagged"}},
		{name: "soft marks instead of deleting", from: 0, sel: Selector{Tag: "soft-tag", Soft: true}, kind: KindTag,
			check: func(t *testing.T, tn *testNode) {
				if r := get(t, tn.st, "https://a.test/soft", ""); r.Annotations[softAnnotation] != "1" {
					t.Errorf("%s: soft-purged entry annotations = %v, want the soft mark", tn.id, r.Annotations)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.nodes[tt.from].n.Purge(ctx, tt.sel)
			if err != nil {
				t.Fatalf("Purge(%+v) = %v", tt.sel, err)
			}
			if res.Sequence == 0 || res.ID == "" || res.Count == 0 {
				t.Fatalf("Purge(%+v) = %+v; want a sequence, an id and a local count", tt.sel, res)
			}
			st, err := c.nodes[tt.from].n.WaitApplied(ctx, res.Sequence)
			if err != nil || len(st) != 3 {
				t.Fatalf("WaitApplied(%d) = %+v, %v; want 3 nodes", res.Sequence, st, err)
			}
			for _, s := range st {
				if !s.Applied || s.Sequence < res.Sequence {
					t.Errorf("WaitApplied: %+v, want applied at >= %d", s, res.Sequence)
				}
			}
			for _, tn := range c.nodes {
				// WaitApplied saw the heartbeat; the store says the same.
				if got := tn.st.AppliedSequence(); got < res.Sequence {
					t.Errorf("%s: AppliedSequence() = %d, want >= %d", tn.id, got, res.Sequence)
				}
				for _, k := range tt.gone {
					if has(tn.st, k, "") {
						t.Errorf("%s: %s still stored after the %s purge", tn.id, k, tt.kind)
					}
				}
				if !has(tn.st, "https://a.test/keep", "") {
					t.Errorf("%s: an unrelated entry was purged", tn.id)
				}
				if tt.check != nil {
					tt.check(t, tn)
				}
				waitApplied(t, tn, res.ID)
				if got := tn.appliedCount(res.ID); got != 1 {
					t.Errorf("%s applied %s %d times, want 1", tn.id, res.ID, got)
				}
			}
			// The proxy (Purger) heard of it on every node, the remote ones included.
			for _, tn := range c.nodes {
				if n := tn.purger.count(func(s Selector) bool { return equalSel(s, tt.sel) }); n == 0 {
					t.Errorf("%s: Purger never saw %+v", tn.id, tt.sel)
				}
			}
		})
	}

	t.Run("unsafe method invalidation", func(t *testing.T) {
		res, err := c.nodes[1].n.Unsafe(ctx, []string{"https://a.test/unsafe"})
		if err != nil || res.Count != 1 {
			t.Fatalf("Unsafe = %+v, %v; want 1 deleted", res, err)
		}
		for _, tn := range c.nodes {
			waitApplied(t, tn, res.ID)
			if has(tn.st, "https://a.test/unsafe", "") {
				t.Errorf("%s: unsafe-invalidated key still stored", tn.id)
			}
			tn.mu.Lock()
			k := tn.kinds[KindUnsafe]
			tn.mu.Unlock()
			if k != 1 {
				t.Errorf("%s applied %d unsafe messages, want 1", tn.id, k)
			}
		}
		waitFor(t, c.nodes[1].n, "outbox drained", func() bool {
			k, _ := c.nodes[1].st.OutboxLen(ctx)
			return k == 0
		})
	})

	t.Run("all is an epoch", func(t *testing.T) {
		res, err := c.nodes[2].n.Purge(ctx, Selector{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.nodes[2].n.WaitApplied(ctx, res.Sequence); err != nil {
			t.Fatal(err)
		}
		for _, tn := range c.nodes {
			if tn.st.Epoch().IsZero() {
				t.Errorf("%s: no epoch after purge-all", tn.id)
			}
			for _, k := range []string{"https://a.test/keep", "https://a.test/k2", "https://a.test/soft"} {
				if _, err := tn.st.Get(ctx, k, ""); !isNotFound(err) {
					t.Errorf("%s: Get(%s) after purge-all = %v, want ErrNotFound", tn.id, k, err)
				}
			}
			put(t, tn.st, "https://a.test/after", "")
			if !has(tn.st, "https://a.test/after", "") {
				t.Errorf("%s: an entry stored after purge-all is not served", tn.id)
			}
		}
	})

	t.Run("cluster view", func(t *testing.T) {
		view := c.nodes[0].n.Nodes()
		if len(view) != 3 {
			t.Fatalf("Nodes() = %d nodes, want 3: %+v", len(view), view)
		}
		for _, ni := range view {
			if ni.Gone || !ni.Serving || ni.Version != "test" || ni.HitRatio != 0.5 || ni.Sockets != 2 || ni.Stream == "" {
				t.Errorf("Nodes(): %+v; want live, serving, with figures", ni)
			}
			if ni.Self != (ni.ID == "node-a") {
				t.Errorf("Nodes(): %s Self = %v", ni.ID, ni.Self)
			}
		}
		// A node that leaves is gone at once for the others.
		c.nodes[2].stop()
		waitFor(t, c.nodes[0].n, "node-c gone", func() bool {
			for _, ni := range c.nodes[0].n.Nodes() {
				if ni.ID == "node-c" {
					return ni.Gone
				}
			}
			return false
		})
		// WaitApplied does not wait for a gone node.
		res, err := c.nodes[0].n.Purge(ctx, Selector{Keys: []string{"https://a.test/after"}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.nodes[0].n.WaitApplied(ctx, res.Sequence)
		if err != nil || len(st) != 2 {
			t.Errorf("WaitApplied with a node gone = %+v, %v; want the 2 live nodes", st, err)
		}
	})
}

func equalSel(a, b Selector) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// TestCluster_RestartCatchUp stops a node, purges through another, and
// restarts it on the same file: it serves no hits until it has caught up,
// and then the purged keys are gone.
func TestCluster_RestartCatchUp(t *testing.T) {
	c := newCluster(t)
	ctx := ctxT(t)
	for _, tn := range c.nodes {
		for i := range 50 {
			put(t, tn.st, fmt.Sprintf("https://a.test/%d", i), "", fmt.Sprintf("t%d", i%5))
		}
	}
	down := c.nodes[2]
	down.stop()
	var last uint64
	for i := range 40 {
		sel := Selector{Keys: []string{fmt.Sprintf("https://a.test/%d", i)}}
		if i%10 == 9 {
			sel = Selector{Tag: fmt.Sprintf("t%d", i%5)}
		}
		res, err := c.nodes[i%2].n.Purge(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		last = res.Sequence
	}
	// Restart on the same file. Serving must stay false until the node
	// has applied everything up to last.
	re := startNode(t, down.id, down.path, c.nats.ClientURL())
	if re.n.Serving() {
		t.Fatal("a restarted node serves hits before catching up")
	}
	waitFor(t, re.n, "restarted node serving", func() bool {
		if !re.n.Serving() {
			return false
		}
		// The first moment it serves, everything is applied.
		if got := re.st.AppliedSequence(); got < last {
			t.Fatalf("serving at applied %d, before catching up to %d", got, last)
		}
		return true
	})
	for i := range 50 {
		k := fmt.Sprintf("https://a.test/%d", i)
		// Keys 0..39 by key, except 9, 19, 29, 39: those purged tag t4,
		// which every key with i%5 == 4 carries.
		purged := i < 40 || i%5 == 4
		if got := has(re.st, k, ""); got == purged {
			t.Errorf("after catch-up %s stored = %v, want %v", k, got, !purged)
		}
	}
	if re.st.Epoch() != (time.Time{}) {
		t.Error("catching up dropped the cache; only purged keys should go")
	}
}

// TestCluster_GapDropsCache: with tiny stream limits, the messages a
// stopped node missed age out; restarted, it drops its whole cache.
func TestCluster_GapDropsCache(t *testing.T) {
	c := newCluster(t, func(cfg *Config, _ *store.Options) { cfg.MaxMsgs = 5 })
	ctx := ctxT(t)
	down := c.nodes[2]
	put(t, down.st, "https://a.test/never-purged", "")
	down.stop()
	var last uint64
	for i := range 20 {
		res, err := c.nodes[0].n.Purge(ctx, Selector{Keys: []string{fmt.Sprintf("https://a.test/x%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		last = res.Sequence
		// The live nodes apply each purge before the next is published:
		// with MaxMsgs 5 a live consumer that lagged five messages behind
		// (a loaded machine) would meet a gap of its own and rightly drop
		// its cache, which is not what this test is about.
		for _, tn := range c.nodes[:2] {
			waitFor(t, tn.n, tn.id+" applied the purge", func() bool { return tn.st.AppliedSequence() >= last })
		}
	}
	re := startNode(t, down.id, down.path, c.nats.ClientURL())
	waitServing(t, re)
	if got := re.st.AppliedSequence(); got < last {
		t.Errorf("AppliedSequence() = %d, want >= %d", got, last)
	}
	if re.st.Epoch().IsZero() {
		t.Error("no epoch: the node did not drop its cache after missing aged-out messages")
	}
	if has(re.st, "https://a.test/never-purged", "") {
		t.Error("an entry from before the gap is still served")
	}
	// The others had no gap and kept their caches.
	if !c.nodes[0].st.Epoch().IsZero() {
		t.Error("a node without a gap dropped its cache")
	}
}

// TestCluster_NATSDown: with NATS down, nodes stop serving hits after the
// bound, purges are reported not cluster-durable, unsafe invalidations
// wait in the outbox; when NATS returns the outbox drains and each message
// is applied once on every node.
func TestCluster_NATSDown(t *testing.T) {
	c := newCluster(t, func(cfg *Config, _ *store.Options) { cfg.PublishTimeout = 500 * time.Millisecond })
	ctx := ctxT(t)
	addr, dir := c.nats.Addr(), filepath.Join(c.dir, "nats")
	for _, tn := range c.nodes {
		put(t, tn.st, "https://a.test/u1", "")
		put(t, tn.st, "https://a.test/u2", "")
		put(t, tn.st, "https://a.test/p", "")
	}
	c.nats.Close()
	for _, tn := range c.nodes {
		waitFor(t, tn.n, tn.id+" not serving while NATS is down", func() bool { return !tn.n.Serving() })
	}
	a := c.nodes[0]
	res, err := a.n.Purge(ctx, Selector{Keys: []string{"https://a.test/p"}})
	var nd *NotDurableError
	if !errors.Is(err, ErrNotDurable) || !errors.As(err, &nd) || nd.Count != 1 || res.Sequence != 0 {
		t.Fatalf("Purge with NATS down = %+v, %v; want ErrNotDurable after applying 1 locally", res, err)
	}
	if has(a.st, "https://a.test/p", "") {
		t.Error("a purge not cluster-durable was not applied locally")
	}
	u1, err := a.n.Unsafe(ctx, []string{"https://a.test/u1"})
	if err != nil || u1.Count != 1 {
		t.Fatalf("Unsafe with NATS down = %+v, %v", u1, err)
	}
	u2, err := a.n.Unsafe(ctx, []string{"https://a.test/u2"})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := a.st.OutboxLen(ctx); k != 3 {
		t.Errorf("OutboxLen() = %d with NATS down, want 3", k)
	}

	c.nats = startNATS(t, addr, dir)
	ids := []string{res.ID, u1.ID, u2.ID}
	for _, tn := range c.nodes {
		for _, id := range ids {
			waitApplied(t, tn, id)
		}
		waitServing(t, tn)
	}
	waitFor(t, a.n, "outbox drained", func() bool {
		k, _ := a.st.OutboxLen(ctx)
		return k == 0
	})
	// Nothing was applied twice, and the stream holds each message once.
	for _, tn := range c.nodes {
		for _, id := range ids {
			if k := tn.appliedCount(id); k != 1 {
				t.Errorf("%s applied %s %d times, want 1", tn.id, id, k)
			}
		}
		for _, k := range []string{"https://a.test/u1", "https://a.test/u2", "https://a.test/p"} {
			if has(tn.st, k, "") {
				t.Errorf("%s: %s still stored after NATS returned", tn.id, k)
			}
		}
	}
	s, err := c.js(t).Stream(ctx, "FIRSTRENDER_test")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != 3 {
		t.Errorf("stream holds %d messages, want 3 (one per invalidation)", got)
	}
}

// TestCluster_StreamRecreated: when the stream is deleted and created
// anew, every node drops its cache before serving again.
func TestCluster_StreamRecreated(t *testing.T) {
	c := newCluster(t)
	ctx := ctxT(t)
	res, err := c.nodes[0].n.Purge(ctx, Selector{Keys: []string{"https://a.test/first"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.nodes[0].n.WaitApplied(ctx, res.Sequence); err != nil {
		t.Fatal(err)
	}
	old := c.nodes[0].st.ClusterStream()
	for _, tn := range c.nodes {
		put(t, tn.st, "https://a.test/cached", "")
	}
	js := c.js(t)
	if err := js.DeleteStream(ctx, "FIRSTRENDER_test"); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, c.nodes[0].n.streamConfig()); err != nil {
		t.Logf("CreateStream: %v (a node recreated it first)", err)
	}
	for _, tn := range c.nodes {
		waitFor(t, tn.n, tn.id+" on the new stream and serving", func() bool {
			return tn.st.ClusterStream() != old && tn.n.Serving()
		})
		if has(tn.st, "https://a.test/cached", "") {
			t.Errorf("%s: an entry from before the stream was recreated is served", tn.id)
		}
		if tn.st.Epoch().IsZero() {
			t.Errorf("%s: no epoch after the stream was recreated", tn.id)
		}
	}
	// Purges work on the new stream, from sequence 1. A publish the stream
	// does not acknowledge within PublishTimeout (a loaded machine) is
	// queued and published by the drainer, as documented: then the stream
	// itself must show it as its first message.
	b := c.nodes[1]
	res, err = b.n.Purge(ctx, Selector{Keys: []string{"https://a.test/second"}})
	switch {
	case errors.Is(err, ErrNotDurable):
		t.Logf("Purge on the new stream not acknowledged in time (%v); waiting for the outbox", err)
		s, serr := js.Stream(ctx, "FIRSTRENDER_test")
		if serr != nil {
			t.Fatal(serr)
		}
		waitFor(t, b.n, "the queued purge published", func() bool {
			k, _ := b.st.OutboxLen(ctx)
			info, ierr := s.Info(ctx)
			return k == 0 && ierr == nil && info.State.LastSeq >= 1
		})
		info, ierr := s.Info(ctx)
		if ierr != nil || info.State.FirstSeq != 1 || info.State.LastSeq != 1 {
			t.Fatalf("stream after the queued purge = %+v, %v; want its one message at sequence 1", info.State, ierr)
		}
		res.Sequence = 1
	case err != nil || res.Sequence != 1:
		t.Fatalf("Purge on the new stream = %+v, %v; want sequence 1", res, err)
	}
	for _, tn := range c.nodes {
		if _, err := tn.n.WaitApplied(ctx, res.Sequence); err != nil {
			t.Fatalf("%s: WaitApplied(%d) = %v", tn.id, res.Sequence, err)
		}
	}
	if got := b.appliedCount(res.ID); got != 1 {
		t.Errorf("%s applied its own purge %d times, want once", b.id, got)
	}
}

// TestCluster_Embedded runs the NATS server inside the first node, the
// one-box setup, with the others joining it.
func TestCluster_Embedded(t *testing.T) {
	dir := t.TempDir()
	a := startNode(t, "a", filepath.Join(dir, "a.db"), "", func(cfg *Config, _ *store.Options) {
		cfg.NATSURL, cfg.EmbeddedAddr = "", "127.0.0.1:0"
	})
	if a.n.Embedded() == nil {
		t.Fatal("no embedded server")
	}
	b := startNode(t, "b", filepath.Join(dir, "b.db"), a.n.Embedded().ClientURL())
	waitServing(t, a)
	waitServing(t, b)
	waitView(t, a, b)
	put(t, b.st, "https://a.test/x", "")
	ctx := ctxT(t)
	res, err := a.n.Purge(ctx, Selector{Keys: []string{"https://a.test/x"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.n.WaitApplied(ctx, res.Sequence); err != nil {
		t.Fatal(err)
	}
	if has(b.st, "https://a.test/x", "") {
		t.Error("purge through the embedded server did not reach the other node")
	}
}

func TestNew_Config(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tests := []struct {
		name string
		cfg  Config
		deps Deps
	}{
		{"no store", Config{NATSURL: "nats://127.0.0.1:1", NodeID: "a"}, Deps{}},
		{"neither url nor embedded", Config{NodeID: "a"}, Deps{Store: st}},
		{"both url and embedded", Config{NATSURL: "nats://127.0.0.1:1", EmbeddedAddr: "127.0.0.1:0", NodeID: "a"}, Deps{Store: st}},
		{"embedded dir without embedded", Config{NATSURL: "nats://127.0.0.1:1", EmbeddedDir: "/tmp/x", NodeID: "a"}, Deps{Store: st}},
		{"bad embedded address", Config{EmbeddedAddr: "localhost", NodeID: "a"}, Deps{Store: st}},
		{"no node id", Config{NATSURL: "nats://127.0.0.1:1"}, Deps{Store: st}},
		{"node id with a space", Config{NATSURL: "nats://127.0.0.1:1", NodeID: "a b"}, Deps{Store: st}},
		{"cluster name with a dot", Config{NATSURL: "nats://127.0.0.1:1", NodeID: "a", ClusterName: "a.b"}, Deps{Store: st}},
		{"negative blind", Config{NATSURL: "nats://127.0.0.1:1", NodeID: "a", Blind: -1}, Deps{Store: st}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg, tt.deps); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", tt.name, err)
		}
	}
	n, err := New(Config{NATSURL: "nats://127.0.0.1:1", NodeID: "a"}, Deps{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Purge(context.Background(), Selector{All: true}); !errors.Is(err, ErrClosed) {
		t.Errorf("Purge before Start = %v, want ErrClosed", err)
	}
	if _, err := n.Purge(context.Background(), Selector{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Purge(empty selector) = %v, want ErrInvalid", err)
	}
	if id := DefaultNodeID(":8080"); id == "" || !nodeIDRE.MatchString(id) {
		t.Errorf("DefaultNodeID(:8080) = %q, not a valid id", id)
	}
}

// TestNode_StartsGatedWithoutNATS: a node whose NATS is unreachable starts
// (it keeps trying) and serves no hits.
func TestNode_StartsGatedWithoutNATS(t *testing.T) {
	// A port nothing listens on: take a free one from a server we stop.
	e := startNATS(t, "", t.TempDir())
	url := e.ClientURL()
	e.Close()
	tn := startNode(t, "lonely", filepath.Join(t.TempDir(), "l.db"), url)
	if tn.n.Serving() {
		t.Error("serving hits without ever reaching NATS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := tn.n.Purge(ctx, Selector{Keys: []string{"https://a.test/"}}); !errors.Is(err, ErrNotDurable) {
		t.Errorf("Purge without NATS = %v, want ErrNotDurable", err)
	}
	info := tn.n.Nodes()
	if len(info) != 1 || info[0].Connected || info[0].Serving || info[0].Outbox != 1 {
		t.Errorf("Nodes() = %+v; want itself, not connected, not serving, 1 in the outbox", info)
	}
}
