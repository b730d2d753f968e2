package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/httpcache/cluster"
	"github.com/firstrender/firstrender/httpcache/livesocket"
	"github.com/firstrender/firstrender/httpcache/liveview"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/httpcache/liveview/plugsession"
	"github.com/firstrender/firstrender/httpcache/server"
)

// flags holds the values of every flag, as the operator spells them. Most
// are bound straight to the server.Config fields they set; the rest are
// translated by config (policies, "0 = off" durations, the secret).
type flags struct {
	cfg server.Config

	adminListen   string // "" disables the admin listener
	hosts         []string
	uncachedHosts string
	objectSize    int64 // both the proxy's and the store's limit
	setCookie     string
	stripCookie   []string
	storeErrors   []string                  // "status=duration"
	lvPolicy      map[liveview.Kind]*string // one --lv-<kind> flag per lint kind
	lvMargin      time.Duration             // 0 = no margin
	lvSecret      string
	lvSalt        string
	// The session splice (issue 14): the app's Plug.Session options.
	lvSessionCookie  string
	lvSessionSalt    string // secret policy: never printed
	lvSessionEncSalt string // secret policy: never printed
	lvSplicePaths    []string
	checkOrigin      []string
	allowAny         bool
	idleTimeout      time.Duration // 0 = never
	// Cluster mode (issue 15): the stream limits only matter with one
	// of --cluster-nats / --cluster-embedded-nats.
	clusterSet map[string]bool

	logFormat   string
	logLevel    slog.Level
	printConfig bool
	checkConfig bool
	version     bool
}

// The binary's own defaults, where it deliberately differs from a library's
// zero (which would be unbounded and never).
const (
	defaultMaxDBSize     = 1 << 30
	defaultExpireEvery   = 10 * time.Minute
	defaultJoinThreshold = livesocket.DefaultGuardThreshold
	// defaultLockWait covers a restart where the old process still
	// drains its requests (--shutdown-timeout, 10s by default) while the
	// new one starts: the lock is free once the old one closed the store.
	defaultLockWait = 15 * time.Second
)

const usageHeader = `firstrender: a caching reverse proxy for Phoenix LiveView first renders.

Usage: firstrender [flags]`

// newFlagSet declares every flag, in the order --help shows them, bound to
// f, which it first sets to the defaults (taken from the libraries).
func newFlagSet(f *flags, help io.Writer) *cli.FlagSet {
	*f = flags{
		adminListen:   server.DefaultAdminListen,
		uncachedHosts: "refuse",
		objectSize:    httpcache.DefaultMaxObjectSize,
		setCookie:     "refuse",
		lvPolicy:      map[liveview.Kind]*string{},
		lvMargin:      liveview.DefaultMargin,
		checkOrigin:   []string{"true"},
		idleTimeout:   livesocket.DefaultIdleTimeout,
		logFormat:     "text",
		logLevel:      slog.LevelInfo,
	}
	c := &f.cfg
	c.Listen = server.DefaultListen
	c.DB = server.DefaultDB
	c.Store.MaxSize = defaultMaxDBSize
	c.Store.ExpireInterval = defaultExpireEvery
	c.Cache.MaxBuffered = httpcache.DefaultMaxBuffered
	c.Cache.MemoryCacheSize = httpcache.DefaultMemoryCacheSize
	c.Cache.IgnoreParams = append([]string{}, httpcache.DefaultIgnoreParams...)
	c.Cache.OriginTimeout = httpcache.DefaultOriginTimeout
	c.Cache.MaxHeaderValue = httpcache.DefaultMaxHeaderValue
	c.Cache.MaxHeaders = httpcache.DefaultMaxHeaders
	c.Cache.MaxVariants = httpcache.DefaultMaxVariants
	c.Cache.Via = httpcache.CacheName
	c.LiveView.LiveViewMaxAge = phxtoken.DefaultLiveViewMaxAge
	c.Sockets.Paths = []string{livesocket.DefaultPath}
	c.Sockets.MaxSockets = livesocket.DefaultMaxSockets
	c.Sockets.ReadLimit = livesocket.DefaultReadLimit
	c.JoinGuardThreshold = defaultJoinThreshold
	c.ShutdownTimeout = server.DefaultShutdownTimeout
	c.Store.Timeout = defaultLockWait
	c.Cluster.ClusterName = cluster.DefaultClusterName
	c.Cluster.MaxAge = cluster.DefaultMaxAge
	c.Cluster.MaxBytes = cluster.DefaultMaxBytes
	c.Cluster.Replicas = 1
	c.Cluster.Blind = cluster.DefaultBlind
	c.Cluster.PublishTimeout = cluster.DefaultPublishTimeout

	fs := cli.NewFlagSet("firstrender", usageHeader, help)
	add := fs.Var
	add(cli.Addr(&c.Listen, false), "listen", "public `address` (host:port) serving cached pages and live sockets")
	add(cli.URL(&c.Upstream), "upstream", "origin `URL` (http or https); empty starts the built-in demo origin on loopback")
	add(cli.NonEmpty(&c.DB), "db", "page store `file` (bbolt); created if missing (its directory must exist)")
	add(cli.Duration(&c.Store.Timeout, false), "db-lock-wait", "`duration` to wait for the database lock another process holds (a restart: the old process still draining) before giving up")
	add(cli.Addr(&f.adminListen, true), "admin-listen", "admin `address` serving the admin API, /metrics and /healthz (keep it on loopback); empty disables it")
	fs.Secret(&c.AdminToken, "admin-token", "admin API bearer `token` (at least 16 characters); empty: the token kept in <db>.admin-token (generated 0600 on first start, reused); never logged")
	add(cli.String(&c.AdminSocket), "admin-socket", "unix socket `path` also serving the admin API (mode 0600, removed on shutdown); empty: none")
	add(cli.Bool(&c.AdminMetricsAuth), "admin-metrics-auth", "require the admin token on /metrics too")
	add(cli.URL(&c.PublicURL), "public-url", "`URL` visitors use to reach firstrender (e.g. https://example.com); empty: http://localhost:<listen port>")
	add(cli.List(&f.hosts, hostItem), "hosts", "comma-separated `hosts` whose pages are cached; empty: localhost, 127.0.0.1, ::1 and the --public-url host")
	add(cli.Enum(&f.uncachedHosts, "pass", "refuse"), "uncached-hosts", "`policy` for requests to hosts not in --hosts: pass (forward uncached) or refuse (421)")
	add(cli.Size(&c.Store.MaxSize, true), "max-db-size", "maximum `bytes` of stored pages (KiB, MiB, GiB, KB, MB, GB suffixes); least recently used pages are evicted; 0 = unbounded")
	add(cli.Size(&f.objectSize, false), "max-object-size", "largest response `bytes` stored; bigger ones are passed through")
	add(cli.Size(&c.Cache.MaxBuffered, false), "max-buffered", "memory `bytes` all responses being copied for storing may hold at once; beyond it responses stream on unstored")
	add(cli.Size(&c.Cache.MemoryCacheSize, true), "memory-cache-size", "memory `bytes` for copies of pages requested at least twice, so hits skip the store; 0 = off")
	add(cli.Duration(&c.Store.ExpireInterval, true), "expire-interval", "how often expired pages are removed from the store in the background; 0 = only when evicting")
	add(cli.List(&c.Cache.IgnoreParams, paramItem), "ignore-params", "comma-separated query `parameters` dropped from keys and origin requests (trailing * matches a prefix); empty ignores none")
	add(cli.Duration(&c.Cache.StaleWhileRevalidate, true), "stale-while-revalidate", "default stale-while-revalidate `duration` when the origin gives none; 0 = off")
	add(cli.Duration(&c.Cache.StaleIfError, true), "stale-if-error", "default stale-if-error `duration` when the origin gives none; 0 = off")
	add(cli.Enum(&f.setCookie, "refuse", "strip"), "set-cookie", "`policy` for responses carrying Set-Cookie: refuse (not stored) or strip (stored without it)")
	add(cli.List(&c.Cache.IgnoreCookies, cookieItem), "ignore-cookies", "comma-separated request cookie `names` no page depends on (analytics, consent, theme; trailing * matches a prefix): removed before forwarding, the page served from the cache; any other cookie bypasses it")
	add(cli.List(&c.Cache.PublicPrefixes, pathItem), "public-prefixes", "comma-separated path `prefixes` whose first render is the same for every visitor: there --session-cookies are removed before forwarding and the page is cached")
	add(cli.List(&c.Cache.SessionCookies, cookieItem), "session-cookies", "the application's session cookie `names` (e.g. _myapp_key), allowed only under --public-prefixes")
	add(cli.List(&f.storeErrors, statusTTLItem), "store-errors", "comma-separated `status=duration` pairs (404=30s) storing those error statuses for at most the duration; empty stores no error")
	add(cli.Int(&c.Cache.MaxHeaderValue, -1), "max-header-value", "longest request header value in `bytes` (431 beyond); at or below the origin's (Cowboy: 4096); -1 = no limit")
	add(cli.Int(&c.Cache.MaxHeaders, -1), "max-headers", "most request header `lines` (431 beyond); at or below the origin's (Cowboy: 100); -1 = no limit")
	add(cli.Int(&c.Cache.MaxVariants, -1), "max-variants", "most stored Vary `variants` of one URL; -1 = no limit")
	add(cli.List(&f.stripCookie, pathItem), "strip-set-cookie", "comma-separated path `prefixes` where Set-Cookie is stripped and the page stored even with --set-cookie=refuse")
	add(cli.Token(&c.Cache.Via), "via", "`name` this proxy gives itself in the Via field of the requests it forwards and of its responses (RFC 9110 §7.6.3); - sends none (an nginx origin with its default gzip_proxied off does not compress answers to requests with Via)")
	add(cli.Duration(&c.Cache.OriginTimeout, false), "origin-timeout", "`duration` an origin request may take before it fails (504, or the stale copy under stale-if-error; an unreachable origin gives 502)")

	defaults := liveview.DefaultPolicy()
	for _, k := range lintKinds() {
		v := defaults[k].String()
		f.lvPolicy[k] = &v
		choices := []string{"refuse", "allow"}
		how := "refuse or allow"
		if strippable(k) {
			choices, how = []string{"refuse", "strip", "allow"}, "refuse, strip ("+lintStrip[k]+") or allow"
		}
		add(cli.Enum(&v, choices...), lintFlag(k), "LiveView lint `policy` for "+lintUsage[k]+": "+how+"; Cache-Status detail=liveview-"+string(k))
	}
	fs.Alias("lv-csrf", lintFlag(liveview.KindCSRFMeta))
	fs.Alias("lv-session", lintFlag(liveview.KindUserSession))
	add(cli.Duration(&f.lvMargin, true), "lv-margin", "never serve a first render later than its earliest Phoenix token expiry minus this `duration`")
	add(cli.Duration(&c.LiveView.TokenMaxAge, true), "lv-token-max-age", "max age your own Phoenix.Token.verify uses for other SFMyNTY. tokens in pages (not data-phx-*); 0 = the max age embedded in each token")
	add(cli.Duration(&c.LiveView.LiveViewMaxAge, false), "lv-max-age", "max age the application verifies data-phx-session with (LiveView default 14d); overrides the token's own")
	fs.Secret(&f.lvSecret, "lv-secret-key-base", "optional `secret` (the app's secret_key_base) to verify token signatures; never logged")
	add(cli.String(&f.lvSalt), "lv-signing-salt", "signing `salt` for --lv-secret-key-base (LiveView's signing_salt)")
	add(cli.String(&f.lvSessionCookie), "lv-session-cookie", "the app's session cookie `name` (Plug.Session :key, e.g. _my_app_key): splice each visitor's own CSRF token and session into cached first renders; needs --lv-secret-key-base and --lv-session-signing-salt")
	fs.Secret(&f.lvSessionSalt, "lv-session-signing-salt", "the session cookie's signing_salt (Plug.Session :signing_salt) for --lv-session-cookie; never logged")
	fs.Secret(&f.lvSessionEncSalt, "lv-session-encryption-salt", "the session cookie's encryption_salt when the app encrypts it (Plug.Session :encryption_salt); never logged")
	add(cli.List(&f.lvSplicePaths, pathItem), "lv-splice-paths", "comma-separated path `prefixes` where the session is spliced (and the session cookie kept from cache fills); empty: every cached path")

	add(cli.List(&f.checkOrigin, originItem), "check-origin", "allowed WebSocket `origins`, Phoenix check_origin forms (//host, https://*.example.com, https://host:8443); true = exactly the --public-url origin (scheme, host and port; its loopback aliases when it is loopback); false = any site, only with --allow-any-origin")
	add(cli.Bool(&f.allowAny), "allow-any-origin", "the explicit opt-in --check-origin=false needs: accept sockets from any site (cross-site WebSocket hijacking risk); logged as a warning")
	add(cli.Bool(&c.Origins.AllowMissing), "allow-no-origin", "allow WebSocket upgrades without an Origin header (native clients); logged at start-up")
	add(cli.List(&c.Sockets.Paths, pathItem), "socket-paths", "comma-separated live socket `paths` brokered to the origin (never cached)")
	add(cli.Int(&c.Sockets.MaxSockets, 1), "max-sockets", "maximum concurrent brokered `sockets`; more are refused with 503")
	add(cli.Size(&c.Sockets.ReadLimit, false), "socket-read-limit", "largest WebSocket message `bytes` relayed either way; a bigger one closes the socket (1009)")
	add(cli.Duration(&f.idleTimeout, true), "socket-idle-timeout", "close a brokered socket after this `duration` without messages; 0 = never")
	add(cli.Int(&c.JoinGuardThreshold, -1), "join-guard-threshold", "failed LiveView joins from distinct `clients` after which a cached page stops being served; -1 = count only")
	add(cli.Bool(&c.TrustForwarded), "trust-forwarded", "keep the client's X-Forwarded-For/-Proto/-Host (only behind a load balancer that sets them)")

	add(cli.String(&c.Cluster.NATSURL), "cluster-nats", "join a cluster through this NATS (JetStream) `URL`; comma-separate the servers of a NATS cluster (nats://10.0.0.1:4222,nats://10.0.0.2:4222); empty: a single node")
	add(cli.Addr(&c.Cluster.EmbeddedAddr, true), "cluster-embedded-nats", "run a NATS server with JetStream inside this process on `address` (data in <db>.nats) and join it; other nodes join with --cluster-nats nats://<address>")
	add(cli.String(&c.Cluster.ClusterName), "cluster-name", "cluster `name`: the stream FIRSTRENDER_<name> and its subjects (letters, digits, - and _)")
	add(cli.String(&c.Cluster.NodeID), "node-id", "this node's `id` in the cluster view and message ids; empty: <host name>-<listen port>")
	add(cli.Duration(&c.Cluster.MaxAge, false), "cluster-max-age", "how long the invalidation stream keeps messages (when this node creates it); keep it well beyond the longest cache lifetime: a node down longer drops its cache")
	add(cli.Size(&c.Cluster.MaxBytes, false), "cluster-max-bytes", "most `bytes` the invalidation stream keeps (when this node creates it)")
	add(cli.Int(&c.Cluster.Replicas, 1), "cluster-replicas", "`replicas` of the invalidation stream in a NATS cluster (1, 3 or 5; when this node creates it)")
	add(cli.Duration(&c.Cluster.Blind, false), "cluster-blind", "`duration` without contact with the stream after which the node serves no hits until it has caught up")
	add(cli.Duration(&c.Cluster.PublishTimeout, false), "cluster-publish-timeout", "`duration` a purge waits for the stream's acknowledgement before answering 503 (applied locally, not cluster-durable)")

	add(cli.Enum(&f.logFormat, "text", "json"), "log-format", "log `format`: text or json")
	add(cli.Level(&f.logLevel), "log-level", "log `level`: debug, info, warn or error")
	add(cli.Duration(&c.ShutdownTimeout, false), "shutdown-timeout", "how long in-flight requests and sockets may take to finish on SIGINT/SIGTERM")
	add(cli.Bool(&f.printConfig), "print-config", "print the effective configuration (flags and environment; secrets redacted) and exit")
	add(cli.Bool(&f.checkConfig), "check-config", "check flags, variables, the database directory and the upstream, print the effective configuration (secrets redacted) and exit: 0 valid, 2 not")
	add(cli.Bool(&f.version), "version", "print the version (module version, VCS revision, Go version) and exit")
	return fs
}

// errHelp is returned by parseFlags when --help was asked for; the usage
// text has then been written to the help writer.
var errHelp = cli.ErrHelp

// parseFlags reads args and the environment (lookupEnv is os.LookupEnv in
// main) into flags and checks them; then config makes the server.Config.
// Errors name the flag (and the variable when the value came from there)
// and what was wrong. On --help it writes the usage to help and returns
// errHelp.
func parseFlags(args []string, lookupEnv func(string) (string, bool), help io.Writer) (flags, *cli.FlagSet, error) {
	var f flags
	fs := newFlagSet(&f, help)
	if err := fs.Parse(args, lookupEnv); err != nil {
		return flags{}, fs, err
	}
	if len(fs.Args()) > 0 {
		return flags{}, fs, fmt.Errorf("unexpected argument %q (flags only; see --help)", fs.Args()[0])
	}
	f.clusterSet = map[string]bool{}
	for _, fl := range fs.Flags() {
		if fl.Source != "default" {
			f.clusterSet[fl.Name] = true
		}
	}
	return f, fs, nil
}

// config turns the flags into the server's Config. It checks what single
// flags cannot (combinations), with the flags' names, so a bad command
// line exits with 2 before anything is opened; what the libraries check
// again in server.New is a second line of defence, not the message an
// operator sees.
func (f *flags) config() (server.Config, error) {
	c := f.cfg
	if c.Cache.MemoryCacheSize == 0 {
		c.Cache.MemoryCacheSize = -1 // --memory-cache-size=0: off (httpcache's zero is its default)
	}
	c.NoAdmin = f.adminListen == ""
	if c.AdminToken != "" {
		if err := admin.ValidateToken(c.AdminToken); err != nil {
			return c, fmt.Errorf("--admin-token: %w", err)
		}
	}
	c.AdminListen = f.adminListen
	if c.Upstream != nil && c.PublicURL != nil &&
		strings.EqualFold(c.Upstream.Hostname(), c.PublicURL.Hostname()) && port(c.Upstream.Scheme, c.Upstream.Port()) == port(c.PublicURL.Scheme, c.PublicURL.Port()) {
		return c, fmt.Errorf("--upstream %s and --public-url %s are the same address: firstrender would proxy to itself", c.Upstream, c.PublicURL)
	}
	if !c.NoAdmin && c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		return c, fmt.Errorf("--admin-listen %q equals --listen: admin endpoints must not be on the public listener", c.AdminListen)
	}
	if c.Store.MaxSize != 0 && f.objectSize > c.Store.MaxSize {
		return c, fmt.Errorf("--max-object-size %d is larger than --max-db-size %d", f.objectSize, c.Store.MaxSize)
	}
	if c.Cache.MaxBuffered < f.objectSize {
		return c, fmt.Errorf("--max-buffered %d is below --max-object-size %d: the largest pages could never be stored", c.Cache.MaxBuffered, f.objectSize)
	}
	if err := f.clusterConfig(&c); err != nil {
		return c, err
	}
	if len(c.Sockets.Paths) == 0 {
		return c, errors.New("--socket-paths is empty: give at least one path (default " + livesocket.DefaultPath + ")")
	}
	c.Cache.MaxObjectSize, c.Store.MaxObjectSize = f.objectSize, f.objectSize
	if len(f.hosts) > 0 {
		c.Cache.Hosts = f.hosts
	}
	if f.uncachedHosts == "pass" {
		c.Cache.OtherHosts = httpcache.ForwardUncached
	}
	if len(f.storeErrors) > 0 {
		c.Cache.StoreErrors = map[int]time.Duration{}
		for _, it := range f.storeErrors {
			code, d, _ := parseStatusTTL(it) // checked by statusTTLItem
			c.Cache.StoreErrors[code] = d
		}
	}
	c.Cache.StripSetCookie = f.stripCookie
	if f.setCookie == "strip" {
		c.Cache.StripSetCookie = []string{"/"}
	}

	policy := map[liveview.Kind]liveview.Action{}
	for _, k := range lintKinds() {
		a, err := liveview.ParseAction(*f.lvPolicy[k])
		if err != nil {
			return c, fmt.Errorf("--%s: %w", lintFlag(k), err)
		}
		policy[k] = a
	}
	c.LiveView.Policy = policy
	c.LiveView.Margin = f.lvMargin
	if f.lvMargin == 0 {
		c.LiveView.Margin = -1 // liveview: negative means no margin; zero would mean the default
	}
	splice := f.lvSessionCookie != "" || f.lvSessionSalt != "" || f.lvSessionEncSalt != "" || len(f.lvSplicePaths) > 0
	switch {
	case f.lvSalt != "" && f.lvSecret == "":
		return c, errors.New("--lv-signing-salt needs --lv-secret-key-base (the app's secret_key_base)")
	case f.lvSecret != "" && f.lvSalt == "" && !splice:
		return c, errors.New("--lv-secret-key-base needs --lv-signing-salt (to verify token signatures) or --lv-session-cookie with --lv-session-signing-salt (to splice sessions)")
	}
	if splice {
		if err := f.spliceConfig(&c); err != nil {
			return c, err
		}
	}
	if f.lvSecret != "" && f.lvSalt != "" {
		s, err := phxtoken.NewSigner(f.lvSecret, f.lvSalt)
		if err != nil {
			return c, fmt.Errorf("--lv-secret-key-base: %w", err)
		}
		c.LiveView.Signer = s
	}

	oc, err := livesocket.ParseCheckOrigin(f.checkOrigin, f.allowAny)
	if err != nil {
		return c, fmt.Errorf("--check-origin: %w", err)
	}
	oc.AllowMissing = c.Origins.AllowMissing
	c.Origins = oc
	c.Sockets.IdleTimeout = f.idleTimeout
	if f.idleTimeout == 0 {
		c.Sockets.IdleTimeout = -1 // livesocket: negative disables
	}
	return c, nil
}

// spliceConfig builds the session splice from --lv-secret-key-base and
// the --lv-session-* flags, refusing a half-set configuration. Errors
// never include the secret or the salts.
func (f *flags) spliceConfig(c *server.Config) error {
	var missing []string
	if f.lvSecret == "" {
		missing = append(missing, "--lv-secret-key-base (the app's secret_key_base)")
	}
	if f.lvSessionCookie == "" {
		missing = append(missing, "--lv-session-cookie (the session cookie's name)")
	}
	if f.lvSessionSalt == "" {
		missing = append(missing, "--lv-session-signing-salt (the session's signing_salt)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the session splice (--lv-session-cookie, --lv-session-signing-salt, --lv-session-encryption-salt, --lv-splice-paths) also needs %s", strings.Join(missing, " and "))
	}
	sp, err := liveview.NewSplicer(liveview.SpliceConfig{
		Session: plugsession.Config{
			SecretKeyBase:  f.lvSecret,
			SigningSalt:    f.lvSessionSalt,
			EncryptionSalt: f.lvSessionEncSalt,
		},
		CookieName: f.lvSessionCookie,
	})
	if err != nil {
		return fmt.Errorf("--lv-secret-key-base / --lv-session-*: %w", err)
	}
	c.LiveView.Splice = sp
	if len(f.lvSplicePaths) > 0 {
		c.Cache.SplicePaths = f.lvSplicePaths
	}
	return nil
}

func port(scheme, p string) string {
	switch {
	case p != "":
		return p
	case scheme == "https":
		return "443"
	}
	return "80"
}

// logger returns the process logger: text or JSON lines on w.
func (f *flags) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: f.logLevel}
	if f.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// hostItem checks one --hosts entry with the proxy's own host rules. The
// flag takes bare names (every port is cached); a bare IPv6 address may
// come without brackets.
func hostItem(s string) (string, error) {
	h := s
	if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
		h = "[" + ip.String() + "]"
	}
	if _, _, err := net.SplitHostPort(h); err == nil && !strings.Contains(h, "/") {
		return "", errors.New("want a bare host name such as example.com (no port)")
	}
	return httpcache.CheckHost(h)
}

// paramItem checks one --ignore-params entry with the proxy's rules.
func paramItem(s string) (string, error) {
	if err := httpcache.CheckIgnoreParams([]string{s}); err != nil {
		return "", err
	}
	return s, nil
}

// pathItem checks one path prefix.
func pathItem(s string) (string, error) {
	if !strings.HasPrefix(s, "/") {
		return "", errors.New("want a path starting with /")
	}
	if strings.ContainsAny(s, "?# ") {
		return "", errors.New("a path cannot contain '?', '#' or spaces")
	}
	return s, nil
}

// originItem checks one --check-origin entry with the broker's own rules;
// true and false are ParseCheckOrigin's.
func originItem(s string) (string, error) {
	switch l := strings.ToLower(s); l {
	case "true", "false":
		return l, nil
	}
	if err := livesocket.CheckOrigin(s); err != nil {
		return "", err
	}
	return s, nil
}

// lintFlag is the flag of a lint kind: --lv-<kind>, so the kind, its flag
// and its Cache-Status detail (liveview-<kind>) share one name.
func lintFlag(k liveview.Kind) string { return "lv-" + string(k) }

// lintKinds are the lint kinds with a policy to choose (all but those
// the linter always refuses, such as splice), in documentation order.
func lintKinds() []liveview.Kind {
	var out []liveview.Kind
	for _, k := range liveview.Kinds {
		if _, err := liveview.New(liveview.Config{Policy: map[liveview.Kind]liveview.Action{k: liveview.Allow}}); err == nil {
			out = append(out, k)
		}
	}
	return out
}

// strippable reports whether the linter accepts Strip for k (it refuses
// the policy otherwise), so the flag offers strip only where it works.
func strippable(k liveview.Kind) bool {
	_, err := liveview.New(liveview.Config{Policy: map[liveview.Kind]liveview.Action{k: liveview.Strip}})
	return err == nil
}

// lintUsage says what each lint kind finds, for --help.
var lintUsage = map[liveview.Kind]string{
	liveview.KindCSRFMeta:       "a CSRF meta tag (<meta name=\"csrf-token\">) in a first render",
	liveview.KindSetCookie:      "Set-Cookie on a first render",
	liveview.KindVaryCookie:     "a first render with Vary: Cookie (one entry per cookie value)",
	liveview.KindUserSession:    "a data-phx-session whose session map is not empty (one visitor's render)",
	liveview.KindTokenExpiring:  "a Phoenix token expiring (minus --lv-margin) before the page could be served",
	liveview.KindBadToken:       "a data-phx-session/-static or SFMyNTY. value that does not parse (expiry unknown)",
	liveview.KindEncryptedToken: "an encrypted Phoenix token (expiry unreadable)",
	liveview.KindBadSignature:   "a token that does not verify with --lv-secret-key-base",
	liveview.KindEncodedBody:    "an HTML body in a Content-Encoding the lint cannot read (anything but gzip)",
}

// lintStrip says what strip does, for the kinds that have it.
var lintStrip = map[liveview.Kind]string{
	liveview.KindCSRFMeta:   "blank it",
	liveview.KindSetCookie:  "store without it",
	liveview.KindVaryCookie: "drop Cookie from Vary",
}

// cookieItem checks one cookie name pattern with the proxy's rules.
func cookieItem(s string) (string, error) {
	if strings.ContainsAny(s, "=; \t") {
		return "", errors.New("want a cookie name (no '=', ';' or spaces)")
	}
	if err := httpcache.CheckIgnoreParams([]string{s}); err != nil {
		return "", err
	}
	return s, nil
}

// statusTTLItem checks one --store-errors pair.
func statusTTLItem(s string) (string, error) {
	if _, _, err := parseStatusTTL(s); err != nil {
		return "", err
	}
	return s, nil
}

func parseStatusTTL(s string) (int, time.Duration, error) {
	code, dur, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(code)
	if !ok || err != nil || n < 400 || n > 599 {
		return 0, 0, errors.New("want status=duration with an error status 400-599, e.g. 404=30s")
	}
	d, err := time.ParseDuration(dur)
	if err != nil || d <= 0 {
		return 0, 0, errors.New("want status=duration with a positive duration, e.g. 404=30s")
	}
	return n, d, nil
}

// clusterFlags are the flags that only mean something in cluster mode.
var clusterFlags = []string{"cluster-name", "node-id", "cluster-max-age", "cluster-max-bytes", "cluster-replicas", "cluster-blind", "cluster-publish-timeout"}

// clusterConfig checks the cluster flags: one of --cluster-nats and
// --cluster-embedded-nats, the others only with one of them. Off, the
// cluster config is cleared, so a single node runs no NATS code.
func (f *flags) clusterConfig(c *server.Config) error {
	cl := &c.Cluster
	switch {
	case cl.NATSURL != "" && cl.EmbeddedAddr != "":
		return errors.New("--cluster-nats and --cluster-embedded-nats are both given: join an operator-run NATS, or run one inside this node (the others then join it with --cluster-nats), not both")
	case cl.NATSURL == "" && cl.EmbeddedAddr == "":
		for _, name := range clusterFlags {
			if f.clusterSet[name] {
				return fmt.Errorf("--%s needs --cluster-nats or --cluster-embedded-nats (cluster mode is off)", name)
			}
		}
		*cl = cluster.Config{}
		return nil
	}
	for _, u := range strings.Split(cl.NATSURL, ",") {
		if cl.NATSURL == "" {
			break
		}
		u = strings.TrimSpace(u)
		if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") || len(u) <= len("nats://") {
			return fmt.Errorf("--cluster-nats %q: each server is nats://host:port or tls://host:port", u)
		}
	}
	switch cl.Replicas {
	case 1, 3, 5:
	default:
		return fmt.Errorf("--cluster-replicas %d: 1, 3 or 5", cl.Replicas)
	}
	cl.Version = cli.Version("firstrender")
	return nil
}
