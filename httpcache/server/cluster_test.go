package server

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/httpcache/cluster"
	"github.com/firstrender/firstrender/httpcache/httpcachetest"
)

// The cluster mode through the composition root: two servers, NATS
// embedded in the first, a real origin, requests for one shared public
// host (as behind a load balancer). The node itself is tested in
// httpcache/cluster; these tests check the wiring: admin purges, the
// §4.4 invalidation, other nodes' purges and fills under way all take the
// proxy's one purge path, and the cluster view is served.

const sharedHost = "localhost"

func sharedKey(path string) string { return "http://" + sharedHost + path }

// clusterPair starts node a (embedded NATS) and node b (joining it) in
// front of origin, and waits until both serve hits.
func clusterPair(t *testing.T, origin string) (a, b *testServer) {
	t.Helper()
	dir := t.TempDir()
	a = startServer(t, Config{Upstream: mustURL(t, origin), DB: filepath.Join(dir, "a.db"), AdminToken: testToken,
		Cluster: cluster.Config{EmbeddedAddr: "127.0.0.1:0", NodeID: "a", ClusterName: "t"}})
	nats := a.srv.Node().Embedded().ClientURL()
	b = startServer(t, Config{Upstream: mustURL(t, origin), DB: filepath.Join(dir, "b.db"), AdminToken: testToken,
		Cluster: cluster.Config{NATSURL: nats, NodeID: "b", ClusterName: "t"}})
	for _, s := range []*testServer{a, b} {
		waitFor(t, s.srv.Node(), func(n *cluster.Node) bool {
			live := 0
			for _, x := range n.Nodes() {
				if !x.Gone {
					live++
				}
			}
			return n.Serving() && live == 2
		}, "serving with both nodes known")
	}
	return a, b
}

// waitFor waits (on the node's change channel, 20s at most) until cond.
func waitFor(t *testing.T, n *cluster.Node, cond func(*cluster.Node) bool, what string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		ch := n.Changed()
		if cond(n) {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("node not %s after 20s: %+v", what, n.Nodes())
		}
	}
}

// getShared asks s for path under the shared host and returns its
// Cache-Status member.
func getShared(t *testing.T, s *testServer, method, path string) httpcachetest.Member {
	t.Helper()
	req, err := http.NewRequest(method, s.public+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = sharedHost
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	m, err := httpcachetest.Find(res.Header, httpcache.CacheName)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return m
}

// warmShared makes path a hit on s.
func warmShared(t *testing.T, s *testServer, path string) {
	t.Helper()
	getShared(t, s, "GET", path)
	s.stored(t)
	if m := getShared(t, s, "GET", path); !m.Has("hit") {
		t.Fatalf("%s not a hit after a fill: %s", path, m)
	}
}

func TestCluster_AdminPurgeReachesEveryNode(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	a, b := clusterPair(t, origin.URL)
	for _, s := range []*testServer{a, b} {
		warmShared(t, s, "/gone")
		warmShared(t, s, "/kept")
	}
	ctx := tctx(t)
	res, err := adminClient(t, a.admin, testToken).PurgeWait(ctx, admin.PurgeRequest{Key: sharedKey("/gone")}, 0)
	if err != nil || res.Count != 1 || res.Sequence == 0 {
		t.Fatalf("purge through a = %+v, %v; want 1 record, acknowledged with a sequence", res, err)
	}
	if len(res.Nodes) != 2 {
		t.Fatalf("wait=applied nodes = %+v, want a and b", res.Nodes)
	}
	for _, n := range res.Nodes {
		if !n.Applied || n.Sequence < res.Sequence || n.Error != "" {
			t.Errorf("node %+v did not report the purge applied", n)
		}
	}
	if got := b.srv.Store().AppliedSequence(); got < res.Sequence {
		t.Fatalf("b's store applied %d, want at least %d", got, res.Sequence)
	}
	for _, s := range []*testServer{a, b} {
		if m := getShared(t, s, "GET", "/gone"); m.Has("hit") {
			t.Errorf("purged page served as a hit: %s", m)
		}
		if m := getShared(t, s, "GET", "/kept"); !m.Has("hit") {
			t.Errorf("a page not purged is no longer a hit: %s", m)
		}
	}
	// b's audit log has a's purge, named by node and sequence.
	purges, err := adminClient(t, b.admin, testToken).Purges(ctx)
	if err != nil || len(purges) == 0 || purges[0].Client != "cluster:a" || purges[0].Sequence != res.Sequence || purges[0].Count != 1 {
		t.Fatalf("b's purges = %+v, %v; want a's purge at sequence %d", purges, err, res.Sequence)
	}
	// scope=local stays on the node.
	res, err = adminClient(t, b.admin, testToken).Purge(ctx, admin.PurgeRequest{Key: sharedKey("/kept"), Scope: "local"})
	if err != nil || res.Count != 1 || res.Sequence != 0 {
		t.Fatalf("local purge on b = %+v, %v", res, err)
	}
	if m := getShared(t, a, "GET", "/kept"); !m.Has("hit") {
		t.Errorf("a local purge on b reached a: %s", m)
	}

	v, err := adminClient(t, b.admin, testToken).Cluster(ctx)
	if err != nil || v.Cluster != "t" || v.Node != "b" || len(v.Nodes) != 2 {
		t.Fatalf("cluster view on b = %+v, %v", v, err)
	}
	for _, n := range v.Nodes {
		if n.Gone || !n.Connected || !n.Serving || n.Address == "" || n.Self != (n.ID == "b") {
			t.Errorf("node in b's view: %+v", n)
		}
	}
}

func TestCluster_UnsafeMethodInvalidatesEveryNode(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	a, b := clusterPair(t, origin.URL)
	warmShared(t, a, "/form")
	warmShared(t, b, "/form")
	before := b.srv.Store().AppliedSequence()
	if m := getShared(t, a, "POST", "/form"); !m.Has("fwd") {
		t.Fatalf("POST through a: %s", m)
	}
	waitFor(t, b.srv.Node(), func(*cluster.Node) bool { return b.srv.Store().AppliedSequence() > before }, "past the unsafe invalidation")
	for _, s := range []*testServer{a, b} {
		if m := getShared(t, s, "GET", "/form"); m.Has("hit") {
			t.Errorf("page POSTed to through a still a hit: %s", m)
		}
	}
}

// TestCluster_FillUnderWayNotStoredAfterRemotePurge: b's origin fetch
// starts, a purge through a covers it, then the response arrives: b does
// not store it (the apply path fences fills like a local purge).
func TestCluster_FillUnderWayNotStoredAfterRemotePurge(t *testing.T) {
	t.Parallel()
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	var version atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" && version.Add(1) == 1 {
			arrived <- struct{}{}
			<-release
		}
		w.Header().Set("Cache-Control", "public, s-maxage=300")
		io.WriteString(w, "page "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	a, b := clusterPair(t, origin.URL)
	done := make(chan httpcachetest.Member, 1)
	go func() {
		req, _ := http.NewRequest("GET", b.public+"/slow", nil)
		req.Host = sharedHost
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- httpcachetest.Member{}
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		m, _ := httpcachetest.Find(res.Header, httpcache.CacheName)
		done <- m
	}()
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("b's fetch never reached the origin")
	}
	res, err := adminClient(t, a.admin, testToken).PurgeWait(tctx(t), admin.PurgeRequest{Key: sharedKey("/slow")}, 0)
	if err != nil || res.Sequence == 0 {
		t.Fatalf("purge = %+v, %v", res, err)
	}
	for _, n := range res.Nodes {
		if n.Node == "b" && !n.Applied {
			t.Fatalf("b did not apply the purge: %+v", res.Nodes)
		}
	}
	close(release)
	// Its Cache-Status may say "stored" (the headers went out before the
	// write was refused); what counts is that nothing was written.
	<-done
	b.stored(t)
	if m := getShared(t, b, "GET", "/slow"); m.Has("hit") {
		t.Fatalf("a fill from before the purge came back as a hit: %s", m)
	}
}

// TestCluster_OffByDefault: without Config.Cluster there is no node, no
// gate, and GET cluster says clustering is off.
func TestCluster_OffByDefault(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), AdminToken: testToken})
	if s.srv.Node() != nil {
		t.Fatal("a node without Config.Cluster")
	}
	warmShared(t, s, "/x")
	_, err := adminClient(t, s.admin, testToken).Cluster(tctx(t))
	var ae *admin.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != "not_clustered" {
		t.Fatalf("GET cluster on a single node: %v, want 409 not_clustered", err)
	}
	res, err := adminClient(t, s.admin, testToken).Purge(tctx(t), admin.PurgeRequest{Key: sharedKey("/x")})
	if err != nil || res.Count != 1 || res.Sequence != 0 {
		t.Fatalf("purge on a single node = %+v, %v", res, err)
	}
}

// TestCluster_StartFailureNamesTheField: an embedded NATS address that is
// taken fails New with the field, and releases what New opened.
func TestCluster_StartFailureNamesTheField(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	busy := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(busy.Close)
	db := filepath.Join(t.TempDir(), "fr.db")
	cfg := testConfig(t, Config{Upstream: mustURL(t, origin.URL), DB: db, AdminToken: testToken,
		Cluster: cluster.Config{EmbeddedAddr: busy.Listener.Addr().String(), NodeID: "x"}}, io.Discard)
	_, err := New(cfg)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Cluster.EmbeddedAddr" {
		t.Fatalf("New with a taken NATS address: %v, want a FieldError on Cluster.EmbeddedAddr", err)
	}
	// The store was closed again: a second New can open it.
	cfg.Cluster = cluster.Config{}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New after a failed cluster start: %v", err)
	}
	srv.Close()
}
