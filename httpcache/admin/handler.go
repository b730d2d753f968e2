package admin

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Reader is the read side of the API. *store.Store satisfies it, opened
// read-write by the server or read-only by cmd/admin offline, so the same
// code serves both.
type Reader interface {
	Scan(ctx context.Context, o store.ScanOptions) (store.Page, error)
	Get(ctx context.Context, key, variant string) (*store.Record, error)
	Variants(ctx context.Context, key string) ([]store.Meta, error)
	Stats() store.Stats
	Path() string
}

// Checker is the optional integrity check of a Reader (*store.Store has it).
type Checker interface {
	Check(ctx context.Context) (store.CheckResult, error)
}

var (
	_ Reader  = (*store.Store)(nil)
	_ Checker = (*store.Store)(nil)
)

// StatsSource returns the server's counters (requests, hits, misses,
// origin latency, sockets, disabled entries, ...). It is called once per
// GET stats and once a second per events subscriber, so it must be cheap
// (O(1)) and safe for concurrent use. The handler then overwrites the
// store's figures (Entries, Bytes, FileSize, MaxSize, Evictions, Expired,
// StorePath) from Reader.Stats, fills Version, StartedAt and UptimeS when
// they are zero, Purged (records removed through this handler) when it is
// zero, and HitRatio when it is zero and hits+misses > 0.
type StatsSource func() Stats

// HandlerConfig configures NewHandler. Store and Token are required;
// everything else has a documented zero value.
type HandlerConfig struct {
	// Token is the bearer token every request must carry
	// (ValidateToken). Required.
	Token string
	// Store is the read side. Required.
	Store Reader
	// Purger carries out purges and enables. Nil makes the API read-only:
	// POST purge (except dry runs), POST enable and PURGE answer 409
	// "read_only".
	Purger Purger
	// Cluster, when clustering is on, carries purges of scope "cluster"
	// (the default then) and serves GET cluster; see Cluster. Nil means
	// a single node: purges are local, scope=cluster and GET cluster
	// answer 409 "not_clustered".
	Cluster Cluster
	// Key normalizes a request's URL into the primary key, exactly as the
	// proxy does for the requests it caches. The PURGE method calls it
	// with the PURGE request turned into a GET (same URL, Host and
	// headers), and POST purge's "url" with a GET of that URL. Nil refuses
	// both (501 "unavailable").
	Key func(r *http.Request) (string, error)
	// Stats supplies the server's counters; nil reports the store's
	// figures only.
	Stats StatsSource
	// Events is the hub GET events streams; nil means a hub of this
	// handler's own, which carries its purges and the stats samples.
	Events *Events
	// Hits returns the hits served for a variant since start, when known;
	// nil reports -1 (unknown) in Entry.Hits.
	Hits func(key, variant string) (int64, bool)
	// Compact compacts the live store (the server must swap files, so
	// only it can). Nil answers POST compact with 501 "unavailable".
	Compact func(ctx context.Context) (CompactResult, error)
	// Signer verifies token signatures in GET entry and POST decode; nil
	// reports "not-checked".
	Signer *phxtoken.Signer
	// LiveViewMaxAge is the max age data-phx-session/data-phx-static are
	// verified with; zero means phxtoken.DefaultLiveViewMaxAge (14 days).
	LiveViewMaxAge time.Duration
	// TokenMaxAge is the verifier max age of other tokens; zero means the
	// one embedded in the token.
	TokenMaxAge time.Duration
	// Registerer receives the auth-failure counter
	// (firstrender_admin_auth_failures_total{reason}); nil registers
	// nothing.
	Registerer prometheus.Registerer
	// Logger receives one line per purge and per refused request, never
	// the token. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Version is reported in Stats.Version.
	Version string
	// ScanBudget bounds the records one GET entries call examines; zero
	// means 10,000.
	ScanBudget int
	// AuditSize is how many purges GET purges keeps; zero means 1000.
	AuditSize int
	// FailureBurst and FailureEvery rate-limit failed authentications per
	// client (remote IP, or "unix"): FailureBurst failures at once, then
	// one per FailureEvery; past that, 429 without checking the token.
	// Zero means 10 and 1s.
	FailureBurst int
	FailureEvery time.Duration
	// StatsInterval is the period of the "stats" event; zero means 1s.
	StatsInterval time.Duration
}

func (c *HandlerConfig) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LiveViewMaxAge == 0 {
		c.LiveViewMaxAge = phxtoken.DefaultLiveViewMaxAge
	}
	if c.ScanBudget == 0 {
		c.ScanBudget = 10000
	}
	if c.AuditSize == 0 {
		c.AuditSize = 1000
	}
	if c.FailureBurst == 0 {
		c.FailureBurst = 10
	}
	if c.FailureEvery == 0 {
		c.FailureEvery = time.Second
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = time.Second
	}
	if c.Events == nil {
		c.Events = NewEvents(0)
	}
}

// Handler serves the admin API; build it with NewHandler. It serves every
// path it is given (mount it at "/" of the admin listener, or at
// "/admin/" plus the PURGE method), authenticating each request first.
// Safe for concurrent use.
type Handler struct {
	cfg     HandlerConfig
	mux     *http.ServeMux
	root    http.Handler
	list    lister
	dec     decoder
	audit   *auditLog
	started time.Time
	now     func() time.Time
	log     *slog.Logger
	checkMu sync.Mutex // one integrity check at a time
	fails   *prometheus.CounterVec
	purged  atomic.Int64 // records removed by this handler's purges
}

func (h *Handler) authFailuresVec() *prometheus.CounterVec { return h.fails }

var _ http.Handler = (*Handler)(nil)

// NewHandler validates cfg and returns the API handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("admin: HandlerConfig.Store is nil")
	}
	if err := ValidateToken(cfg.Token); err != nil {
		return nil, fmt.Errorf("admin: HandlerConfig.Token: %w", err)
	}
	if cfg.ScanBudget < 0 || cfg.AuditSize < 0 || cfg.FailureBurst < 0 || cfg.FailureEvery < 0 || cfg.StatsInterval < 0 || cfg.LiveViewMaxAge < 0 || cfg.TokenMaxAge < 0 {
		return nil, errors.New("admin: HandlerConfig has a negative bound")
	}
	cfg.setDefaults()
	failures, err := authFailures(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("admin: register metrics: %w", err)
	}
	h := &Handler{
		cfg:     cfg,
		mux:     http.NewServeMux(),
		audit:   newAuditLog(cfg.AuditSize, cfg.Now()),
		started: cfg.Now(),
		now:     cfg.Now,
		log:     cfg.Logger,
		fails:   failures,
	}
	h.list = lister{r: cfg.Store, budget: cfg.ScanBudget, now: cfg.Now, hits: cfg.Hits}
	h.dec = decoder{signer: cfg.Signer, liveViewMaxAge: cfg.LiveViewMaxAge, tokenMaxAge: cfg.TokenMaxAge, now: cfg.Now}
	a := &auth{sum: sha256.Sum256([]byte(cfg.Token)), token: cfg.Token, failures: failures,
		limiter: newFailLimiter(cfg.FailureBurst, cfg.FailureEvery, cfg.Now), log: cfg.Logger}
	p := "/admin/" + Version + "/"
	h.mux.HandleFunc("GET "+p+"entries", h.entries)
	h.mux.HandleFunc("GET "+p+"entry", h.entry)
	h.mux.HandleFunc("POST "+p+"decode", h.decode)
	h.mux.HandleFunc("POST "+p+"purge", h.purge)
	h.mux.HandleFunc("GET "+p+"purges", h.purges)
	h.mux.HandleFunc("GET "+p+"stats", h.stats)
	h.mux.HandleFunc("GET "+p+"events", h.events)
	h.mux.HandleFunc("POST "+p+"enable", h.enable)
	h.mux.HandleFunc("POST "+p+"check", h.check)
	h.mux.HandleFunc("POST "+p+"compact", h.compact)
	h.mux.HandleFunc("GET "+p+"cluster", h.cluster)
	h.mux.HandleFunc("/", h.notFound)
	h.root = a.wrap(http.HandlerFunc(h.route))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.root.ServeHTTP(w, r) }

// Events returns the hub the handler streams (HandlerConfig.Events or its own).
func (h *Handler) Events() *Events { return h.cfg.Events }

// Purges returns the audit log, newest first.
func (h *Handler) Purges() []PurgeRecord { return h.audit.list() }

func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	if r.Method == "PURGE" {
		h.purgeMethod(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	// The mux sends a wrong method on a known path here too; tell them apart.
	for _, m := range []string{"GET", "POST"} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pat := h.mux.Handler(probe); pat != "/" && pat != "" {
			w.Header().Set("Allow", m)
			writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, m)})
			return
		}
	}
	writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such admin endpoint: " + r.URL.Path + " (see /admin/" + Version + "/: entries, entry, decode, purge, purges, stats, events, enable, check, compact, cluster)"})
}

// writeJSON writes v with status 200.
func writeJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError writes err as {"error","code"}; errors that are not *Error
// become 500 "internal".
func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: 500, Code: "internal", Message: err.Error()}
	}
	if e.Status == 0 {
		e.Status = 500
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

// storeErr maps store errors to API errors.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: 404, Code: "not_found", Message: err.Error()}
	case errors.Is(err, store.ErrReadOnly):
		return &Error{Status: 409, Code: "read_only", Message: err.Error()}
	case errors.Is(err, store.ErrInvalid):
		return &Error{Status: 400, Code: "bad_request", Message: err.Error()}
	case errors.Is(err, store.ErrClosed):
		return &Error{Status: 503, Code: "unavailable", Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: 503, Code: "unavailable", Message: err.Error()}
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: 500, Code: "internal", Message: err.Error()}
}

// maxBody bounds JSON request bodies.
const maxBody = 4 << 20

// readJSON decodes a JSON body strictly into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "bad_request", Message: "Content-Type must be application/json, not " + ct}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "bad_request", Message: fmt.Sprintf("body larger than %d bytes", maxBody)}
		}
		if errors.Is(err, io.EOF) {
			return &Error{Status: 400, Code: "bad_request", Message: "empty body: want a JSON object"}
		}
		return &Error{Status: 400, Code: "bad_request", Message: "invalid JSON body: " + err.Error()}
	}
	if dec.More() {
		return &Error{Status: 400, Code: "bad_request", Message: "invalid JSON body: more than one value"}
	}
	return nil
}

func (h *Handler) entries(w http.ResponseWriter, r *http.Request) {
	q, err := ParseListQuery(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	p, err := h.list.list(r.Context(), q)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, p)
}

func (h *Handler) entry(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	key := v.Get("key")
	if key == "" || strings.IndexByte(key, 0) >= 0 || len(key) > store.MaxKeyLen {
		writeError(w, &Error{Status: 400, Code: "bad_request", Message: "key is required: a stored key without NUL (GET entry?key=...&variant=...)"})
		return
	}
	decode := false
	if s := v.Get("decode"); s != "" {
		var err error
		if decode, err = strconv.ParseBool(s); err != nil {
			writeError(w, &Error{Status: 400, Code: "bad_request", Message: "decode " + strconv.Quote(s) + " is not a boolean"})
			return
		}
	}
	d, err := h.detail(r.Context(), key, v.Get("variant"), decode)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, d)
}

func (h *Handler) decode(w http.ResponseWriter, r *http.Request) {
	var req DecodeRequest
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	tok := strings.TrimSpace(req.Token)
	if tok == "" {
		writeError(w, &Error{Status: 400, Code: "bad_request", Message: `token is empty: {"token": "SFMyNTY...."}`})
		return
	}
	t := h.dec.decode(tok, "posted")
	if t.Kind == "invalid" {
		writeError(w, &Error{Status: 422, Code: "bad_request", Message: "not a readable Phoenix token: " + t.Error})
		return
	}
	writeJSON(w, t)
}

func (h *Handler) purge(w http.ResponseWriter, r *http.Request) {
	var req PurgeRequest
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	urlKey := func(u string) (string, error) {
		gr, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u, nil)
		if err != nil {
			return "", err
		}
		if gr.URL.Host == "" || gr.URL.Scheme == "" {
			return "", errors.New("not an absolute URL")
		}
		return h.cfg.Key(gr)
	}
	if h.cfg.Key == nil {
		urlKey = nil
	}
	sel, err := selectorOf(&req, urlKey)
	if err != nil {
		writeError(w, err)
		return
	}
	wait, waitFor, err := waitOf(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := h.doPurge(r.Context(), clientOf(r), req, sel)
	if err != nil {
		writeError(w, err)
		return
	}
	if wait && res.Sequence > 0 {
		h.waitApplied(r.Context(), waitFor, &res)
	}
	writeJSON(w, res)
}

// clientOf names the requester in the audit log.
func clientOf(r *http.Request) string {
	if c := clientID(r); c != "unix" {
		return r.RemoteAddr
	}
	return "unix"
}

// doPurge runs (or counts) one validated purge and records it.
func (h *Handler) doPurge(ctx context.Context, client string, req PurgeRequest, sel Selector) (PurgeResult, error) {
	res := PurgeResult{ID: h.audit.newID(), DryRun: req.DryRun, Soft: req.Soft}
	var (
		n   int
		err error
	)
	if req.DryRun {
		n, err = countSelected(ctx, h.cfg.Store, sel)
		if err != nil {
			return PurgeResult{}, storeErr(err)
		}
		res.Count = n
		return res, nil
	}
	if h.cfg.Purger == nil {
		return PurgeResult{}, &Error{Status: 409, Code: "read_only", Message: "this admin API is read-only (no purger: the store is open read-only)"}
	}
	scope, err := h.scopeOf(sel)
	if err != nil {
		return PurgeResult{}, err
	}
	sel.Scope = scope
	start := h.now()
	if scope == "cluster" {
		n, err = h.clusterPurge(ctx, sel, &res)
	} else {
		n, err = h.cfg.Purger.Purge(ctx, sel)
	}
	rec := PurgeRecord{ID: res.ID, Time: start.UTC(), Client: client, Selector: req, Count: n, Sequence: res.Sequence}
	rec.Selector.Scope = scope
	rec.Selector.Confirm = ""
	if len(rec.Selector.Keys) > 20 {
		// Keep the audit ring small: the count and the first keys tell the story.
		rec.Selector.Keys = append(rec.Selector.Keys[:20:20], fmt.Sprintf("... %d more", len(req.Keys)-20))
	}
	if err != nil {
		rec.Error = err.Error()
	}
	h.audit.add(rec)
	if !sel.Soft {
		h.purged.Add(int64(n))
	}
	h.log.Info("admin: purge", "id", rec.ID, "client", client, "selector", describeSelector(sel), "soft", sel.Soft,
		"scope", scope, "sequence", rec.Sequence, "count", n, "took", h.now().Sub(start).Round(time.Microsecond).String(), "err", rec.Error)
	h.cfg.Events.Publish(Event{Type: "purge", Time: rec.Time, Key: sel.Key, Purge: &rec})
	if err != nil {
		e := storeErr(err)
		var ae *Error
		if errors.As(e, &ae) && ae.Code != "not_durable" {
			ae.Message = fmt.Sprintf("purge %s stopped after %d records: %s", rec.ID, n, ae.Message)
		}
		return PurgeResult{}, e
	}
	res.Count = n
	return res, nil
}

func describeSelector(s Selector) string {
	switch {
	case s.Key != "":
		return "key=" + strconv.Quote(s.Key)
	case len(s.Keys) > 0:
		return fmt.Sprintf("keys=%d", len(s.Keys))
	case s.Prefix != "":
		return "prefix=" + strconv.Quote(s.Prefix)
	case s.Tag != "":
		return "tag=" + strconv.Quote(s.Tag)
	case s.All:
		return "all"
	}
	return "none"
}

// purgeMethod serves the Varnish-style "PURGE /path?q HTTP/1.1, Host: ...":
// every variant of the URL's key, normalized as a GET of it would be.
// "X-Purge-Soft: 1" makes it soft; "X-Purge-Dry-Run: 1" counts only;
// "X-Purge-Scope: local" or "cluster" is PurgeRequest.Scope.
func (h *Handler) purgeMethod(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Key == nil {
		writeError(w, &Error{Status: 501, Code: "unavailable", Message: "PURGE needs the server's key normalization, which this handler was not given"})
		return
	}
	gr := r.Clone(r.Context())
	gr.Method = http.MethodGet
	gr.Body = http.NoBody
	gr.ContentLength = 0
	key, err := h.cfg.Key(gr)
	if err != nil {
		writeError(w, &Error{Status: 400, Code: "bad_request", Message: "PURGE " + r.URL.RequestURI() + " (Host " + r.Host + "): " + err.Error()})
		return
	}
	flag := func(name string) (bool, error) {
		v := r.Header.Get(name)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, &Error{Status: 400, Code: "bad_request", Message: name + " " + strconv.Quote(v) + " is not a boolean"}
		}
		return b, nil
	}
	soft, err := flag("X-Purge-Soft")
	if err != nil {
		writeError(w, err)
		return
	}
	dry, err := flag("X-Purge-Dry-Run")
	if err != nil {
		writeError(w, err)
		return
	}
	scope := r.Header.Get("X-Purge-Scope")
	switch scope {
	case "", "local", "cluster":
	default:
		writeError(w, &Error{Status: 400, Code: "bad_request", Message: "X-Purge-Scope " + strconv.Quote(scope) + " is neither \"local\" nor \"cluster\""})
		return
	}
	req := PurgeRequest{Key: key, Soft: soft, DryRun: dry, Scope: scope}
	res, err := h.doPurge(r.Context(), clientOf(r), req, Selector{Key: key, Soft: soft, Scope: scope})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, res)
}

func (h *Handler) purges(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, struct {
		Purges []PurgeRecord `json:"purges"`
	}{h.audit.list()})
}

// Stats returns the figures GET stats serves.
func (h *Handler) Stats() Stats {
	var s Stats
	if h.cfg.Stats != nil {
		s = h.cfg.Stats()
	}
	st := h.cfg.Store.Stats()
	s.Entries, s.Bytes, s.FileSize, s.MaxSize = st.Records, st.Bytes, st.FileSize, st.MaxSize
	s.Evictions, s.Expired = st.Evictions, st.Expired
	s.StorePath = h.cfg.Store.Path()
	if h.cfg.Purger == nil {
		s.ReadOnly = true
	}
	if s.Version == "" {
		s.Version = h.cfg.Version
	}
	if s.Purged == 0 {
		s.Purged = h.purged.Load()
	}
	if s.StartedAt.IsZero() {
		s.StartedAt = h.started.UTC()
	}
	if s.UptimeS == 0 {
		s.UptimeS = int64(h.now().Sub(s.StartedAt) / time.Second)
	}
	if s.HitRatio == 0 && s.Hits+s.Misses > 0 {
		s.HitRatio = float64(s.Hits) / float64(s.Hits+s.Misses)
	}
	return s
}

func (h *Handler) stats(w http.ResponseWriter, r *http.Request) { writeJSON(w, h.Stats()) }

func (h *Handler) enable(w http.ResponseWriter, r *http.Request) {
	var req EnableRequest
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Key == "" {
		writeError(w, &Error{Status: 400, Code: "bad_request", Message: `key is required: {"key": "...", "variant": "..."}`})
		return
	}
	if h.cfg.Purger == nil {
		writeError(w, &Error{Status: 409, Code: "read_only", Message: "this admin API is read-only (no purger)"})
		return
	}
	if err := h.cfg.Purger.Enable(r.Context(), req.Key, req.Variant); err != nil {
		writeError(w, storeErr(err))
		return
	}
	h.log.Info("admin: enable", "client", clientOf(r), "key", req.Key, "variant", req.Variant)
	h.cfg.Events.Publish(Event{Type: "enable", Key: req.Key, Variant: req.Variant})
	writeJSON(w, struct {
		Enabled bool `json:"enabled"`
	}{true})
}

func (h *Handler) check(w http.ResponseWriter, r *http.Request) {
	c, ok := h.cfg.Store.(Checker)
	if !ok {
		writeError(w, &Error{Status: 501, Code: "unavailable", Message: "this store cannot check itself"})
		return
	}
	if !h.checkMu.TryLock() {
		w.Header().Set("Retry-After", "5")
		writeError(w, &Error{Status: 503, Code: "unavailable", Message: "an integrity check is already running"})
		return
	}
	defer h.checkMu.Unlock()
	res, err := c.Check(r.Context())
	if err != nil {
		writeError(w, storeErr(err))
		return
	}
	out := CheckResult{Records: int(res.Records), Corrupt: len(res.Damaged), Errors: res.Problems}
	for _, m := range res.Damaged {
		out.Errors = append(out.Errors, fmt.Sprintf("damaged record: key %q variant %q", m.Key, m.Variant))
	}
	out.OK = len(out.Errors) == 0
	writeJSON(w, out)
}

func (h *Handler) compact(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Compact == nil {
		writeError(w, &Error{Status: 501, Code: "unavailable", Message: "compaction is not available from this server"})
		return
	}
	res, err := h.cfg.Compact(r.Context())
	if err != nil {
		writeError(w, storeErr(err))
		return
	}
	h.log.Info("admin: compact", "client", clientOf(r), "before_bytes", res.BeforeBytes, "after_bytes", res.AfterBytes)
	writeJSON(w, res)
}

// sseWriteTimeout bounds one write to an events reader.
const sseWriteTimeout = 10 * time.Second

func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	sub := h.cfg.Events.Subscribe()
	defer sub.Close()
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(ev Event) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		b, _ := json.Marshal(ev)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	sample := func() bool {
		s := h.Stats()
		return send(Event{Type: "stats", Time: h.now().UTC(), Stats: &s})
	}
	if !sample() {
		return
	}
	t := time.NewTicker(h.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.Dropped():
			// Deliver what was buffered? No: the reader is behind; say so and go.
			send(Event{Type: "dropped", Time: h.now().UTC(), Reason: "reader fell behind by more than the event buffer"})
			return
		case ev := <-sub.C:
			if !send(ev) {
				return
			}
		case <-t.C:
			if !sample() {
				return
			}
		}
	}
}
