package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
)

// recCluster is a Cluster that applies purges through a StorePurger (the
// local effect) and records what it was asked; fail makes Purge return
// that error after the local apply, as a node whose log does not answer.
// The real node is exercised in httpcache/server's and cmd/server's tests.
type recCluster struct {
	local *StorePurger
	mu    sync.Mutex
	sels  []Selector
	waits []uint64
	fail  error
	seq   uint64
	// block, when non-nil, holds WaitApplied until ctx ends.
	block chan struct{}
}

func (c *recCluster) Purge(ctx context.Context, sel Selector) (int, uint64, error) {
	n, err := c.local.Purge(ctx, sel)
	if err != nil {
		return n, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sels = append(c.sels, sel)
	if c.fail != nil {
		return n, 0, c.fail
	}
	c.seq++
	return n, c.seq, nil
}

func (c *recCluster) WaitApplied(ctx context.Context, seq uint64) ([]NodeStatus, error) {
	c.mu.Lock()
	c.waits = append(c.waits, seq)
	block := c.block
	c.mu.Unlock()
	if block != nil {
		<-ctx.Done()
		return []NodeStatus{{Node: "a", Applied: true, Sequence: seq}, {Node: "b", Error: "not applied yet", Sequence: seq - 1}}, ctx.Err()
	}
	return []NodeStatus{{Node: "a", Applied: true, Sequence: seq}, {Node: "b", Applied: true, Sequence: seq}}, nil
}

func (c *recCluster) View() ClusterView {
	return ClusterView{Cluster: "shop", Node: "a", Nodes: []ClusterNode{
		{ID: "a", Applied: 7, Last: 7, Connected: true, Serving: true, Entries: 3, Self: true},
		{ID: "b", Applied: 5, Last: 7, Lag: 2, Connected: false, Blind: true, Gone: true},
	}}
}

func seedKeys(t *testing.T, st *store.Store, keys ...string) {
	t.Helper()
	var recs []*store.Record
	for _, k := range keys {
		r := bulkRecord(0)
		r.Key = k
		recs = append(recs, r)
	}
	put(t, st, recs)
}

func TestHandler_ClusterOff(t *testing.T) {
	st := newTestStore(t)
	ts := newTestServer(t, st, nil)
	seedKeys(t, st, "https://a.test/1")
	ctx := context.Background()

	_, err := ts.c.Cluster(ctx)
	if ae, ok := errors.AsType[*Error](err); !ok || ae.Status != 409 || ae.Code != "not_clustered" {
		t.Fatalf("GET cluster without clustering: %v, want 409 not_clustered", err)
	}
	_, err = ts.c.Purge(ctx, PurgeRequest{Key: "https://a.test/1", Scope: "cluster"})
	if ae, ok := errors.AsType[*Error](err); !ok || ae.Status != 409 || ae.Code != "not_clustered" {
		t.Fatalf("scope=cluster without clustering: %v, want 409 not_clustered", err)
	}
	if ms, err := st.Variants(ctx, "https://a.test/1"); err != nil || len(ms) != 1 {
		t.Fatalf("a refused cluster purge removed the entry: %d variants, %v", len(ms), err)
	}
	res, err := ts.c.Purge(ctx, PurgeRequest{Key: "https://a.test/1"})
	if err != nil || res.Count != 1 || res.Sequence != 0 {
		t.Fatalf("default scope without clustering = %+v, %v; want a local purge of 1 without sequence", res, err)
	}
	if p, _ := ts.c.Purges(ctx); len(p) != 1 || p[0].Selector.Scope != "local" {
		t.Fatalf("audit = %+v, want one local purge", p)
	}
}

func TestHandler_ClusterPurge(t *testing.T) {
	st := newTestStore(t)
	cl := &recCluster{}
	ts := newTestServer(t, st, func(c *HandlerConfig) {
		cl.local = c.Purger.(*StorePurger)
		c.Cluster = cl
	})
	ctx := context.Background()
	seedKeys(t, st, "https://a.test/1", "https://a.test/2", "https://a.test/3")

	t.Run("default scope is cluster and the reply carries the sequence", func(t *testing.T) {
		res, err := ts.c.Purge(ctx, PurgeRequest{Key: "https://a.test/1"})
		if err != nil || res.Count != 1 || res.Sequence != 1 || res.Nodes != nil {
			t.Fatalf("purge = %+v, %v; want count 1, sequence 1, no nodes", res, err)
		}
		if len(cl.sels) != 1 || cl.sels[0].Key != "https://a.test/1" || cl.sels[0].Scope != "cluster" {
			t.Fatalf("cluster saw %+v", cl.sels)
		}
		p, _ := ts.c.Purges(ctx)
		if len(p) != 1 || p[0].Sequence != 1 || p[0].Selector.Scope != "cluster" {
			t.Fatalf("audit = %+v, want the cluster purge at sequence 1", p)
		}
	})
	t.Run("scope=local does not involve the cluster", func(t *testing.T) {
		res, err := ts.c.Purge(ctx, PurgeRequest{Key: "https://a.test/2", Scope: "local"})
		if err != nil || res.Count != 1 || res.Sequence != 0 || len(cl.sels) != 1 {
			t.Fatalf("local purge = %+v, %v (cluster calls %d)", res, err, len(cl.sels))
		}
	})
	t.Run("dry runs do not involve the cluster", func(t *testing.T) {
		res, err := ts.c.Purge(ctx, PurgeRequest{Key: "https://a.test/3", DryRun: true})
		if err != nil || res.Count != 1 || len(cl.sels) != 1 {
			t.Fatalf("dry run = %+v, %v (cluster calls %d)", res, err, len(cl.sels))
		}
	})
	t.Run("wait=applied returns every node's status", func(t *testing.T) {
		res, err := ts.c.PurgeWait(ctx, PurgeRequest{Prefix: "https://none.test/"}, 0)
		if err != nil || res.Sequence != 2 || len(res.Nodes) != 2 || !res.Nodes[1].Applied || res.Nodes[1].Sequence != 2 {
			t.Fatalf("purge wait = %+v, %v", res, err)
		}
		if cl.waits[len(cl.waits)-1] != 2 {
			t.Fatalf("waited for %v, want sequence 2", cl.waits)
		}
	})
	t.Run("a wait that times out still answers 200 with who is missing", func(t *testing.T) {
		cl.mu.Lock()
		cl.block = make(chan struct{})
		cl.mu.Unlock()
		defer func() { cl.mu.Lock(); cl.block = nil; cl.mu.Unlock() }()
		res, err := ts.c.PurgeWait(ctx, PurgeRequest{Tag: "none"}, 50*time.Millisecond)
		if err != nil || len(res.Nodes) != 2 || res.Nodes[1].Applied || res.Nodes[1].Error == "" {
			t.Fatalf("purge wait = %+v, %v; want node b not applied, with an error", res, err)
		}
	})
	t.Run("bad wait parameters are refused before anything is purged", func(t *testing.T) {
		before := len(cl.sels)
		for _, q := range []string{"?wait=stored", "?wait_timeout=1s", "?wait=applied&wait_timeout=2m", "?wait=applied&wait_timeout=x"} {
			resp := ts.do(t, "POST", "/admin/v1/purge"+q, `{"key":"https://a.test/3"}`)
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("POST purge%s: %d, want 400", q, resp.StatusCode)
			}
		}
		if len(cl.sels) != before {
			t.Fatalf("a refused request reached the cluster")
		}
	})
	t.Run("not acknowledged: 503 not_durable with the local count", func(t *testing.T) {
		cl.mu.Lock()
		cl.fail = fmt.Errorf("%w: nats: timeout", ErrNotDurable)
		cl.mu.Unlock()
		defer func() { cl.mu.Lock(); cl.fail = nil; cl.mu.Unlock() }()
		resp := ts.do(t, "POST", "/admin/v1/purge", `{"key":"https://a.test/3"}`)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d (%s), want 503", resp.StatusCode, b)
		}
		var e Error
		if err := json.Unmarshal(b, &e); err != nil || e.Code != "not_durable" || e.Count == nil || *e.Count != 1 || e.ID == "" ||
			!strings.Contains(e.Message, "applied locally") || !strings.Contains(e.Message, "not cluster-durable") {
			t.Fatalf("body %s (%v), want not_durable with count 1 and an id", b, err)
		}
		if ms, err := st.Variants(ctx, "https://a.test/3"); err != nil || len(ms) != 0 {
			t.Fatalf("the local apply did not happen: %d variants, %v", len(ms), err)
		}
		p, _ := ts.c.Purges(ctx)
		if p[0].Error == "" || p[0].Count != 1 {
			t.Fatalf("audit = %+v, want the error recorded with the count", p[0])
		}
	})
	t.Run("the PURGE method is cluster-scoped too, X-Purge-Scope: local opts out", func(t *testing.T) {
		seedKeys(t, st, "http://a.test/m", "http://a.test/l")
		before := len(cl.sels)
		for _, c := range []struct {
			path, scope string
			cluster     bool
		}{{"/m", "", true}, {"/l", "local", false}} {
			req, _ := http.NewRequest("PURGE", ts.srv.URL+c.path, nil)
			req.Host = "a.test"
			req.Header.Set("Authorization", "Bearer "+testToken)
			if c.scope != "" {
				req.Header.Set("X-Purge-Scope", c.scope)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var res PurgeResult
			json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			if resp.StatusCode != 200 || res.Count != 1 || (res.Sequence != 0) != c.cluster {
				t.Errorf("PURGE %s scope %q: %d %+v", c.path, c.scope, resp.StatusCode, res)
			}
		}
		if len(cl.sels) != before+1 {
			t.Fatalf("cluster purges %d, want %d", len(cl.sels), before+1)
		}
	})
	t.Run("GET cluster serves the view", func(t *testing.T) {
		v, err := ts.c.Cluster(ctx)
		if err != nil || v.Cluster != "shop" || len(v.Nodes) != 2 || !v.Nodes[0].Self || !v.Nodes[1].Gone || v.Nodes[1].Lag != 2 {
			t.Fatalf("cluster view = %+v, %v", v, err)
		}
	})
	t.Run("purges from other nodes are recorded", func(t *testing.T) {
		ts.h.RecordPurge(PurgeRecord{Client: "cluster:b", Selector: PurgeRequest{Tag: "t1", Scope: "cluster"}, Count: 4, Sequence: 9})
		p, _ := ts.c.Purges(ctx)
		if p[0].Client != "cluster:b" || p[0].Sequence != 9 || p[0].ID == "" || p[0].Time.IsZero() {
			t.Fatalf("audit head = %+v", p[0])
		}
	})
}
