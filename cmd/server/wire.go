package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/livesocket"
	"github.com/firstrender/firstrender/httpcache/liveview"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
	"github.com/firstrender/firstrender/store"
	"github.com/prometheus/client_golang/prometheus"
)

type wireParams struct {
	cfg       config
	logger    *slog.Logger
	reg       prometheus.Registerer
	upstream  *url.URL
	publicURL *url.URL
}

// wired is what run serves and shuts down.
type wired struct {
	public       http.Handler
	closeSockets func(context.Context) error // close brokered sockets with 1001
	closeProxy   func(context.Context) error // wait for background stores
	closeStore   func() error                // idempotent
}

// storeLockWait is how long Open waits for another process's file lock.
const storeLockWait = 2 * time.Second

// wire opens the store and builds the LiveView lint, the caching proxy and
// the live socket broker in front of it. On error everything it opened is
// closed again.
func wire(ctx context.Context, p wireParams) (w *wired, err error) {
	cfg := p.cfg
	st, err := store.Open(cfg.DB, store.Options{
		Timeout:        storeLockWait,
		MaxSize:        cfg.MaxDBSize,
		MaxObjectSize:  cfg.MaxObjectSize,
		ExpireInterval: cfg.ExpireEvery,
		Logger:         p.logger.With("component", "store"),
	})
	switch {
	case errors.Is(err, store.ErrLocked):
		return nil, fmt.Errorf("--db %s: the database is locked by another process (is another firstrender running on it?): %w", cfg.DB, err)
	case errors.Is(err, store.ErrCorrupt):
		return nil, fmt.Errorf("--db %s: not a firstrender database or damaged (move it aside to start empty): %w", cfg.DB, err)
	case errors.Is(err, store.ErrVersion):
		return nil, fmt.Errorf("--db %s: written by a newer firstrender: %w", cfg.DB, err)
	case err != nil:
		return nil, fmt.Errorf("--db %s: %w", cfg.DB, err)
	}
	var closeOnce sync.Once
	var closeErr error
	closeStore := func() error {
		closeOnce.Do(func() { closeErr = st.Close() })
		return closeErr
	}
	defer func() {
		if err != nil {
			closeStore()
		}
	}()
	stats := st.Stats()
	p.logger.Info("store opened", "db", cfg.DB, "records", stats.Records, "bytes", stats.Bytes, "max_db_size", cfg.MaxDBSize)

	lint, err := newLinter(cfg)
	if err != nil {
		return nil, err
	}

	hcfg := httpcache.Config{
		Upstream:             p.upstream,
		Store:                st,
		Logger:               p.logger.With("component", "proxy"),
		Registerer:           p.reg,
		Inspector:            lint,
		Hosts:                cachedHosts(cfg, p.publicURL),
		IgnoreParams:         append([]string{}, cfg.IgnoreParams...), // non-nil: an empty list ignores nothing
		BypassPrefixes:       append(append([]string{}, cfg.SocketPaths...), "/live/longpoll"),
		MaxObjectSize:        cfg.MaxObjectSize,
		MaxBuffered:          cfg.MaxBuffered,
		StaleWhileRevalidate: cfg.StaleWhileRevalidate,
		StaleIfError:         cfg.StaleIfError,
		OriginTimeout:        cfg.OriginTimeout,
		TrustForwarded:       cfg.TrustForwarded,
	}
	if cfg.UncachedHosts == "refuse" {
		hcfg.OtherHosts = httpcache.RefuseHost
	}
	if cfg.SetCookie == "strip" {
		hcfg.StripSetCookie = []string{"/"}
	} else {
		hcfg.StripSetCookie = cfg.StripSetCookie
	}
	proxy, err := httpcache.New(hcfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			proxy.Close(context.Background())
		}
	}()

	oc, err := livesocket.ParseCheckOrigin(cfg.CheckOrigin, cfg.AllowAnyOrigin)
	if err != nil {
		return nil, fmt.Errorf("--check-origin: %w", err)
	}
	oc.PublicURL = p.publicURL.String()
	oc.AllowMissing = cfg.AllowNoOrigin
	oc.Logger = p.logger.With("component", "livesocket")
	policy, err := livesocket.NewOriginPolicy(oc)
	if err != nil {
		return nil, fmt.Errorf("--check-origin: %w", err)
	}
	idle := cfg.SocketIdleTimeout
	if idle == 0 {
		idle = -1 // livesocket: negative disables
	}
	broker, err := livesocket.New(livesocket.Config{
		Origin:         p.upstream,
		Policy:         policy,
		Paths:          cfg.SocketPaths,
		ReadLimit:      cfg.SocketReadLimit,
		IdleTimeout:    idle,
		MaxSockets:     cfg.MaxSockets,
		TrustForwarded: cfg.TrustForwarded,
		Guard: &livesocket.GuardConfig{
			Cache:     proxy,
			Annotator: st,
			Threshold: cfg.JoinGuardThreshold,
		},
		Registerer: p.reg,
		Logger:     p.logger.With("component", "livesocket"),
	})
	if err != nil {
		return nil, err
	}
	origins := "true (localhost)"
	if h := p.publicURL.Hostname(); h != "localhost" {
		origins = "true (" + h + " and localhost)"
	}
	if len(oc.Allowed) > 0 {
		origins = fmt.Sprint(oc.Allowed)
	} else if oc.CheckOff {
		origins = "any (--check-origin=false)"
	}
	p.logger.Info("live sockets", "paths", cfg.SocketPaths, "check_origin", origins, "allow_no_origin", cfg.AllowNoOrigin, "max_sockets", cfg.MaxSockets)

	return &wired{
		public:       broker.Wrap(proxy),
		closeSockets: broker.Shutdown,
		closeProxy:   proxy.Close,
		closeStore:   closeStore,
	}, nil
}

// newLinter builds the LiveView lint from the --lv-* flags.
func newLinter(cfg config) (*liveview.Linter, error) {
	policy := map[liveview.Kind]liveview.Action{}
	for _, f := range []struct {
		flag, value string
		kind        liveview.Kind
	}{
		{"--lv-csrf", cfg.LVCSRF, liveview.KindCSRFMeta},
		{"--lv-set-cookie", cfg.LVSetCookie, liveview.KindSetCookie},
		{"--lv-session", cfg.LVSession, liveview.KindUserSession},
	} {
		a, err := liveview.ParseAction(f.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.flag, err)
		}
		policy[f.kind] = a
	}
	margin := cfg.LVMargin
	if margin == 0 {
		margin = -1 // liveview: negative means no margin; zero would mean the default
	}
	lc := liveview.Config{Policy: policy, LiveViewMaxAge: cfg.LVMaxAge, Margin: margin}
	if cfg.LVSecretKey != "" {
		s, err := phxtoken.NewSigner(cfg.LVSecretKey, cfg.LVSigningSalt)
		if err != nil {
			return nil, fmt.Errorf("--lv-secret-key-base: %w", err)
		}
		lc.Signer = s
	}
	l, err := liveview.New(lc)
	if err != nil {
		return nil, fmt.Errorf("--lv-*: %w", err)
	}
	return l, nil
}

// cachedHosts is --hosts, or by default the loopback names plus the public
// URL's host, so the one-command demo caches and a production deployment
// caches only the name it was told it serves.
func cachedHosts(cfg config, publicURL *url.URL) []string {
	if cfg.Hosts != nil {
		out := make([]string, 0, len(cfg.Hosts))
		for _, h := range cfg.Hosts {
			if net.ParseIP(h) != nil && net.ParseIP(h).To4() == nil {
				h = "[" + h + "]"
			}
			out = append(out, h)
		}
		return out
	}
	hosts := []string{"localhost", "127.0.0.1", "[::1]"}
	if h := publicURL.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
		if net.ParseIP(h) != nil && net.ParseIP(h).To4() == nil {
			h = "[" + h + "]"
		}
		hosts = append(hosts, h)
	}
	return hosts
}
