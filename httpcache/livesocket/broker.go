package livesocket

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/httpcache/hop"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultPath is LiveView's WebSocket transport path.
const DefaultPath = "/live/websocket"

// DefaultLongpollPath is LiveView's long-poll transport path.
const DefaultLongpollPath = "/live/longpoll"

// Config configures a [Broker]. Zero durations and sizes take the defaults
// documented on each field; negative ones switch the feature off where that
// is said.
type Config struct {
	// Origin is the application's base URL (http, https, ws or wss). The
	// client's path and query are appended to it. Required.
	Origin *url.URL

	// Policy decides which Origins may open sockets. Required: build it with
	// NewOriginPolicy.
	Policy *OriginPolicy

	// Paths are the socket transport paths that are brokered with the join
	// guard. Nil means []string{DefaultPath}.
	Paths []string

	// LongpollPaths are the paths of Phoenix's long-poll transport, the
	// fallback the Phoenix client uses when WebSocket fails. Wrap
	// Origin-checks every request to them, on every method, before the
	// cache (which must bypass them) forwards it: a request with an
	// Origin must pass Policy; one without (a browser omits Origin on a
	// same-origin GET or HEAD) passes only as a GET, HEAD or OPTIONS whose
	// Sec-Fetch-Site, if any, is same-origin or none, or with
	// AllowMissing. Matching is on the cleaned path (dot segments and
	// empty segments removed, as Plug routes it) and covers sub-paths.
	// Nil means each Paths entry ending in "/websocket" with "/longpoll"
	// instead, plus DefaultLongpollPath; an empty non-nil slice checks
	// none.
	LongpollPaths []string

	// Tunnel brokers WebSocket upgrades on other paths too (Origin-checked,
	// without the join guard). If false they get 404.
	Tunnel bool

	// DialTimeout bounds the origin handshake (TCP, TLS and HTTP upgrade).
	// Zero means 10s. A timeout answers the client 504; an unreachable
	// origin 502; an origin refusal is relayed with the origin's status.
	DialTimeout time.Duration

	// ReadLimit is the largest message accepted from either side, in bytes.
	// Zero means 1 MiB. A bigger message closes that side with 1009 and the
	// other side with 1001.
	ReadLimit int64

	// IdleTimeout closes a socket (1001 to both sides) when no message went
	// either way for this long; pings do not count. Zero means 5 minutes
	// (LiveView's 30 s heartbeat keeps live pages busy); negative disables.
	IdleTimeout time.Duration

	// PingInterval is how often both legs are pinged. Zero means 25s;
	// negative disables pings and dead-peer detection.
	PingInterval time.Duration

	// PongTimeout: a leg that sent nothing (no message, ping or pong) for
	// PingInterval+PongTimeout is dead, and the socket is closed. Zero
	// means 15s.
	PongTimeout time.Duration

	// WriteTimeout bounds each write to either side; a reader that is slower
	// than this is cut off (this is what bounds the broker's memory when a
	// peer stops reading). Each message gets between WriteTimeout/2 and
	// WriteTimeout (the deadline is not moved for every message). Zero
	// means 10s. It must be less than PingInterval+PongTimeout.
	WriteTimeout time.Duration

	// CloseGrace is how long the broker waits for the peer's close reply
	// after relaying or sending a close frame. Zero means 2s.
	CloseGrace time.Duration

	// MaxSockets is the maximum number of concurrently brokered sockets;
	// more are refused with 503. Zero means 10000; negative is unlimited.
	MaxSockets int

	// TrustForwarded keeps the client's X-Forwarded-For/-Proto/-Host (from
	// a trusted load balancer) and appends to them; otherwise they are
	// replaced with what this server sees.
	TrustForwarded bool

	// Via is the pseudonym this gateway gives itself in the Via field of
	// the handshakes it forwards (RFC 9110 §7.6.3), appended to the
	// client's, and of the responses it relays (the 101, a refusal),
	// appended to the origin's; empty adds none. httpcache/server sets it from the
	// proxy's Config.Via.
	Via string

	// TLSClientConfig is used to dial wss origins. Nil means the default.
	TLSClientConfig *tls.Config

	// Guard enables the LiveView join guard. Nil means off.
	Guard *GuardConfig

	// Registerer receives the metrics. Nil means no metrics.
	Registerer prometheus.Registerer

	// Logger; nil means slog.Default().
	Logger *slog.Logger

	// Test hooks, nil outside this package's tests: onRun is called once a
	// socket's session runs (the open gauge counts it), onRelease after a
	// socket's slot is freed, with the number of sockets still open. They
	// must not block.
	onRun     func()
	onRelease func(open int)
}

func (c *Config) setDefaults() error {
	if c.Origin == nil || c.Origin.Host == "" {
		return errors.New("livesocket: Config.Origin is required (the application's base URL)")
	}
	switch c.Origin.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("livesocket: Config.Origin %q: scheme must be http, https, ws or wss", c.Origin)
	}
	if c.Policy == nil {
		return errors.New("livesocket: Config.Policy is required (NewOriginPolicy)")
	}
	if c.Paths == nil {
		c.Paths = []string{DefaultPath}
	}
	for _, p := range c.Paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("livesocket: socket path %q must start with /", p)
		}
	}
	if c.LongpollPaths == nil {
		for _, p := range c.Paths {
			if base, ok := strings.CutSuffix(p, "/websocket"); ok && !slices.Contains(c.LongpollPaths, base+"/longpoll") {
				c.LongpollPaths = append(c.LongpollPaths, base+"/longpoll")
			}
		}
		if !slices.Contains(c.LongpollPaths, DefaultLongpollPath) {
			c.LongpollPaths = append(c.LongpollPaths, DefaultLongpollPath)
		}
	}
	for _, p := range c.LongpollPaths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("livesocket: long-poll path %q must start with /", p)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.DialTimeout, 10*time.Second)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.PingInterval, 25*time.Second)
	def(&c.PongTimeout, 15*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.CloseGrace, 2*time.Second)
	if c.ReadLimit == 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.MaxSockets == 0 {
		c.MaxSockets = DefaultMaxSockets
	}
	if c.DialTimeout < 0 || c.PongTimeout < 0 || c.WriteTimeout < 0 || c.CloseGrace < 0 || c.ReadLimit < 0 {
		return errors.New("livesocket: DialTimeout, PongTimeout, WriteTimeout, CloseGrace and ReadLimit cannot be negative")
	}
	if c.PingInterval > 0 && c.WriteTimeout >= c.PingInterval+c.PongTimeout {
		return fmt.Errorf("livesocket: WriteTimeout %v must be less than PingInterval+PongTimeout %v", c.WriteTimeout, c.PingInterval+c.PongTimeout)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Broker relays WebSockets between clients and the origin. It is an
// [http.Handler] for upgrade requests; use [Broker.Wrap] to put it in front
// of the caching proxy. Safe for concurrent use.
type Broker struct {
	cfg       Config
	paths     map[string]bool
	up        websocket.Upgrader
	dialer    websocket.Dialer
	netDialer net.Dialer
	m         *metrics
	guard     *guard
	log       *slog.Logger

	mu       sync.Mutex
	sessions map[*session]struct{}
	closing  bool
	n        int
	done     chan struct{} // closed when closing and n == 0
}

var _ http.Handler = (*Broker)(nil)

// writeBufPool lends write buffers to both legs only while a message is
// being written, so an idle socket holds none. They are large (a big
// message goes out in few frames and system calls) since only sockets
// writing at this instant hold one.
var writeBufPool sync.Pool

const writeBufSize = 32 << 10

// New validates cfg and returns a Broker. It starts the join guard's worker
// (if any); call Shutdown to stop it.
func New(cfg Config) (*Broker, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, paths: map[string]bool{}, m: m, log: cfg.Logger,
		sessions: map[*session]struct{}{}, done: make(chan struct{})}
	for _, p := range cfg.Paths {
		b.paths[p] = true
	}
	b.up = websocket.Upgrader{
		HandshakeTimeout: cfg.DialTimeout,
		// Non-zero: gorilla then reads through the corkConn (see cork.go)
		// instead of reusing the server's bufio.Reader on the raw conn.
		ReadBufferSize:  4096,
		WriteBufferSize: writeBufSize,
		WriteBufferPool: &writeBufPool,
		// The Origin was checked by the policy before the origin was dialled.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	b.dialer = websocket.Dialer{
		Proxy:            nil, // loopback or direct: never an environment proxy
		HandshakeTimeout: cfg.DialTimeout,
		TLSClientConfig:  cfg.TLSClientConfig,
		ReadBufferSize:   4096,
		WriteBufferSize:  writeBufSize,
		WriteBufferPool:  &writeBufPool,
	}
	if cfg.Guard != nil {
		gc := *cfg.Guard
		if gc.ClientID == nil && cfg.TrustForwarded {
			gc.ClientID = forwardedClient
		}
		g, err := newGuard(gc, m, cfg.Logger)
		if err != nil {
			return nil, err
		}
		b.guard = g
	}
	policy := *cfg.Policy // copy: the hook must not leak into the caller's policy
	policy.onRefuse = func(reason string) { m.refused.WithLabelValues(reason).Inc() }
	b.cfg.Policy = &policy
	return b, nil
}

// forwardedClient is the last X-Forwarded-For address (the one the
// trusted proxy in front appended), else the remote IP. Earlier entries
// come from the client and may be made up: counting them would let one
// visitor pass for many distinct clients and disable entries alone.
func forwardedClient(r *http.Request) string {
	v := strings.Join(r.Header.Values("X-Forwarded-For"), ",")
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	if v = strings.TrimSpace(v); v != "" {
		return v
	}
	return remoteIP(r)
}

// FlushGuard waits until the join guard has processed every join failure
// seen so far (mapped, annotated, disabled). It returns at once when the
// guard is off, and ctx.Err() if ctx ends first. The guard works beside the
// sockets, so tests (the e2e suite) and tools call it to make its effect on
// the cache observable.
func (b *Broker) FlushGuard(ctx context.Context) error {
	if b.guard == nil {
		return nil
	}
	return b.guard.sync(ctx)
}

// ForgetJoins makes the join guard forget the refused joins it counted
// for the entries whose primary key match accepts (nil: every entry), as
// a purge or an enable of them must: a refill, or an entry enabled again,
// is counted afresh and can be disabled again. It waits until the guard's
// worker has done it (after the failures queued before), or ctx ends. It
// returns nil when the guard is off.
func (b *Broker) ForgetJoins(ctx context.Context, match func(key string) bool) error {
	if b.guard == nil {
		return nil
	}
	return b.guard.forgetSync(ctx, match)
}

// Wrap returns a handler that sends WebSocket upgrades (any path) to the
// broker, answers plain requests on socket paths with 400 (they never reach
// the cache), Origin-checks requests to the long-poll paths (403 when
// refused, see Config.LongpollPaths) before passing them on, and passes
// everything else to next.
func (b *Broker) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clean := cleanPath(r.URL.Path)
		if websocket.IsWebSocketUpgrade(r) || b.paths[r.URL.Path] || b.paths[clean] {
			b.ServeHTTP(w, r)
			return
		}
		if b.longpoll(clean) {
			if err := b.checkLongpoll(r); err != nil {
				w.Header().Set("Cache-Status", cacheStatus(true, 0))
				w.Header().Set("Cache-Control", "no-store")
				b.cfg.Policy.refuse(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath is p as Plug routes it: dot segments resolved and empty
// segments dropped.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	// Clean allocates only when it changes p: an already clean path (the
	// common request) costs nothing per request.
	return path.Clean(p)
}

func (b *Broker) longpoll(clean string) bool {
	for _, lp := range b.cfg.LongpollPaths {
		if clean == lp || strings.HasPrefix(clean, strings.TrimSuffix(lp, "/")+"/") {
			return true
		}
	}
	return false
}

// checkLongpoll is the Origin check of a long-poll request: the policy
// when it carries an Origin; without one, only a safe method (a browser
// omits Origin on a same-origin GET or HEAD) not marked cross-site or
// same-site by Sec-Fetch-Site, unless the policy allows a missing Origin.
func (b *Broker) checkLongpoll(r *http.Request) error {
	if len(r.Header.Values("Origin")) > 0 || b.cfg.Policy.allowMissing {
		return b.cfg.Policy.Check(r)
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return &OriginError{Reason: ReasonNoOrigin}
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return nil
	}
	return &OriginError{Reason: ReasonOriginDenied, Origin: "Sec-Fetch-Site: " + r.Header.Get("Sec-Fetch-Site")}
}

// Open returns the number of sockets being brokered now.
func (b *Broker) Open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

func (b *Broker) refuse(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
	b.m.refused.WithLabelValues(reason).Inc()
	b.log.Info("livesocket: upgrade refused", "reason", reason, "status", status, "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "%d %s: %s\n", status, strings.ToLower(http.StatusText(status)), msg)
}

// ServeHTTP brokers one WebSocket upgrade. Order: handshake validity
// (an upgrade over HTTP/1.0 is a 400 too), path,
// Origin (403, before the origin is dialled), capacity (503), origin
// handshake (its status relayed, 502 unreachable, 504 timeout), and only
// then the client's 101.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	guarded := b.paths[r.URL.Path]
	// Every response says the cache was bypassed (RFC 9211), refusals
	// included, like the proxy's own.
	w.Header().Set("Cache-Status", cacheStatus(guarded, 0))
	if !websocket.IsWebSocketUpgrade(r) {
		if guarded {
			b.refuse(w, r, http.StatusBadRequest, ReasonNotUpgrade, "this is a WebSocket endpoint")
		} else {
			b.refuse(w, r, http.StatusBadRequest, ReasonNotUpgrade, "not a WebSocket handshake")
		}
		return
	}
	if !r.ProtoAtLeast(1, 1) {
		// RFC 6455 §4.1: the handshake MUST be HTTP/1.1 or later, and an
		// HTTP/1.0 server ignores Upgrade (RFC 9110 §7.8); gorilla's
		// Upgrader does not check the version.
		b.refuse(w, r, http.StatusBadRequest, ReasonNotUpgrade, "a WebSocket handshake needs HTTP/1.1")
		return
	}
	if !guarded && !b.cfg.Tunnel {
		b.refuse(w, r, http.StatusNotFound, ReasonPath, "no live socket on this path")
		return
	}
	if err := b.cfg.Policy.Check(r); err != nil {
		b.cfg.Policy.refuse(w, r, err)
		return
	}
	if reason := b.reserve(); reason != "" {
		msg := "too many live sockets, retry later"
		if reason == ReasonShutdown {
			msg = "server is shutting down"
		}
		b.refuse(w, r, http.StatusServiceUnavailable, reason, msg)
		return
	}
	defer b.release()

	oc, ocork, oresp, ok := b.dialOrigin(w, r)
	if !ok {
		return
	}
	respHdr := http.Header{"Cache-Status": {cacheStatus(guarded, 0)}}
	if p := oc.Subprotocol(); p != "" {
		respHdr.Set("Sec-WebSocket-Protocol", p)
	}
	b.responseVia(respHdr, oresp)
	hw := &hijackCork{ResponseWriter: w}
	cc, err := b.up.Upgrade(hw, r, respHdr)
	if err != nil {
		// Upgrade has answered the client with an error status.
		b.m.refused.WithLabelValues(ReasonClientHandshake).Inc()
		_ = oc.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "client handshake failed"), time.Now().Add(time.Second))
		oc.Close()
		return
	}
	b.m.accepted.Inc()
	if hw.conn != nil && ocork != nil {
		hw.conn.peer, ocork.peer = ocork, hw.conn
	}
	s := b.newSession(r, cc, oc, guarded)
	if s != nil {
		s.client.cork, s.origin.cork = hw.conn, ocork
	}
	if s == nil { // Shutdown began between reserve and now.
		return
	}
	b.m.open.Inc()
	if b.cfg.onRun != nil {
		b.cfg.onRun()
	}
	s.run()
	b.m.open.Dec()
	b.mu.Lock()
	delete(b.sessions, s)
	b.mu.Unlock()
}

// cacheStatus is the RFC 9211 Cache-Status of a response from the broker:
// the cache is bypassed, on a configured socket path (guarded) or for an
// upgrade elsewhere; fwdStatus, when not zero, is the origin's answer.
func cacheStatus(guarded bool, fwdStatus int) string {
	s := "firstrender; fwd=bypass"
	if fwdStatus != 0 {
		s += "; fwd-status=" + strconv.Itoa(fwdStatus)
	}
	if guarded {
		return s + "; detail=socket-path"
	}
	return s + "; detail=upgrade"
}

func (b *Broker) reserve() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closing:
		return ReasonShutdown
	case b.cfg.MaxSockets > 0 && b.n >= b.cfg.MaxSockets:
		return ReasonMaxSockets
	}
	b.n++
	return ""
}

func (b *Broker) release() {
	b.mu.Lock()
	b.n--
	n := b.n
	if b.closing && n == 0 {
		close(b.done)
	}
	b.mu.Unlock()
	if b.cfg.onRelease != nil {
		b.cfg.onRelease(n)
	}
}

// originURL is the origin's socket URL for r: the origin's scheme (as ws or
// wss), host and base path, then r's path and query.
func (b *Broker) originURL(r *http.Request) string {
	o := b.cfg.Origin
	scheme := o.Scheme
	switch scheme {
	case "http":
		scheme = "ws"
	case "https":
		scheme = "wss"
	}
	s := scheme + "://" + o.Host + strings.TrimSuffix(o.EscapedPath(), "/") + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		s += "?" + r.URL.RawQuery
	}
	return s
}

// originHeader is what the origin sees of the client's handshake.
func (b *Broker) originHeader(r *http.Request) http.Header {
	h := http.Header{}
	for _, k := range []string{"Cookie", "User-Agent", "Origin", "Accept-Language", "Via"} {
		if v := r.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	hop.SetForwarded(h, r, b.cfg.TrustForwarded)
	hop.AppendVia(h, r.ProtoMajor, r.ProtoMinor, b.cfg.Via)
	return h
}

// responseVia sets h's Via to the origin's response's Via with this
// gateway's member appended (RFC 9110 §7.6.3: the 101, or a refusal
// relayed, is a forwarded response like any other).
func (b *Broker) responseVia(h http.Header, resp *http.Response) {
	if resp == nil {
		return
	}
	if v := resp.Header.Values("Via"); len(v) > 0 {
		h["Via"] = v
	}
	hop.AppendVia(h, resp.ProtoMajor, resp.ProtoMinor, b.cfg.Via)
}

// dialOrigin performs the origin handshake and returns the origin's
// connection, its cork and its 101. On failure it has answered the client
// and returns false.
func (b *Broker) dialOrigin(w http.ResponseWriter, r *http.Request) (*websocket.Conn, *corkConn, *http.Response, bool) {
	d := b.dialer
	d.Subprotocols = websocket.Subprotocols(r)
	var cork *corkConn
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := b.netDialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cork = &corkConn{Conn: c}
		return cork, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), b.cfg.DialTimeout)
	defer cancel()
	start := time.Now()
	oc, resp, err := d.DialContext(ctx, b.originURL(r), b.originHeader(r))
	b.m.dial.Observe(time.Since(start).Seconds())
	if err == nil {
		return oc, cork, resp, true
	}
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		// The origin refused (its check_origin, auth, 404...): relay its status.
		b.m.refused.WithLabelValues(ReasonUpstreamDeny).Inc()
		b.log.Info("livesocket: origin refused the socket", "status", resp.StatusCode, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Cache-Status", cacheStatus(b.paths[r.URL.Path], resp.StatusCode))
		b.responseVia(w.Header(), resp)
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
		return nil, nil, nil, false
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		b.log.Warn("livesocket: origin handshake timed out", "err", err, "after", time.Since(start))
		b.refuse(w, r, http.StatusGatewayTimeout, ReasonUpstreamSlow, "the application did not answer in time")
		return nil, nil, nil, false
	}
	b.log.Warn("livesocket: origin unreachable", "err", err)
	b.refuse(w, r, http.StatusBadGateway, ReasonUpstreamDown, "the application is unreachable")
	return nil, nil, nil, false
}

// Shutdown stops accepting sockets and closes every brokered socket with
// 1001 (going away) to both the client and the origin, waiting for their
// close replies until ctx is done; then it drops the remaining connections.
// It also stops the join guard. It returns ctx.Err() if ctx ended first.
// http.Server.Shutdown does not track hijacked connections, so call this
// beside it.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if !b.closing {
		b.closing = true
		if b.n == 0 {
			close(b.done)
		}
	}
	list := make([]*session, 0, len(b.sessions))
	for s := range b.sessions {
		list = append(list, s)
	}
	b.mu.Unlock()
	grace := b.cfg.CloseGrace
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < grace {
		grace = time.Until(dl)
	}
	for _, s := range list {
		s.goAway(websocket.CloseGoingAway, "server shutting down", grace)
	}
	var err error
	select {
	case <-b.done:
	case <-ctx.Done():
		err = ctx.Err()
		b.mu.Lock()
		for s := range b.sessions {
			s.client.c.NetConn().Close()
			s.origin.c.NetConn().Close()
		}
		b.mu.Unlock()
	}
	if b.guard != nil {
		b.guard.close()
	}
	return err
}

// leg is one side of a brokered socket.
type leg struct {
	c         *websocket.Conn
	cork      *corkConn // batches this leg's data frames; nil if not corked
	closeSent atomic.Bool
	readDL    atomic.Int64 // unix nanos of the read deadline set by aliveAt
	writeDL   int64        // unix nanos of the write deadline; only the pump writing to this leg uses it
}

// sendClose sends a close frame once per leg. code < 0 sends an empty one.
func (l *leg) sendClose(code int, text string, timeout time.Duration) {
	if l.closeSent.Swap(true) {
		return
	}
	var payload []byte
	if code >= 0 {
		if len(text) > 120 {
			text = text[:120]
		}
		payload = websocket.FormatCloseMessage(code, text)
	}
	_ = l.c.WriteControl(websocket.CloseMessage, payload, time.Now().Add(timeout))
}

// session is one brokered socket: two legs and two pumps.
type session struct {
	b              *Broker
	client, origin *leg
	lastActive     atomic.Int64 // unix nanos of the last message either way
	ended          atomic.Bool  // run returned: timers must not re-arm
	pingTimer      *time.Timer
	idleTimer      *time.Timer
	watch          *joinWatch // nil when the guard is off for this socket
}

func (b *Broker) newSession(r *http.Request, cc, oc *websocket.Conn, guarded bool) *session {
	s := &session{b: b, client: &leg{c: cc}, origin: &leg{c: oc}}
	if guarded && b.guard != nil {
		s.watch = b.guard.watch(r)
	}
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		s.client.sendClose(websocket.CloseGoingAway, "server shutting down", time.Second)
		s.origin.sendClose(websocket.CloseGoingAway, "server shutting down", time.Second)
		cc.Close()
		oc.Close()
		return nil
	}
	b.sessions[s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (s *session) deadWindow() time.Duration {
	return s.b.cfg.PingInterval + s.b.cfg.PongTimeout
}

// alive pushes l's read deadline (dead-peer detection) to now plus
// PingInterval+PongTimeout. To keep the per-message cost low the deadline
// is only moved when it has lost a quarter of that window, so a silent
// peer is declared dead after between 3/4 and all of the window.
func (s *session) alive(l *leg) { s.aliveAt(l, time.Now()) }

func (s *session) aliveAt(l *leg, now time.Time) {
	// Once a close was sent, the leg's deadline is the close grace.
	if s.b.cfg.PingInterval <= 0 || l.closeSent.Load() {
		return
	}
	w := s.deadWindow()
	dl := now.Add(w)
	if dl.UnixNano()-l.readDL.Load() < int64(w/4) {
		return
	}
	l.readDL.Store(dl.UnixNano())
	_ = l.c.SetReadDeadline(dl)
}

func (s *session) setup(l *leg) {
	cfg := &s.b.cfg
	l.c.SetReadLimit(cfg.ReadLimit)
	// The close frame is relayed by the pump, not answered here: the other
	// side's reply comes back as the answer.
	l.c.SetCloseHandler(func(int, string) error { return nil })
	l.c.SetPongHandler(func(string) error { s.alive(l); return nil })
	l.c.SetPingHandler(func(data string) error {
		s.alive(l)
		err := l.c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(cfg.WriteTimeout))
		if err == websocket.ErrCloseSent {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	s.alive(l)
}

func (s *session) run() {
	cfg := &s.b.cfg
	s.setup(s.client)
	s.setup(s.origin)
	s.lastActive.Store(time.Now().UnixNano())
	if cfg.PingInterval > 0 {
		s.pingTimer = time.AfterFunc(cfg.PingInterval, s.ping)
	}
	if cfg.IdleTimeout > 0 {
		s.idleTimer = time.AfterFunc(cfg.IdleTimeout, s.checkIdle)
	}
	done := make(chan struct{})
	go func() {
		s.pump(s.origin, s.client, dirToClient)
		close(done)
	}()
	s.pump(s.client, s.origin, dirToOrigin)
	<-done
	s.ended.Store(true)
	if s.pingTimer != nil {
		s.pingTimer.Stop()
	}
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	s.client.c.Close()
	s.origin.c.Close()
}

func (s *session) ping() {
	if s.ended.Load() {
		return
	}
	t := time.Now().Add(s.b.cfg.WriteTimeout)
	_ = s.client.c.WriteControl(websocket.PingMessage, nil, t)
	_ = s.origin.c.WriteControl(websocket.PingMessage, nil, t)
	s.pingTimer.Reset(s.b.cfg.PingInterval)
}

func (s *session) checkIdle() {
	if s.ended.Load() {
		return
	}
	idle := time.Since(time.Unix(0, s.lastActive.Load()))
	if left := s.b.cfg.IdleTimeout - idle; left > 0 {
		s.idleTimer.Reset(left)
		return
	}
	s.goAway(websocket.CloseGoingAway, "idle timeout", s.b.cfg.CloseGrace)
}

// goAway closes both legs with code and waits at most grace for replies.
func (s *session) goAway(code int, text string, grace time.Duration) {
	s.client.sendClose(code, text, s.b.cfg.WriteTimeout)
	s.origin.sendClose(code, text, s.b.cfg.WriteTimeout)
	dl := time.Now().Add(grace)
	_ = s.client.c.SetReadDeadline(dl)
	_ = s.origin.c.SetReadDeadline(dl)
}

// errReader remembers the read error so a failed copy can tell which side
// broke.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// pump relays messages from src to dst until either side fails or closes.
// One message is in flight at a time: while dst does not take it, src is
// not read (backpressure; gorilla's buffers are the only buffering).
func (s *session) pump(src, dst *leg, dir string) {
	cfg := &s.b.cfg
	er := &errReader{} // reused for every message of this pump
	msgs, bytes := s.b.m.msgTo, s.b.m.bytesTo
	if dir == dirToClient {
		msgs, bytes = s.b.m.msgFrom, s.b.m.bytesFrom
	}
	for {
		mt, r, err := src.c.NextReader()
		if err != nil {
			s.readFailed(src, dst, err)
			return
		}
		now := time.Now()
		s.aliveAt(src, now)
		s.lastActive.Store(now.UnixNano())
		// Each write gets at least WriteTimeout/2; the deadline is moved
		// only when less is left (a timer update per message is costly).
		if dl := now.Add(cfg.WriteTimeout); dl.UnixNano()-dst.writeDL > int64(cfg.WriteTimeout/2) {
			dst.writeDL = dl.UnixNano()
			_ = dst.c.SetWriteDeadline(dl)
		}
		w, err := dst.c.NextWriter(mt)
		if err != nil {
			s.writeFailed(src, dst)
			return
		}
		er.r, er.err = r, nil
		var n int64
		if s.watch != nil && mt == websocket.TextMessage && s.watch.want(dir) {
			n, err = s.watch.copy(w, er, dir)
		} else {
			n, err = io.Copy(w, er)
		}
		if err == nil {
			// Small messages are batched (cork.go); big ones gain nothing.
			corked := dst.cork != nil && n < corkSmall
			if corked {
				dst.cork.cork.Store(true)
			}
			err = w.Close()
			if corked {
				dst.cork.cork.Store(false)
			}
		}
		if err != nil {
			if er.err != nil {
				s.readFailed(src, dst, er.err)
			} else {
				s.writeFailed(src, dst)
			}
			return
		}
		msgs.Inc()
		bytes.Add(float64(n))
	}
}

// readFailed handles the end of src: a close frame is relayed to dst with
// its code; anything else (dead peer, oversized message, broken connection)
// closes dst with 1001.
func (s *session) readFailed(src, dst *leg, err error) {
	cfg := &s.b.cfg
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		switch ce.Code {
		case websocket.CloseNoStatusReceived:
			dst.sendClose(-1, "", cfg.WriteTimeout)
		case websocket.CloseAbnormalClosure, websocket.CloseTLSHandshake:
			dst.sendClose(websocket.CloseGoingAway, "peer went away", cfg.WriteTimeout)
		default:
			dst.sendClose(ce.Code, ce.Text, cfg.WriteTimeout)
		}
	case errors.Is(err, websocket.ErrReadLimit):
		src.closeSent.Store(true) // gorilla has sent 1009 to src
		dst.sendClose(websocket.CloseGoingAway, "peer sent a message over the size limit", cfg.WriteTimeout)
	default:
		dst.sendClose(websocket.CloseGoingAway, "peer went away", cfg.WriteTimeout)
		src.c.NetConn().Close()
	}
	// Wait (bounded) for dst's close reply on the other pump.
	_ = dst.c.SetReadDeadline(time.Now().Add(cfg.CloseGrace))
}

// writeFailed handles a dst that cannot take data (gone, or slower than
// WriteTimeout): drop it, which ends the other pump, and tell src 1001.
func (s *session) writeFailed(src, dst *leg) {
	dst.closeSent.Store(true)
	dst.c.NetConn().Close()
	src.sendClose(websocket.CloseGoingAway, "peer went away", s.b.cfg.WriteTimeout)
	_ = src.c.SetReadDeadline(time.Now().Add(s.b.cfg.CloseGrace))
}
