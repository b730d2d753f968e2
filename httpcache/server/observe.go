package server

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry returns a fresh Prometheus registry with the Go runtime and
// process collectors. The store, proxy and broker register on it; it is
// served only on the admin listener.
//
// The server adds no request series of its own: firstrender_requests_total
// and its siblings are the proxy's (counted where the cache decision is
// taken), and brokered sockets are the broker's firstrender_livesocket_*
// series. docs/operations.md has the one table of every series.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// adminMux is the admin listener's mux: /metrics, the liveness probe
// /healthz and the readiness probe /readyz. Nothing here is ever mounted
// on the public listener.
func adminMux(reg *prometheus.Registry, logger *slog.Logger, rd *readiness) *http.ServeMux {
	return adminMuxWith(reg, logger, rd, nil)
}

// adminMuxWith is adminMux with /metrics wrapped by guard (nil: none).
func adminMuxWith(reg *prometheus.Registry, logger *slog.Logger, rd *readiness, guard func(http.Handler) http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	var metrics http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
		Registry:          reg,
		EnableOpenMetrics: true,
	})
	if guard != nil {
		metrics = guard(metrics)
	}
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		lines, ok := rd.check(r.Context())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		for _, l := range lines {
			io.WriteString(w, l+"\n")
		}
	})
	return mux
}

// Readiness tuning: how long a successful origin contact counts as
// "recent", and how long one probe may take.
const (
	originFresh   = 10 * time.Second
	probeTimeout  = time.Second
	readyzProbeID = "firstrender:readyz-probe"
)

// readiness answers /readyz: the store is open and its writer answers,
// the origin was reached within originFresh (else it is dialled now),
// and the server is not shutting down. It is safe for concurrent use.
type readiness struct {
	store    *store.Store // set once New has opened it
	origin   *url.URL
	stopping atomic.Bool
	dial     func(ctx context.Context, network, addr string) (net.Conn, error) // nil: net.Dialer
	now      func() time.Time                                                  // nil: time.Now

	mu     sync.Mutex // serializes origin probes
	lastOK time.Time
}

// check returns one "name: ok|failing: why" line per check and whether
// all passed.
func (rd *readiness) check(ctx context.Context) ([]string, bool) {
	ok := true
	var lines []string
	say := func(name string, err error, okText string) {
		if err != nil {
			ok = false
			lines = append(lines, name+": failing: "+err.Error())
			return
		}
		lines = append(lines, name+": ok"+okText)
	}
	if rd.stopping.Load() {
		say("server", errors.New("shutting down"), "")
	} else {
		say("server", nil, "")
	}
	if err := rd.checkStore(ctx); err != nil {
		say("store", err, "")
	} else if h := rd.store.Health(); h.Failing {
		// Still ready: hits are served and misses forwarded; only storing
		// is off until a write commits again.
		lines = append(lines, fmt.Sprintf("store: degraded: writes failing (%s) since %s; serving what is stored, storing nothing", h.Cause, h.Since.UTC().Format(time.RFC3339)))
	} else {
		say("store", nil, "")
	}
	since, err := rd.checkOrigin(ctx)
	say("origin", err, fmt.Sprintf(" (reached %s ago)", since.Round(time.Millisecond)))
	return lines, ok
}

// checkStore sends a no-op write (deleting a key that never exists)
// through the store's writer: it fails when the store is closed or the
// writer does not answer within probeTimeout.
func (rd *readiness) checkStore(ctx context.Context) error {
	if rd.store == nil {
		return errors.New("not open")
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	err := rd.store.Delete(ctx, readyzProbeID, "")
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if _, ok := errors.AsType[*store.WriteError](err); ok {
		return nil // the writer answered; its failing writes are Health's (degraded)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("the store's writer did not answer within %v", probeTimeout)
	}
	return err
}

// checkOrigin reports how long ago the origin was last reached; when
// that is more than originFresh ago it opens a TCP connection to it now.
func (rd *readiness) checkOrigin(ctx context.Context) (time.Duration, error) {
	now := time.Now
	if rd.now != nil {
		now = rd.now
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if !rd.lastOK.IsZero() && now().Sub(rd.lastOK) < originFresh {
		return now().Sub(rd.lastOK), nil
	}
	if rd.origin == nil {
		return 0, errors.New("no upstream")
	}
	addr := rd.origin.Host
	if rd.origin.Port() == "" {
		addr = net.JoinHostPort(rd.origin.Hostname(), portOf(rd.origin))
	}
	dial := rd.dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("%s unreachable: %w", addr, err)
	}
	c.Close()
	rd.lastOK = now()
	return 0, nil
}

// accessLog wraps h: one log line per request, and for a WebSocket one
// when it opens and one when it closes. Fields (docs/operations.md):
// client (the peer, or with trustForwarded the last X-Forwarded-For
// entry, the one the trusted load balancer added), method, host, path
// (a _csrf_token query value redacted), status, cache, detail, stored,
// key (the proxy's own Outcome, carried by the request's context),
// cache_status, bytes, duration_ms, user_agent, remote (the peer). A
// request cut off before its response was complete says so: status 0
// when nothing was sent, aborted=true, and bytes as written.
//
// Every handler is counted in inflight, hijacked ones included, which
// http.Server.Shutdown does not wait for: Run waits on it so no request or
// socket is still being served (or unlogged) when it returns.
func accessLog(h http.Handler, logger *slog.Logger, trustForwarded bool, inflight *sync.WaitGroup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Done()
		if !logger.Enabled(r.Context(), slog.LevelInfo) {
			// No access lines at this level (--log-level=warn): skip the
			// Outcome, the wrapped writer and the attributes, about ten
			// allocations per request (docs/performance.md).
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		ctx, out := httpcache.WithOutcome(r.Context())
		r = r.WithContext(ctx)
		common := []slog.Attr{
			slog.String("client", clientAddr(r, trustForwarded)),
			slog.String("method", r.Method),
			slog.String("host", r.Host),
			slog.String("path", redactQuery(r.URL)),
		}
		sw := &statusWriter{ResponseWriter: w}
		sw.onHijack = func() {
			logger.LogAttrs(ctx, slog.LevelInfo, "websocket open", append(common,
				slog.String("user_agent", r.UserAgent()),
				slog.String("origin", r.Header.Get("Origin")),
				slog.String("remote", r.RemoteAddr))...)
		}
		defer func() {
			d := time.Since(start)
			status, aborted := sw.status, sw.writeErr != nil
			msg := "request"
			switch {
			case sw.hijacked:
				status, msg = http.StatusSwitchingProtocols, "websocket closed"
			case status == 0 && ctx.Err() != nil:
				aborted = true // the client or the shutdown cut it: nothing sent
			case status == 0:
				status = http.StatusOK // nothing written: net/http sends 200
			}
			if !sw.hijacked && !aborted && r.Method != http.MethodHead && status != http.StatusNotModified && status >= 200 {
				if cl, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); err == nil && sw.bytes < cl {
					aborted = true // announced more than was written
				}
			}
			result := string(out.Result)
			if result == "" {
				result = resultNone
			}
			attrs := append(common,
				slog.Int("status", status),
				slog.String("cache", result),
				slog.String("detail", out.Detail),
				slog.Bool("stored", out.Stored),
				slog.String("key", out.Key),
				slog.String("cache_status", cmp.Or(w.Header().Get("Cache-Status"), out.CacheStatus)),
				slog.Int64("bytes", sw.bytes),
				slog.Float64("duration_ms", float64(d.Microseconds())/1000),
				slog.String("user_agent", r.UserAgent()),
				slog.String("remote", r.RemoteAddr),
			)
			if aborted {
				attrs = append(attrs, slog.Bool("aborted", true))
			}
			logger.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
		}()
		h.ServeHTTP(sw, r)
	})
}

// resultNone is the access log's cache= when no handler recorded an
// outcome (a brokered socket, a socket refusal).
const resultNone = "none"

// clientAddr is the client's IP: the peer's, or with trust the last
// X-Forwarded-For entry (the address the trusted proxy in front saw; the
// earlier ones are whatever the client claimed).
func clientAddr(r *http.Request, trust bool) string {
	if trust {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			all := strings.Join(xff, ",")
			if i := strings.LastIndexByte(all, ','); i >= 0 {
				all = all[i+1:]
			}
			if c := strings.TrimSpace(all); c != "" {
				return c
			}
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// redactQuery is the request target with the value of every _csrf_token
// parameter (Phoenix sends one on the live socket's URL) replaced, so
// the access log holds no token a reader could replay.
func redactQuery(u *url.URL) string {
	if !strings.Contains(u.RawQuery, "_csrf_token") {
		return u.RequestURI()
	}
	parts := strings.Split(u.RawQuery, "&")
	for i, p := range parts {
		if k, _, ok := strings.Cut(p, "="); ok && k == "_csrf_token" {
			parts[i] = k + "=REDACTED"
		}
	}
	c := *u
	c.RawQuery = strings.Join(parts, "&")
	return c.RequestURI()
}

// statusWriter records the status and body size. It keeps Flush and Hijack
// reachable (streaming and WebSockets) and supports http.ResponseController
// through Unwrap.
type statusWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	writeErr error
	hijacked bool
	onHijack func()
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	if err != nil && w.writeErr == nil {
		w.writeErr = err
	}
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("server: connection cannot be hijacked")
	}
	c, rw, err := hj.Hijack()
	if err == nil {
		w.hijacked = true
		if w.onHijack != nil {
			w.onHijack()
		}
	}
	return c, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
