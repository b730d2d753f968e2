package tui

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// clusterFake is a fakeSource with a cluster view.
type clusterFake struct {
	*fakeSource
	mu    sync.Mutex
	view  admin.ClusterView
	err   error
	calls int
}

func seededCluster() admin.ClusterView {
	started := t0.Add(-(26*time.Hour + 5*time.Minute))
	return admin.ClusterView{Cluster: "prod-eu", Node: "edge-a", Nodes: []admin.ClusterNode{
		{ID: "edge-c", Address: "10.0.0.13:8080", Version: "v0.9.0", StartedAt: started, UptimeS: 3 * 3600, Applied: 1180, Last: 1204, Lag: 24,
			Connected: false, Blind: true, Entries: 2310, Bytes: 41 << 20, HitRatio: 0.702, Sockets: 3, LastApplyLatencyS: 0.0412, Outbox: 7, LastSeen: t0.Add(-2 * time.Second)},
		{ID: "edge-a", Address: "10.0.0.11:8080", Version: "v0.9.0", StartedAt: started, UptimeS: 26*3600 + 300, Applied: 1204, Last: 1204,
			Connected: true, Serving: true, Entries: 15, Bytes: 1288490189, HitRatio: 0.9, Sockets: 17, LastApplyLatencyS: 0.0031, LastSeen: t0, Self: true},
		{ID: "edge-d", Address: "10.0.0.14:8080", Version: "v0.8.2", StartedAt: started, UptimeS: 7200, Applied: 1101, Last: 1101, Lag: 0,
			Connected: true, Serving: true, Entries: 1900, Bytes: 30 << 20, HitRatio: 0.655, Sockets: 0, LastApplyLatencyS: 0.0052, LastSeen: t0.Add(-4 * time.Minute), Gone: true},
		{ID: "edge-b", Address: "10.0.0.12:8080", Version: "v0.9.0", StartedAt: started, UptimeS: 95, Applied: 1201, Last: 1204, Lag: 3,
			Connected: true, Serving: false, Entries: 12, Bytes: 96 << 10, HitRatio: 0, Sockets: 1, LastApplyLatencyS: 0.21, LastSeen: t0},
	}}
}

func newClusterFake(f *fakeSource) *clusterFake {
	return &clusterFake{fakeSource: f, view: seededCluster()}
}

func (c *clusterFake) Cluster(ctx context.Context) (admin.ClusterView, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.err != nil {
		return admin.ClusterView{}, c.err
	}
	v := c.view
	v.Nodes = append([]admin.ClusterNode(nil), c.view.Nodes...)
	return v, nil
}

func (c *clusterFake) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

func (c *clusterFake) set(fn func(v *admin.ClusterView)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(&c.view)
}

func (c *clusterFake) callCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func TestCluster_OnlyWhenOffered(t *testing.T) {
	h := newHarness(t, seeded(), Options{}, 120, 40) // no Cluster method
	h.key(":")
	if strings.Contains(h.view(), "cluster") {
		t.Errorf("the command prompt offers cluster to a source without it:\n%s", h.view())
	}
	h.typ("cluster")
	h.key("enter")
	if h.m.top() != scrList || !h.m.status.err || !strings.Contains(h.m.status.text, "no cluster view") {
		t.Errorf("screen %v status %+v, want the list and an error", h.m.top(), h.m.status)
	}
}

func TestCluster_PollsShowsGoneAndStops(t *testing.T) {
	c := newClusterFake(seeded())
	h := newHarness(t, c, Options{}, 120, 40)
	h.key(":")
	h.typ("cluster")
	h.key("enter")
	if h.m.top() != scrCluster {
		t.Fatalf("screen %v", h.m.top())
	}
	v := h.view()
	for _, want := range []string{"Cluster prod-eu", "seen from edge-a", "4 nodes, 1 gone", "log at sequence 1,204",
		"* edge-a", "10.0.0.11:8080", "● connected", "⊘ blind", "↻ catch-up", "✗ gone", "1,180", "41M", "70.2%", "41ms", "7 in outbox"} {
		if !strings.Contains(v, want) {
			t.Errorf("cluster screen lacks %q:\n%s", want, v)
		}
	}
	lines := strings.Split(v, "\n")
	idx := func(s string) int {
		for i, l := range lines {
			if strings.Contains(l, s) {
				return i
			}
		}
		return -1
	}
	if !(idx("edge-a") < idx("edge-b") && idx("edge-b") < idx("edge-c") && idx("edge-c") < idx("edge-d")) {
		t.Errorf("nodes not in id order with gone ones last:\n%s", v)
	}
	// Polled every second while shown.
	n := c.callCount()
	c.set(func(v *admin.ClusterView) { v.Nodes[3].Gone = true }) // edge-b goes
	h.tick()
	if c.callCount() != n+1 {
		t.Errorf("%d cluster calls in a second, want 1", c.callCount()-n)
	}
	if v := h.view(); !strings.Contains(v, "2 gone") {
		t.Errorf("edge-b not gone after the poll:\n%s", v)
	}
	// A failing poll keeps the last view, says why.
	c.setErr(errors.New("connection refused"))
	h.tick()
	if v := h.view(); !strings.Contains(v, "connection refused") || !strings.Contains(v, "edge-a") {
		t.Errorf("failed poll:\n%s", v)
	}
	h.key("q")
	n = c.callCount()
	h.tick()
	h.tick()
	if c.callCount() != n {
		t.Errorf("%d cluster calls after leaving the screen", c.callCount()-n)
	}
}

// adminCluster is an admin.Cluster whose view the test sets.
type adminCluster struct{ view admin.ClusterView }

func (a *adminCluster) Purge(ctx context.Context, sel admin.Selector) (int, uint64, error) {
	return 0, 0, errors.New("not in this test")
}
func (a *adminCluster) WaitApplied(ctx context.Context, seq uint64) ([]admin.NodeStatus, error) {
	return nil, nil
}
func (a *adminCluster) View() admin.ClusterView { return a.view }

func TestHTTP_Cluster(t *testing.T) {
	st := seedStore(t)
	for _, c := range []struct {
		name    string
		cluster admin.Cluster
		want    []string
	}{
		{"off", nil, []string{"Clustering is off on this server"}},
		{"on", &adminCluster{view: seededCluster()}, []string{"Cluster prod-eu", "* edge-a", "✗ gone", "⊘ blind"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			hd, err := admin.NewHandler(admin.HandlerConfig{Token: apiToken, Store: st, Cluster: c.cluster,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(hd)
			t.Cleanup(srv.Close)
			cl, err := admin.NewClient(srv.URL, apiToken)
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, cl, Options{}, 120, 40)
			h.key(":")
			h.typ("cluster")
			h.key("enter")
			v := h.view()
			for _, w := range c.want {
				if !strings.Contains(v, w) {
					t.Errorf("cluster screen lacks %q:\n%s", w, v)
				}
			}
		})
	}
}
