package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/firstrender/firstrender/httpcache/demo"
)

// run starts the server described by cfg and blocks until ctx is cancelled
// (SIGINT/SIGTERM in main) or a listener fails. It then shuts down in order:
// stop accepting and finish in-flight requests (bounded by
// cfg.ShutdownTimeout) while brokered sockets are closed with 1001, flush
// pending store writes, close the database. The error is nil after a clean
// shutdown started by ctx.
func run(ctx context.Context, cfg config) (err error) {
	out := cfg.logOutput
	if out == nil {
		out = os.Stderr
	}
	logger := newLogger(out, cfg.LogFormat, cfg.LogLevel)
	reg := newRegistry()
	sm := newServerMetrics(reg)

	// Listeners first: a taken address fails before anything is opened,
	// and port 0 is resolved before the public URL is derived from it.
	publicLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", cfg.Listen, err)
	}
	defer publicLn.Close()
	var adminLn net.Listener
	if cfg.AdminListen != "" {
		adminLn, err = net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			return fmt.Errorf("--admin-listen %s: %w", cfg.AdminListen, err)
		}
		defer adminLn.Close()
	}

	upstream := cfg.Upstream
	var demoSrv *http.Server
	if upstream == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("demo origin: %w", err)
		}
		demoSrv = &http.Server{
			Handler:           demo.New(demo.Config{Logger: logger.With("component", "demo")}),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		}
		go demoSrv.Serve(ln)
		defer demoSrv.Close()
		upstream = &url.URL{Scheme: "http", Host: ln.Addr().String()}
		logger.Info("no --upstream given: serving the built-in demo origin", "listener", "demo", "addr", ln.Addr().String())
		if cfg.demoReady != nil {
			cfg.demoReady(upstream)
		}
	}
	publicURL := cfg.PublicURL
	if publicURL == nil {
		publicURL = derivePublicURL(publicLn.Addr())
	}

	w, err := wire(ctx, wireParams{
		cfg:       cfg,
		logger:    logger,
		reg:       reg,
		upstream:  upstream,
		publicURL: publicURL,
	})
	if err != nil {
		return err
	}
	defer w.closeStore() // no-op after the orderly close below

	var inflight sync.WaitGroup
	public := &http.Server{
		Handler:           accessLog(w.public, logger.With("component", "access"), sm, &inflight),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	var admin *http.Server
	errc := make(chan error, 2)
	go func() { errc <- serveErr("--listen", public.Serve(publicLn)) }()
	if adminLn != nil {
		admin = &http.Server{
			Handler:           adminHandler(reg, logger),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		}
		go func() { errc <- serveErr("--admin-listen", admin.Serve(adminLn)) }()
	}

	logger.Info("listening", "listener", "public", "addr", publicLn.Addr().String(), "public_url", publicURL.String(), "upstream", upstream.String(), "db", cfg.DB)
	var adminAddr net.Addr
	if adminLn != nil {
		adminAddr = adminLn.Addr()
		logger.Info("listening", "listener", "admin", "addr", adminAddr.String(), "metrics", "http://"+adminAddr.String()+"/metrics")
		if ip, ok := adminLn.Addr().(*net.TCPAddr); ok && !ip.IP.IsLoopback() {
			logger.Warn("the admin listener is not on loopback: anyone who can reach it reads /metrics", "addr", adminAddr.String())
		}
	} else {
		logger.Warn("admin listener disabled (--admin-listen is empty): no /metrics")
	}
	if demoSrv != nil {
		logger.Info("demo ready: "+publicURL.String()+"/ is cached (curl it twice: Cache-Status miss, then hit); "+publicURL.String()+"/account is per-user and refused (Cache-Status detail= says why)",
			"listener", "demo")
	}
	if cfg.ready != nil {
		cfg.ready(publicLn.Addr(), adminAddr)
	}

	var serveFailure error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "reason", context.Cause(ctx).Error(), "timeout", cfg.ShutdownTimeout.String())
	case serveFailure = <-errc:
		logger.Error("listener failed; shutting down", "err", serveFailure)
	}

	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	// Stop accepting and drain HTTP requests while the broker closes its
	// sockets (http.Server.Shutdown does not wait for hijacked connections).
	var wg sync.WaitGroup
	var shutdownErr, socketsErr error
	wg.Add(2)
	go func() { defer wg.Done(); shutdownErr = public.Shutdown(sctx) }()
	go func() { defer wg.Done(); socketsErr = w.closeSockets(sctx) }()
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
		errs = append(errs, fmt.Errorf("handlers still running after --shutdown-timeout %v", cfg.ShutdownTimeout))
	}
	if err := w.closeProxy(sctx); err != nil {
		errs = append(errs, fmt.Errorf("proxy: %w", err))
	}
	if admin != nil {
		if err := admin.Shutdown(sctx); err != nil {
			admin.Close()
		}
	}
	if demoSrv != nil {
		if err := demoSrv.Shutdown(sctx); err != nil {
			demoSrv.Close()
		}
	}
	if err := w.closeStore(); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	if serveFailure != nil {
		errs = append([]error{serveFailure}, errs...)
	}
	err = errors.Join(errs...)
	if err != nil {
		logger.Error("stopped with errors", "err", err)
	} else {
		logger.Info("stopped")
	}
	return err
}

func serveErr(flagName string, err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("%s: serve: %w", flagName, err)
}

// derivePublicURL is the URL a local visitor uses when --public-url is not
// given: http://localhost:<port> for a wildcard or loopback listener, else
// http://<ip>:<port>.
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
