package livesocket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/store"
)

// AnnotationJoinFailures is the record annotation the join guard writes
// (through [GuardConfig.Annotator]) on an entry whose first render was
// refused by LiveView: the number of refused joins counted for the entry,
// in decimal. The guard reads the lint's [phxtoken.AnnotationTokens] to map
// a join to its entry. docs/annotations.md lists the whole namespace.
const AnnotationJoinFailures = "livesocket.join-failures"

// Cache is what the join guard needs from the caching proxy.
// *httpcache.Proxy satisfies it.
type Cache interface {
	// Entries returns the stored variants for a page URL (normalized like
	// requests). No entries is not an error.
	Entries(ctx context.Context, pageURL string) ([]store.Meta, error)
	// Disable stops the entry from being served; the next request refetches.
	Disable(ctx context.Context, key, variant, reason string) error
}

// Annotator records annotations on a stored entry. *store.Store satisfies
// it. Optional.
type Annotator interface {
	Annotate(ctx context.Context, key, variant string, set map[string]string) error
}

// GuardConfig configures the join guard.
type GuardConfig struct {
	// Cache maps joins to stored entries and disables them. Required.
	Cache Cache

	// Annotator, if set, records AnnotationJoinFailures on the entry.
	Annotator Annotator

	// Threshold is the number of distinct clients whose join failed for an
	// entry before it is disabled. Zero means 2; negative never disables
	// (count and annotate only).
	Threshold int

	// Reasons are the phx_reply error reasons that mean "this first render
	// cannot go live". Nil means "stale", "unauthorized" and "outdated"
	// (older LiveView). Phoenix answers "stale" for an expired or
	// unverifiable token and for the session-misconfigured case.
	Reasons []string

	// Window is the number of messages inspected in each direction at the
	// start of each socket. Zero means 16.
	Window int

	// MaxMessage is the largest message the guard parses, in bytes; larger
	// ones are relayed without a look. Zero means 16 KiB.
	MaxMessage int

	// ClientID names the client for "distinct clients". Nil means the
	// remote IP address, or the last X-Forwarded-For entry (the trusted
	// proxy's) when the broker's TrustForwarded is set.
	ClientID func(r *http.Request) string

	// Timeout bounds each Cache/Annotator call. Zero means 5s.
	Timeout time.Duration

	// Queue is the number of failures waiting for the worker; more are
	// dropped and counted. Zero means 256.
	Queue int
}

// joinFailure is one refused join, queued for the worker.
type joinFailure struct {
	url, token, client, reason string
	flushed                    chan struct{} // test/sync sentinel when non-nil
	// forget, when non-nil (with flushed), makes the worker drop the
	// counts of every entry whose key it accepts (nil accepts all).
	forget    func(key string) bool
	forgetAll bool
}

type guard struct {
	cfg     GuardConfig
	m       *metrics
	log     *slog.Logger
	q       chan joinFailure
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once

	// bufs lends the sockets' watchers a message buffer of MaxMessage+1
	// bytes (*[]byte) for the message being inspected.
	bufs sync.Pool

	// worker-only state
	seen map[string]*entryState
}

type entryState struct {
	clients  []string
	failures int
	disabled bool
}

const maxTrackedEntries = 10000

func newGuard(cfg GuardConfig, m *metrics, log *slog.Logger) (*guard, error) {
	if cfg.Cache == nil {
		return nil, errors.New("livesocket: GuardConfig.Cache is required")
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultGuardThreshold
	}
	if cfg.Reasons == nil {
		cfg.Reasons = []string{"stale", "unauthorized", "outdated"}
	}
	if cfg.Window == 0 {
		cfg.Window = 16
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = 16 << 10
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Queue == 0 {
		cfg.Queue = 256
	}
	if cfg.Window < 0 || cfg.MaxMessage < 0 || cfg.Timeout < 0 || cfg.Queue < 0 {
		return nil, errors.New("livesocket: GuardConfig Window, MaxMessage, Timeout and Queue cannot be negative")
	}
	if cfg.ClientID == nil {
		cfg.ClientID = remoteIP
	}
	g := &guard{cfg: cfg, m: m, log: log, q: make(chan joinFailure, cfg.Queue),
		stop: make(chan struct{}), stopped: make(chan struct{}), seen: map[string]*entryState{}}
	size := cfg.MaxMessage + 1
	g.bufs.New = func() any { b := make([]byte, size); return &b }
	go g.work()
	return g, nil
}

func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func (g *guard) close() {
	g.once.Do(func() { close(g.stop) })
	<-g.stopped
}

// sync waits until every failure queued before it was processed.
func (g *guard) sync(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case g.q <- joinFailure{flushed: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// forget drops the counts of the entries whose key match accepts (nil:
// all). Worker only.
func (g *guard) forget(match func(string) bool) {
	for id := range g.seen {
		key, _, _ := strings.Cut(id, "\x00")
		if match == nil || match(key) {
			delete(g.seen, id)
		}
	}
}

// forgetSync has the worker forget (see forget) after every failure
// queued before it, and waits for it.
func (g *guard) forgetSync(ctx context.Context, match func(string) bool) error {
	done := make(chan struct{})
	select {
	case g.q <- joinFailure{flushed: done, forget: match, forgetAll: match == nil}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *guard) report(f joinFailure) {
	g.m.joinFailures.Inc()
	g.log.Info("livesocket: LiveView join refused by the origin", "reason", f.reason, "url", f.url, "token", f.token, "client", f.client)
	select {
	case g.q <- f:
	default:
		g.m.guardDropped.Inc()
	}
}

func (g *guard) work() {
	defer close(g.stopped)
	for {
		select {
		case <-g.stop:
			return
		case f := <-g.q:
			if f.flushed != nil {
				if f.forget != nil || f.forgetAll {
					g.forget(f.forget)
				}
				close(f.flushed)
				continue
			}
			g.handle(f)
		}
	}
}

// handle maps a failure to entries: those whose phxtoken.AnnotationTokens lists the
// join's session token; if none does, the variants without the annotation
// (the lint did not see the page). An entry listing other tokens did not
// serve this client, and one whose annotation is present but empty (linted,
// no tokens: not a LiveView page) cannot have; both are left alone, so a
// visitor cannot disable them with made-up joins naming their URL.
func (g *guard) handle(f joinFailure) {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Timeout)
	defer cancel()
	metas, err := g.cfg.Cache.Entries(ctx, f.url)
	if err != nil {
		g.log.Warn("livesocket: join guard cannot list entries", "url", f.url, "err", err)
		return
	}
	var byToken, unannotated []store.Meta
	for _, m := range metas {
		toks, ok := m.Annotations[phxtoken.AnnotationTokens]
		switch {
		case !ok:
			unannotated = append(unannotated, m)
		case f.token != "" && slices.Contains(strings.Split(toks, ","), f.token):
			byToken = append(byToken, m)
		}
	}
	matched := byToken
	if len(matched) == 0 {
		matched = unannotated
	}
	for _, m := range matched {
		g.count(ctx, m, f)
	}
}

func (g *guard) count(ctx context.Context, m store.Meta, f joinFailure) {
	// One state per render: a refill after a disable stores a new render
	// (new tokens) under the same key and variant, and it must be counted
	// (and disabled) afresh, not found "disabled already".
	id := m.Key + "\x00" + m.Variant + "\x00" + m.Annotations[phxtoken.AnnotationTokens]
	st := g.seen[id]
	if st == nil {
		if len(g.seen) >= maxTrackedEntries {
			clear(g.seen) // bounded memory; a reset only delays a disable
		}
		st = &entryState{}
		if n, err := strconv.Atoi(m.Annotations[AnnotationJoinFailures]); err == nil {
			st.failures = n
		}
		g.seen[id] = st
	}
	st.failures++
	if !slices.Contains(st.clients, f.client) && len(st.clients) < 64 {
		st.clients = append(st.clients, f.client)
	}
	if g.cfg.Annotator != nil {
		err := g.cfg.Annotator.Annotate(ctx, m.Key, m.Variant, map[string]string{AnnotationJoinFailures: strconv.Itoa(st.failures)})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			g.log.Warn("livesocket: join guard cannot annotate", "key", m.Key, "variant", m.Variant, "err", err)
		}
	}
	if st.disabled || g.cfg.Threshold < 0 || len(st.clients) < g.cfg.Threshold {
		return
	}
	reason := fmt.Sprintf("livesocket: %d LiveView joins refused (%s) from %d clients", st.failures, f.reason, len(st.clients))
	if err := g.cfg.Cache.Disable(ctx, m.Key, m.Variant, reason); err != nil {
		g.log.Warn("livesocket: join guard cannot disable entry", "key", m.Key, "variant", m.Variant, "err", err)
		return
	}
	st.disabled = true
	g.m.disabled.Inc()
	g.log.Warn("livesocket: cached entry disabled: its first render cannot go live", "key", m.Key, "variant", m.Variant, "reason", reason)
}

// joinWatch is one socket's view of its first messages.
type joinWatch struct {
	g      *guard
	client string

	mu        sync.Mutex
	pending   map[string]pendingJoin // topic + "\x00" + ref
	toOrigin  int
	toClient  int
	reportOne bool // a failure was reported for this socket already
}

type pendingJoin struct{ url, token string }

func (g *guard) watch(r *http.Request) *joinWatch {
	return &joinWatch{g: g, client: g.cfg.ClientID(r)}
}

// want reports whether the next message in dir is inspected.
func (w *joinWatch) want(dir string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if dir == dirToOrigin {
		return w.toOrigin < w.g.cfg.Window
	}
	// Keep watching replies while joins are pending, within a bound.
	return w.toClient < w.g.cfg.Window || (len(w.pending) > 0 && w.toClient < 4*w.g.cfg.Window)
}

// copy relays one message from r to dst unchanged, inspecting it when it is
// small enough. The message is read into a buffer of the guard's pool
// (MaxMessage+1 bytes), which nothing keeps once copy returns.
func (w *joinWatch) copy(dst io.Writer, r io.Reader, dir string) (int64, error) {
	bp := w.g.bufs.Get().(*[]byte)
	defer w.g.bufs.Put(bp)
	buf := (*bp)[:cap(*bp)]
	k, err := io.ReadFull(r, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return 0, err
	}
	buf = buf[:k]
	n, err := dst.Write(buf)
	if err != nil {
		return int64(n), err
	}
	if len(buf) > w.g.cfg.MaxMessage {
		w.count(dir)
		m, err := io.Copy(dst, r)
		return int64(n) + m, err
	}
	w.inspect(buf, dir)
	return int64(n), nil
}

// count counts one inspected message of dir and returns the number of
// joins pending.
func (w *joinWatch) count(dir string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if dir == dirToOrigin {
		w.toOrigin++
	} else {
		w.toClient++
	}
	return len(w.pending)
}

// Event names the guard acts on, as they appear in a message (a JSON
// string without escapes).
var (
	evJoin  = []byte(`"phx_join"`)
	evReply = []byte(`"phx_reply"`)
)

// inspect looks at one message of dir; data is not kept. Only a phx_join
// (to the origin) and the phx_reply to a pending join (to the client)
// matter, so any other message (events, heartbeats, diffs, replies while
// no join is pending) is counted and dropped without a decode: its event
// name appears literally unless the message uses JSON escapes, and one
// that does is decoded in full.
func (w *joinWatch) inspect(data []byte, dir string) {
	pending := w.count(dir)
	ev := evJoin
	if dir == dirToClient {
		if pending == 0 {
			return
		}
		ev = evReply
	}
	if !bytes.Contains(data, ev) && bytes.IndexByte(data, '\\') < 0 {
		return
	}
	msg, ok := parseMessage(data)
	if !ok || !strings.HasPrefix(msg.Topic, "lv:") {
		return
	}
	key := msg.Topic + "\x00" + string(msg.Ref)
	switch {
	case dir == dirToOrigin && msg.Event == "phx_join":
		var p struct {
			URL      string `json:"url"`
			Redirect string `json:"redirect"`
			Session  string `json:"session"`
		}
		if json.Unmarshal(msg.Payload, &p) != nil {
			return
		}
		u := p.URL
		if u == "" {
			u = p.Redirect
		}
		if u == "" {
			return
		}
		pj := pendingJoin{url: u}
		if p.Session != "" {
			pj.token = phxtoken.TokenHash(p.Session)
		}
		w.mu.Lock()
		if w.pending == nil {
			w.pending = map[string]pendingJoin{}
		}
		if len(w.pending) < 8 {
			w.pending[key] = pj
		}
		w.mu.Unlock()
	case dir == dirToClient && msg.Event == "phx_reply":
		w.mu.Lock()
		pj, ok := w.pending[key]
		delete(w.pending, key)
		w.mu.Unlock()
		if !ok {
			return
		}
		var p struct {
			Status   string `json:"status"`
			Response struct {
				Reason string `json:"reason"`
			} `json:"response"`
		}
		if json.Unmarshal(msg.Payload, &p) != nil || p.Status != "error" {
			return
		}
		if !slices.Contains(w.g.cfg.Reasons, p.Response.Reason) {
			return
		}
		w.mu.Lock()
		first := !w.reportOne
		w.reportOne = true
		w.mu.Unlock()
		if first { // one socket is one client: count its failure once
			w.g.report(joinFailure{url: pj.url, token: pj.token, client: w.client, reason: p.Response.Reason})
		}
	}
}

// message is a Phoenix channel message.
type message struct {
	JoinRef, Ref json.RawMessage // raw JSON (string or null)
	Topic, Event string
	Payload      json.RawMessage
}

// parseMessage decodes a Phoenix channel message in the v2 serializer's
// array form [join_ref, ref, topic, event, payload] or the v1 object form.
// It reports false for anything else.
func parseMessage(data []byte) (message, bool) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return message{}, false
	}
	var m message
	switch data[0] {
	case '[':
		var a []json.RawMessage
		if json.Unmarshal(data, &a) != nil || len(a) != 5 {
			return message{}, false
		}
		if json.Unmarshal(a[2], &m.Topic) != nil || json.Unmarshal(a[3], &m.Event) != nil {
			return message{}, false
		}
		m.JoinRef, m.Ref, m.Payload = a[0], a[1], a[4]
	case '{':
		var o struct {
			Topic   string          `json:"topic"`
			Event   string          `json:"event"`
			Payload json.RawMessage `json:"payload"`
			Ref     json.RawMessage `json:"ref"`
			JoinRef json.RawMessage `json:"join_ref"`
		}
		if json.Unmarshal(data, &o) != nil {
			return message{}, false
		}
		m = message{JoinRef: o.JoinRef, Ref: o.Ref, Topic: o.Topic, Event: o.Event, Payload: o.Payload}
	default:
		return message{}, false
	}
	if m.Topic == "" || m.Event == "" {
		return message{}, false
	}
	return m, true
}
