package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/httpcache/cluster"
	"github.com/firstrender/firstrender/httpcache/livesocket"
	"github.com/firstrender/firstrender/httpcache/liveview"
	"github.com/firstrender/firstrender/store"
)

// Defaults of the server's own [Config] fields. The libraries' fields
// (Store, Cache, LiveView, Origins, Sockets) take their own packages'
// defaults.
const (
	DefaultListen          = ":8080"
	DefaultAdminListen     = "127.0.0.1:9090"
	DefaultDB              = "firstrender.db"
	DefaultShutdownTimeout = 10 * time.Second
)

// Config describes a firstrender server. The zero value is usable: the
// built-in demo origin behind the cache on [DefaultListen], the page store
// in [DefaultDB], /metrics on [DefaultAdminListen]. Every zero field takes
// the default its documentation names: the server's own below, the
// libraries' for the embedded library configs.
//
// [New] builds the wiring between the parts itself, so the library
// configs' wiring fields must be left zero: Cache.Upstream, Cache.Store,
// Cache.Inspector, Cache.Registerer, Sockets.Origin, Sockets.Policy,
// Sockets.Guard and Sockets.Registerer (New refuses them). Their loggers,
// when nil, are the server's Logger with a component attribute.
type Config struct {
	// Listen is the public listener's host:port (port 0: any free port,
	// see [Server.PublicAddr]). Empty means DefaultListen.
	Listen string
	// AdminListen is the admin listener's host:port: /metrics, /healthz
	// and what [Server.HandleAdmin] mounts. Nothing admin is ever served
	// on the public listener. Empty means DefaultAdminListen; keep it on
	// loopback (a warning is logged otherwise).
	AdminListen string
	// NoAdmin disables the admin listener (no /metrics). The admin API
	// is then served only on AdminSocket, if that is set.
	NoAdmin bool
	// AdminToken is the bearer token of the admin API (httpcache/admin,
	// mounted on the admin listener and AdminSocket; at least
	// admin.MinTokenLen bytes, see admin.ValidateToken). Empty means the
	// token kept in "<DB>.admin-token" (admin.TokenFile), generated there
	// with mode 0600 on first start and reused across restarts; the
	// start-up log names the file, never the token.
	AdminToken string
	// AdminSocket, if set, is the path of a unix socket serving what the
	// admin listener serves (the admin API, /metrics, /healthz), created
	// with mode 0600 (a stale socket left by a crash is replaced) and
	// removed on shutdown. The token is required there too.
	AdminSocket string
	// AdminMetricsAuth makes /metrics require the admin token as well.
	// False leaves it readable without one (the Prometheus convention on
	// a loopback listener).
	AdminMetricsAuth bool
	// Version is reported by the admin API's stats ("" reports "").
	Version string
	// PublicListener and AdminListener, when non-nil, are served instead
	// of binding Listen and AdminListen: listeners handed over by a
	// supervisor (systemd socket activation, see [SystemdListeners]), so
	// a restart never closes the port. Listen and AdminListen then only
	// name them in logs and errors. The Server owns them: Run's shutdown
	// (or Close) closes them. AdminListener with NoAdmin is refused.
	PublicListener, AdminListener net.Listener

	// Upstream is the origin's base URL (http or https). Nil starts the
	// built-in demo origin (package httpcache/demo) on a loopback port.
	Upstream *url.URL
	// PublicURL is how visitors reach the server (check_origin: true
	// allows its host; its host is cached by default). Nil means
	// http://localhost:<public port> for a wildcard or loopback listener,
	// else http://<ip>:<port>.
	PublicURL *url.URL
	// DB is the page store's bbolt file, created if missing. Empty means
	// DefaultDB.
	DB string

	// TrustForwarded keeps the client's X-Forwarded-For/-Proto/-Host, in
	// the cache and the socket broker alike (only behind a load balancer
	// that sets them). It is ORed with Cache.TrustForwarded and
	// Sockets.TrustForwarded.
	TrustForwarded bool
	// JoinGuardThreshold is the number of distinct clients whose LiveView
	// join of a cached page must fail before the entry stops being
	// served; negative only counts. Zero means
	// livesocket.DefaultGuardThreshold.
	JoinGuardThreshold int
	// ShutdownTimeout bounds the orderly shutdown after Run's context
	// ends (in-flight requests, brokered sockets, pending store writes).
	// Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger receives the server's log: start-up, one access line per
	// request (component=access), warnings, shutdown. Nil means
	// slog.Default().
	Logger *slog.Logger

	// Store configures the page store (store.Options). MaxObjectSize
	// zero takes Cache.MaxObjectSize when that is set, so the two agree.
	Store store.Options
	// Cache configures the caching proxy (httpcache.Config). Hosts nil
	// means "localhost", "127.0.0.1", "[::1]" and the PublicURL host (not
	// httpcache's default, the Upstream host: the server caches the names
	// it serves). BypassPrefixes nil means the socket paths plus each
	// one's Phoenix long-poll path (/live/websocket → /live/longpoll,
	// always including httpcache.LongpollPath). MaxObjectSize zero takes Store.MaxObjectSize
	// when that is set.
	Cache httpcache.Config
	// LiveView configures the first-render lint (liveview.Config) the
	// proxy runs on every response before storing it. LiveView.Splice,
	// when set, is also the proxy's Cache.Splicer (the session splice,
	// on Cache.SplicePaths: every path when nil).
	LiveView liveview.Config
	// Origins is the live socket Origin check (livesocket.OriginConfig).
	// PublicURL empty means this Config's PublicURL (or its default).
	Origins livesocket.OriginConfig
	// Sockets configures the live socket broker (livesocket.Config),
	// which runs with the join guard in front of the proxy.
	Sockets livesocket.Config

	// Cluster is the cluster mode (cluster.Config; docs/cluster.md). It
	// is off unless Cluster.NATSURL or Cluster.EmbeddedAddr is set: a
	// single node then starts no NATS code and behaves as without it.
	// With it, the node starts after the store and the proxy and closes
	// before the store; every invalidation (admin purges of scope
	// cluster, the §4.4 invalidations after unsafe methods, other nodes'
	// purges) goes through the proxy's one purge path, and the proxy
	// serves no hits while the node may have missed invalidations
	// (Cache-Status detail=cluster-catching-up). NodeID empty means
	// cluster.DefaultNodeID of the public listener; Address empty means
	// the public listener's address.
	Cluster cluster.Config
}

// Clustered reports whether c turns the cluster mode on.
func (c *Config) Clustered() bool { return c.Cluster.NATSURL != "" || c.Cluster.EmbeddedAddr != "" }

// check refuses what New would otherwise misuse: wiring fields set by the
// caller, and combinations no single library can see.
func (c *Config) check() error {
	var errs []error
	for name, set := range map[string]bool{
		"Cache.Upstream (use Upstream)":          c.Cache.Upstream != nil,
		"Cache.Store (use DB and Store)":         c.Cache.Store != nil,
		"Cache.Inspector (use LiveView)":         c.Cache.Inspector != nil,
		"Cache.Splicer (use LiveView.Splice)":    c.Cache.Splicer != nil,
		"Cache.Registerer":                       c.Cache.Registerer != nil,
		"Cache.OnEvent":                          c.Cache.OnEvent != nil,
		"Sockets.Origin (use Upstream)":          c.Sockets.Origin != nil,
		"Sockets.Policy (use Origins)":           c.Sockets.Policy != nil,
		"Sockets.Guard (use JoinGuardThreshold)": c.Sockets.Guard != nil,
		"Sockets.Registerer":                     c.Sockets.Registerer != nil,
		"Cache.HitGate (use Cluster)":            c.Cache.HitGate != nil,
		"Cache.Unsafe (use Cluster)":             c.Cache.Unsafe != nil,
	} {
		if set {
			errs = append(errs, fmt.Errorf("%s is set by the server; leave it zero", name))
		}
	}
	if c.Upstream != nil && c.PublicURL != nil && sameHostPort(c.Upstream, c.PublicURL) {
		errs = append(errs, fmt.Errorf("Upstream %s and PublicURL %s are the same address: the server would proxy to itself", c.Upstream, c.PublicURL))
	}
	if !c.NoAdmin && c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		errs = append(errs, fmt.Errorf("AdminListen %q equals Listen: admin endpoints must not be on the public listener", c.AdminListen))
	}
	if c.Cluster.NATSURL != "" && c.Cluster.EmbeddedAddr != "" {
		errs = append(errs, errors.New("Cluster.NATSURL and Cluster.EmbeddedAddr are both set: join an operator-run NATS or run one inside, not both"))
	}
	if c.AdminToken != "" {
		if err := admin.ValidateToken(c.AdminToken); err != nil {
			errs = append(errs, fmt.Errorf("AdminToken: %w", err))
		}
	}
	if c.AdminSocket != "" {
		if fi, err := os.Stat(filepath.Dir(c.AdminSocket)); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("AdminSocket %q: directory %s does not exist", c.AdminSocket, filepath.Dir(c.AdminSocket)))
		}
	}
	if c.NoAdmin && c.AdminListener != nil {
		errs = append(errs, errors.New("AdminListener is given but NoAdmin is set"))
	}
	if len(c.Cache.SplicePaths) > 0 && c.LiveView.Splice == nil {
		errs = append(errs, errors.New("Cache.SplicePaths is set without LiveView.Splice (the session splice needs the app's secret_key_base, session cookie and salts)"))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("ShutdownTimeout %v is negative", c.ShutdownTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server: invalid config: %w", err)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if c.DB == "" {
		c.DB = DefaultDB
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Store.MaxObjectSize == 0 {
		c.Store.MaxObjectSize = c.Cache.MaxObjectSize
	}
	if c.Cache.MaxObjectSize == 0 {
		c.Cache.MaxObjectSize = c.Store.MaxObjectSize
	}
	if c.Sockets.Paths == nil {
		c.Sockets.Paths = []string{livesocket.DefaultPath}
	}
	if c.Cache.BypassPrefixes == nil {
		c.Cache.BypassPrefixes = bypassPrefixes(c.Sockets.Paths)
	}
	c.Cache.TrustForwarded = c.Cache.TrustForwarded || c.TrustForwarded
	c.Sockets.TrustForwarded = c.Sockets.TrustForwarded || c.TrustForwarded
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

// FieldError is a failure that New or Run attributes to one Config
// field: an address that cannot be bound or served, a database file that
// cannot be opened. Front ends map Field to their own flag name.
type FieldError struct {
	Field string // "Listen", "AdminListen" or "DB"
	Value string // the field's value
	Err   error
}

func (e *FieldError) Error() string { return e.Field + " " + e.Value + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// bypassPrefixes are the socket paths and their Phoenix long-poll
// siblings: a socket mounted at "/live" serves "/live/websocket" and
// "/live/longpoll", neither of which may be cached.
func bypassPrefixes(paths []string) []string {
	out := append([]string{}, paths...)
	seen := map[string]bool{}
	for _, p := range paths {
		seen[p] = true
	}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		if base, ok := strings.CutSuffix(p, "/websocket"); ok {
			add(base + "/longpoll")
		}
	}
	add(httpcache.LongpollPath)
	return out
}

// Check validates cfg the way [New] does, without binding, opening or
// starting anything: the server's own combinations, the LiveView lint and
// Origin policies, the listen addresses' form and the database path (its
// directory exists and is writable; an existing file is a writable
// regular file). It is what `firstrender --check-config` runs. The store
// file's lock and content are not examined (a running server holds the
// lock), nor is the upstream contacted.
func Check(cfg Config) error {
	cfg.setDefaults()
	var errs []error
	if err := cfg.check(); err != nil {
		errs = append(errs, err)
	}
	if cfg.PublicListener == nil {
		if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
			errs = append(errs, &FieldError{"Listen", cfg.Listen, err})
		}
	}
	if !cfg.NoAdmin && cfg.AdminListener == nil {
		if _, _, err := net.SplitHostPort(cfg.AdminListen); err != nil {
			errs = append(errs, &FieldError{"AdminListen", cfg.AdminListen, err})
		}
	}
	if err := checkDBPath(cfg.DB); err != nil {
		errs = append(errs, &FieldError{"DB", cfg.DB, err})
	}
	if _, err := liveview.New(cfg.LiveView); err != nil {
		errs = append(errs, err)
	}
	oc := cfg.Origins
	if oc.PublicURL == "" {
		oc.PublicURL = "http://localhost"
		if cfg.PublicURL != nil {
			oc.PublicURL = cfg.PublicURL.String()
		}
	}
	if _, err := livesocket.NewOriginPolicy(oc); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
