package server

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry returns a fresh Prometheus registry with the Go runtime and
// process collectors. The store, proxy and broker register on it; it is
// served only on the admin listener.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// adminMux is the admin listener's mux: /metrics and a liveness probe.
// Nothing here is ever mounted on the public listener.
func adminMux(reg *prometheus.Registry, logger *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
		Registry:          reg,
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	return mux
}

// serverMetrics are the edge's own figures: every request the public
// listener answered, by the proxy's result.
type serverMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
}

func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstrender_server_requests_total",
			Help: "Requests answered on the public listener, by status class and the proxy's result (hit, miss, stale, pass, ...; none when the proxy did not answer, e.g. a brokered socket).",
		}, []string{"code", "cache"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "firstrender_server_request_duration_seconds",
			Help:    "Time from request to last byte written on the public listener, by the proxy's result.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"cache"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstrender_server_response_bytes_total",
			Help: "Response body bytes written on the public listener, by the proxy's result.",
		}, []string{"cache"}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytes)
	return m
}

// resultNone labels a request no handler recorded an outcome for.
const resultNone = "none"

// accessLog wraps h: one log line and one metrics update per request, with
// method, path, status, the proxy's own result and detail (an
// httpcache.Outcome carried by the request's context), duration and
// bytes. A hijacked connection (a brokered WebSocket) is logged when the
// handler returns, i.e. when the socket closes, with status 101.
//
// Every handler is counted in inflight, hijacked ones included, which
// http.Server.Shutdown does not wait for: Run waits on it so no request or
// socket is still being served (or unlogged) when it returns.
func accessLog(h http.Handler, logger *slog.Logger, m *serverMetrics, inflight *sync.WaitGroup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Done()
		start := time.Now()
		ctx, out := httpcache.WithOutcome(r.Context())
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			status := sw.status
			if sw.hijacked {
				status = http.StatusSwitchingProtocols
			} else if status == 0 {
				status = http.StatusOK // nothing written: net/http sends 200
			}
			result := string(out.Result)
			if result == "" {
				result = resultNone
			}
			d := time.Since(start)
			m.requests.WithLabelValues(strconv.Itoa(status/100)+"xx", result).Inc()
			m.duration.WithLabelValues(result).Observe(d.Seconds())
			m.bytes.WithLabelValues(result).Add(float64(sw.bytes))
			logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("host", r.Host),
				slog.String("path", r.URL.RequestURI()),
				slog.Int("status", status),
				slog.String("cache", result),
				slog.String("detail", out.Detail),
				slog.Bool("stored", out.Stored),
				slog.String("cache_status", w.Header().Get("Cache-Status")),
				slog.Duration("dur", d),
				slog.Int64("bytes", sw.bytes),
				slog.String("remote", r.RemoteAddr),
			)
		}()
		h.ServeHTTP(sw, r)
	})
}

// statusWriter records the status and body size. It keeps Flush and Hijack
// reachable (streaming and WebSockets) and supports http.ResponseController
// through Unwrap.
type statusWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
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
	}
	return c, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
