package main

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/httpcache/admin"
)

func init() {
	Register(Scenario{Name: "hot", Default: true, Doc: "one cached URL vs the baseline (and the peers)", Run: runHot})
	Register(Scenario{Name: "working-set", Default: true, Doc: "-pages distinct cached pages cycled vs the baseline (and the peers)", Run: runWorkingSet})
	Register(Scenario{Name: "large", Default: true, Doc: "-large-pages distinct pages (more than the memory tier), uniform random, vs the baseline (and the peers, filled through their front door)", Run: runLarge})
	Register(Scenario{Name: "mixed", Default: true, Doc: "the working set's hits while side connections send 2% misses (stored) and 0.1% single-URL purges (admin API; Varnish: PURGE; nginx: none), vs the baseline (and the peers)", Run: runMixed})
	Register(Scenario{Name: "miss", Default: true, Doc: "a 20 KB miss forwarded, inspected and stored vs forwarded without storing (no-store)", Run: runMiss})
	Register(Scenario{Name: "growth", Default: true, Doc: "hits with -growth records in the store (memory tier on, and off), each size in turn per round; open time, RSS", Run: runGrowth})
	Register(Scenario{Name: "live", Default: true, Doc: liveDoc, Run: runLive})
}

// gPath is the path of prefilled page i.
func gPath(i int) string { return "/g/" + strconv.Itoa(i) }

// fixed returns a next function that always requests path.
func fixed(path string) func(context.Context, int, int64, *conn) (string, error) {
	return func(context.Context, int, int64, *conn) (string, error) { return path, nil }
}

// cycle returns a next function cycling through pages 0..n-1 in order,
// shared by all workers.
func cycle(n int) func(context.Context, int, int64, *conn) (string, error) {
	var c atomic.Int64
	return func(context.Context, int, int64, *conn) (string, error) {
		return gPath(int(c.Add(1) % int64(n))), nil
	}
}

// uniform returns a next function choosing pages 0..n-1 uniformly.
func uniform(n int) func(context.Context, int, int64, *conn) (string, error) {
	return func(context.Context, int, int64, *conn) (string, error) {
		return gPath(rand.IntN(n)), nil
	}
}

// pairSpec is what pair measures: the reference ("baseline") and the
// measured side ("firstrender"), each a process, and the peers.
type pairSpec struct {
	name     string // the scenario; its profiles are name (firstrender) and name.baseline
	base, fr *Proc  // may be the same process (miss: forward vs store)
	peers    []peer
	// mk returns a fresh load for one measurement of target: "baseline",
	// "firstrender" or a peer's target name.
	mk             func(target string) *load
	note, baseNote string // firstrender's and the baseline's row notes
	// The row names and the baseline's profile name, when not
	// "baseline", "firstrender" and name+".baseline".
	baseTarget, frTarget, baseProfile string
	// noProfile: base and fr have no control listener to profile (a
	// peer measured against itself).
	noProfile bool
}

// pair measures the baseline and firstrender (already started) with the
// same load and returns their rows; it stops base unless it is fr.
//
// With -rounds above 1 the two alternate and the round with the median
// firstrender/baseline req/s ratio is reported, so a burst of load from
// other work on the machine falls on both.
//
// Each of peers that started (nginx, Varnish) is measured in every round
// too, after firstrender, and reported from its own median round (by its
// req/s ratio to that round's baseline) with its ratios against that
// round's baseline (its note says so when that is not the baseline row
// shown); a peer that did not start gets a skipped row.
func pair(ctx context.Context, env *Env, sp pairSpec) []Row {
	baseTarget, frTarget, baseProfile := cmp.Or(sp.baseTarget, "baseline"), cmp.Or(sp.frTarget, "firstrender"), cmp.Or(sp.baseProfile, sp.name+".baseline")
	type round struct {
		b, f Measurement
		p    []Measurement
	}
	var rs []round
	for k := range max(1, env.Opts.Rounds) {
		lb := sp.mk("baseline")
		lb.addr = sp.base.Addr
		if k == 0 && !sp.noProfile {
			lb.profile = baseProfile
		}
		mb, _ := env.Measure(ctx, sp.base, lb)
		mb.HitRatio = -1
		lf := sp.mk("firstrender")
		lf.addr = sp.fr.Addr
		if k == 0 && !sp.noProfile {
			lf.profile = sp.name
		}
		mf, _ := env.Measure(ctx, sp.fr, lf)
		r := round{b: mb, f: mf, p: make([]Measurement, len(sp.peers))}
		for i, pe := range sp.peers {
			if pe.p == nil {
				continue
			}
			lp := sp.mk(pe.target)
			lp.addr = pe.p.Addr
			r.p[i], _ = env.Measure(ctx, pe.p, lp)
		}
		rs = append(rs, r)
		if env.Opts.Rounds > 1 {
			line := fmt.Sprintf("loadtest: %s round %d: %s %.0f req/s, %s %.0f (%.2fx)", sp.name, k+1, baseTarget, mb.RPS, frTarget, mf.RPS, mf.RPS/max(mb.RPS, 1))
			for i, pe := range sp.peers {
				if pe.p != nil {
					line += fmt.Sprintf(", %s %.0f (%.2fx)", pe.target, r.p[i].RPS, r.p[i].RPS/max(mb.RPS, 1))
				}
			}
			fmt.Fprintln(env.log, line)
		}
	}
	if sp.base != sp.fr {
		sp.base.Stop()
	}
	slices.SortFunc(rs, func(a, b round) int {
		return cmp.Compare(a.f.RPS/max(a.b.RPS, 1), b.f.RPS/max(b.b.RPS, 1))
	})
	med := rs[len(rs)/2]
	mb, mf := med.b, med.f
	note := sp.note
	if len(rs) > 1 {
		note = strings.TrimSpace(note + fmt.Sprintf(" median of %d rounds", len(rs)))
	}
	rows := []Row{
		{Scenario: sp.name, Target: baseTarget, M: mb, Note: sp.baseNote},
		{Scenario: sp.name, Target: frTarget, M: mf, Ref: &mb, Note: note},
	}
	if len(rs) == 1 {
		return append(rows, peerRows(sp.name, sp.peers, med.p, &mb)...)
	}
	// Each peer's own median round (by its ratio to that round's
	// baseline), as for firstrender: a burst of outside load falls on one
	// measurement, not on the peer's row.
	for i, pe := range sp.peers {
		if pe.p == nil {
			rows = append(rows, peerRows(sp.name, sp.peers[i:i+1], nil, nil)...)
			continue
		}
		byPeer := slices.Clone(rs)
		slices.SortFunc(byPeer, func(a, b round) int {
			return cmp.Compare(a.p[i].RPS/max(a.b.RPS, 1), b.p[i].RPS/max(b.b.RPS, 1))
		})
		pm := byPeer[len(byPeer)/2]
		ref := &mb
		if pm.b != mb {
			ref = &pm.b
			pe.note += fmt.Sprintf("; median of %d rounds, x vs that round's baseline (%.0f req/s)", len(rs), pm.b.RPS)
		} else {
			pe.note += fmt.Sprintf("; median of %d rounds", len(rs))
		}
		rows = append(rows, peerRows(sp.name, []peer{pe}, []Measurement{pm.p[i]}, ref)...)
	}
	return rows
}

// peer is one peer's place in a scenario: p started and warm, or nil and
// note says why not.
type peer struct {
	target string // the table's target column
	p      *Proc
	note   string
}

// peerRows are the rows of peers measured as ms (same order), against ref.
func peerRows(scenario string, peers []peer, ms []Measurement, ref *Measurement) []Row {
	var rows []Row
	for i, pe := range peers {
		if pe.p == nil {
			rows = append(rows, Row{Scenario: scenario, Target: pe.target, Note: pe.note, Skipped: true})
			continue
		}
		rows = append(rows, Row{Scenario: scenario, Target: pe.target, M: ms[i], Ref: ref, Note: pe.note})
	}
	return rows
}

// httpPeers starts nginx and Varnish in front of origin (each optional),
// warms each with warmUp (the same warm-up firstrender had) and checks
// that a request for verify then hits, by the peer's own X-Cache (and, for
// Varnish, its Age field). A peer that is absent, fails, or does not hit
// is stopped and left with a "skipped: why" note.
func httpPeers(ctx context.Context, env *Env, origin *Proc, po PeerOpts, warmUp func(addr string) error, verify string) []peer {
	return startPeers(ctx, env, origin, po, "", func(p *Proc, age bool) (string, error) {
		if err := warmUp(p.Addr); err != nil {
			return "", err
		}
		c := &conn{addr: p.Addr}
		r, err := c.get(verify)
		c.close()
		switch {
		case err != nil:
			return "", fmt.Errorf("verify GET %s: %w", verify, err)
		case !r.hit:
			return "", fmt.Errorf("GET %s after the warm-up: status %d, X-Cache not HIT (not caching?)", verify, r.status)
		case age && r.age < 0:
			return "", fmt.Errorf("GET %s after the warm-up: X-Cache HIT but no Age field", verify)
		case age:
			return "warm-up verified X-Cache HIT and Age", nil
		}
		return "warm-up verified X-Cache HIT", nil
	})
}

// startPeers starts nginx and Varnish in front of origin (each optional)
// and has check ready each (age: the peer sends Age on hits, which the
// check may require). A peer that is absent, fails to start, or fails its
// check is stopped and left with a "skipped: why" note, logged with
// logPrefix; a ready one's note is its cache's size and check's note.
func startPeers(ctx context.Context, env *Env, origin *Proc, po PeerOpts, logPrefix string, check func(p *Proc, age bool) (string, error)) []peer {
	kinds := []struct {
		target string
		start  func(context.Context, *Proc, PeerOpts) (*Proc, error)
		age    bool
	}{
		{"nginx proxy_cache", env.StartNginx, false},
		{"varnish", env.StartVarnish, true},
	}
	var out []peer
	for _, k := range kinds {
		pe := peer{target: k.target}
		p, err := k.start(ctx, origin, po)
		var note string
		if err == nil {
			note, err = check(p, k.age)
		}
		if err != nil {
			if p != nil {
				p.Stop()
			}
			pe.note = err.Error()
			if !strings.HasPrefix(pe.note, "skipped") {
				pe.note = "skipped: " + pe.note
			}
			fmt.Fprintf(env.log, "loadtest: %s%s: %s\n", logPrefix, k.target, pe.note)
		} else {
			pe.p = p
			pe.note = p.Info["cache"] + ", " + note
		}
		out = append(out, pe)
	}
	return out
}

// startTrio starts the origin, the baseline and firstrender.
func startTrio(ctx context.Context, env *Env, so ServerOpts) (origin, base, fr *Proc, err error) {
	if origin, err = env.StartOrigin(ctx); err != nil {
		return
	}
	if base, err = env.StartBaseline(ctx, so.Prefill); err != nil {
		return
	}
	fr, err = env.StartServer(ctx, origin, so)
	return
}

func runHot(ctx context.Context, env *Env) ([]Row, error) {
	origin, base, fr, err := startTrio(ctx, env, ServerOpts{})
	if err != nil {
		return nil, err
	}
	warmUp := func(addr string) error { return warm(ctx, addr, 1, 1, 3, func(int) string { return "/p/0" }) }
	if err := warmUp(fr.Addr); err != nil {
		return nil, err
	}
	peers := httpPeers(ctx, env, origin, PeerOpts{Pages: 1}, warmUp, "/p/0")
	return pair(ctx, env, pairSpec{name: "hot", base: base, fr: fr, peers: peers, mk: func(string) *load { return &load{next: fixed("/p/0")} }}), nil
}

func runWorkingSet(ctx context.Context, env *Env) ([]Row, error) {
	n := env.Opts.Pages
	origin, base, fr, err := startTrio(ctx, env, ServerOpts{Prefill: n})
	if err != nil {
		return nil, err
	}
	// Two rounds: the memory tier admits a page on its second request.
	// The peers get the same two (their first stores the page).
	warmUp := func(addr string) error { return warm(ctx, addr, env.Opts.Conns, n, 2, gPath) }
	if err := warmUp(fr.Addr); err != nil {
		return nil, err
	}
	peers := httpPeers(ctx, env, origin, PeerOpts{Pages: n}, warmUp, gPath(n-1))
	return pair(ctx, env, pairSpec{name: "working-set", base: base, fr: fr, peers: peers,
		mk: func(string) *load { return &load{next: cycle(n)} }, note: fmt.Sprintf("%d pages cycled", n)}), nil
}

func runLarge(ctx context.Context, env *Env) ([]Row, error) {
	n := env.Opts.LargePages
	origin, base, fr, err := startTrio(ctx, env, ServerOpts{Prefill: n})
	if err != nil {
		return nil, err
	}
	// firstrender's pages are prefilled into the store (none in its memory
	// tier); the peers have to be filled through their front door: every
	// page once. firstrender gets the same pass, so that every target is
	// measured in the state of a cache that has served each page since it
	// started (for firstrender: the store file's pages mapped in, not
	// first-touch page faults of the mmap on nearly every request of a
	// short run). Two passes, so firstrender is measured in its steady
	// state too: one pass admits nothing to its memory tier (admission is
	// on the second read), and a run measured after it saw the tier fill
	// (about 12,000 admissions in the measured window) and the Go heap
	// grow to its new goal: about 125,000 page faults and 500 MB of RSS
	// in an 8 s window (ps min_flt, 15:09 UTC), the body copies landing on
	// fresh pages. The peers get the same two passes.
	warmUp := func(addr string) error { return warm(ctx, addr, env.Opts.Conns, n, 2, gPath) }
	if err := warmUp(fr.Addr); err != nil {
		return nil, err
	}
	peers := httpPeers(ctx, env, origin, PeerOpts{Pages: n}, warmUp, gPath(n-1))
	return pair(ctx, env, pairSpec{name: "large", base: base, fr: fr, peers: peers,
		mk: func(string) *load { return &load{next: uniform(n)} }, note: fmt.Sprintf("%d pages uniform, db %s MB", n, fr.Info["file_mb"])}), nil
}

// missPrefix is the path prefix of mixed's misses.
const missPrefix = "/m/"

// runMixed is the working set's hits while 2% of the traffic is misses
// (new URLs, stored) and 0.1% purges of single URLs through the admin API
// (POST /admin/v1/purge, which answers after the deletion committed). The
// misses and purges are side traffic on connections of their own (see
// mk), so the row's req/s, latencies and hit% are the hits'; its CPU/req
// is the server's whole CPU over those hits. Purge targets are pages no
// other request asks for, cached (and admitted to the memory tier)
// beforehand; right after each acknowledgement the purging connection
// requests the page, and a hit there is a violation of purge semantics
// (counted in the note).
//
// The baseline gets the same side traffic and answers the misses from
// memory, as it does every path. The peers run the same mix after the
// same warm-up: Varnish purges with its PURGE method (the VCL's return
// (purge), answered after the object is gone), checked the same way;
// open-source nginx has no purge, so its purge slots are hits of the
// working set like the baseline's.
func runMixed(ctx context.Context, env *Env) ([]Row, error) {
	n := env.Opts.Pages
	conns := env.Opts.Conns
	targets := 4000
	origin, base, fr, err := startTrio(ctx, env, ServerOpts{Prefill: n + targets})
	if err != nil {
		return nil, err
	}
	warmUp := func(addr string) error { return warm(ctx, addr, conns, n+targets, 2, gPath) }
	if err := warmUp(fr.Addr); err != nil {
		return nil, err
	}
	peers := httpPeers(ctx, env, origin, PeerOpts{Pages: n + targets + n/10}, warmUp, gPath(n-1))
	ac, err := admin.NewClient("http://"+fr.Info["admin"], adminToken)
	if err != nil {
		return nil, err
	}
	var run atomic.Int64
	// mixedRun is one target's side traffic over all its measurements:
	// misses, purges, violations of purge semantics, errors.
	type mixedRun struct {
		purges, violations, dropped, errors atomic.Int64
		mu                                  sync.Mutex
		lat, missLat                        []time.Duration
		firstErr                            error
	}
	// mixedJob is one request of the side traffic: a miss (a new URL) or
	// a purge of path.
	type mixedJob struct {
		path  string
		purge bool
	}
	const sideConns = 8
	// mk builds the load: its workers ask for pages of the working set,
	// and in one slot of 50 hand a miss, in one of 1,000 a purge (purge
	// nil: none, the slot is a hit), to the side traffic, which sends it
	// on sideConns connections of its own: other visitors, and an
	// operator, beside the measured ones. A hit's connection never waits
	// for the origin or an acknowledgement (with misses inline, each
	// connection spent 2% of its requests waiting on the origin, shared
	// with the load generator's CPU: every cache lost a quarter of its
	// working-set figure to that, nginx 1.31x -> 0.97x in run I), so
	// the figure is the hits', with the server's CPU for every miss,
	// store and purge charged to them.
	mk := func(st *mixedRun, purge func(ctx context.Context, c *conn, path string) error) *load {
		id := strconv.FormatInt(run.Add(1), 10)
		var miss atomic.Int64
		jobs := make(chan mixedJob, 1024)
		fail := func(err error) {
			st.errors.Add(1)
			st.mu.Lock()
			if st.firstErr == nil {
				st.firstErr = err
			}
			st.mu.Unlock()
		}
		next := func(ctx context.Context, w int, i int64, c *conn) (string, error) {
			r := rand.IntN(1000)
			var j mixedJob
			switch {
			case r < 1 && purge != nil:
				seq := int(st.purges.Add(1) - 1)
				if seq >= targets { // every target purged once already
					return gPath(rand.IntN(n)), nil
				}
				j = mixedJob{path: gPath(n + seq), purge: true}
			case r < 21:
				j = mixedJob{path: missPrefix + id + "-" + strconv.FormatInt(miss.Add(1), 10)}
			default:
				return gPath(rand.IntN(n)), nil
			}
			select {
			case jobs <- j:
			default:
				st.dropped.Add(1)
			}
			return gPath(rand.IntN(n)), nil
		}
		side := func(ctx context.Context, c *conn, j mixedJob) {
			t0 := time.Now()
			if !j.purge {
				r, err := c.get(j.path)
				switch {
				case ctx.Err() != nil:
				case err != nil:
					fail(fmt.Errorf("GET %s: %w", j.path, err))
				case r.status != 200:
					fail(fmt.Errorf("GET %s: status %d", j.path, r.status))
				default:
					d := time.Since(t0)
					st.mu.Lock()
					st.missLat = append(st.missLat, d)
					st.mu.Unlock()
				}
				return
			}
			if err := purge(ctx, c, j.path); err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("purge %s: %w", j.path, err))
				}
				return
			}
			d := time.Since(t0)
			st.mu.Lock()
			st.lat = append(st.lat, d)
			st.mu.Unlock()
			r, err := c.get(j.path)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				fail(fmt.Errorf("GET %s after its purge: %w", j.path, err))
			case r.hit:
				st.violations.Add(1)
			}
		}
		background := func(ctx context.Context, addr string) {
			var wg sync.WaitGroup
			for range sideConns {
				wg.Go(func() {
					c := &conn{addr: addr}
					defer c.close()
					for {
						select {
						case <-ctx.Done():
							return
						case j := <-jobs:
							side(ctx, c, j)
						}
					}
				})
			}
			wg.Wait()
		}
		return &load{next: next, background: background}
	}
	sideNote := func(st *mixedRun, purges bool) string {
		st.mu.Lock()
		pl := &result{lat: slices.Clone(st.lat)}
		ml := &result{lat: slices.Clone(st.missLat)}
		firstErr := st.firstErr
		st.mu.Unlock()
		sortDurations(pl.lat)
		sortDurations(ml.lat)
		note := fmt.Sprintf("side: %d misses (p50 %s, p99 %s) on %d connections", len(ml.lat), fmtDur(ml.pct(0.5)), fmtDur(ml.pct(0.99)), sideConns)
		if purges {
			note += fmt.Sprintf(", purges=%d (p50 %s, p99 %s) served-after-purge=%d", len(pl.lat), fmtDur(pl.pct(0.5)), fmtDur(pl.pct(0.99)), st.violations.Load())
		}
		if d := st.dropped.Load(); d > 0 {
			note += fmt.Sprintf(", %d dropped (side traffic behind)", d)
		}
		if e := st.errors.Load(); e > 0 {
			note += fmt.Sprintf(", %d errors (first: %v)", e, firstErr)
		}
		return note
	}
	// Each target's purges and violations, over all its rounds.
	runs := map[string]*mixedRun{}
	purgeFor := func(target string) func(context.Context, *conn, string) error {
		switch target {
		case "firstrender":
			return func(ctx context.Context, _ *conn, path string) error {
				_, err := ac.Purge(ctx, admin.PurgeRequest{Key: "http://" + fr.Addr + path})
				return err
			}
		case "varnish":
			return func(_ context.Context, c *conn, path string) error {
				r, err := c.do("PURGE", path, "")
				if err == nil && r.status != 200 {
					err = fmt.Errorf("PURGE status %d", r.status)
				}
				return err
			}
		}
		return nil // the baseline and nginx: those 0.1% are hits
	}
	rows := pair(ctx, env, pairSpec{name: "mixed", base: base, fr: fr, peers: peers, baseNote: "same path mix, no purges",
		mk: func(target string) *load {
			st := runs[target]
			if st == nil {
				st = &mixedRun{}
				runs[target] = st
			}
			return mk(st, purgeFor(target))
		}})
	for i := range rows {
		t := rows[i].Target
		if rows[i].Skipped {
			continue
		}
		note := sideNote(runs[t], purgeFor(t) != nil)
		switch {
		case t == "baseline":
			note += " (answered from memory)"
		case purgeFor(t) == nil:
			note += "; no purge in open-source nginx (those 0.1% are hits)"
		}
		rows[i].Note = strings.TrimPrefix(rows[i].Note+"; "+note, "; ")
	}
	return rows, nil
}

// runMiss compares a stored miss (a new URL each request: forwarded,
// inspected by the LiveView lint, stored beside the response) with a
// forwarded response the origin marks no-store (forwarded, not stored).
//
// The peers are measured the same way, each against itself: nginx
// (proxy_cache, a file per response, written without fsync) and Varnish
// (malloc storage, lost on restart), so the row shows what storing costs
// the other caches over forwarding on the same host. firstrender's
// store commits with fdatasync and survives a crash.
func runMiss(ctx context.Context, env *Env) ([]Row, error) {
	origin, err := env.StartOrigin(ctx)
	if err != nil {
		return nil, err
	}
	fr, err := env.StartServer(ctx, origin, ServerOpts{})
	if err != nil {
		return nil, err
	}
	var run atomic.Int64
	mk := func(prefix string) *load {
		id := strconv.FormatInt(run.Add(1), 10)
		var c atomic.Int64
		return &load{next: func(context.Context, int, int64, *conn) (string, error) {
			return prefix + id + "-" + strconv.FormatInt(c.Add(1), 10), nil
		}}
	}
	mkFor := func(target string) *load {
		if target == "baseline" {
			return mk("/ns/")
		}
		return mk("/u/")
	}
	// Both sides profiled (miss.forward.*, miss.*), so that the profiler's
	// own cost (the block and mutex rates) does not fall on one side only.
	rows := pair(ctx, env, pairSpec{name: "miss", base: fr, fr: fr,
		baseTarget: "forward (no-store)", frTarget: "forward+inspect+store", baseProfile: "miss.forward",
		mk: mkFor})
	fr.Stop()
	for _, pe := range missPeers(ctx, env, origin) {
		if pe.p == nil {
			rows = append(rows, Row{Scenario: "miss", Target: pe.target, Note: pe.note, Skipped: true})
			continue
		}
		rows = append(rows, pair(ctx, env, pairSpec{name: "miss", base: pe.p, fr: pe.p, noProfile: true,
			baseTarget: pe.target + " forward", frTarget: pe.target + " store", note: pe.note, mk: mkFor})...)
		pe.p.Stop()
	}
	return rows, nil
}

// missPeers starts nginx and Varnish (each optional) for the miss
// scenario and checks, by each one's X-Cache, that it stores a new
// cacheable URL (its second request hits) and not a no-store one.
func missPeers(ctx context.Context, env *Env, origin *Proc) []peer {
	// Room for every miss of the run without eviction: at most 20,000
	// req/s over each round's warm-up and measurement.
	secs := int((env.Opts.Warmup + env.Opts.Duration) / time.Second)
	po := PeerOpts{Pages: min(20_000*max(1, secs)*max(1, env.Opts.Rounds), 400_000)}
	return startPeers(ctx, env, origin, po, "miss: ", func(p *Proc, _ bool) (string, error) {
		if err := checkStores(p.Addr); err != nil {
			return "", err
		}
		return "verified: stores /u/, not /ns/", nil
	})
}

// checkStores asks addr twice for a new cacheable URL and twice for a new
// no-store one: the first must hit the second time, the other must not.
func checkStores(addr string) error {
	c := &conn{addr: addr}
	defer c.close()
	for _, tc := range []struct {
		path  string
		store bool
	}{{"/u/check-0", true}, {"/ns/check-0", false}} {
		var hit bool
		for range 2 {
			r, err := c.get(tc.path)
			if err != nil {
				return fmt.Errorf("GET %s: %w", tc.path, err)
			}
			if r.status != 200 {
				return fmt.Errorf("GET %s: status %d", tc.path, r.status)
			}
			hit = r.hit
		}
		if hit != tc.store {
			return fmt.Errorf("GET %s twice: second X-Cache hit=%v, want %v", tc.path, hit, tc.store)
		}
	}
	return nil
}

// runGrowth measures hits on 1,000 full pages with n records in the store
// (the rest -growth-body bytes each), with the memory tier on and off, and
// reports the server's open time and resident memory.
//
// Each store is filled once. With -rounds above 1 every (size, tier) is
// measured once per round, the sizes in turn within a round, so a burst of
// load from other work on the machine falls on the smallest store's run of
// that round too; each larger store's row is its round with the median
// req/s ratio to that round's smallest store, and the reference row is the
// smallest store's median round by req/s.
func runGrowth(ctx context.Context, env *Env) ([]Row, error) {
	origin, err := env.StartOrigin(ctx)
	if err != nil {
		return nil, err
	}
	const hot = 1000
	sizes := env.Opts.Growth
	fills := make([]time.Duration, len(sizes))
	for i, n := range sizes {
		t := time.Now()
		pf, err := env.StartServer(ctx, origin, ServerOpts{DB: growthDB(env, n), Prefill: n, PrefillFull: hot, PrefillBody: env.Opts.GrowthBody, NoSync: true, ExitAfterPrefill: true})
		if err != nil {
			return nil, err
		}
		if err := pf.Wait(ctx); err != nil {
			return nil, fmt.Errorf("prefill %d: %w", n, err)
		}
		fills[i] = time.Since(t)
	}
	// ms[round][size][tier]; the tiers are the memory tier on, then off.
	mems := [2]int64{0, -1}
	var ms [][][2]Measurement
	for r := range max(1, env.Opts.Rounds) {
		round := make([][2]Measurement, len(sizes))
		for i, n := range sizes {
			for k, mem := range mems {
				fr, err := env.StartServer(ctx, origin, ServerOpts{DB: growthDB(env, n), Memory: mem})
				if err != nil {
					return growthRows(sizes, fills, ms), err
				}
				if err := warm(ctx, fr.Addr, env.Opts.Conns, hot, 2, gPath); err != nil {
					fr.Stop()
					return growthRows(sizes, fills, ms), err
				}
				l := &load{addr: fr.Addr, next: cycle(hot)}
				if r == 0 && k == 0 && i == len(sizes)-1 {
					l.profile = "growth"
				}
				m, _ := env.Measure(ctx, fr, l)
				m.Extra = strings.TrimSpace(fmt.Sprintf("open %sms, RSS %.0f MB, db %s MB ", fr.Info["open_ms"], m.RSSMB, fr.Info["file_mb"]) + m.Extra)
				round[i][k] = m
				fr.Stop()
			}
		}
		ms = append(ms, round)
	}
	return growthRows(sizes, fills, ms), nil
}

func growthDB(env *Env, n int) string { return fmt.Sprintf("%s/growth-%d.db", env.Dir(), n) }

// growthRows reports the measured rounds ms (see runGrowth): per size, the
// memory tier's row, then the store-only one.
func growthRows(sizes []int, fills []time.Duration, ms [][][2]Measurement) []Row {
	if len(ms) == 0 {
		return nil
	}
	var rows []Row
	rounds := ""
	if len(ms) > 1 {
		rounds = fmt.Sprintf("; median of %d rounds", len(ms))
	}
	for i, n := range sizes {
		for k, target := range [2]string{"memory tier", "store only"} {
			order := make([]int, len(ms))
			for r := range order {
				order[r] = r
			}
			score := func(r int) float64 { return ms[r][i][k].RPS }
			if i > 0 {
				score = func(r int) float64 { return ms[r][i][k].RPS / max(ms[r][0][k].RPS, 1) }
			}
			slices.SortFunc(order, func(a, b int) int { return cmp.Compare(score(a), score(b)) })
			med := order[len(order)/2]
			row := Row{Scenario: "growth " + strconv.Itoa(n), Target: target, M: ms[med][i][k]}
			if i == 0 {
				row.Note = fmt.Sprintf("(reference) prefill %v%s", fills[i].Round(time.Second), rounds)
			} else {
				ref := ms[med][0][k]
				row.Ref = &ref
				row.Note = fmt.Sprintf("prefill %v%s", fills[i].Round(time.Second), rounds)
				if len(ms) > 1 {
					row.Note += fmt.Sprintf(", x vs that round's %d (%.0f req/s)", sizes[0], ref.RPS)
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func sortDurations(d []time.Duration) {
	for i := 1; i < len(d); i++ { // small slices (purge latencies)
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}
