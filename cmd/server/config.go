package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// envPrefix is prepended to a flag's name (upper case, '-' → '_') to form its
// environment variable: --listen ↔ FIRSTRENDER_LISTEN.
const envPrefix = "FIRSTRENDER_"

// config is everything main hands to run. It is built by parseConfig from
// flags and environment variables and validated there, so run can trust it.
type config struct {
	Listen      string   // public listener address
	Upstream    *url.URL // nil: start the built-in demo origin on loopback
	DB          string   // bbolt file path
	AdminListen string   // "" disables the admin listener
	PublicURL   *url.URL // how visitors reach us; nil: derived from Listen

	Hosts         []string      // cached hosts; nil: loopback names + PublicURL host
	UncachedHosts string        // what to do with requests for other hosts: "pass" or "refuse"
	MaxDBSize     int64         // bytes; 0 = unbounded
	MaxObjectSize int64         // bytes
	ExpireEvery   time.Duration // background sweep of expired records; 0 = never
	MaxBuffered   int64         // bytes held at once by all responses being copied for storing
	IgnoreParams  []string      // query parameters dropped from keys and origin requests

	StaleWhileRevalidate time.Duration // server-wide default (RFC 5861)
	StaleIfError         time.Duration // server-wide default (RFC 5861)
	SetCookie            string        // "refuse" or "strip"
	StripSetCookie       []string      // path prefixes where Set-Cookie is stripped instead of refusing
	OriginTimeout        time.Duration // per origin request

	// LiveView lint (httpcache/liveview).
	LVCSRF        string        // policy for a CSRF meta tag: refuse|strip|allow
	LVSetCookie   string        // policy for Set-Cookie on a LiveView page: refuse|strip|allow
	LVSession     string        // policy for a non-empty LiveView session: refuse|allow
	LVMargin      time.Duration // safety margin before the earliest token expiry
	LVMaxAge      time.Duration // max age the application verifies data-phx-session with
	LVSecretKey   string        // optional secret_key_base to verify token signatures
	LVSigningSalt string        // signing salt for the above

	// Live socket broker (httpcache/livesocket).
	CheckOrigin        []string // Phoenix check_origin forms; ["true"] = public URL + localhost
	AllowAnyOrigin     bool     // the explicit opt-in that --check-origin=false needs
	AllowNoOrigin      bool
	SocketPaths        []string
	MaxSockets         int
	SocketReadLimit    int64
	SocketIdleTimeout  time.Duration
	JoinGuardThreshold int  // failed joins from distinct clients before an entry is disabled; -1 never
	TrustForwarded     bool // keep X-Forwarded-* from the client (behind a trusted load balancer)

	LogFormat       string // text|json
	LogLevel        slog.Level
	ShutdownTimeout time.Duration

	// Not flags: set by tests.
	logOutput io.Writer                    // nil: os.Stderr
	ready     func(public, admin net.Addr) // called once both listeners are bound
	demoReady func(origin *url.URL)        // called once the demo origin listens
}

// flagDoc lists every flag in the order --help shows them.
type flagDef struct {
	name, usage string
	value       flag.Value
}

// newFlagSet declares the flags on a fresh FlagSet bound to cfg.
func newFlagSet(cfg *config) (*flag.FlagSet, []flagDef) {
	fs := flag.NewFlagSet("firstrender", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var defs []flagDef
	add := func(name string, v flag.Value, usage string) {
		fs.Var(v, name, usage)
		defs = append(defs, flagDef{name, usage, v})
	}

	*cfg = config{
		Listen:        ":8080",
		DB:            "firstrender.db",
		AdminListen:   "127.0.0.1:9090",
		UncachedHosts: "pass",
		MaxDBSize:     1 << 30,
		MaxObjectSize: 16 << 20,
		ExpireEvery:   10 * time.Minute,
		MaxBuffered:   256 << 20,
		IgnoreParams:  []string{"utm_*", "fbclid", "gclid"},
		SetCookie:     "refuse",
		OriginTimeout: 30 * time.Second,

		LVCSRF:      "refuse",
		LVSetCookie: "refuse",
		LVSession:   "refuse",
		LVMargin:    5 * time.Minute,
		LVMaxAge:    14 * 24 * time.Hour,

		CheckOrigin:        []string{"true"},
		SocketPaths:        []string{"/live/websocket"},
		MaxSockets:         10000,
		SocketReadLimit:    1 << 20,
		SocketIdleTimeout:  5 * time.Minute,
		JoinGuardThreshold: 2,

		LogFormat:       "text",
		LogLevel:        slog.LevelInfo,
		ShutdownTimeout: 10 * time.Second,
	}

	add("listen", addrValue{&cfg.Listen, false}, "public `address` (host:port) serving cached pages and live sockets")
	add("upstream", urlValue{&cfg.Upstream}, "origin `URL` (http or https); empty starts the built-in demo origin on loopback")
	add("db", nonEmptyValue{&cfg.DB}, "page store `file` (bbolt); created if missing")
	add("admin-listen", addrValue{&cfg.AdminListen, true}, "admin `address` serving /metrics (keep it on loopback); empty disables it")
	add("public-url", urlValue{&cfg.PublicURL}, "`URL` visitors use to reach firstrender (e.g. https://example.com); empty: http://localhost:<listen port>")
	add("hosts", listValue{&cfg.Hosts, hostItem}, "comma-separated `hosts` whose pages are cached; empty: localhost, 127.0.0.1, ::1 and the --public-url host")
	add("uncached-hosts", enumValue{&cfg.UncachedHosts, []string{"pass", "refuse"}}, "`policy` for requests to hosts not in --hosts: pass (forward uncached) or refuse (421)")
	add("max-db-size", sizeValue{&cfg.MaxDBSize, true}, "maximum `bytes` of stored pages (KiB, MiB, GiB, KB, MB, GB suffixes); least recently used pages are evicted; 0 = unbounded")
	add("max-object-size", sizeValue{&cfg.MaxObjectSize, false}, "largest response `bytes` stored; bigger ones are passed through")
	add("max-buffered", sizeValue{&cfg.MaxBuffered, false}, "memory `bytes` all responses being copied for storing may hold at once; beyond it responses stream on unstored")
	add("expire-interval", durationValue{&cfg.ExpireEvery, true}, "how often expired pages are removed from the store in the background; 0 = only when evicting")
	add("ignore-params", listValue{&cfg.IgnoreParams, paramItem}, "comma-separated query `parameters` dropped from keys and origin requests (trailing * matches a prefix); empty ignores none")
	add("stale-while-revalidate", durationValue{&cfg.StaleWhileRevalidate, true}, "default stale-while-revalidate `duration` when the origin gives none; 0 = off")
	add("stale-if-error", durationValue{&cfg.StaleIfError, true}, "default stale-if-error `duration` when the origin gives none; 0 = off")
	add("set-cookie", enumValue{&cfg.SetCookie, []string{"refuse", "strip"}}, "`policy` for responses carrying Set-Cookie: refuse (not stored) or strip (stored without it)")
	add("strip-set-cookie", listValue{&cfg.StripSetCookie, pathItem}, "comma-separated path `prefixes` where Set-Cookie is stripped and the page stored even with --set-cookie=refuse")
	add("origin-timeout", durationValue{&cfg.OriginTimeout, false}, "`duration` an origin request may take before it fails (504, or the stale copy under stale-if-error; an unreachable origin gives 502)")

	add("lv-csrf", enumValue{&cfg.LVCSRF, []string{"refuse", "strip", "allow"}}, "LiveView `policy` for a CSRF meta tag in a first render: refuse, strip (blank it) or allow")
	add("lv-set-cookie", enumValue{&cfg.LVSetCookie, []string{"refuse", "strip", "allow"}}, "LiveView `policy` for Set-Cookie on a first render: refuse, strip or allow")
	add("lv-session", enumValue{&cfg.LVSession, []string{"refuse", "allow"}}, "LiveView `policy` for a data-phx-session whose session map is not empty: refuse or allow")
	add("lv-margin", durationValue{&cfg.LVMargin, true}, "never serve a first render later than its earliest Phoenix token expiry minus this `duration`")
	add("lv-max-age", durationValue{&cfg.LVMaxAge, false}, "max age the application verifies data-phx-session with (LiveView default 14d); overrides the token's own")
	add("lv-secret-key-base", stringValue{&cfg.LVSecretKey}, "optional `secret` (the app's secret_key_base) to verify token signatures; never logged")
	add("lv-signing-salt", stringValue{&cfg.LVSigningSalt}, "signing `salt` for --lv-secret-key-base (LiveView's signing_salt)")

	add("check-origin", listValue{&cfg.CheckOrigin, originItem}, "allowed WebSocket `origins`, Phoenix check_origin forms (//host, https://*.example.com, https://host:8443); true = --public-url and localhost; false = any site, only with --allow-any-origin")
	add("allow-any-origin", boolValue{&cfg.AllowAnyOrigin}, "the explicit opt-in --check-origin=false needs: accept sockets from any site (cross-site WebSocket hijacking risk); logged as a warning")
	add("allow-no-origin", boolValue{&cfg.AllowNoOrigin}, "allow WebSocket upgrades without an Origin header (native clients); logged at start-up")
	add("socket-paths", listValue{&cfg.SocketPaths, pathItem}, "comma-separated live socket `paths` brokered to the origin (never cached)")
	add("max-sockets", intValue{&cfg.MaxSockets, 1}, "maximum concurrent brokered `sockets`; more are refused with 503")
	add("socket-read-limit", sizeValue{&cfg.SocketReadLimit, false}, "largest WebSocket message `bytes` relayed either way; a bigger one closes the socket (1009)")
	add("socket-idle-timeout", durationValue{&cfg.SocketIdleTimeout, true}, "close a brokered socket after this `duration` without messages; 0 = never")
	add("join-guard-threshold", intValue{&cfg.JoinGuardThreshold, -1}, "failed LiveView joins from distinct `clients` after which a cached page stops being served; -1 = count only")
	add("trust-forwarded", boolValue{&cfg.TrustForwarded}, "keep the client's X-Forwarded-For/-Proto/-Host (only behind a load balancer that sets them)")

	add("log-format", enumValue{&cfg.LogFormat, []string{"text", "json"}}, "log `format`: text or json")
	add("log-level", levelValue{&cfg.LogLevel}, "log `level`: debug, info, warn or error")
	add("shutdown-timeout", durationValue{&cfg.ShutdownTimeout, false}, "how long in-flight requests and sockets may take to finish on SIGINT/SIGTERM")
	return fs, defs
}

// errHelp is returned by parseConfig when --help was asked for; the usage
// text has then been written to the help writer.
var errHelp = flag.ErrHelp

// parseConfig builds a config from command-line args and the environment
// (lookupEnv is os.LookupEnv in main). A flag given on the command line wins
// over its environment variable, which wins over the default. Errors name the
// flag (and the variable when the value came from there) and what was wrong.
// On --help it writes the usage to help and returns errHelp.
func parseConfig(args []string, lookupEnv func(string) (string, bool), help io.Writer) (config, error) {
	var cfg config
	fs, defs := newFlagSet(&cfg)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(help, defs)
			return config{}, errHelp
		}
		return config{}, fixFlagErr(err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q (flags only; see --help)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, d := range defs {
		if set[d.name] {
			continue
		}
		env := envName(d.name)
		v, ok := lookupEnv(env)
		if !ok {
			continue
		}
		if err := fs.Set(d.name, v); err != nil {
			return config{}, fmt.Errorf("invalid value %q for %s (--%s): %v", v, env, d.name, err)
		}
	}
	if err := cfg.validate(); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// fixFlagErr rewrites the flag package's "-name" spelling to "--name", the
// form --help shows.
func fixFlagErr(err error) error {
	msg := err.Error()
	msg = strings.Replace(msg, "for flag -", "for flag --", 1)
	msg = strings.Replace(msg, "flag provided but not defined: -", "unknown flag --", 1)
	msg = strings.Replace(msg, "flag needs an argument: -", "flag needs a value: --", 1)
	return errors.New(msg)
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// validate checks what single flags cannot: combinations.
func (c *config) validate() error {
	if c.Upstream != nil && c.PublicURL != nil && sameHostPort(c.Upstream, c.PublicURL) {
		return fmt.Errorf("--upstream %s and --public-url %s are the same address: firstrender would proxy to itself", c.Upstream, c.PublicURL)
	}
	if c.AdminListen != "" && c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		return fmt.Errorf("--admin-listen %q equals --listen: admin endpoints must not be on the public listener", c.AdminListen)
	}
	if c.MaxDBSize != 0 && c.MaxObjectSize > c.MaxDBSize {
		return fmt.Errorf("--max-object-size %d is larger than --max-db-size %d", c.MaxObjectSize, c.MaxDBSize)
	}
	if c.MaxBuffered < c.MaxObjectSize {
		return fmt.Errorf("--max-buffered %d is below --max-object-size %d: the largest pages could never be stored", c.MaxBuffered, c.MaxObjectSize)
	}
	if (c.LVSecretKey == "") != (c.LVSigningSalt == "") {
		return errors.New("--lv-secret-key-base and --lv-signing-salt must be given together (or neither)")
	}
	if len(c.CheckOrigin) == 0 {
		return errors.New("--check-origin is empty: give origins, true (public URL and localhost) or false (any site, with --allow-any-origin)")
	}
	for _, o := range c.CheckOrigin {
		if (o == "true" || o == "false") && len(c.CheckOrigin) > 1 {
			return fmt.Errorf("--check-origin: %q cannot be combined with other entries", o)
		}
	}
	if len(c.CheckOrigin) == 1 && c.CheckOrigin[0] == "false" && !c.AllowAnyOrigin {
		return errors.New("--check-origin=false accepts live sockets from any site (cross-site WebSocket hijacking); add --allow-any-origin to mean it")
	}
	if len(c.SocketPaths) == 0 {
		return errors.New("--socket-paths is empty: give at least one path (default /live/websocket)")
	}
	return nil
}

func sameHostPort(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// writeUsage prints every flag with its environment variable and default.
func writeUsage(w io.Writer, defs []flagDef) {
	fmt.Fprint(w, `firstrender: a caching reverse proxy for Phoenix LiveView first renders.

Usage: firstrender [flags]

Every flag can also be set by an environment variable (shown in brackets);
a flag on the command line wins over the variable.

`)
	for _, d := range defs {
		fl := &flag.Flag{Name: d.name, Usage: d.usage, Value: d.value}
		arg, usage := flag.UnquoteUsage(fl)
		if _, isBool := d.value.(boolValue); isBool {
			arg = ""
		}
		line := "  --" + d.name
		if arg != "" {
			line += " " + arg
		}
		fmt.Fprintf(w, "%s  [%s]\n    \t%s", line, envName(d.name), usage)
		if def := d.value.String(); def != "" {
			fmt.Fprintf(w, " (default %q)", def)
		}
		fmt.Fprintln(w)
	}
}

// ---- flag.Value types; each Set error says what was wrong, the flag package adds the name.

type stringValue struct{ p *string }

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v stringValue) Set(s string) error { *v.p = s; return nil }

type nonEmptyValue struct{ p *string }

func (v nonEmptyValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v nonEmptyValue) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("must not be empty")
	}
	*v.p = s
	return nil
}

type boolValue struct{ p *bool }

func (v boolValue) IsBoolFlag() bool { return true }
func (v boolValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatBool(*v.p)
}
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", s)
	}
	*v.p = b
	return nil
}

type intValue struct {
	p   *int
	min int
}

func (v intValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.Itoa(*v.p)
}
func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("want a whole number, got %q", s)
	}
	if n < v.min {
		return fmt.Errorf("must be at least %d, got %d", v.min, n)
	}
	*v.p = n
	return nil
}

// addrValue is a host:port listen address; the port may be 0 (any free port).
type addrValue struct {
	p          *string
	allowEmpty bool
}

func (v addrValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v addrValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		if v.allowEmpty {
			*v.p = ""
			return nil
		}
		return errors.New("must not be empty (want host:port, e.g. :8080)")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port (e.g. :8080 or 127.0.0.1:9090): %v", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("host %q is not a host name or IP address", host)
	}
	*v.p = s
	return nil
}

// urlValue is an absolute http(s) URL without credentials; empty means nil.
type urlValue struct{ p **url.URL }

func (v urlValue) String() string {
	if v.p == nil || *v.p == nil {
		return ""
	}
	return (*v.p).String()
}
func (v urlValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		*v.p = nil
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https, got %q (want e.g. http://127.0.0.1:4000)", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("missing host (want e.g. http://127.0.0.1:4000)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
	}
	if u.User != nil {
		return errors.New("must not carry user:password (credentials would be logged)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not have a query or fragment")
	}
	*v.p = u
	return nil
}

// sizeValue is a byte count with an optional unit.
type sizeValue struct {
	p         *int64
	allowZero bool
}

func (v sizeValue) String() string {
	if v.p == nil {
		return ""
	}
	return formatSize(*v.p)
}
func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	if n == 0 && !v.allowZero {
		return errors.New("must be more than 0")
	}
	*v.p = n
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest first so "MiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	{"B", 1},
}

// parseSize reads "1048576", "512KiB", "64MB", "1.5GiB".
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size (want e.g. 64MiB)")
	}
	mult := int64(1)
	for _, u := range sizeUnits {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f != f {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("size %q is negative", s)
	}
	b := f * float64(mult)
	if b > 1<<62 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(b), nil
}

func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// durationValue is a time.Duration; "d" (days) is accepted as well.
type durationValue struct {
	p         *time.Duration
	allowZero bool
}

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	d := *v.p
	if d != 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
func (v durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	if d == 0 && !v.allowZero {
		return errors.New("must be more than 0")
	}
	*v.p = d
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	if strings.HasSuffix(t, "d") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(t, "d"), 64)
		if err != nil || n != n || n > 100000 {
			return 0, fmt.Errorf("duration %q: want e.g. 90s, 5m, 2h or 14d", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 90s, 5m, 2h or 14d", s)
	}
	return d, nil
}

type enumValue struct {
	p       *string
	choices []string
}

func (v enumValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v enumValue) Set(s string) error {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, c := range v.choices {
		if t == c {
			*v.p = c
			return nil
		}
	}
	return fmt.Errorf("want one of %s, got %q", strings.Join(v.choices, ", "), s)
}

type levelValue struct{ p *slog.Level }

func (v levelValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.ToLower(v.p.String())
}
func (v levelValue) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		*v.p = slog.LevelDebug
	case "info":
		*v.p = slog.LevelInfo
	case "warn", "warning":
		*v.p = slog.LevelWarn
	case "error":
		*v.p = slog.LevelError
	default:
		return fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return nil
}

// listValue is a comma-separated list; each item is checked (and may be
// normalized) by item. An empty string sets an empty list.
type listValue struct {
	p    *[]string
	item func(string) (string, error)
}

func (v listValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}
func (v listValue) Set(s string) error {
	var out []string
	seen := map[string]bool{}
	for _, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		it, err := v.item(raw)
		if err != nil {
			return fmt.Errorf("entry %q: %v", raw, err)
		}
		if !seen[it] {
			seen[it] = true
			out = append(out, it)
		}
	}
	*v.p = out
	return nil
}

func hostItem(s string) (string, error) {
	h := strings.ToLower(s)
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if strings.Contains(h, "://") || strings.ContainsAny(h, "/?# @") {
		return "", errors.New("want a bare host name such as example.com (no scheme, path or port)")
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.String(), nil
	}
	if strings.Contains(h, ":") {
		return "", errors.New("want a bare host name such as example.com (no port)")
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", errors.New("empty host")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return "", errors.New("not a valid host name")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return "", fmt.Errorf("invalid character %q in host name", r)
			}
		}
	}
	return h, nil
}

func paramItem(s string) (string, error) {
	name := strings.TrimSuffix(s, "*")
	if strings.Contains(name, "*") {
		return "", errors.New("only a trailing * is allowed")
	}
	if name == "" {
		return "", errors.New("a lone * would ignore every parameter")
	}
	if strings.ContainsAny(name, "=&# ") {
		return "", errors.New("a parameter name cannot contain '=', '&', '#' or spaces")
	}
	return s, nil
}

func pathItem(s string) (string, error) {
	if !strings.HasPrefix(s, "/") {
		return "", errors.New("want a path starting with /")
	}
	if strings.ContainsAny(s, "?# ") {
		return "", errors.New("a path cannot contain '?', '#' or spaces")
	}
	return s, nil
}

// originItem checks one Phoenix check_origin entry. The socket package
// validates again when it is configured; this gives the error early and
// names the flag.
func originItem(s string) (string, error) {
	switch strings.ToLower(s) {
	case "true", "false":
		return strings.ToLower(s), nil
	case "null", "*":
		return "", errors.New("not an origin (null and * are never allowed)")
	}
	rest := s
	switch {
	case strings.HasPrefix(rest, "//"):
		rest = rest[2:]
	case strings.HasPrefix(strings.ToLower(rest), "http://"):
		rest = rest[len("http://"):]
	case strings.HasPrefix(strings.ToLower(rest), "https://"):
		rest = rest[len("https://"):]
	default:
		return "", errors.New("want //host, https://host, https://*.example.com or https://host:port")
	}
	if strings.ContainsAny(rest, "/?#@") {
		return "", errors.New("an origin has no path, query or user info")
	}
	host := rest
	if h, p, err := net.SplitHostPort(rest); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
		host = h
	}
	host = strings.TrimPrefix(host, "*.")
	if _, err := hostItem(host); err != nil {
		return "", err
	}
	return s, nil
}

// envNames returns all variable names, sorted; used by tests and docs.
func envNames() []string {
	var cfg config
	_, defs := newFlagSet(&cfg)
	var out []string
	for _, d := range defs {
		out = append(out, envName(d.name))
	}
	sort.Strings(out)
	return out
}
