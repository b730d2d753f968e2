package httpcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/firstrender/firstrender/httpcache/hop"
	"github.com/firstrender/firstrender/store"
	"github.com/prometheus/client_golang/prometheus"
)

// HostPolicy says what the proxy does with a request whose host is not in
// [Config].Hosts.
type HostPolicy int

const (
	// RefuseHost answers such requests with 421 Misdirected Request
	// (Cache-Status detail=host-not-cached), the default: an origin told
	// to render for a host it does not serve builds links, redirects and
	// socket URLs for that host.
	RefuseHost HostPolicy = iota
	// ForwardUncached forwards such requests to the origin without
	// looking them up or storing them (Cache-Status detail=host-not-cached).
	ForwardUncached
)

// Config configures a [Proxy]. The zero value of every field except
// Upstream and Store is usable; [New] fills defaults (documented per
// field) and rejects invalid or half-set options.
type Config struct {
	// Upstream is the origin's base URL (scheme and host; a path is
	// prefixed to every forwarded path). Required.
	Upstream *url.URL
	// Store holds cached responses. Required. The proxy does not close it.
	Store *store.Store
	// Transport sends requests to the origin. If nil, a dedicated
	// *http.Transport with DialTimeout, OriginTimeout as response-header
	// timeout, HTTP/1.1 keep-alives and DisableCompression (so the origin
	// sees the Accept-Encoding the proxy normalized, and gzip bodies stay
	// encoded in the store) is used.
	Transport http.RoundTripper
	// Logger receives warnings (store failures, origin errors). If nil,
	// slog.Default() is used.
	Logger *slog.Logger
	// Registerer receives the proxy's Prometheus metrics. If nil, no
	// metrics are registered.
	Registerer prometheus.Registerer
	// OnEvent, if set, is called for every [Event] (a fill stored, an
	// entry disabled or enabled), synchronously from the goroutine that
	// made the change, after it committed: it must not block (the admin
	// API's event hub drops slow readers instead). Nil: no events.
	OnEvent func(Event)
	// Inspector examines every complete GET response before it is stored.
	// If nil, responses are stored as received.
	Inspector Inspector
	// Now returns the current time. If nil, time.Now is used. Tests set
	// it to move the clock; it is used for freshness, Age, not-after and
	// hit-for-pass expiry.
	Now func() time.Time

	// Hosts lists the hosts whose responses are cached, as "name" (any
	// port) or "name:port". Matching is case-insensitive and ignores a
	// default port. If nil, the Upstream host, "localhost", "127.0.0.1"
	// and "[::1]" are cached (any port), which keeps the cache keyed on
	// names the operator chose rather than on any Host a client sends.
	Hosts []string
	// OtherHosts says what happens to requests for hosts not in Hosts
	// (the Host field, the authority of an absolute-form request-target,
	// which net/http puts in its place, or with TrustForwarded the
	// X-Forwarded-Host). The zero value is RefuseHost (421).
	OtherHosts HostPolicy
	// IgnoreParams lists query parameter names removed from both the key
	// and the request forwarded to the origin ("prefix*" matches a
	// prefix). If nil, DefaultIgnoreParams is used; an empty non-nil
	// slice ignores nothing.
	IgnoreParams []string
	// BypassPrefixes lists path prefixes that are never cached (socket
	// transports and the like); requests with Upgrade are never cached
	// either. If nil, "/live/websocket" and "/live/longpoll" are bypassed;
	// an empty non-nil slice bypasses nothing.
	BypassPrefixes []string

	// IgnoreCookies lists request cookie names ("name", or "prefix*")
	// that no response depends on: analytics, consent, theme. A GET or
	// HEAD whose cookies are all allowed (by this list, SessionCookies
	// under PublicPrefixes, or AllowCookie) is served from the cache, and
	// those cookies are removed from the request forwarded to the origin,
	// so the render cannot depend on them. Any other cookie makes the
	// request per-user: no lookup, no store, forwarded as sent
	// (Cache-Status fwd=bypass; detail=cookie). If nil, no cookie is
	// allowed: every request with a cookie is per-user.
	IgnoreCookies []string
	// PublicPrefixes lists path prefixes the operator declares public:
	// their first render is the same for every visitor, logged in or not
	// (the LiveView pattern: private data only after the live socket
	// connects, which still carries the cookie). Under them the
	// SessionCookies are allowed too, and removed before forwarding.
	// Matching is on the normalized, escaped path. Nil means none; it
	// must be set together with SessionCookies.
	PublicPrefixes []string
	// SessionCookies names the application's session cookies ("name" or
	// "prefix*", e.g. "_myapp_key"), allowed under PublicPrefixes only.
	SessionCookies []string
	// AllowCookie, when set, is asked about each cookie the lists above
	// do not allow: it reports whether cookie name on a request for path
	// (normalized, escaped) is one the response does not depend on; such
	// a cookie is removed from the forwarded request like the others.
	// It is the hook for features that read such a cookie beside the
	// cache (a splice of per-visitor tokens into a cached page reads the
	// session cookie from the client's request on its own paths). It
	// must be fast and safe for concurrent use. Authorization is never
	// allowed: a request with it always bypasses (detail=authorization).
	AllowCookie func(path, name string) bool

	// MaxHeaderValue is the longest request header value, in bytes, and
	// MaxHeaders the most request header field lines (Host included):
	// beyond them the proxy answers 431 itself and closes the
	// connection. They sit at or below the origin's own limits, so an
	// oversized header cannot make the origin answer an error for a
	// clean URL. If zero, DefaultMaxHeaderValue (4096) and
	// DefaultMaxHeaders (100), Cowboy's limits; negative disables.
	MaxHeaderValue int
	MaxHeaders     int

	// StoreErrors opts error statuses (400-599) into storing: a listed
	// status is stored, under the normal key, when the response is
	// otherwise storable, with a freshness lifetime of at most the given
	// duration (the origin's own, if shorter). If nil, no error status is
	// stored (detail=status): one attacker's request that makes the
	// origin fail would otherwise be every visitor's answer. Whatever
	// it says, an error never replaces a stored good response: a
	// revalidation answered with an error serves the stored one within
	// stale-if-error, and otherwise forwards the error uncached, keeping
	// the stored one.
	StoreErrors map[int]time.Duration

	// StoreEmptyHTML stores a 200 with an empty body whose Content-Type
	// is HTML (or absent, when the request accepts text/html: a page
	// navigation). If false, such a response is not stored
	// (detail=empty-body): a page that rendered nothing is a failure.
	StoreEmptyHTML bool

	// MaxVariants bounds the stored variants (Vary) of one URL; a
	// response for one more variant is not stored (detail=max-variants).
	// If zero, DefaultMaxVariants (16); negative means no bound.
	MaxVariants int

	// MaxObjectSize is the largest body stored; larger bodies are
	// streamed through and not stored. If zero, 16 MiB (the store's own
	// default limit).
	MaxObjectSize int64

	// MaxBuffered bounds the bytes held at once by all responses being
	// copied for storing while they stream to their clients; a response
	// that would exceed it streams on but is not stored. A body of known
	// length is reserved whole when its headers arrive, so one that does
	// not fit says detail=max-buffered at once. If zero, 256 MiB.
	MaxBuffered int64

	// InspectBuffer is the largest body (by its Content-Length) that is
	// read completely and inspected before the response's headers go to
	// its client, so that the Cache-Status of the response that fills an
	// entry is exact: "stored" with ttl= capped by Verdict.NotAfter, or
	// detail=<the Inspector's refusal>. The client still gets the
	// origin's body unchanged; its first byte waits for the last one
	// from the origin. Longer bodies, and bodies of unknown length,
	// stream, and their Cache-Status says detail=pending-inspection. It
	// matters only with an Inspector. If zero, 256 KiB; negative streams
	// every body.
	InspectBuffer int64

	// MemoryCacheSize bounds the bytes of the memory tier: decoded
	// entries of pages requested at least twice, so hits neither read nor
	// decode the store record (hot.go). When it is full, a page read from
	// the store replaces an entry only if it is read more often (TinyLFU). Every committed store change to a
	// record (a fill, purge, disable, eviction) drops that record's copy
	// before the write returns, so purges take effect at once. Charged per
	// entry: body, key, header bytes plus 512. If zero, 256 MiB; negative
	// disables it.
	MemoryCacheSize int64

	// StripSetCookie lists path prefixes under which a response carrying
	// Set-Cookie is stored with Set-Cookie removed (the requesting client
	// still receives it). Elsewhere, by default everywhere, a response
	// with Set-Cookie is not stored (detail=set-cookie).
	StripSetCookie []string

	// Splicer, when set, personalizes stored pages for each visitor on
	// SplicePaths (see [Splicer]: a Phoenix app's CSRF token and session
	// cookie). If nil, nothing is spliced, and a record an earlier
	// configuration stored for splicing is never served.
	Splicer Splicer
	// SplicePaths lists the path prefixes where Splicer applies. If nil
	// (with a Splicer), every path ("/"). Setting it without a Splicer is
	// an error.
	SplicePaths []string

	// StaleWhileRevalidate is the server-wide RFC 5861 window applied to
	// responses that do not set stale-while-revalidate themselves and do
	// not forbid serving stale. Zero means none.
	StaleWhileRevalidate time.Duration
	// StaleIfError is the server-wide stale-if-error window, as above.
	// Zero means none.
	StaleIfError time.Duration
	// HeuristicFraction is the fraction of the time since Last-Modified
	// used as heuristic freshness lifetime (RFC 9111 §4.2.2). If zero,
	// 0.1; negative disables heuristic freshness.
	HeuristicFraction float64
	// HeuristicMax caps heuristic freshness. If zero, 24h.
	HeuristicMax time.Duration
	// KeepStale is how long past its staleness an entry with a validator
	// is kept for conditional revalidation before the store may remove
	// it. If zero, 1h.
	KeepStale time.Duration

	// OriginTimeout bounds the wait for the origin's response headers;
	// on expiry the client gets 504 (or stale-if-error). If zero, 30s.
	OriginTimeout time.Duration
	// OriginIdleTimeout bounds a stall while reading the origin's body;
	// on expiry the transfer is aborted and nothing is stored. If zero,
	// 30s.
	OriginIdleTimeout time.Duration
	// DialTimeout bounds connecting to the origin (default transport
	// only). If zero, 5s.
	DialTimeout time.Duration

	// CollapseWait bounds how long a request waits for another request's
	// in-flight fetch of the same key before going to the origin itself.
	// If zero, OriginTimeout: a waiter then never goes to the origin while
	// the request it waits on may still be answered, and the origin sees
	// at most one request per key per timeout (a failure is shared with
	// the waiters at once). A shorter wait sends every waiter to the
	// origin when the origin is slow.
	CollapseWait time.Duration
	// MaxWaiters bounds how many requests wait on one in-flight fetch;
	// further ones go to the origin themselves. If zero, 4096.
	MaxWaiters int
	// HitForPassTTL is how long a key whose response was not storable
	// skips collapsing, so uncacheable URLs are not serialized. If zero,
	// 10s.
	HitForPassTTL time.Duration

	// TrustForwarded makes the proxy keep the client's X-Forwarded-For
	// (appending the peer address), X-Forwarded-Host and
	// X-Forwarded-Proto, and use X-Forwarded-Proto as the key's scheme
	// and X-Forwarded-Host (its first entry) as the key's host, checked
	// against Hosts.
	// Only set it behind a proxy that overwrites those headers. The
	// default (false) discards them and sets them from the connection.
	TrustForwarded bool

	// Via is the pseudonym the proxy names itself by in the Via field it
	// appends to every request it forwards to the origin and to every
	// response it forwards or serves from the store (RFC 9110 §7.6.3), in
	// place of a host name, so no internal name leaks. If empty,
	// [CacheName]; "-" sends no Via at all (for an origin that changes
	// its answers on seeing Via, such as nginx, whose default
	// gzip_proxied off stops compressing). It must be a token.
	Via string

	// HitGate, if set, is asked before every lookup of a cacheable
	// request whether stored responses may be served: a non-empty reason
	// makes the proxy forward the request instead, neither serving nor
	// storing (Cache-Status: fwd=bypass; detail=<reason>). The cluster
	// mode sets it while the node may have missed invalidations
	// ("cluster-catching-up"). It is on the hit path: it must be cheap
	// (an atomic load) and safe for concurrent use. Nil serves hits.
	HitGate func() (reason string)
	// Unsafe, if set, carries out the RFC 9111 §4.4 invalidation after an
	// unsafe method instead of the proxy's own deletes: keys are the
	// normalized primary keys of the target URI and of same-origin
	// Location / Content-Location. The cluster mode sets it (the node
	// applies them through [Proxy.Invalidate] and publishes them). It is
	// called after the origin answered, before the response is relayed;
	// on an error the proxy deletes the keys itself as well. Nil: the
	// proxy's own deletes.
	Unsafe func(ctx context.Context, keys []string) error
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.IgnoreParams == nil {
		c.IgnoreParams = DefaultIgnoreParams
	}
	if c.BypassPrefixes == nil {
		c.BypassPrefixes = []string{"/live/websocket", LongpollPath}
	}
	if c.Hosts == nil && c.Upstream != nil {
		c.Hosts = []string{c.Upstream.Host, "localhost", "127.0.0.1", "[::1]"}
	}
	if c.Splicer != nil && c.SplicePaths == nil {
		c.SplicePaths = []string{"/"}
	}
	if c.MaxObjectSize == 0 {
		c.MaxObjectSize = DefaultMaxObjectSize
	}
	if c.MaxHeaderValue == 0 {
		c.MaxHeaderValue = DefaultMaxHeaderValue
	}
	if c.MaxHeaders == 0 {
		c.MaxHeaders = DefaultMaxHeaders
	}
	if c.MaxVariants == 0 {
		c.MaxVariants = DefaultMaxVariants
	}
	if c.MaxBuffered == 0 {
		c.MaxBuffered = DefaultMaxBuffered
	}
	if c.InspectBuffer == 0 {
		c.InspectBuffer = 256 << 10
	}
	if c.MemoryCacheSize == 0 {
		c.MemoryCacheSize = defaultHotBytes
	}
	if c.HeuristicFraction == 0 {
		c.HeuristicFraction = 0.1
	}
	if c.HeuristicMax == 0 {
		c.HeuristicMax = 24 * time.Hour
	}
	if c.KeepStale == 0 {
		c.KeepStale = time.Hour
	}
	if c.OriginTimeout == 0 {
		c.OriginTimeout = DefaultOriginTimeout
	}
	if c.OriginIdleTimeout == 0 {
		c.OriginIdleTimeout = 30 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.CollapseWait == 0 {
		c.CollapseWait = c.OriginTimeout
	}
	if c.MaxWaiters == 0 {
		c.MaxWaiters = 4096
	}
	if c.Via == "" {
		c.Via = CacheName
	}
	if c.HitForPassTTL == 0 {
		c.HitForPassTTL = 10 * time.Second
	}
	if c.Transport == nil {
		c.Transport = &http.Transport{
			Proxy: nil, // never an environment proxy for the origin
			// The origin sees the normalized Accept-Encoding and nothing
			// else (encoding.go); the proxy decodes gzip itself.
			DisableCompression:    true,
			DialContext:           guardedDial(&net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second}),
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: c.OriginTimeout,
			ExpectContinueTimeout: time.Second,
			// The response's header and the start of its body (a whole
			// first render, often) in one read: with net/http's 4 KB a
			// 20 KB page took a second read, and reached the client in
			// two writes.
			ReadBufferSize: originReadBuffer,
		}
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Upstream == nil {
		errs = append(errs, errors.New("Upstream is required"))
	} else if (c.Upstream.Scheme != "http" && c.Upstream.Scheme != "https") || c.Upstream.Host == "" {
		errs = append(errs, fmt.Errorf("Upstream %q must be an absolute http or https URL", c.Upstream.String()))
	} else if c.Upstream.RawQuery != "" || c.Upstream.Fragment != "" {
		errs = append(errs, fmt.Errorf("Upstream %q must not have a query or fragment", c.Upstream.String()))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("Store is required"))
	}
	if c.Via != "-" && !hop.IsToken(c.Via) {
		errs = append(errs, fmt.Errorf("Via %q must be a token (RFC 9110 §5.6.2) or \"-\"", c.Via))
	}
	if c.OtherHosts != ForwardUncached && c.OtherHosts != RefuseHost {
		errs = append(errs, fmt.Errorf("OtherHosts %d is not a HostPolicy", c.OtherHosts))
	}
	for _, h := range c.Hosts {
		if _, err := normalizeHost("http", h); err != nil || strings.ContainsAny(h, "/?#") {
			errs = append(errs, fmt.Errorf("Hosts entry %q is not a host[:port]", h))
		}
	}
	if _, err := newIgnoreList(c.IgnoreParams); err != nil {
		errs = append(errs, fmt.Errorf("IgnoreParams: %w", err))
	}
	for _, p := range c.BypassPrefixes {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("BypassPrefixes entry %q must start with /", p))
		}
	}
	for name, list := range map[string][]string{"IgnoreCookies": c.IgnoreCookies, "SessionCookies": c.SessionCookies} {
		if _, err := newIgnoreList(list); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	for _, p := range c.PublicPrefixes {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("PublicPrefixes entry %q must start with /", p))
		}
	}
	if (len(c.PublicPrefixes) == 0) != (len(c.SessionCookies) == 0) {
		errs = append(errs, errors.New("PublicPrefixes and SessionCookies must be set together: the session cookie is allowed only under public prefixes"))
	}
	for code, d := range c.StoreErrors {
		if code < 400 || code > 599 {
			errs = append(errs, fmt.Errorf("StoreErrors: status %d is not an error status (400-599)", code))
		}
		if d <= 0 {
			errs = append(errs, fmt.Errorf("StoreErrors: status %d needs a positive freshness, got %v", code, d))
		}
	}
	for _, p := range c.StripSetCookie {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("StripSetCookie entry %q must start with /", p))
		}
	}
	if c.Splicer == nil && len(c.SplicePaths) > 0 {
		errs = append(errs, errors.New("SplicePaths is set without a Splicer"))
	}
	if c.Splicer != nil && c.Splicer.CookieName() == "" {
		errs = append(errs, errors.New("Splicer has no session cookie name"))
	}
	for _, p := range c.SplicePaths {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("SplicePaths entry %q must start with /", p))
		}
	}
	for name, d := range map[string]time.Duration{
		"StaleWhileRevalidate": c.StaleWhileRevalidate, "StaleIfError": c.StaleIfError,
		"HeuristicMax": c.HeuristicMax, "KeepStale": c.KeepStale, "OriginTimeout": c.OriginTimeout,
		"OriginIdleTimeout": c.OriginIdleTimeout, "DialTimeout": c.DialTimeout,
		"CollapseWait": c.CollapseWait, "HitForPassTTL": c.HitForPassTTL,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %v must not be negative", name, d))
		}
	}
	if c.MaxBuffered < 0 {
		errs = append(errs, fmt.Errorf("MaxBuffered %d must not be negative", c.MaxBuffered))
	} else if c.MaxBuffered < c.MaxObjectSize {
		errs = append(errs, fmt.Errorf("MaxBuffered %d is below MaxObjectSize %d: the largest objects could never be stored", c.MaxBuffered, c.MaxObjectSize))
	}
	if c.MaxObjectSize < 0 {
		errs = append(errs, fmt.Errorf("MaxObjectSize %d must not be negative", c.MaxObjectSize))
	}
	if c.MaxWaiters < 0 {
		errs = append(errs, fmt.Errorf("MaxWaiters %d must not be negative", c.MaxWaiters))
	}
	if c.HeuristicFraction > 1 {
		errs = append(errs, fmt.Errorf("HeuristicFraction %v must be at most 1", c.HeuristicFraction))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("httpcache: invalid config: %w", err)
	}
	return nil
}

// guardedDial dials the origin through d and guards each connection's
// framing (hop.GuardConn): a response with both Content-Length and
// Transfer-Encoding reads as hop.ErrFraming, which the proxy answers 502.
func guardedDial(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return hop.GuardConn(c), nil
	}
}
