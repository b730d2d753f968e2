package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/httpcache/livesocket"
	"github.com/firstrender/firstrender/store"
)

// adminToken returns the admin API's token: Config.AdminToken, or the one
// kept in "<DB>.admin-token" (generated there, 0600, on first start and
// reused across restarts). The log names the file, never the token.
func (s *Server) adminToken() (string, error) {
	if tok := s.cfg.AdminToken; tok != "" {
		if err := admin.ValidateToken(tok); err != nil {
			return "", &FieldError{"AdminToken", admin.Redact(tok), err}
		}
		s.log.Info("admin API token given (--admin-token)", "token", admin.Redact(tok))
		return tok, nil
	}
	path := admin.TokenFile(s.cfg.DB)
	tok, created, err := admin.LoadOrCreateToken(path)
	if err != nil {
		return "", &FieldError{"AdminToken", path, err}
	}
	if created {
		s.log.Info("admin API token generated", "token_file", path)
	} else {
		s.log.Info("admin API token read", "token_file", path)
	}
	s.adminTokenFile = path
	return tok, nil
}

// buildAdmin mounts the admin API (httpcache/admin) on the admin mux, at
// "/" so that every admin path and the PURGE method reach it, behind
// /metrics, /healthz and /readyz; and opens the admin socket if
// configured. It runs after build, once the proxy and the broker exist.
func (s *Server) buildAdmin(token string) error {
	cfg := s.cfg
	h, err := admin.NewHandler(admin.HandlerConfig{
		Token:          token,
		Store:          s.store,
		Purger:         s.purgePath(),
		Cluster:        s.adminCluster(),
		Key:            s.proxy.RequestKey,
		Stats:          s.adminStats,
		Compact:        s.compactStore,
		Events:         s.events,
		Signer:         cfg.LiveView.Signer,
		LiveViewMaxAge: cfg.LiveView.LiveViewMaxAge,
		TokenMaxAge:    cfg.LiveView.TokenMaxAge,
		Registerer:     s.reg,
		Logger:         s.log.With("component", "admin"),
		Version:        cfg.Version,
	})
	if err != nil {
		return err
	}
	s.admin = h
	s.adminMux.Handle("/", h)
	if cfg.AdminSocket != "" {
		ln, err := listenUnix(cfg.AdminSocket)
		if err != nil {
			return &FieldError{"AdminSocket", cfg.AdminSocket, err}
		}
		s.adminSock = ln
	}
	return nil
}

// metricsAuth guards /metrics with the admin token (Config.AdminMetricsAuth):
// the same bearer check as the API, compared in constant time, with the
// API's fixed 401 body.
func metricsAuth(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="firstrender-admin"`)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"error": "unauthorized", "code": "unauthorized"}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// listenUnix binds the admin socket at path with mode 0600 from its
// first moment: it is bound in a private (0700) directory beside path,
// chmod-ed, then renamed into place. A stale socket left by a crash (one
// nothing answers on) is removed first; a live one, or any other file,
// is an error. The caller removes path on shutdown (removeSocket).
func listenUnix(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, errors.New("exists and is not a socket: remove it or choose another path")
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, errors.New("another process is serving on this socket")
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing the stale socket: %w", err)
		}
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".firstrender-sock-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // it is renamed: removeSocket unlinks path
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// removeSocket closes the admin socket and removes its file.
func (s *Server) removeSocket() {
	if s.adminSock == nil {
		return
	}
	s.adminSock.Close()
	if err := os.Remove(s.cfg.AdminSocket); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("cannot remove the admin socket", "path", s.cfg.AdminSocket, "err", err)
	}
}

// adminStats is the admin API's StatsSource: the proxy's counters, the
// broker's open sockets and the store's health (the handler adds the
// store's O(1) figures).
func (s *Server) adminStats() admin.Stats {
	f := s.proxy.Figures()
	st := admin.Stats{
		Instance:       s.publicLn.Addr().String(),
		Version:        s.cfg.Version,
		StartedAt:      s.started,
		Requests:       f.Requests,
		Hits:           f.Hits + f.Collapsed, // answered without an origin request of their own
		Misses:         f.Misses,
		Stale:          f.Stale,
		Revalidated:    f.Revalidated,
		Pass:           f.Pass,
		Errors:         f.Errors,
		OriginRequests: f.OriginRequests,
		OriginLatencyS: f.OriginLatency.Seconds(),
		Disabled:       f.Disabled,
		OpenSockets:    int64(s.broker.Open()),
	}
	for _, n := range s.store.Health().FailedWrites {
		st.StoreErrors += int64(n)
	}
	return st
}

// publishProxyEvent is the proxy's OnEvent: stores, disables and enables
// go to the admin API's event hub.
func (s *Server) publishProxyEvent(ev httpcache.Event) {
	s.events.Publish(admin.Event{Type: ev.Type, Key: ev.Key, Variant: ev.Variant, Reason: ev.Reason})
}

// watchEvictions publishes an "evict" event each second the store evicted
// or expired records (the store counts them; it does not name them),
// until ctx ends.
func (s *Server) watchEvictions(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := s.store.Stats()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.store.Stats()
		if d := now.Evictions - last.Evictions; d > 0 {
			s.events.Publish(admin.Event{Type: "evict", Reason: fmt.Sprintf("%d records evicted (max db size)", d)})
		}
		if d := now.Expired - last.Expired; d > 0 {
			s.events.Publish(admin.Event{Type: "evict", Reason: fmt.Sprintf("%d expired records removed", d)})
		}
		last = now
	}
}

// compactStore is the admin API's Compact on a running server: the store
// compacts its file in place (store.Store.CompactInPlace), so POST compact
// and cmd/admin compact work while the server serves. Hits and misses go
// on meanwhile (writes, such as fills, wait for the swap); the memory
// tier keeps its copies, since no record changes.
func (s *Server) compactStore(ctx context.Context) (admin.CompactResult, error) {
	before, after, err := s.store.CompactInPlace(ctx)
	if err != nil {
		return admin.CompactResult{}, err
	}
	return admin.CompactResult{BeforeBytes: before, AfterBytes: after}, nil
}

// proxyPurger is the admin API's Purger on a running server: every purge
// goes through the proxy (httpcache.Proxy.Purge: the store, the proxy's
// memory, fills under way) and then the join guard forgets its counts
// for what was purged.
type proxyPurger struct {
	proxy  *httpcache.Proxy
	broker *livesocket.Broker
	store  *store.Store
}

var _ admin.Purger = (*proxyPurger)(nil)

// Selection converts an admin API selector to the proxy's.
func Selection(sel admin.Selector) httpcache.Selection {
	hs := httpcache.Selection{Keys: sel.Keys, Prefix: sel.Prefix, Tag: sel.Tag, All: sel.All, Soft: sel.Soft}
	if sel.Key != "" {
		hs.Keys = []string{sel.Key}
	}
	return hs
}

// joinMatcher is the join guard's view of a selection (nil: every entry,
// for tags and all, which the guard cannot map to keys).
func joinMatcher(sel httpcache.Selection) func(string) bool {
	switch {
	case len(sel.Keys) > 0:
		set := make(map[string]bool, len(sel.Keys))
		for _, k := range sel.Keys {
			set[k] = true
		}
		return func(k string) bool { return set[k] }
	case sel.Prefix != "":
		return func(k string) bool { return strings.HasPrefix(k, sel.Prefix) }
	}
	return nil
}

func (pp *proxyPurger) Purge(ctx context.Context, sel admin.Selector) (int, error) {
	hs := Selection(sel)
	n, err := pp.proxy.Purge(ctx, hs)
	if ferr := pp.broker.ForgetJoins(ctx, joinMatcher(hs)); err == nil && ferr != nil {
		err = fmt.Errorf("join guard: %w", ferr)
	}
	return n, err
}

// Enable serves the variant again and clears the join guard's count of
// refused joins for it (the annotation and the guard's memory), so it is
// counted afresh.
func (pp *proxyPurger) Enable(ctx context.Context, key, variant string) error {
	if err := pp.proxy.Enable(ctx, key, variant); err != nil {
		return err
	}
	if err := pp.store.Annotate(ctx, key, variant, map[string]string{livesocket.AnnotationJoinFailures: ""}); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return pp.broker.ForgetJoins(ctx, func(k string) bool { return k == key })
}
