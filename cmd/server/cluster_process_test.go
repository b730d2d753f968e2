package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/httpcache/httpcachetest"
)

// The issue 15 proof at the process level: three firstrender processes
// (this test binary as main), NATS embedded in the first, a real origin,
// all on loopback. Each cycle kills one follower with SIGKILL, purges 200
// pages (150 by key, 50 by tag) through another node's admin API (its
// token file), restarts the killed one on the same file and port and asks
// it for every purged page from the moment its port accepts: none may be a
// hit. Pages it was not told to purge must be hits again once it caught up
// (the cache survived; it was not simply dropped).

const (
	clusterPages   = 1000
	clusterPurged  = 200 // per cycle: 150 keys + 5 tags of 10 pages
	clusterByKey   = 150
	clusterCycles  = 3 // FIRSTRENDER_CLUSTER_CYCLES overrides
	clusterPageFmt = "/p/%04d"
	// clusterHost is the Host every node is asked for, as behind a load
	// balancer: the nodes share one key space.
	clusterHost = "localhost"
)

func pagePath(i int) string { return fmt.Sprintf(clusterPageFmt, i) }
func pageKey(i int) string  { return "http://" + clusterHost + pagePath(i) }
func pageTag(i int) string  { return "g" + strconv.Itoa(i/10) } // ten pages a tag

// clusterOrigin serves every page cacheable for an hour, tagged by group.
func clusterOrigin(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var i int
		if _, err := fmt.Sscanf(r.URL.Path, clusterPageFmt, &i); err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Surrogate-Key", pageTag(i))
		fmt.Fprintf(w, "<!doctype html><title>page %d</title><p>page %d rendered at %d</p>", i, i, time.Now().UnixNano())
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// clusterNode is one firstrender process of the cluster.
type clusterNode struct {
	id, public, admin, db string
	args                  []string
	p                     *proc
	hc                    *http.Client
}

func (n *clusterNode) start(t *testing.T) {
	t.Helper()
	args := append([]string{"--listen", n.public, "--admin-listen", n.admin, "--db", n.db, "--node-id", n.id,
		"--log-level", "warn"}, n.args...)
	n.p = startProc(t, args, nil)
}

// waitPort waits until the public port accepts a connection: the moment
// the test starts asking.
func (n *clusterNode) waitPort(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", n.public, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-n.p.done:
			t.Fatalf("%s exited (%v) before its port opened; log:\n%s", n.id, n.p.err, n.p.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: port %s not open after 20s; log:\n%s", n.id, n.public, n.p.logs())
		}
		time.Sleep(time.Millisecond) // polling a port: nothing to wait on but the kernel
	}
}

// get asks the node for page i and returns its Cache-Status member.
func (n *clusterNode) get(t *testing.T, i int) httpcachetest.Member {
	req, err := http.NewRequest(http.MethodGet, "http://"+n.public+pagePath(i), nil)
	if err != nil {
		t.Error(err)
		return httpcachetest.Member{}
	}
	req.Host = clusterHost
	res, err := n.hc.Do(req)
	if err != nil {
		t.Errorf("%s: GET %s: %v", n.id, pagePath(i), err)
		return httpcachetest.Member{}
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("%s: GET %s: %d", n.id, pagePath(i), res.StatusCode)
	}
	m, err := httpcachetest.Find(res.Header, httpcache.CacheName)
	if err != nil {
		t.Errorf("%s: GET %s: %v", n.id, pagePath(i), err)
	}
	return m
}

// client is an admin API client with the node's token file.
func (n *clusterNode) client(t *testing.T) *admin.Client {
	t.Helper()
	b, err := os.ReadFile(admin.TokenFile(n.db))
	if err != nil {
		t.Fatalf("%s: token file: %v", n.id, err)
	}
	c, err := admin.NewClient("http://"+n.admin, strings.TrimSpace(string(b)), admin.WithTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// each runs fn for every page in pages on 16 workers.
func each(pages []int, fn func(i int)) {
	ch := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range ch {
				fn(i)
			}
		})
	}
	for _, i := range pages {
		ch <- i
	}
	close(ch)
	wg.Wait()
}

// warm asks n for each page until it answers a hit (stored, and served).
func (n *clusterNode) warm(t *testing.T, pages []int) {
	t.Helper()
	var cold atomic.Int64
	each(pages, func(i int) {
		for try := 0; ; try++ {
			if n.get(t, i).Has("hit") {
				return
			}
			if try == 20 {
				cold.Add(1)
				return
			}
		}
	})
	if c := cold.Load(); c > 0 {
		t.Fatalf("%s: %d pages never became hits", n.id, c)
	}
	n.waitCommitted(t)
}

// waitCommitted waits until the node's store counts every page before a
// cycle may kill it. Without it, pages answered as hits just before the
// kill -9 were sometimes absent after the restart (the last ones warmed,
// pages no purge covered; seen in 2 of 4 runs of 25-40 cycles): the test
// is about purges, so it makes sure of its precondition first.
func (n *clusterNode) waitCommitted(t *testing.T) {
	t.Helper()
	c := n.client(t)
	start := time.Now()
	for {
		st, err := c.Stats(context.Background())
		if err == nil && st.Entries >= clusterPages {
			return
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s: store holds %d of %d pages after 30s (%v)", n.id, st.Entries, clusterPages, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the store's counter
	}
}

// waitServing waits until the node's own view says it serves hits.
func (n *clusterNode) waitServing(t *testing.T, peers int) time.Duration {
	t.Helper()
	start := time.Now()
	var c *admin.Client
	for {
		var v admin.ClusterView
		err := os.ErrNotExist // the token file is written after the port opens
		if _, serr := os.Stat(admin.TokenFile(n.db)); c == nil && serr == nil {
			c = n.client(t)
		}
		if c != nil {
			v, err = c.Cluster(context.Background())
		}
		if err == nil {
			live, serving := 0, false
			for _, x := range v.Nodes {
				if !x.Gone {
					live++
				}
				if x.Self {
					serving = x.Serving
				}
			}
			if serving && live >= peers {
				return time.Since(start)
			}
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s not serving with %d live nodes after 30s (last view %+v, %v); log:\n%s", n.id, peers, v, err, n.p.logs())
		}
		time.Sleep(20 * time.Millisecond) // polling the view
	}
}

// waitApplied waits until the node's own view says it applied seq.
func (n *clusterNode) waitApplied(t *testing.T, seq uint64) {
	t.Helper()
	c := n.client(t)
	start := time.Now()
	for {
		v, err := c.Cluster(context.Background())
		if err == nil {
			for _, x := range v.Nodes {
				if x.Self && x.Applied >= seq {
					return
				}
			}
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s has not applied sequence %d after 30s (%+v, %v)", n.id, seq, v, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the view
	}
}

func TestProcess_ClusterKillPurgeRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("three firstrender processes and NATS; kill -9 cycles")
	}
	cycles := clusterCycles
	if v := os.Getenv("FIRSTRENDER_CLUSTER_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			t.Fatalf("FIRSTRENDER_CLUSTER_CYCLES=%q: a count from 1 to 1000", v)
		}
		cycles = n
	}
	origin, _ := clusterOrigin(t)
	dir := t.TempDir()
	nats := freeAddr(t)
	nodes := make([]*clusterNode, 3)
	for i := range nodes {
		n := &clusterNode{id: fmt.Sprintf("n%d", i+1), public: freeAddr(t), admin: freeAddr(t),
			db: filepath.Join(dir, fmt.Sprintf("n%d.db", i+1)),
			hc: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}}
		n.args = []string{"--upstream", origin.URL, "--cluster-nats", "nats://" + nats}
		if i == 0 {
			n.args = []string{"--upstream", origin.URL, "--cluster-embedded-nats", nats}
		}
		nodes[i] = n
	}
	nodes[0].start(t)
	nodes[0].waitPort(t)
	for _, n := range nodes[1:] {
		n.start(t)
	}
	for _, n := range nodes {
		n.waitPort(t)
		n.waitServing(t, 3)
	}
	all := make([]int, clusterPages)
	for i := range all {
		all[i] = i
	}
	for _, n := range nodes {
		n.warm(t, all)
	}
	// The keys the test purges are the server's own: check one.
	pg, err := nodes[0].client(t).List(context.Background(), admin.ListQuery{Prefix: pageKey(0), Limit: 1})
	if err != nil || len(pg.Items) != 1 || pg.Items[0].Key != pageKey(0) {
		t.Fatalf("entry of page 0 = %+v, %v; want key %q", pg.Items, err, pageKey(0))
	}

	var catchUp time.Duration
	var gatedN, missN int
	for c := range cycles {
		victim, via := nodes[1+c%2], nodes[1+(c+1)%2]
		if c%3 == 2 {
			via = nodes[0] // sometimes the node that runs NATS
		}
		first := (c * clusterPurged) % clusterPages
		purged := make([]int, clusterPurged)
		var keys []string
		tags := map[string]bool{}
		for j := range purged {
			purged[j] = first + j
			if j < clusterByKey {
				keys = append(keys, pageKey(first+j))
			} else {
				tags[pageTag(first+j)] = true
			}
		}
		if len(tags) != (clusterPurged-clusterByKey)/10 {
			t.Fatalf("cycle %d: %d tags, want %d", c, len(tags), (clusterPurged-clusterByKey)/10)
		}

		victim.p.cmd.Process.Kill() // SIGKILL
		if code := victim.p.wait(t); code != 128+9 {
			t.Fatalf("cycle %d: %s exited %d, want killed (137)", c, victim.id, code)
		}
		ac := via.client(t)
		ctx := context.Background()
		res, err := ac.Purge(ctx, admin.PurgeRequest{Keys: keys})
		if err != nil || res.Sequence == 0 || res.Count != clusterByKey {
			t.Fatalf("cycle %d: purge of %d keys through %s = %+v, %v; want every one, acknowledged with a sequence", c, len(keys), via.id, res, err)
		}
		lastSeq := res.Sequence
		for tag := range tags {
			res, err := ac.Purge(ctx, admin.PurgeRequest{Tag: tag})
			if err != nil || res.Sequence == 0 || res.Count != 10 {
				t.Fatalf("cycle %d: purge of tag %s through %s = %+v, %v; want 10, acknowledged", c, tag, via.id, res, err)
			}
			lastSeq = max(lastSeq, res.Sequence)
		}

		start := time.Now()
		victim.start(t)
		victim.waitPort(t)
		var hits, bypass atomic.Int64
		each(purged, func(i int) {
			m := victim.get(t, i)
			switch {
			case m.Has("hit"):
				hits.Add(1)
				t.Errorf("cycle %d: %s served purged page %d as a hit (%s)", c, victim.id, i, m)
			case m.Match("fwd=bypass; detail=cluster-catching-up") == nil:
				bypass.Add(1)
			}
		})
		victim.waitServing(t, 3)
		catchUp += time.Since(start)
		if hits.Load() > 0 {
			t.Fatalf("cycle %d: %d of %d purged pages were hits on the restarted node", c, hits.Load(), len(purged))
		}
		gatedN += int(bypass.Load())
		missN += len(purged) - int(bypass.Load())

		// The rest of its cache survived the kill and the catch-up.
		var cold atomic.Int64
		var others []int
		for j := range 50 {
			others = append(others, (first+clusterPurged+j*7)%clusterPages)
		}
		each(others, func(i int) {
			if m := victim.get(t, i); !m.Has("hit") {
				// Absent from its store is a failure; a forward while the
				// node is briefly gated again (a heartbeat late on a busy
				// machine) is logged, not counted.
				if m.Match("fwd=uri-miss") == nil {
					cold.Add(1)
				}
				t.Logf("cycle %d: %s: page %d not purged, not a hit: %s", c, victim.id, i, m)
			}
		})
		if cold.Load() > 0 {
			t.Fatalf("cycle %d: %d of %d pages not purged were not hits on %s after it caught up (its cache was dropped?)", c, cold.Load(), len(others), victim.id)
		}
		// The purges reached every node: cache the pages again for later
		// cycles, once each node applied them from the stream (the node
		// that purged applies its own purge again when it comes back,
		// which would remove a page stored in between).
		for _, n := range nodes {
			n.waitApplied(t, lastSeq)
			n.warm(t, purged)
		}
	}
	t.Logf("%d kill -9 cycles: %d purged pages asked of restarted nodes, 0 hits (%d forwarded while catching up, %d misses after); mean restart-to-serving %v",
		cycles, cycles*clusterPurged, gatedN, missN, (catchUp / time.Duration(cycles)).Round(time.Millisecond))
}
