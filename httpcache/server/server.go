// Package server is firstrender's composition root: it assembles the page
// store, the LiveView lint, the caching proxy, the live socket broker, the
// access log and metrics, the admin listener and (without an upstream) the
// demo origin into one [Server], and owns their start-up and shutdown
// order. cmd/server is this package behind flags; tests and the features
// that plug into the server (the admin API, the cluster mode) use it
// directly.
//
//	srv, err := server.New(server.Config{Upstream: u, DB: "fr.db"})
//	if err != nil { ... }
//	srv.HandleAdmin("/api/", api) // optional, before Run
//	err = srv.Run(ctx)            // until ctx ends, then an orderly shutdown
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/httpcache/cluster"
	"github.com/firstrender/firstrender/httpcache/demo"
	"github.com/firstrender/firstrender/httpcache/hop"
	"github.com/firstrender/firstrender/httpcache/livesocket"
	"github.com/firstrender/firstrender/httpcache/liveview"
	"github.com/firstrender/firstrender/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Server is an assembled firstrender. New opens everything (listeners
// bound, store open, demo origin serving); Run serves until its context
// ends and then shuts down in order; Close releases a Server that is never
// Run. The accessors may be called at any time and from any goroutine.
type Server struct {
	cfg    Config
	log    *slog.Logger
	reg    *prometheus.Registry
	ready  chan struct{}
	runMu  sync.Mutex
	ran    bool
	closed bool

	publicLn, adminLn net.Listener
	publicURL         *url.URL
	upstream          *url.URL
	demo              *http.Server // nil with an Upstream
	adminMux          *http.ServeMux

	store  *store.Store
	proxy  *httpcache.Proxy
	broker *livesocket.Broker
	lint   *liveview.Linter

	readiness *readiness

	// The admin API (admin.go): nil with neither admin listener nor socket.
	admin *admin.Handler
	// The cluster mode (cluster.go): nil when Config.Cluster is off.
	node           *cluster.Node
	clusterAPI     *clusterAdmin
	purger         *proxyPurger // the proxy's purge path, shared by the admin API and the node
	events         *admin.Events
	adminSock      *net.UnixListener // Config.AdminSocket
	adminTokenFile string            // "" when the token was given
	started        time.Time
}

// New validates cfg, binds the listeners (a taken address fails here,
// before anything is opened), starts the demo origin when cfg.Upstream is
// nil, opens the store and builds the lint, proxy and broker. Errors about
// an address or the database are *[FieldError]s; on any error everything
// New opened is closed again.
func New(cfg Config) (_ *Server, err error) {
	cfg.setDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, reg: newRegistry(), ready: make(chan struct{}), readiness: &readiness{},
		events: admin.NewEvents(0), started: time.Now()}
	defer func() {
		if err != nil {
			s.release()
		}
	}()

	if s.publicLn = cfg.PublicListener; s.publicLn == nil {
		if s.publicLn, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, &FieldError{"Listen", cfg.Listen, err}
		}
	}
	if !cfg.NoAdmin {
		if s.adminLn = cfg.AdminListener; s.adminLn == nil {
			if s.adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
				return nil, &FieldError{"AdminListen", cfg.AdminListen, err}
			}
		}
	}

	s.upstream = cfg.Upstream
	if s.upstream == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("demo origin: %w", err)
		}
		s.demo = &http.Server{
			Handler:           demo.New(demo.Config{Logger: s.log.With("component", "demo")}),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		go s.demo.Serve(ln)
		s.upstream = &url.URL{Scheme: "http", Host: ln.Addr().String()}
		s.log.Info("no upstream given: serving the built-in demo origin", "listener", "demo", "addr", ln.Addr().String())
	}
	s.publicURL = cfg.PublicURL
	if s.publicURL == nil {
		s.publicURL = derivePublicURL(s.publicLn.Addr())
	}

	if err := s.openStore(); err != nil {
		return nil, err
	}
	var token string
	if !cfg.NoAdmin || cfg.AdminSocket != "" {
		if token, err = s.adminToken(); err != nil {
			return nil, err
		}
		var guard func(http.Handler) http.Handler
		if cfg.AdminMetricsAuth {
			guard = func(h http.Handler) http.Handler { return metricsAuth(token, h) }
		}
		s.adminMux = adminMuxWith(s.reg, s.log, s.readiness, guard)
	}
	if err := s.build(); err != nil {
		return nil, err
	}
	if err := s.newCluster(); err != nil {
		return nil, err
	}
	if s.adminMux != nil {
		if err := s.buildAdmin(token); err != nil {
			return nil, err
		}
	}
	if err := s.startCluster(); err != nil {
		return nil, err
	}
	s.readiness.store, s.readiness.origin = s.store, s.upstream
	return s, nil
}

func (s *Server) openStore() error {
	cfg := s.cfg
	opts := cfg.Store
	if opts.Logger == nil {
		opts.Logger = s.log.With("component", "store")
	}
	if err := checkDBPath(cfg.DB); err != nil {
		return &FieldError{"DB", cfg.DB, err}
	}
	// A cache is disposable: a damaged or foreign file is moved aside
	// (<db>.corrupt-<time>, logged with the reason) and the server starts
	// empty; damage met while serving is handled the same way.
	opts.SetAsideCorrupt = true
	st, err := store.Open(cfg.DB, opts)
	switch {
	case errors.Is(err, store.ErrLocked):
		wait := opts.Timeout
		if wait == 0 {
			wait = time.Second // store's default
		}
		return &FieldError{"DB", cfg.DB, &LockError{Wait: wait, Err: err}}
	case errors.Is(err, store.ErrCorrupt):
		return &FieldError{"DB", cfg.DB, fmt.Errorf("not a firstrender database or damaged, and it could not be moved aside (move it yourself to start empty): %w", err)}
	case errors.Is(err, store.ErrVersion):
		return &FieldError{"DB", cfg.DB, fmt.Errorf("written by a newer firstrender: %w", err)}
	case errors.Is(err, fs.ErrPermission):
		return &FieldError{"DB", cfg.DB, errors.New("permission denied: the file (or its directory) is not writable by this user")}
	case err != nil:
		return &FieldError{"DB", cfg.DB, err}
	}
	s.store = st
	stats := st.Stats()
	s.log.Info("store opened", "db", cfg.DB, "records", stats.Records, "bytes", stats.Bytes, "max_db_size", opts.MaxSize)
	return nil
}

// build makes the lint, the proxy and the broker.
func (s *Server) build() error {
	cfg := s.cfg
	if cfg.LiveView.Splice != nil {
		cfg.LiveView.Splice = cfg.LiveView.Splice.WithLogger(s.log.With("component", "liveview"))
	}
	lint, err := liveview.New(cfg.LiveView)
	if err != nil {
		return err
	}
	s.lint = lint

	hc := cfg.Cache
	hc.Upstream, hc.Store, hc.Inspector, hc.Registerer = s.upstream, s.store, lint, s.reg
	hc.OnEvent = s.publishProxyEvent
	if cfg.LiveView.Splice != nil { // not a typed nil in the interface
		hc.Splicer = cfg.LiveView.Splice // the lint's, so both use the same keys
	}
	if hc.Logger == nil {
		hc.Logger = s.log.With("component", "proxy")
	}
	if hc.Hosts == nil {
		hc.Hosts = defaultHosts(s.publicURL)
	}
	if cfg.Clustered() {
		hc.HitGate, hc.Unsafe = s.hitGate, s.unsafeInvalidate
	}
	if s.proxy, err = httpcache.New(hc); err != nil {
		return err
	}

	oc := cfg.Origins
	if oc.PublicURL == "" {
		oc.PublicURL = s.publicURL.String()
	}
	if oc.Logger == nil {
		oc.Logger = s.log.With("component", "livesocket")
	}
	policy, err := livesocket.NewOriginPolicy(oc)
	if err != nil {
		return err
	}
	sc := cfg.Sockets
	sc.Origin, sc.Policy, sc.Registerer = s.upstream, policy, s.reg
	if sc.Via == "" {
		// The handshakes the broker forwards name this gateway as the
		// proxy's requests do.
		switch v := cfg.Cache.Via; v {
		case "":
			sc.Via = httpcache.CacheName
		case "-":
		default:
			sc.Via = v
		}
	}
	sc.Guard = &livesocket.GuardConfig{Cache: s.proxy, Annotator: s.store, Threshold: cfg.JoinGuardThreshold}
	if sc.Logger == nil {
		sc.Logger = s.log.With("component", "livesocket")
	}
	if s.broker, err = livesocket.New(sc); err != nil {
		return err
	}
	origins := "true (loopback only)"
	if h, _ := url.Parse(oc.PublicURL); h != nil && h.Host != "" {
		origins = "true (" + h.Scheme + "://" + h.Host + " only: scheme, host and port)"
	}
	if len(oc.Allowed) > 0 {
		origins = fmt.Sprint(oc.Allowed)
	} else if oc.CheckOff {
		origins = "any (check_origin false)"
	}
	s.log.Info("live sockets", "paths", sc.Paths, "check_origin", origins, "allow_no_origin", oc.AllowMissing, "max_sockets", sc.MaxSockets)
	s.logPolicy(hc, origins, oc)
	return nil
}

// logPolicy writes the one start-up line an operator reads to know what
// will be cached and what is refused: the cached hosts and what happens
// to others, the Set-Cookie rule, every lint kind's action, the socket
// Origin allow-list and whether token signatures are verified.
func (s *Server) logPolicy(hc httpcache.Config, origins string, oc livesocket.OriginConfig) {
	other := "pass"
	if hc.OtherHosts == httpcache.RefuseHost {
		other = "refuse"
	}
	setCookie := "refuse"
	if len(hc.StripSetCookie) > 0 {
		setCookie = "strip on " + strings.Join(hc.StripSetCookie, ",")
	}
	lint := make([]string, 0, len(liveview.Kinds))
	for _, k := range liveview.Kinds {
		lint = append(lint, string(k)+"="+s.lint.Policy(k).String())
	}
	sig := "not verified (no secret_key_base given)"
	if s.cfg.LiveView.Signer != nil {
		sig = "verified"
	}
	splice := "off"
	if sp := s.cfg.LiveView.Splice; sp != nil { // its name and kind only: never the secret

		kind := "signed"
		if sp.Encrypted() {
			kind = "encrypted"
		}
		splice = fmt.Sprintf("cookie %s (%s) on %s", sp.CookieName(), kind, strings.Join(s.proxy.SplicePaths(), ","))
	}
	s.log.Info("cache policy",
		"hosts", strings.Join(hc.Hosts, ","),
		"other_hosts", other,
		"set_cookie", setCookie,
		"ignore_params", strings.Join(hc.IgnoreParams, ","),
		"lint", strings.Join(lint, " "),
		"check_origin", origins,
		"allow_no_origin", oc.AllowMissing,
		"token_signatures", sig,
		"session_splice", splice,
	)
}

// defaultHosts are the loopback names plus the public URL's host, so the
// one-command demo caches and a deployment caches only the name it was
// told it serves.
func defaultHosts(publicURL *url.URL) []string {
	hosts := []string{"localhost", "127.0.0.1", "[::1]"}
	switch h := publicURL.Hostname(); h {
	case "localhost", "127.0.0.1", "::1":
	default:
		if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
			h = "[" + h + "]"
		}
		hosts = append(hosts, h)
	}
	return hosts
}

// derivePublicURL is the URL a local visitor uses when Config.PublicURL is
// not given: http://localhost:<port> for a wildcard or loopback listener,
// else http://<ip>:<port>.
func derivePublicURL(a net.Addr) *url.URL {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return &url.URL{Scheme: "http", Host: a.String()}
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() || ip.IsLoopback() {
		host = "localhost"
	}
	p, _ := strconv.Atoi(port)
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, strconv.Itoa(p))}
}

// PublicAddr is the public listener's bound address (port 0 resolved).
func (s *Server) PublicAddr() net.Addr { return s.publicLn.Addr() }

// AdminAddr is the admin listener's bound address, or nil with NoAdmin.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// Store is the open page store. It is closed by Run's shutdown (or
// Close); the caller must not close it.
func (s *Server) Store() *store.Store { return s.store }

// Proxy is the caching proxy (entries, purges, outcomes).
func (s *Server) Proxy() *httpcache.Proxy { return s.proxy }

// Broker is the live socket broker (open sockets, the join guard).
func (s *Server) Broker() *livesocket.Broker { return s.broker }

// Registry holds every metric the server serves on /metrics: Go runtime,
// process, store, proxy, broker and access-log series. Parts plugged into
// the server register their own on it.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// HandleAdmin mounts h on the admin listener's mux for pattern
// (http.ServeMux syntax; it panics, as ServeMux does, on an invalid or
// conflicting pattern, e.g. "GET /metrics"). It may be called before or
// while Run serves. With Config.NoAdmin there is no admin listener and
// HandleAdmin returns an error.
func (s *Server) HandleAdmin(pattern string, h http.Handler) error {
	if s.adminMux == nil {
		return errors.New("server: the admin listener is disabled (Config.NoAdmin)")
	}
	s.adminMux.Handle(pattern, h)
	return nil
}

// Admin is the admin API handler mounted on the admin listener and
// socket, or nil when there is neither (Config.NoAdmin without
// AdminSocket). Its Events hub is where parts plugged into the server
// (the cluster mode) publish what they do.
func (s *Server) Admin() *admin.Handler { return s.admin }

// AdminTokenFile is the token file the admin API's token was read from or
// generated into, or "" when Config.AdminToken gave it.
func (s *Server) AdminTokenFile() string { return s.adminTokenFile }

// Ready is closed once Run serves both listeners (the "listening" lines
// are logged just before).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Close releases a Server that is not going to be Run: listeners, demo
// origin, proxy (waiting for nothing) and store. It is a no-op after Run
// has been called; end Run's context instead.
func (s *Server) Close() error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.ran || s.closed {
		return nil
	}
	s.closed = true
	return s.release()
}

// release closes whatever New opened, without waiting.
func (s *Server) release() error {
	var errs []error
	if err := s.closeCluster(); err != nil {
		errs = append(errs, fmt.Errorf("cluster: %w", err))
	}
	if s.broker != nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.broker.Shutdown(ctx)
	}
	if s.proxy != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		s.proxy.Close(ctx)
		cancel()
	}
	if s.demo != nil {
		s.demo.Close()
	}
	for _, ln := range []net.Listener{s.publicLn, s.adminLn} {
		if ln != nil {
			ln.Close()
		}
	}
	s.removeSocket()
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Run serves the public listener (broker in front of the proxy, behind the
// access log) and the admin listener until ctx ends or a listener fails.
// It then shuts down in order: stop accepting and finish in-flight
// requests while brokered sockets are closed with 1001 (bounded by
// ShutdownTimeout), wait for pending store writes, stop the admin
// listener and the demo origin, close the store. The error is nil after a
// clean shutdown started by ctx. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.runMu.Lock()
	if s.ran || s.closed {
		s.runMu.Unlock()
		return errors.New("server: Run called twice, or after Close")
	}
	s.ran = true
	s.runMu.Unlock()

	cfg, log := s.cfg, s.log
	var inflight sync.WaitGroup
	acc := &acceptGate{}
	public := &http.Server{
		Handler:           acc.handler(accessLog(s.broker.Wrap(s.proxy), log.With("component", "access"), cfg.TrustForwarded, &inflight)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// The whole header block; single values and the field count are
		// bounded lower, at the origin's limits, by the proxy (431).
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext:    acc.publicConnContext,
		ConnState:      acc.connState,
	}
	// Ambiguous framing (Content-Length with Transfer-Encoding, a bare LF
	// in a chunk line) is refused below net/http, which accepts the first.
	publicLn := acc.listen(hop.GuardListener(s.publicLn))
	errc := make(chan error, 3)
	go func() { errc <- serveErr("Listen", cfg.Listen, public.Serve(publicLn)) }()
	// The admin listeners drain alike: a passed admin socket is handed
	// to the next process as the public one is.
	serveAdmin := func(ln net.Listener, field, value string) *drained {
		d := &drained{}
		d.srv = &http.Server{
			Handler:           d.gate.handler(s.adminMux),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
			ConnContext:       d.gate.connContext,
			ConnState:         d.gate.connState,
		}
		d.ln = d.gate.listen(ln)
		go func() { errc <- serveErr(field, value, d.srv.Serve(d.ln)) }()
		return d
	}
	var admin, sock *drained
	if s.adminLn != nil {
		admin = serveAdmin(s.adminLn, "AdminListen", cfg.AdminListen)
	}
	if s.adminSock != nil {
		sock = serveAdmin(s.adminSock, "AdminSocket", cfg.AdminSocket)
		log.Info("listening", "listener", "admin-socket", "path", cfg.AdminSocket, "mode", "0600")
	}
	evCtx, evStop := context.WithCancel(context.Background())
	defer evStop()
	go s.watchEvictions(evCtx)

	log.Info("listening", "listener", "public", "addr", s.publicLn.Addr().String(), "public_url", s.publicURL.String(), "upstream", s.upstream.String(), "db", cfg.DB)
	if s.adminLn != nil {
		a := s.adminLn.Addr()
		log.Info("listening", "listener", "admin", "addr", a.String(), "metrics", "http://"+a.String()+"/metrics", "healthz", "http://"+a.String()+"/healthz", "readyz", "http://"+a.String()+"/readyz",
			"admin_api", "http://"+a.String()+"/admin/v1/", "metrics_auth", cfg.AdminMetricsAuth)
		if ip, ok := a.(*net.TCPAddr); ok && !ip.IP.IsLoopback() {
			log.Warn("the admin listener is not on loopback: anyone who can reach it reads /metrics", "addr", a.String())
		}
	} else {
		log.Warn("admin listener disabled: no /metrics")
	}
	if s.demo != nil {
		if ip, ok := s.publicLn.Addr().(*net.TCPAddr); ok && !ip.IP.IsLoopback() {
			log.Warn("the built-in demo origin is served on a non-loopback public address: anyone who can reach it gets the demo, not your application; give --upstream (FIRSTRENDER_UPSTREAM) or listen on 127.0.0.1",
				"listener", "demo", "addr", s.publicLn.Addr().String())
		}
		u := s.publicURL.String()
		log.Info("demo ready: "+u+"/ is cached (curl it twice: Cache-Status miss, then hit); "+u+"/account is per-user and refused (Cache-Status detail= says why)",
			"listener", "demo")
	}
	close(s.ready)

	var serveFailure error
	select {
	case <-ctx.Done():
		s.readiness.stopping.Store(true)
		log.Info("shutting down", "reason", context.Cause(ctx).Error(), "timeout", cfg.ShutdownTimeout.String())
	case serveFailure = <-errc:
		s.readiness.stopping.Store(true)
		log.Error("listener failed; shutting down", "err", serveFailure)
	}

	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	// Stop accepting and drain HTTP requests while the broker closes its
	// sockets (http.Server.Shutdown does not wait for hijacked connections).
	var wg sync.WaitGroup
	var shutdownErr, socketsErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		// Stop accepting first, and let the connections already accepted
		// reach their handler: http.Server.Shutdown drops a connection
		// whose first request is read after it began, unanswered. With a
		// passed socket the next process accepts what is still queued.
		shutdownErr = acc.drain(sctx, public, publicLn)
	}()
	go func() { defer wg.Done(); socketsErr = s.broker.Shutdown(sctx) }()
	wg.Wait()
	if shutdownErr != nil {
		errs = append(errs, fmt.Errorf("public listener: %w", shutdownErr))
		public.Close()
	}
	if socketsErr != nil {
		errs = append(errs, fmt.Errorf("live sockets: %w", socketsErr))
	}
	// Handlers of hijacked connections (brokered sockets) may still be
	// unwinding after the broker closed them.
	handlersDone := make(chan struct{})
	go func() { inflight.Wait(); close(handlersDone) }()
	select {
	case <-handlersDone:
	case <-sctx.Done():
		errs = append(errs, fmt.Errorf("handlers still running after the shutdown timeout %v", cfg.ShutdownTimeout))
	}
	if err := s.proxy.Close(sctx); err != nil {
		errs = append(errs, fmt.Errorf("proxy: %w", err))
	}
	for _, d := range []*drained{admin, sock} {
		if d != nil {
			if err := d.gate.drain(sctx, d.srv, d.ln); err != nil {
				d.srv.Close()
			}
		}
	}
	if sock != nil {
		s.removeSocket()
	}
	if s.demo != nil {
		if err := s.demo.Shutdown(sctx); err != nil {
			s.demo.Close()
		}
	}
	// The node applies invalidations to the store: it stops first.
	if err := s.closeCluster(); err != nil {
		errs = append(errs, fmt.Errorf("cluster: %w", err))
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	if serveFailure != nil {
		errs = append([]error{serveFailure}, errs...)
	}
	err := errors.Join(errs...)
	if err != nil {
		log.Error("stopped with errors", "err", err)
	} else {
		log.Info("stopped")
	}
	return err
}

func serveErr(field, value string, err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return &FieldError{field, value, fmt.Errorf("serve: %w", err)}
}
