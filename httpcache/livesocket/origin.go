package livesocket

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Refusal reasons reported by [OriginError] and counted in metrics.
const (
	ReasonNoOrigin        = "no_origin"        // request without an Origin header
	ReasonNullOrigin      = "null_origin"      // Origin: null (sandboxed frame, file:, redirects)
	ReasonBadOrigin       = "bad_origin"       // not a serialized origin (scheme://host[:port])
	ReasonOriginDenied    = "origin_denied"    // well-formed but not allowed
	ReasonManyOrigins     = "many_origins"     // more than one Origin header
	ReasonPath            = "path"             // upgrade on a path that is not a socket path
	ReasonNotUpgrade      = "not_upgrade"      // not a WebSocket handshake
	ReasonMaxSockets      = "max_sockets"      // the concurrent socket limit is reached
	ReasonShutdown        = "shutting_down"    // the broker is shutting down
	ReasonUpstreamDeny    = "origin_refused"   // the origin answered the handshake with a non-101 status
	ReasonUpstreamDown    = "origin_down"      // the origin could not be reached
	ReasonUpstreamSlow    = "origin_timeout"   // the origin did not answer in time
	ReasonClientHandshake = "client_handshake" // the client handshake failed after the origin accepted
)

// OriginError is returned by [OriginPolicy.Check] for a refused request.
type OriginError struct {
	Origin string // the offending Origin header value ("" when absent)
	Reason string // one of the Reason* constants
}

func (e *OriginError) Error() string {
	switch e.Reason {
	case ReasonNoOrigin:
		return "livesocket: request has no Origin header"
	case ReasonNullOrigin:
		return `livesocket: Origin "null" is refused`
	case ReasonBadOrigin:
		return fmt.Sprintf("livesocket: malformed Origin %q", e.Origin)
	case ReasonManyOrigins:
		return "livesocket: more than one Origin header"
	default:
		return fmt.Sprintf("livesocket: Origin %q is not allowed", e.Origin)
	}
}

// OriginConfig configures an [OriginPolicy]. The zero value is Phoenix's
// check_origin: true with no public URL, which allows only localhost.
type OriginConfig struct {
	// Allowed is the check_origin list in Phoenix's forms: "//example.com",
	// "https://example.com", "//*.example.com", "https://example.com:8443".
	// Scheme and port are compared only when given, but a scheme brings its
	// default port ("https://example.com" pins 443). A leading "*." matches
	// the bare domain and any subdomain (with a dot boundary), nothing else.
	// Hosts compare case-insensitively. If nil (and CheckOff is false), the
	// policy is check_origin: true, stricter than Phoenix's (which
	// compares the host only): the full origin of PublicURL, scheme, host
	// and port, a default port equal to none ("https://example.com" and
	// "https://example.com:443" are one; http://, another port, ws:// or
	// wss:// are refused). A loopback PublicURL also allows its loopback
	// aliases (localhost, 127.0.0.1, ::1) with the same scheme and port.
	// Without PublicURL: the loopback hosts, http or https, any port.
	Allowed []string

	// PublicURL is how visitors reach the server ("https://example.com").
	// Used only when Allowed is nil. Empty means localhost only.
	PublicURL string

	// CheckOff accepts any Origin (Phoenix check_origin: false). It leaves
	// the socket open to cross-site WebSocket hijacking; NewOriginPolicy logs
	// a warning. Allowed must be nil when it is set. Missing, "null" and
	// malformed Origins are still refused unless AllowMissing covers them.
	CheckOff bool

	// AllowMissing accepts requests without an Origin header (native
	// clients; browsers always send one). Logged at start-up.
	AllowMissing bool

	// Logger receives the start-up warnings and one line per refusal in
	// Handler. Nil means slog.Default().
	Logger *slog.Logger
}

// OriginPolicy decides whether a WebSocket handshake's Origin is allowed.
// It is immutable after NewOriginPolicy and safe for concurrent use.
type OriginPolicy struct {
	rules        []originRule
	checkOff     bool
	allowMissing bool
	log          *slog.Logger
	onRefuse     func(reason string) // metrics hook, may be nil
}

type originRule struct {
	scheme   string // "" = any
	host     string // lower case; "" never
	wildcard bool   // host was "*.host"
	port     int    // 0 = any
	source   string // the configured text, for errors and logs
}

// defaultPorts maps the schemes whose default port a configured origin
// brings along (Phoenix: URI.parse fills the port for known schemes).
var defaultPorts = map[string]int{"http": 80, "https": 443, "ws": 80, "wss": 443}

// ParseCheckOrigin turns a command-line check_origin value into an
// OriginConfig: ["true"] (or nil) is check_origin: true, ["false"] is
// check_origin: false and is refused unless allowOff is set (the explicit
// opt-in flag), anything else is the list of origins. The list itself is
// validated by NewOriginPolicy.
func ParseCheckOrigin(values []string, allowOff bool) (OriginConfig, error) {
	var list []string
	for _, v := range values {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				list = append(list, f)
			}
		}
	}
	switch {
	case len(list) == 0 || (len(list) == 1 && strings.EqualFold(list[0], "true")):
		return OriginConfig{}, nil
	case len(list) == 1 && strings.EqualFold(list[0], "false"):
		if !allowOff {
			return OriginConfig{}, errors.New(`livesocket: check-origin "false" accepts sockets from any site (cross-site WebSocket hijacking); it needs the explicit allow-any-origin opt-in`)
		}
		return OriginConfig{CheckOff: true}, nil
	}
	for _, v := range list {
		if strings.EqualFold(v, "true") || strings.EqualFold(v, "false") {
			return OriginConfig{}, fmt.Errorf("livesocket: check-origin %q cannot be mixed with a list of origins", v)
		}
	}
	return OriginConfig{Allowed: list}, nil
}

// NewOriginPolicy validates cfg and returns the policy. A bad list entry is
// named in the error.
func NewOriginPolicy(cfg OriginConfig) (*OriginPolicy, error) {
	p := &OriginPolicy{checkOff: cfg.CheckOff, allowMissing: cfg.AllowMissing, log: cfg.Logger}
	if p.log == nil {
		p.log = slog.Default()
	}
	switch {
	case cfg.CheckOff && cfg.Allowed != nil:
		return nil, errors.New("livesocket: origin check is off but a list of allowed origins is given; choose one")
	case cfg.CheckOff:
		p.log.Warn("livesocket: origin check is OFF: any web site can open live sockets with visitors' cookies (cross-site WebSocket hijacking)")
	case cfg.Allowed != nil:
		if len(cfg.Allowed) == 0 {
			return nil, errors.New("livesocket: the list of allowed origins is empty")
		}
		for _, s := range cfg.Allowed {
			r, err := parseRule(s)
			if err != nil {
				return nil, err
			}
			p.rules = append(p.rules, r)
		}
	default:
		// check_origin: true, stricter than Phoenix (which compares the
		// host alone): the full origin of the public URL, scheme, host
		// and port, a default port equal to none. A loopback public URL
		// also allows its loopback aliases (same scheme and port), since
		// a local visitor may type any of them.
		loopback := []string{"localhost", "127.0.0.1", "::1"}
		if cfg.PublicURL == "" {
			// No public URL: loopback only, http or https, any port.
			for _, h := range loopback {
				for _, sc := range []string{"http", "https"} {
					p.rules = append(p.rules, originRule{scheme: sc, host: h, source: sc + "://" + h})
				}
			}
			break
		}
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("livesocket: public URL %q: want http(s)://host[:port]", cfg.PublicURL)
		}
		port := defaultPorts[u.Scheme]
		if ps := u.Port(); ps != "" {
			if port, err = strconv.Atoi(ps); err != nil || port < 1 || port > 65535 {
				return nil, fmt.Errorf("livesocket: public URL %q: bad port", cfg.PublicURL)
			}
		}
		host := strings.ToLower(u.Hostname())
		hosts := []string{host}
		if slices.Contains(loopback, host) {
			hosts = loopback
		}
		for _, h := range hosts {
			p.rules = append(p.rules, originRule{scheme: u.Scheme, host: h, port: port, source: u.Scheme + "://" + net.JoinHostPort(h, strconv.Itoa(port))})
		}
	}
	if cfg.AllowMissing {
		p.log.Info("livesocket: upgrades without an Origin header are accepted (native clients opt-in)")
	}
	return p, nil
}

// parseRule parses one configured origin in Phoenix's forms.
func parseRule(s string) (originRule, error) {
	bad := func(why string) (originRule, error) {
		return originRule{}, fmt.Errorf("livesocket: allowed origin %q: %s (forms: //example.com, https://example.com, //*.example.com, https://example.com:8443)", s, why)
	}
	var scheme, rest string
	switch i := strings.Index(s, "//"); {
	case i < 0:
		return bad("missing // before the host")
	case i == 0:
		rest = s[2:]
	default:
		if s[i-1] != ':' {
			return bad("missing // before the host")
		}
		scheme = strings.ToLower(s[:i-1])
		if !validScheme(scheme) {
			return bad("bad scheme")
		}
		rest = s[i+2:]
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.ContainsAny(rest, "/?#@ \t") {
		return bad("only scheme, host and port are allowed")
	}
	r := originRule{scheme: scheme, source: s}
	if strings.HasPrefix(rest, "*.") {
		r.wildcard = true
		rest = rest[2:]
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return bad(err.Error())
	}
	if strings.Contains(host, "*") {
		return bad(`"*" is allowed only as a leading "*." label`)
	}
	r.host, r.port = host, port
	if r.port == 0 && scheme != "" {
		r.port = defaultPorts[scheme]
	}
	return r, nil
}

func validScheme(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port" and
// validates the host; the port is 0 when absent.
func splitHostPort(s string) (host string, port int, err error) {
	host = s
	var portStr string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, errors.New("unterminated IPv6 literal")
		}
		host = s[1:end]
		switch after := s[end+1:]; {
		case after == "":
		case after[0] == ':':
			portStr = after[1:]
		default:
			return "", 0, errors.New("junk after IPv6 literal")
		}
		if net.ParseIP(host) == nil || !strings.Contains(host, ":") {
			return "", 0, errors.New("bad IPv6 literal")
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, portStr = s[:i], s[i+1:]
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && portStr == "" && !strings.HasPrefix(s, "[") {
		return "", 0, errors.New("empty port")
	}
	if portStr != "" {
		n, perr := strconv.Atoi(portStr)
		if perr != nil || n < 1 || n > 65535 || portStr[0] == '+' || portStr[0] == '-' {
			return "", 0, errors.New("bad port")
		}
		port = n
	}
	host = strings.ToLower(host)
	if host == "" {
		return "", 0, errors.New("empty host")
	}
	if !strings.HasPrefix(s, "[") {
		for _, c := range host {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '*') {
				return "", 0, fmt.Errorf("bad character %q in host", c)
			}
		}
		if strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") || strings.Contains(host, "..") {
			return "", 0, errors.New("empty label in host")
		}
	}
	return host, port, nil
}

// parsedOrigin is a request's Origin header, parsed.
type parsedOrigin struct {
	scheme string
	host   string
	port   int // explicit or the scheme's default; 0 if unknown
}

// parseOrigin parses a serialized origin (RFC 6454 §6.1): scheme "://" host
// [ ":" port ], nothing else. Browsers never send userinfo, a path or a
// trailing dot, so any of those is malformed.
func parseOrigin(s string) (parsedOrigin, bool) {
	i := strings.Index(s, "://")
	if i <= 0 {
		return parsedOrigin{}, false
	}
	scheme := strings.ToLower(s[:i])
	if !validScheme(scheme) {
		return parsedOrigin{}, false
	}
	rest := s[i+3:]
	if rest == "" || strings.ContainsAny(rest, "/?#@\\ \t*%") || strings.HasPrefix(rest, "*") {
		return parsedOrigin{}, false
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return parsedOrigin{}, false
	}
	if port == 0 {
		port = defaultPorts[scheme]
	}
	return parsedOrigin{scheme: scheme, host: host, port: port}, true
}

func (r originRule) match(o parsedOrigin) bool {
	if r.scheme != "" && r.scheme != o.scheme {
		return false
	}
	if r.port != 0 && r.port != o.port {
		return false
	}
	if r.wildcard {
		// GHSA-p8f7-22gq-m7j9: the suffix must start at a label boundary,
		// or "*.example.com" would match "evilexample.com".
		return o.host == r.host || strings.HasSuffix(o.host, "."+r.host)
	}
	return o.host == r.host
}

// Check returns nil if r's Origin is allowed, else an [*OriginError] saying
// why. It does not look at anything but the Origin header.
func (p *OriginPolicy) Check(r *http.Request) error {
	vals := r.Header.Values("Origin")
	switch {
	case len(vals) == 0:
		if p.allowMissing {
			return nil
		}
		return &OriginError{Reason: ReasonNoOrigin}
	case len(vals) > 1:
		return &OriginError{Origin: strings.Join(vals, ", "), Reason: ReasonManyOrigins}
	}
	origin := vals[0]
	if strings.EqualFold(origin, "null") {
		return &OriginError{Origin: origin, Reason: ReasonNullOrigin}
	}
	o, ok := parseOrigin(origin)
	if !ok {
		return &OriginError{Origin: origin, Reason: ReasonBadOrigin}
	}
	if p.checkOff {
		return nil
	}
	for _, rule := range p.rules {
		if rule.match(o) {
			return nil
		}
	}
	return &OriginError{Origin: origin, Reason: ReasonOriginDenied}
}

// Handler returns a handler that answers requests refused by Check with 403
// and a short text body, logs the offending origin, counts the refusal, and
// passes allowed requests to next.
func (p *OriginPolicy) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.Check(r); err != nil {
			p.refuse(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (p *OriginPolicy) refuse(w http.ResponseWriter, r *http.Request, err error) {
	reason := ReasonOriginDenied
	var oe *OriginError
	if errors.As(err, &oe) {
		reason = oe.Reason
	}
	p.log.Warn("livesocket: upgrade refused", "reason", reason, "origin", r.Header.Get("Origin"),
		"path", r.URL.Path, "remote", r.RemoteAddr)
	if p.onRefuse != nil {
		p.onRefuse(reason)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, "403 forbidden: live socket refused (%s): %s\n", reason, refusalText(reason, oe))
}

// refusalText tells the client (and the operator reading curl output)
// why an upgrade was refused, in the body as well as in the log. It
// quotes the offending Origin with %q, so nothing the client sent is
// echoed raw.
func refusalText(reason string, oe *OriginError) string {
	origin := ""
	if oe != nil {
		origin = oe.Origin
	}
	switch reason {
	case ReasonNoOrigin:
		return "the request has no Origin header; browsers always send one, a native client needs the server's allow-no-origin setting"
	case ReasonNullOrigin:
		return `Origin is "null" (a sandboxed frame, a file: page or a cross-site redirect), which is never allowed`
	case ReasonBadOrigin:
		return fmt.Sprintf("Origin %q is not a serialized origin (scheme://host[:port])", origin)
	case ReasonManyOrigins:
		return "more than one Origin header"
	}
	return fmt.Sprintf("Origin %q is not an allowed site for this socket (check_origin)", origin)
}
