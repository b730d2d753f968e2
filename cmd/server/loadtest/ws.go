package main

import (
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

// measureWS runs wsLoad against proc p (whose CPU is read) after a warm-up.
func (e *Env) measureWS(ctx context.Context, p *Proc, url string, conns int, msg []byte) (Measurement, error) {
	if e.Opts.Warmup > 0 {
		wsLoad(ctx, url, conns, e.Opts.Warmup, msg)
	}
	c0, _ := cpuTime(p.Pid())
	m0, okm := p.memStats()
	r := wsLoad(ctx, url, conns, e.Opts.Duration, msg)
	c1, _ := cpuTime(p.Pid())
	m1, okm2 := p.memStats()
	if r.err != nil && r.msgs == 0 {
		return Measurement{}, r.err
	}
	rr := &result{lat: r.lat}
	m := Measurement{Requests: r.msgs, RPS: float64(r.msgs) / r.elapsed.Seconds(), P50: rr.pct(0.5), P99: rr.pct(0.99),
		Allocs: -1, GCShare: -1, HitRatio: -1, RSSMB: rssMB(p.Pid())}
	if r.msgs > 0 {
		m.CPUPerReq = (c1 - c0) / time.Duration(r.msgs)
		if okm && okm2 {
			m.Allocs = float64(m1.Allocs-m0.Allocs) / float64(r.msgs)
			if d := m1.TotalCPU - m0.TotalCPU; d > 0 {
				m.GCShare = (m1.GCCPU - m0.GCCPU) / d
			}
		}
	}
	return m, nil
}

// runLive echoes -ws-message byte messages through the broker and
// directly. Direct runs against an origin pinned to the server CPU (so
// the echo process has a core to itself, as the broker does); the
// broker's origin runs on the load generator's CPU. CPU per message is
// that of the measured process: the broker's own for the broker, the
// echo origin's for direct.
func runLive(ctx context.Context, env *Env) ([]Row, error) {
	msg := []byte(`["4","12","lv:phx-F1","event",{"type":"click","event":"inc","value":{"pad":"` +
		strings.Repeat("x", max(0, env.Opts.WSMessage-80)) + `"}}]`)
	direct, err := env.start(ctx, "origin", "0", "-size=1024")
	if err != nil {
		return nil, err
	}
	durl := "ws://" + direct.Addr + "/live/websocket"
	d32, err := env.measureWS(ctx, direct, durl, env.Opts.Conns, msg)
	if err != nil {
		return nil, fmt.Errorf("direct: %w", err)
	}
	d1, err := env.measureWS(ctx, direct, durl, 1, msg)
	if err != nil {
		return nil, fmt.Errorf("direct: %w", err)
	}
	direct.Stop()
	origin, err := env.StartOrigin(ctx)
	if err != nil {
		return nil, err
	}
	fr, err := env.StartServer(ctx, origin, ServerOpts{})
	if err != nil {
		return nil, err
	}
	burl := "ws://" + fr.Addr + "/live/websocket"
	b32, err := env.measureWS(ctx, fr, burl, env.Opts.Conns, msg)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b1, err := env.measureWS(ctx, fr, burl, 1, msg)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	n := fmt.Sprintf("%d-byte messages; CPU/msg is the measured process's", len(msg))
	return []Row{
		{Scenario: "live 32 conns", Target: "direct", M: d32, Note: n},
		{Scenario: "live 32 conns", Target: "broker", M: b32, Ref: &d32},
		{Scenario: "live 1 conn", Target: "direct", M: d1},
		{Scenario: "live 1 conn", Target: "broker", M: b1, Ref: &d1},
	}, nil
}
