// Package soak drives a long mixed workload against a real firstrender
// process (cmd/server) in front of a slow origin of its own, and samples
// the process over time: throughput, latency percentiles and errors per
// interval, and from /proc and the admin listener's /metrics its resident
// memory, goroutines and open files. It exists to show that nothing
// grows or fails over a long run (docs/soak.md).
//
// Everything runs on loopback and stops by itself after Config.Duration.
// The workload, per request, by weight:
//
//   - hit: GET one of 200 pages stored for an hour;
//   - revalidation: GET one of 50 pages fresh for 2 s with an ETag (the
//     origin answers the conditional request 304);
//   - miss: GET a page never asked for (the store evicts under
//     --max-db-size);
//   - purge: POST to a hit page (an unsafe method: the proxy forwards it
//     and invalidates the URL);
//
// plus live sockets: Config.Sockets clients that each open a WebSocket on
// /live/websocket through the broker (Origin checked), exchange a message
// with the origin's echo, hold it 1-3 s, close and reconnect.
package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Config is one soak run.
type Config struct {
	// Binary is the firstrender executable to run (go build ./cmd/server).
	Binary string
	// Dir holds the database and the process log; empty: a temporary
	// directory, removed afterwards.
	Dir string
	// Duration of the load; zero means 10 minutes.
	Duration time.Duration
	// Interval between samples; zero means 30 s.
	Interval time.Duration
	// Workers is the number of concurrent HTTP clients; zero means 16.
	Workers int
	// Sockets is the number of concurrent live-socket clients; zero
	// means 20.
	Sockets int
	// OriginDelay is the origin's think time per request (plus up to
	// half as much jitter); zero means 20 ms.
	OriginDelay time.Duration
	// Args are extra flags for the firstrender process.
	Args []string
}

func (c *Config) setDefaults() {
	if c.Duration == 0 {
		c.Duration = 10 * time.Minute
	}
	if c.Interval == 0 {
		c.Interval = 30 * time.Second
	}
	if c.Workers == 0 {
		c.Workers = 16
	}
	if c.Sockets == 0 {
		c.Sockets = 20
	}
	if c.OriginDelay == 0 {
		c.OriginDelay = 20 * time.Millisecond
	}
}

// Sample is the state of the run at one moment, and what happened in
// the interval before it.
type Sample struct {
	At            time.Duration // since the load started
	Requests      int64         // in the interval
	RPS           float64
	P50, P99, Max time.Duration
	Errors        int64 // in the interval: transport errors and unexpected statuses
	Sockets       int64 // socket sessions completed in the interval
	SocketErrors  int64
	RSS           int64 // bytes, /proc/<pid>/status VmRSS
	RSSAnon       int64 // of which anonymous (the Go heap, stacks): RssAnon
	RSSFile       int64 // of which file-backed (the store's mmap'd pages): RssFile
	FDs           int   // entries in /proc/<pid>/fd
	Goroutines    int   // go_goroutines from /metrics
	OpenFDs       int   // process_open_fds from /metrics
	HeapInuse     int64 // go_memstats_heap_inuse_bytes
	StoreEntries  int64 // firstrender_store_entries
}

// Report is the outcome of Run.
type Report struct {
	Samples      []Sample
	Requests     map[string]int64 // by kind: hit, revalidate, miss, purge
	Statuses     map[int]int64
	Errors       int64
	Sockets      int64 // socket sessions completed
	SocketErrors int64
	// FirstErrors are the first few request and socket errors, for the
	// report.
	FirstErrors []string
	Latency     [3]time.Duration // p50, p99, max over the whole run (HTTP)
	Elapsed     time.Duration
}

// Run starts the origin and the firstrender process, drives the load
// for cfg.Duration, samples every cfg.Interval (writing each sample's
// table row to progress as it is taken), stops the process with SIGTERM
// and returns the report. The error is about the setup (the process did
// not start) or the process exiting early; request failures are counted
// in the report.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	cfg.setDefaults()
	if cfg.Binary == "" {
		return nil, errors.New("soak: Config.Binary is required")
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "firstrender-soak-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	origin, err := startOrigin(cfg.OriginDelay)
	if err != nil {
		return nil, err
	}
	defer origin.Close()
	pub, adm, err := freeAddrs()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "firstrender.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := append([]string{"--listen", pub, "--admin-listen", adm, "--db", filepath.Join(dir, "soak.db"),
		"--upstream", "http://" + origin.Addr, "--max-db-size", "64MiB", "--log-level", "warn", "--log-format", "text"}, cfg.Args...)
	cmd := exec.Command(cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("soak: starting %s: %w", cfg.Binary, err)
	}
	exited := make(chan struct{}) // closed once the process exited; then waitErr is set
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()
	if err := waitUp(ctx, "http://"+adm+"/healthz", exited); err != nil {
		return nil, err
	}

	l := &load{base: "http://" + pub, origin: "http://localhost:" + portOf(pub), statuses: map[int]int64{}, kinds: map[string]int64{}}
	l.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Workers, MaxConnsPerHost: cfg.Workers * 2}}
	lctx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() { defer wg.Done(); l.httpWorker(lctx, uint64(w)) }()
	}
	for s := range cfg.Sockets {
		wg.Add(1)
		go func() { defer wg.Done(); l.socketWorker(lctx, uint64(s)) }()
	}

	rep := &Report{}
	start := time.Now()
	fmt.Fprintln(progress, Header)
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	take := func() {
		s := l.sample(time.Since(start), cmd.Process.Pid, "http://"+adm+"/metrics")
		rep.Samples = append(rep.Samples, s)
		fmt.Fprintln(progress, s.Row())
	}
	take() // the baseline, as the load begins
loop:
	for {
		select {
		case <-tick.C:
			take()
		case <-lctx.Done():
			break loop
		case <-exited:
			stop()
			wg.Wait()
			return rep, fmt.Errorf("soak: firstrender exited during the run: %v (log in %s)", waitErr, logf.Name())
		}
	}
	wg.Wait()
	take()
	rep.Elapsed = time.Since(start)
	cmd.Process.Signal(terminate)
	select {
	case <-exited:
		if waitErr != nil {
			return rep, fmt.Errorf("soak: firstrender exited with %v after SIGTERM", waitErr)
		}
	case <-time.After(30 * time.Second):
		return rep, errors.New("soak: firstrender did not stop within 30s of SIGTERM")
	}
	l.mu.Lock()
	rep.Requests, rep.Statuses, rep.FirstErrors = l.kinds, l.statuses, l.firstErrs
	l.mu.Unlock()
	rep.Errors, rep.Sockets, rep.SocketErrors = l.errTotal.Load(), l.sockTotal.Load(), l.sockErrTotal.Load()
	rep.Latency = [3]time.Duration{l.all.quantile(0.5), l.all.quantile(0.99), l.all.max()}
	return rep, nil
}

// Header is the Markdown table header matching Sample.Row.
const Header = "| t | requests | req/s | p50 | p99 | max | errors | sockets (errors) | RSS MiB (anon + file) | fds (/proc) | go_goroutines | process_open_fds | heap MiB | store entries |\n" +
	"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"

// Row renders s as a Markdown table row.
func (s Sample) Row() string {
	return fmt.Sprintf("| %s | %d | %.0f | %s | %s | %s | %d | %d (%d) | %.0f (%.0f + %.0f) | %d | %d | %d | %.1f | %d |",
		s.At.Round(time.Second), s.Requests, s.RPS, ms(s.P50), ms(s.P99), ms(s.Max), s.Errors, s.Sockets, s.SocketErrors,
		float64(s.RSS)/(1<<20), float64(s.RSSAnon)/(1<<20), float64(s.RSSFile)/(1<<20), s.FDs, s.Goroutines, s.OpenFDs, float64(s.HeapInuse)/(1<<20), s.StoreEntries)
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + " ms" }

// Flat reports whether resident memory (all of it, and its anonymous
// part: the Go heap and stacks), goroutines and open files stayed flat:
// a leak keeps reaching new highs, so the maximum over the last third of
// the samples may exceed the maximum of every earlier sample (the first,
// taken before the load, excluded) by no more than 20% plus a small
// absolute slack. Memory follows the load (the garbage of a busy interval
// is collected later), so a busy last interval is not growth; a new high
// beyond the band is. why says which grew.
func (r *Report) Flat() (ok bool, why string) {
	n := len(r.Samples)
	if n < 6 {
		return false, "too few samples to judge"
	}
	before, last := r.Samples[1:2*n/3], r.Samples[2*n/3:]
	check := func(name string, f func(Sample) float64, slack float64) {
		a, b := maxOf(before, f), maxOf(last, f)
		if b > a*1.2+slack {
			ok = false
			why += fmt.Sprintf("%s grew from %.0f to %.0f; ", name, a, b)
		}
	}
	ok = true
	check("RSS", func(s Sample) float64 { return float64(s.RSS) }, 8<<20)
	check("anonymous RSS", func(s Sample) float64 { return float64(s.RSSAnon) }, 8<<20)
	check("goroutines", func(s Sample) float64 { return float64(s.Goroutines) }, 20)
	check("open files", func(s Sample) float64 { return float64(s.OpenFDs) }, 10)
	return ok, strings.TrimSuffix(why, "; ")
}

func maxOf(ss []Sample, f func(Sample) float64) float64 {
	m := 0.0
	for _, s := range ss {
		m = max(m, f(s))
	}
	return m
}

// load is the clients' shared state.
type load struct {
	base, origin string
	client       *http.Client
	missSeq      atomic.Int64

	mu       sync.Mutex
	interval hist
	all      hist
	statuses map[int]int64
	kinds    map[string]int64
	reqs     int64
	errs     int64

	firstErrs []string // under mu, at most 5

	errTotal, sockTotal, sockErrTotal atomic.Int64
	sockN, sockErrN                   atomic.Int64
	lastAt                            time.Duration
}

func (l *load) httpWorker(ctx context.Context, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 42))
	for ctx.Err() == nil {
		kind, method, path := "hit", http.MethodGet, fmt.Sprintf("/page/hot/%d", r.IntN(200))
		switch x := r.IntN(100); {
		case x < 10:
			kind, path = "revalidate", fmt.Sprintf("/page/reval/%d", r.IntN(50))
		case x < 25:
			kind, path = "miss", fmt.Sprintf("/page/miss/%d", l.missSeq.Add(1))
		case x < 30:
			kind, method = "purge", http.MethodPost
		}
		req, _ := http.NewRequestWithContext(ctx, method, l.base+path, nil)
		t0 := time.Now()
		res, err := l.client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		d := time.Since(t0)
		if ctx.Err() != nil {
			return // the run ended mid-request: not counted
		}
		l.mu.Lock()
		l.reqs++
		l.kinds[kind]++
		l.interval.add(d)
		l.all.add(d)
		var bad string
		if err != nil {
			l.errs++
			l.statuses[0]++
			bad = fmt.Sprintf("%s %s: %v", method, path, err)
		} else {
			l.statuses[res.StatusCode]++
			if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusNoContent {
				l.errs++
				bad = fmt.Sprintf("%s %s: %s", method, path, res.Status)
			}
		}
		l.mu.Unlock()
		if bad != "" {
			l.noteErr(bad)
		}
	}
}

func (l *load) socketWorker(ctx context.Context, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	u := "ws" + strings.TrimPrefix(l.base, "http") + "/live/websocket?vsn=2.0.0"
	for ctx.Err() == nil {
		err := func() error {
			c, res, err := d.DialContext(ctx, u, http.Header{"Origin": {l.origin}})
			if err != nil {
				if res != nil {
					return fmt.Errorf("dial: %s", res.Status)
				}
				return err
			}
			defer c.Close()
			msg := fmt.Sprintf(`["1","1","lv:soak","phx_join",{"n":%d}]`, r.IntN(1e6))
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, b, err := c.ReadMessage(); err != nil || string(b) != msg {
				return fmt.Errorf("echo: %q, %v", b, err)
			}
			hold := time.NewTimer(time.Second + time.Duration(r.IntN(2000))*time.Millisecond)
			defer hold.Stop()
			select {
			case <-ctx.Done():
			case <-hold.C:
			}
			return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		}()
		if ctx.Err() != nil {
			return
		}
		l.sockTotal.Add(1)
		l.sockN.Add(1)
		if err != nil {
			l.sockErrTotal.Add(1)
			l.sockErrN.Add(1)
			l.noteErr("socket: " + err.Error())
		}
	}
}

func (l *load) noteErr(s string) {
	l.mu.Lock()
	if len(l.firstErrs) < 5 {
		l.firstErrs = append(l.firstErrs, s)
	}
	l.mu.Unlock()
}

// sample takes the interval's figures and the process's state.
func (l *load) sample(at time.Duration, pid int, metricsURL string) Sample {
	l.mu.Lock()
	s := Sample{At: at, Requests: l.reqs, Errors: l.errs,
		P50: l.interval.quantile(0.5), P99: l.interval.quantile(0.99), Max: l.interval.max()}
	if dt := (at - l.lastAt).Seconds(); dt > 0 {
		s.RPS = float64(l.reqs) / dt
	}
	l.reqs, l.errs, l.lastAt = 0, 0, at
	l.interval = hist{}
	l.mu.Unlock()
	l.errTotal.Add(s.Errors)
	s.Sockets, s.SocketErrors = l.sockN.Swap(0), l.sockErrN.Swap(0)
	s.RSS, s.RSSAnon, s.RSSFile = procRSS(pid)
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.FDs = len(ents)
	}
	m := scrape(metricsURL)
	s.Goroutines, s.OpenFDs = int(m["go_goroutines"]), int(m["process_open_fds"])
	s.HeapInuse, s.StoreEntries = int64(m["go_memstats_heap_inuse_bytes"]), int64(m["firstrender_store_entries"])
	return s
}

// procRSS returns VmRSS, RssAnon and RssFile (+ RssShmem) in bytes.
func procRSS(pid int) (rss, anon, file int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	kb := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return n << 10
	}
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "VmRSS":
			rss = kb(v)
		case "RssAnon":
			anon = kb(v)
		case "RssFile", "RssShmem":
			file += kb(v)
		}
	}
	return rss, anon, file
}

// scrape reads the unlabelled series of a Prometheus text exposition.
func scrape(url string) map[string]float64 {
	out := map[string]float64{}
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return out
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.Fields(val)[0], 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// hist is a log-bucketed latency histogram (about 2% resolution, bounded
// memory however long the run).
type hist struct {
	counts map[int]int64
	n      int64
	maxD   time.Duration
}

const histBase = 1.02

func (h *hist) add(d time.Duration) {
	if h.counts == nil {
		h.counts = map[int]int64{}
	}
	i := 0
	if d > time.Microsecond {
		i = int(math.Log(float64(d)/float64(time.Microsecond)) / math.Log(histBase))
	}
	h.counts[i]++
	h.n++
	h.maxD = max(h.maxD, d)
}

func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	keys := make([]int, 0, len(h.counts))
	for k := range h.counts {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	want := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for _, k := range keys {
		seen += h.counts[k]
		if seen >= want {
			return time.Duration(math.Pow(histBase, float64(k)+0.5) * float64(time.Microsecond))
		}
	}
	return h.maxD
}

func (h *hist) max() time.Duration { return h.maxD }

func freeAddrs() (string, string, error) {
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", err
		}
		addrs = append(addrs, ln.Addr().String())
		defer ln.Close()
	}
	return addrs[0], addrs[1], nil
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func waitUp(ctx context.Context, url string, exited <-chan struct{}) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := c.Get(url); err == nil {
			res.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("soak: firstrender exited at start")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("soak: firstrender did not answer /healthz within 30s")
}
