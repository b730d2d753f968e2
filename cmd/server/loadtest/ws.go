package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsResult is one live socket run.
type wsResult struct {
	msgs    int64
	elapsed time.Duration
	lat     []time.Duration
	err     error
}

// wsLoad runs conns connections to url, each sending a message and
// waiting for its echo, until d passes.
func wsLoad(ctx context.Context, url string, conns int, d time.Duration, msg []byte) *wsResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	h := http.Header{"Origin": {"http://localhost"}}
	var mu sync.Mutex
	res := &wsResult{}
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, resp, err := websocket.DefaultDialer.DialContext(ctx, url, h)
			if err != nil {
				if resp != nil {
					err = fmt.Errorf("%w (status %d)", err, resp.StatusCode)
				}
				mu.Lock()
				res.err = err
				mu.Unlock()
				return
			}
			defer c.Close()
			lat := make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				t0 := time.Now()
				c.SetReadDeadline(t0.Add(10 * time.Second))
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					break
				}
				if _, _, err := c.ReadMessage(); err != nil {
					break
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.msgs = int64(len(res.lat))
	slices.Sort(res.lat)
	return res
}

// measureWS runs wsLoad against proc p (whose CPU is read) after a
// warm-up. With also set (the origin behind a proxy p), also's CPU per
// message over the same window goes into Extra.
func (e *Env) measureWS(ctx context.Context, p *Proc, url string, conns int, msg []byte, also *Proc) (Measurement, error) {
	if e.Opts.Warmup > 0 {
		wsLoad(ctx, url, conns, e.Opts.Warmup, msg)
	}
	c0, _ := p.cpu()
	var a0 time.Duration
	if also != nil {
		a0, _ = also.cpu()
	}
	m0, okm := p.memStats()
	s0, oks := readSteal()
	r := wsLoad(ctx, url, conns, e.Opts.Duration, msg)
	s1, oks2 := readSteal()
	c1, _ := p.cpu()
	var a1 time.Duration
	if also != nil {
		a1, _ = also.cpu()
	}
	m1, okm2 := p.memStats()
	if r.err != nil && r.msgs == 0 {
		return Measurement{}, r.err
	}
	rr := &result{lat: r.lat}
	m := Measurement{Requests: r.msgs, RPS: float64(r.msgs) / r.elapsed.Seconds(), P50: rr.pct(0.5), P99: rr.pct(0.99),
		Allocs: -1, GCShare: -1, HitRatio: -1, RSSMB: rssMB(p.Pid())}
	if r.msgs > 0 {
		m.CPUPerReq = (c1 - c0) / time.Duration(r.msgs)
		if also != nil {
			m.Extra = "origin " + fmtDur((a1-a0)/time.Duration(r.msgs)) + "/msg"
		}
		if oks && oks2 {
			m.Extra = strings.TrimSpace(m.Extra + " " + stealSince(s0, s1))
		}
		if okm && okm2 {
			m.Allocs = float64(m1.Allocs-m0.Allocs) / float64(r.msgs)
			if d := m1.TotalCPU - m0.TotalCPU; d > 0 {
				m.GCShare = (m1.GCCPU - m0.GCCPU) / d
			}
		}
	}
	return m, nil
}

// liveDoc is the live scenario's -list text.
const liveDoc = "live socket echo, direct vs through the broker (firstrender) and nginx (if present), the origin placed alike in every row: " +
	"32 conns (throughput): generator+origin on CPU 1, the proxy alone on CPU 0; 1 conn (round-trip p50/p99): generator on CPU 1, " +
	"origin on CPU 0 (with the proxy), so each round trip crosses cores twice in every row; CPU/msg of the proxy (direct: of the origin)"

// runLive echoes -ws-message byte messages directly to the origin and
// through each proxy: the broker (firstrender's livesocket) and nginx as a
// WebSocket proxy (optional, see peers.go).
//
// Topology (with taskset). In each group of rows the origin is placed
// alike, so the rows differ by the hop alone:
//
//   - 32 connections (throughput): the origin and the load generator share
//     CPU 1 in every row; the proxy runs alone on CPU 0 (direct has
//     nothing there). x req/s is what the hop costs the end-to-end
//     throughput when the generator and origin's core is the same.
//   - 1 connection (round-trip latency): the generator is alone on CPU 1,
//     the origin on CPU 0 in every row, the proxy beside it on CPU 0. A
//     round trip crosses cores twice in every row (a cross-core wake-up
//     costs tens of µs on this VM; with the origin on the generator's
//     core, direct would cross none and a proxy four), and a single
//     connection never needs more than one core, so x p99 is the latency
//     the hop's own work adds.
//
// CPU/msg is that of the measured process: the proxy's own (utime+stime
// of its process, of its process group for nginx) per echoed message, the
// echo origin's for direct (the x CPU column compares the two); the note
// of a proxy row gives the origin's CPU/msg over the same window.
func runLive(ctx context.Context, env *Env) ([]Row, error) {
	msg := []byte(`["4","12","lv:phx-F1","event",{"type":"click","event":"inc","value":{"pad":"` +
		strings.Repeat("x", max(0, env.Opts.WSMessage-80)) + `"}}]`)
	groups := []struct {
		scenario, originCPU, note string
		conns                     int
	}{
		{"live 32 conns", "1", "generator+origin on CPU 1, proxy on CPU 0", env.Opts.Conns},
		{"live 1 conn", "0", "generator on CPU 1, origin (+proxy) on CPU 0", 1},
	}
	var rows []Row
	for _, g := range groups {
		gr, err := env.liveGroup(ctx, g.originCPU, g.conns, msg)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", g.scenario, err)
		}
		note := fmt.Sprintf("%d-byte messages; %s; CPU/msg: the origin's here, the proxy's own below", len(msg), g.note)
		if !env.pin {
			note = fmt.Sprintf("%d-byte messages; unpinned; CPU/msg: the origin's here, the proxy's own below", len(msg))
		}
		// The figure each group is for: throughput over many connections,
		// the round trip's p99 over one. Each proxy is reported from its
		// own median round by that figure, against that round's direct.
		score := func(p, d Measurement) float64 { return p.RPS / max(d.RPS, 1) }
		if g.conns == 1 {
			score = func(p, d Measurement) float64 { return -float64(p.P99) / float64(max(d.P99, 1)) }
		}
		d := gr.median(1, score)
		if len(gr.rounds) > 1 {
			note += fmt.Sprintf("; median of %d rounds (direct: of the broker's median round)", len(gr.rounds))
		}
		rows = append(rows, Row{Scenario: g.scenario, Target: "direct", M: d[0], Note: note})
		ref := &rows[len(rows)-1].M
		rows = append(rows, Row{Scenario: g.scenario, Target: "broker", M: d[1], Ref: ref})
		const ng = "nginx (websocket)"
		if gr.nginxErr != nil {
			note := gr.nginxErr.Error()
			if !strings.HasPrefix(note, "skipped") {
				note = "skipped: " + note
			}
			rows = append(rows, Row{Scenario: g.scenario, Target: ng, Note: note, Skipped: true})
			continue
		}
		n := gr.median(2, score)
		nref, nnote := ref, ""
		if n[0] != d[0] {
			nd := n[0]
			nref, nnote = &nd, fmt.Sprintf("its own median round, x vs that round's direct (%.0f msg/s, p99 %s)", nd.RPS, fmtDur(nd.P99))
		}
		rows = append(rows, Row{Scenario: g.scenario, Target: ng, M: n[2], Ref: nref, Note: nnote})
	}
	return rows, nil
}

// liveRounds are one live group's measurements: per round, direct, the
// broker and nginx (if it started), in that order.
type liveRounds struct {
	rounds   [][3]Measurement
	nginxErr error // why nginx has no row (nil: it has one)
}

// liveGroup starts the echo origin (on originCPU), firstrender and nginx
// in front of it, and measures direct, broker and nginx -rounds times in
// turn, so a burst of outside load falls on one round, not on one row.
func (e *Env) liveGroup(ctx context.Context, originCPU string, conns int, msg []byte) (*liveRounds, error) {
	origin, err := e.start(ctx, "origin", originCPU, "-size=1024")
	if err != nil {
		return nil, err
	}
	defer origin.Stop()
	fr, err := e.StartServer(ctx, origin, ServerOpts{})
	if err != nil {
		return nil, err
	}
	defer fr.Stop()
	gr := &liveRounds{}
	nx, err := e.StartNginx(ctx, origin, PeerOpts{})
	if err != nil {
		gr.nginxErr = err
	} else {
		defer nx.Stop()
	}
	for range max(1, e.Opts.Rounds) {
		var r [3]Measurement
		if r[0], err = e.measureWS(ctx, origin, "ws://"+origin.Addr+"/live/websocket", conns, msg, nil); err != nil {
			return nil, fmt.Errorf("direct: %w", err)
		}
		if r[1], err = e.measureWS(ctx, fr, "ws://"+fr.Addr+"/live/websocket", conns, msg, origin); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		if gr.nginxErr == nil {
			if r[2], err = e.measureWS(ctx, nx, "ws://"+nx.Addr+"/live/websocket", conns, msg, origin); err != nil {
				gr.nginxErr = err
			}
		}
		gr.rounds = append(gr.rounds, r)
	}
	return gr, nil
}

// median returns the round in which proxy i (1: the broker, 2: nginx) has
// the median score against that round's direct; higher scores are better.
func (gr *liveRounds) median(i int, score func(proxy, direct Measurement) float64) [3]Measurement {
	rs := slices.Clone(gr.rounds)
	slices.SortFunc(rs, func(a, b [3]Measurement) int { return cmp.Compare(score(a[i], a[0]), score(b[i], b[0])) })
	return rs[len(rs)/2]
}
