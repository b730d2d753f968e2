package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// unauthorizedBody is the fixed reply to a missing or wrong token: it says
// nothing about which it was, or about the token.
const unauthorizedBody = `{"error":"unauthorized","code":"unauthorized"}` + "\n"

// auth checks the bearer token of every request.
type auth struct {
	sum      [sha256.Size]byte // of the token: compared in constant time whatever the lengths
	token    string            // only to scrub it from logged paths
	failures *prometheus.CounterVec
	limiter  *failLimiter
	log      *slog.Logger
}

// bearer returns the credentials of an "Authorization: Bearer <token>"
// header (RFC 6750 §2.1; the scheme is case-insensitive, RFC 9110 §11.1).
func bearer(r *http.Request) (string, bool) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return "", false // none, or ambiguous
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimLeft(cred, " ")
	return cred, cred != ""
}

// clientID is the rate-limit key: the remote IP (the port changes with
// every connection), or "unix" for a unix-socket peer.
func clientID(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		if r.RemoteAddr == "" || r.RemoteAddr == "@" || strings.HasPrefix(r.RemoteAddr, "/") {
			return "unix"
		}
		return r.RemoteAddr
	}
	return host
}

func (a *auth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientID(r)
		if wait, limited := a.limiter.limited(client); limited {
			a.failures.WithLabelValues("rate_limited").Inc()
			a.log.Warn("admin: too many failed authentications", "client", client, "method", r.Method, "path", a.scrub(r.URL.Path))
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			writeError(w, &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "too many failed authentications from this client; retry later"})
			return
		}
		cred, ok := bearer(r)
		reason := "missing"
		if ok {
			sum := sha256.Sum256([]byte(cred))
			if subtle.ConstantTimeCompare(sum[:], a.sum[:]) == 1 {
				next.ServeHTTP(w, r)
				return
			}
			reason = "wrong"
		}
		a.limiter.fail(client)
		a.failures.WithLabelValues(reason).Inc()
		a.log.Warn("admin: unauthorized request", "client", client, "reason", reason, "method", r.Method, "path", a.scrub(r.URL.Path))
		h := w.Header()
		h.Set("WWW-Authenticate", `Bearer realm="firstrender-admin"`)
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(unauthorizedBody))
	})
}

// scrub removes the token from a path someone pasted it into.
func (a *auth) scrub(s string) string {
	if a.token != "" && strings.Contains(s, a.token) {
		s = strings.ReplaceAll(s, a.token, "REDACTED")
	}
	return s
}

// failLimiter is a token bucket of failed authentications per client:
// burst failures at once, then one per every. A client whose bucket is
// empty gets 429 without its token being checked at all, so guessing is
// throttled whatever it sends. It keeps at most maxClients buckets,
// forgetting full (idle) ones first.
type failLimiter struct {
	mu         sync.Mutex
	burst      float64
	every      time.Duration
	now        func() time.Time
	buckets    map[string]*bucket
	maxClients int
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newFailLimiter(burst int, every time.Duration, now func() time.Time) *failLimiter {
	return &failLimiter{burst: float64(burst), every: every, now: now, buckets: map[string]*bucket{}, maxClients: 10000}
}

// refill brings b up to date; the caller holds mu.
func (l *failLimiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+float64(el)/float64(l.every))
		b.at = now
	}
}

// limited reports whether client has no failures left, and how long until
// it has one.
func (l *failLimiter) limited(client string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[client]
	if b == nil {
		return 0, false
	}
	now := l.now()
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - b.tokens) * float64(l.every)), true
}

// fail takes one failure from client's bucket.
func (l *failLimiter) fail(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[client]
	if b == nil {
		if len(l.buckets) >= l.maxClients {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[client] = b
	}
	l.refill(b, now)
	b.tokens = math.Max(0, b.tokens-1)
}

// prune forgets refilled buckets, or, if none is full, all of them (a
// flood of addresses must not grow memory).
func (l *failLimiter) prune(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.maxClients {
		clear(l.buckets)
	}
}

// authFailures returns the failure counter registered with reg (or an
// unregistered one when reg is nil), reusing one already registered.
func authFailures(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "firstrender",
		Subsystem: "admin",
		Name:      "auth_failures_total",
		Help:      "Admin API requests refused for authentication, by reason (missing, wrong, rate_limited).",
	}, []string{"reason"})
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return ex, nil
			}
		}
		return nil, err
	}
	return c, nil
}
