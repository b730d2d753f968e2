package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/firstrender/firstrender/cmd/server/loadtest/page"
	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/httpcache/server"
	"github.com/firstrender/firstrender/store"
	"github.com/gorilla/websocket"
)

// The tool runs its peers as child processes of itself (os.Args[0] with
// -role), so that each can be pinned to a core and its CPU time read from
// /proc/<pid>/stat:
//
//	origin    the application: 20 KB pages (cacheable, or no-store under
//	          /ns/), and a WebSocket echo at the socket path
//	baseline  a plain net/http handler writing the same bytes and headers
//	          a cache hit carries, from memory
//	server    firstrender (package httpcache/server, the composition root
//	          cmd/server runs) in front of the origin, on a temp database,
//	          with the admin API (httpcache/admin) mounted on its admin
//	          listener
//
// Every child serves a control listener (/memstats: allocations and GC
// CPU from runtime/metrics; /debug/pprof/) and prints one line
// "READY key=value ..." on stdout once it serves. It exits when its stdin
// closes (the parent died or is done) or on SIGTERM.

type childFlags struct {
	role     string
	size     int
	origin   string
	db       string
	listen   string
	memory   int64
	prefill  int
	fillBody int
	fillFull int
	nosync   bool
	exit     bool
	bodies   int
}

func childMain(args []string) int {
	fs := flag.NewFlagSet("loadtest child", flag.ContinueOnError)
	var f childFlags
	fs.StringVar(&f.role, "role", "", "")
	fs.IntVar(&f.size, "size", 20480, "")
	fs.StringVar(&f.origin, "origin", "", "")
	fs.StringVar(&f.db, "db", "", "")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "")
	fs.Int64Var(&f.memory, "memory", 0, "")
	fs.IntVar(&f.prefill, "prefill", 0, "")
	fs.IntVar(&f.fillBody, "prefill-body", 0, "")
	fs.IntVar(&f.fillFull, "prefill-full", 0, "")
	fs.BoolVar(&f.nosync, "nosync", false, "")
	fs.BoolVar(&f.exit, "exit-after-prefill", false, "")
	fs.IntVar(&f.bodies, "bodies", 1, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { // the parent closes stdin (or dies): stop
		io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	var err error
	switch f.role {
	case "origin":
		err = runOrigin(ctx, f)
	case "baseline":
		err = runBaseline(ctx, f)
	case "server":
		err = runServer(ctx, f)
	default:
		err = fmt.Errorf("unknown role %q", f.role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadtest %s: %v\n", f.role, err)
		return 1
	}
	return 0
}

// control serves /memstats and pprof on a loopback port.
func control() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/memstats", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(readMemStats())
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/rate", func(w http.ResponseWriter, r *http.Request) {
		// /rate?block=N&mutex=N sets the block and mutex profile rates.
		if v, err := strconv.Atoi(r.URL.Query().Get("block")); err == nil {
			runtime.SetBlockProfileRate(v)
		}
		if v, err := strconv.Atoi(r.URL.Query().Get("mutex")); err == nil {
			runtime.SetMutexProfileFraction(v)
		}
	})
	go http.Serve(ln, mux)
	return ln.Addr().String(), nil
}

// memStats are a child's runtime figures (cumulative).
type memStats struct {
	Allocs   uint64  `json:"allocs"`
	GCCPU    float64 `json:"gc_cpu_s"`
	TotalCPU float64 `json:"total_cpu_s"`
	HeapMB   float64 `json:"heap_mb"`
	// The server's store: write transactions and the writes they held
	// (store.Stats), zero in other children.
	Commits int64 `json:"commits"`
	Writes  int64 `json:"writes"`
}

// serverStore is a server child's store once it is open (its write counts
// go into /memstats).
var serverStore atomic.Pointer[store.Store]

func readMemStats() memStats {
	s := []metrics.Sample{
		{Name: "/gc/heap/allocs:objects"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	metrics.Read(s)
	var m memStats
	if s[0].Value.Kind() == metrics.KindUint64 {
		m.Allocs = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindFloat64 {
		m.GCCPU = s[1].Value.Float64()
	}
	if s[2].Value.Kind() == metrics.KindFloat64 {
		m.TotalCPU = s[2].Value.Float64()
	}
	if s[3].Value.Kind() == metrics.KindUint64 {
		m.HeapMB = float64(s[3].Value.Uint64()) / (1 << 20)
	}
	if st := serverStore.Load(); st != nil {
		stats := st.Stats()
		m.Commits, m.Writes = stats.Commits, stats.Writes
	}
	return m
}

func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func runOrigin(ctx context.Context, f childFlags) error {
	ctl, err := control()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	body := page.Body(f.size, 0)
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/live/websocket", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			t, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(t, m); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		n := 0
		if i := strings.LastIndexByte(r.URL.Path, '/'); i >= 0 {
			n, _ = strconv.Atoi(r.URL.Path[i+1:])
		}
		h := w.Header()
		page.Header(h, n)
		if strings.HasPrefix(r.URL.Path, "/ns/") {
			h["Cache-Control"] = []string{"no-store"}
		}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.Write(body)
	})
	mux.HandleFunc("/served", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, served.Load())
	})
	fmt.Printf("READY addr=%s ctl=%s\n", ln.Addr(), ctl)
	return serveUntil(ctx, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln)
}

// runBaseline serves the same bytes and the same header fields a cache
// hit carries (the origin's, plus Age, Cache-Status and Content-Length;
// Date as net/http adds it), from memory, for any path.
//
// With -bodies N above 1, page n (the number after the path's last '/',
// as the origin reads it) is served from its own copy of the body, copy
// n mod N, as a cache holding N pages serves each from its own memory:
// one shared body stays in the CPU's caches, N distinct ones (200 MB for
// the working set) do not. The copies live in one anonymous mapping
// outside the Go heap, written once at start (so no first-touch faults
// are measured), so the baseline's GC paces over its few KB of request
// garbage as with one body; firstrender's heap holds its memory tier.
func runBaseline(ctx context.Context, f childFlags) error {
	ctl, err := control()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	body := page.Body(f.size, 0)
	n := max(f.bodies, 1)
	bodies := [][]byte{body}
	etags := [][]string{{`"fr-0"`}}
	if n > 1 {
		mem, err := syscall.Mmap(-1, 0, n*len(body), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			return fmt.Errorf("-bodies %d: mapping %d MB: %w", n, n*len(body)>>20, err)
		}
		bodies, etags = make([][]byte, n), make([][]string, n)
		for i := range n {
			b := mem[i*len(body) : (i+1)*len(body) : (i+1)*len(body)]
			copy(b, body)
			bodies[i], etags[i] = b, []string{`"fr-` + strconv.Itoa(i) + `"`}
		}
	}
	clen := []string{strconv.Itoa(len(body))}
	h := func(w http.ResponseWriter, r *http.Request) {
		i := 0
		if n > 1 {
			if j := strings.LastIndexByte(r.URL.Path, '/'); j >= 0 {
				i, _ = strconv.Atoi(r.URL.Path[j+1:])
				i = max(i, 0) % n
			}
		}
		hh := w.Header()
		page.Header(hh, 0)
		hh["Etag"] = etags[i]
		hh["Age"] = []string{"12"}
		hh["Cache-Status"] = []string{"firstrender; hit; ttl=86388"}
		hh["Content-Length"] = clen
		w.Write(bodies[i])
	}
	fmt.Printf("READY addr=%s ctl=%s bodies=%d\n", ln.Addr(), ctl, n)
	return serveUntil(ctx, &http.Server{Handler: http.HandlerFunc(h), ReadHeaderTimeout: 10 * time.Second}, ln)
}

// adminToken is the admin API token of the server child (loopback only,
// lives as long as the run).
const adminToken = "loadtest-admin-token-0123456789abcdef"

func runServer(ctx context.Context, f childFlags) error {
	ctl, err := control()
	if err != nil {
		return err
	}
	up, err := url.Parse(f.origin)
	if err != nil || f.origin == "" {
		return fmt.Errorf("-origin %q: %v", f.origin, err)
	}
	cfg := server.Config{
		Listen:      f.listen,
		AdminListen: "127.0.0.1:0",
		Upstream:    up,
		DB:          f.db,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Store:       store.Options{NoSync: f.nosync},
		Cache:       httpcache.Config{MemoryCacheSize: f.memory},
	}
	cfg.Origins.Allowed = []string{"//localhost", "//127.0.0.1"}
	t0 := time.Now()
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	openTime := time.Since(t0)
	st := srv.Store()
	serverStore.Store(st)
	ah, err := admin.NewHandler(admin.HandlerConfig{
		Token:  adminToken,
		Store:  st,
		Purger: &proxyPurger{StorePurger: admin.StorePurger{Store: st}},
		Key: func(r *http.Request) (string, error) {
			return srv.Proxy().Key("http://" + r.Host + r.URL.RequestURI())
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		srv.Close()
		return err
	}
	if err := srv.HandleAdmin("/admin/", ah); err != nil {
		srv.Close()
		return err
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(runCtx) }()
	select {
	case <-srv.Ready():
	case err := <-errc:
		return err
	}
	pub := srv.PublicAddr().String()
	if f.prefill > 0 {
		t := time.Now()
		if err := prefill(ctx, srv, pub, f); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "loadtest server: prefilled %d records in %v\n", f.prefill, time.Since(t).Round(time.Millisecond))
	}
	stats := st.Stats()
	fmt.Printf("READY addr=%s admin=%s ctl=%s open_ms=%.3f records=%d file_mb=%.0f\n", pub, srv.AdminAddr(), ctl,
		float64(openTime.Microseconds())/1000, stats.Records, float64(stats.FileSize)/(1<<20))
	if f.exit {
		stopRun()
	}
	return <-errc
}

// proxyPurger is the admin Purger of the server child: the store purge
// (the proxy's in-memory entries follow the store's change notifications).
type proxyPurger struct{ admin.StorePurger }

// prefill stores f.prefill records under /g/0 ... /g/<n-1>: it fetches
// /g/0 through the proxy (a real miss, stored with the proxy's own
// annotations), then copies that record under the other keys with
// f.fillBody-byte bodies (0: the page size) from record f.fillFull on,
// in concurrent Puts.
func prefill(ctx context.Context, srv *server.Server, pub string, f childFlags) error {
	c := &conn{addr: pub}
	defer c.close()
	if r, err := c.get("/g/0"); err != nil || r.status != 200 {
		return fmt.Errorf("prefill template GET /g/0: %v (status %d)", err, r.status)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Proxy().Wait(wctx); err != nil {
		return err
	}
	key, err := srv.Proxy().Key("http://" + pub + "/g/0")
	if err != nil {
		return err
	}
	st := srv.Store()
	var tmpl *store.Record
	for _, v := range []string{"", "Accept-Encoding=identity"} {
		if tmpl, err = st.Get(ctx, key, v); err == nil {
			break
		}
	}
	if tmpl == nil {
		ms, _ := st.Variants(ctx, key)
		if len(ms) == 0 {
			return fmt.Errorf("prefill: template %s not stored", key)
		}
		if tmpl, err = st.Get(ctx, key, ms[0].Variant); err != nil {
			return err
		}
	}
	base := strings.TrimSuffix(key, "0")
	var next atomic.Int64
	next.Store(1)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= f.prefill || ctx.Err() != nil {
					return
				}
				r := *tmpl
				r.Key = base + strconv.Itoa(i)
				r.StoredTime = time.Time{}
				if i >= f.fillFull && f.fillBody > 0 && f.fillBody < len(r.Body) {
					r.Body = r.Body[:f.fillBody]
				}
				if err := st.Put(ctx, &r); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return *e
	}
	return ctx.Err()
}
