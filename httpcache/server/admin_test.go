package server

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/admin"
)

const testToken = "test-admin-token-0123456789abcdef"

// adminClient is an admin API client for s with token.
func adminClient(t *testing.T, base, token string) *admin.Client {
	t.Helper()
	c, err := admin.NewClient(base, token, admin.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestAdmin_TokenFileGeneratedWithMode0600AndReused: without a token the
// server generates one into <db>.admin-token (0600), logs the file's path
// but never the token, and a restart on the same database reuses it.
func TestAdmin_TokenFileGeneratedWithMode0600AndReused(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	db := filepath.Join(t.TempDir(), "fr.db")
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), DB: db})
	path := db + admin.TokenFileSuffix
	if got := s.srv.AdminTokenFile(); got != path {
		t.Errorf("AdminTokenFile() = %q, want %q", got, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(b))
	if _, err := adminClient(t, s.admin, token).Stats(tctx(t)); err != nil {
		t.Fatalf("Stats with the generated token: %v", err)
	}
	var ae *admin.Error
	if _, err := adminClient(t, s.admin, testToken).Stats(tctx(t)); !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("Stats with another token: %v, want a 401", err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, path) {
		t.Errorf("start-up log does not name the token file %s:\n%s", path, logs)
	}
	if strings.Contains(logs, token) {
		t.Errorf("the log holds the token")
	}

	s2 := startServer(t, Config{Upstream: mustURL(t, origin.URL), DB: db})
	if _, err := adminClient(t, s2.admin, token).Stats(tctx(t)); err != nil {
		t.Errorf("after a restart the old token: %v, want it reused", err)
	}
	if !strings.Contains(s2.logs.String(), "admin API token read") {
		t.Errorf("second start did not read the token file:\n%s", s2.logs)
	}
}

// TestAdmin_GivenTokenIsUsedAndNoFileWritten: Config.AdminToken wins; no
// token file appears beside the database.
func TestAdmin_GivenTokenIsUsedAndNoFileWritten(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	db := filepath.Join(t.TempDir(), "fr.db")
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), DB: db, AdminToken: testToken})
	if _, err := adminClient(t, s.admin, testToken).Stats(tctx(t)); err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if _, err := os.Stat(db + admin.TokenFileSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("token file exists with a given token (stat: %v)", err)
	}
	if strings.Contains(s.logs.String(), testToken) {
		t.Errorf("the log holds the token")
	}
	if _, err := New(testConfig(t, Config{Upstream: mustURL(t, origin.URL), AdminToken: "short"}, io.Discard)); err == nil {
		t.Errorf("New with a 5-byte token succeeded")
	} else if strings.Contains(err.Error(), "short") {
		t.Errorf("the error holds the token: %v", err)
	}
}

// TestAdmin_NothingAdminOnThePublicListener: every admin path, the PURGE
// method and /metrics are plain origin paths on the public listener, with
// or without the token.
func TestAdmin_NothingAdminOnThePublicListener(t *testing.T) {
	t.Parallel()
	origin, counts := countingOrigin(t)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), AdminToken: testToken})
	paths := []struct{ method, path string }{
		{"GET", "/admin/v1/stats"}, {"GET", "/admin/v1/entries"}, {"GET", "/admin/v1/entry"},
		{"POST", "/admin/v1/purge"}, {"GET", "/admin/v1/purges"}, {"GET", "/admin/v1/events"},
		{"POST", "/admin/v1/enable"}, {"POST", "/admin/v1/decode"}, {"POST", "/admin/v1/check"},
		{"POST", "/admin/v1/compact"}, {"GET", "/admin/"}, {"GET", "/metrics"}, {"GET", "/healthz"},
		{"GET", "/readyz"}, {"PURGE", "/page"}, {"PURGE", "/admin/v1/stats"},
	}
	for _, p := range paths {
		for _, withToken := range []bool{false, true} {
			before := hits(counts, p.path)
			req, _ := http.NewRequest(p.method, s.public+p.path, strings.NewReader(`{"all": true, "confirm": "all"}`))
			if withToken {
				req.Header.Set("Authorization", "Bearer "+testToken)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if hits(counts, p.path) != before+1 || !strings.Contains(string(body), "origin says hello from "+p.path) {
				t.Errorf("public %s %s (token %v) = %d %q; want the origin's answer", p.method, p.path, withToken, res.StatusCode, body)
			}
		}
	}
	// And the admin listener has them.
	if res, _ := fetch(t, "GET", s.admin+"/admin/v1/stats"); res.StatusCode != 401 {
		t.Errorf("admin GET /admin/v1/stats without token = %d, want 401", res.StatusCode)
	}
	if st, err := adminClient(t, s.admin, testToken).Stats(tctx(t)); err != nil || st.Requests == 0 {
		t.Errorf("admin Stats = %+v, %v; want the public requests counted", st, err)
	}
}

// TestAdmin_UnixSocket: --admin-socket serves the API with mode 0600, and
// the socket file is removed on shutdown; a stale socket is replaced.
func TestAdmin_UnixSocket(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	// Unix socket paths are short (108 bytes): not t.TempDir's long name.
	dir, err := os.MkdirTemp("", "frsock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "admin.sock")
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), AdminToken: testToken, AdminSocket: sock, NoAdmin: true})
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want a socket with 0600", fi.Mode())
	}
	c := adminClient(t, "unix://"+sock, testToken)
	if _, err := c.Stats(tctx(t)); err != nil {
		t.Fatalf("Stats over the socket: %v", err)
	}
	var ae *admin.Error
	if _, err := adminClient(t, "unix://"+sock, "wrong-token-0123456789").Stats(tctx(t)); !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("wrong token over the socket: %v, want 401", err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file left after shutdown (lstat: %v)", err)
	}

	// A regular file in the way is refused, naming the field.
	if err := os.WriteFile(sock, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = New(testConfig(t, Config{Upstream: mustURL(t, origin.URL), AdminToken: testToken, AdminSocket: sock}, io.Discard))
	if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Field != "AdminSocket" {
		t.Errorf("New over a regular file = %v, want an AdminSocket FieldError", err)
	}
}

// TestAdmin_MetricsAuth: with AdminMetricsAuth, /metrics needs the token.
func TestAdmin_MetricsAuth(t *testing.T) {
	t.Parallel()
	origin, _ := countingOrigin(t)
	open := startServer(t, Config{Upstream: mustURL(t, origin.URL), AdminToken: testToken})
	if res, _ := fetch(t, "GET", open.admin+"/metrics"); res.StatusCode != 200 {
		t.Errorf("/metrics without auth = %d, want 200", res.StatusCode)
	}
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), AdminToken: testToken, AdminMetricsAuth: true})
	if res, _ := fetch(t, "GET", s.admin+"/metrics"); res.StatusCode != 401 {
		t.Errorf("/metrics without token = %d, want 401", res.StatusCode)
	}
	req, _ := http.NewRequest("GET", s.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("/metrics with the token = %d, want 200", res.StatusCode)
	}
	if res, _ := fetch(t, "GET", s.admin+"/healthz"); res.StatusCode != 200 {
		t.Errorf("/healthz = %d, want 200 (probes stay open)", res.StatusCode)
	}
}

// TestAdmin_PurgesReachTheProxy: purges through the mounted API (the
// PURGE method, POST purge by prefix, soft) act on the running proxy:
// the purged page's next request goes to the origin, others still hit,
// and a soft purge's mark (admin.AnnotationSoftPurged) is the one the
// proxy's freshness check honours.
func TestAdmin_PurgesReachTheProxy(t *testing.T) {
	t.Parallel()
	origin, counts := countingOrigin(t)
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), AdminToken: testToken})
	c := adminClient(t, s.admin, testToken)
	for _, p := range []string{"/a/1", "/a/2", "/b"} {
		fetch(t, "GET", s.public+p)
	}
	s.stored(t)
	get := func(p string) string {
		res, _ := fetch(t, "GET", s.public+p)
		return res.Header.Get("Cache-Status")
	}
	isHit := func(cs string) bool { return strings.Contains(cs, "firstrender; hit") }

	res, err := c.PurgeURL(tctx(t), s.public+"/a/1", false)
	if err != nil || res.Count != 1 {
		t.Fatalf("PURGE /a/1 = %+v, %v; want 1", res, err)
	}
	if cs := get("/a/1"); isHit(cs) || hits(counts, "/a/1") != 2 {
		t.Errorf("after PURGE: /a/1 %q (origin %d); want a miss", cs, hits(counts, "/a/1"))
	}
	if cs := get("/a/2"); !isHit(cs) {
		t.Errorf("after PURGE /a/1: /a/2 %q, want a hit", cs)
	}
	s.stored(t)

	key, err := s.srv.Proxy().Key(s.public + "/a/2")
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimSuffix(key, "2")
	res, err = c.Purge(tctx(t), admin.PurgeRequest{Prefix: prefix, Soft: true})
	if err != nil || res.Count != 2 {
		t.Fatalf("soft prefix purge = %+v, %v; want 2", res, err)
	}
	rec, err := s.srv.Store().Get(tctx(t), key, "")
	if err != nil {
		t.Fatalf("soft purge removed the record: %v", err)
	}
	if _, ok := rec.Annotations[admin.AnnotationSoftPurged]; !ok {
		t.Fatalf("record lacks %s: %v", admin.AnnotationSoftPurged, rec.Annotations)
	}
	if cs := get("/a/2"); isHit(cs) || !strings.Contains(cs, "fwd=stale") || hits(counts, "/a/2") != 2 {
		t.Errorf("after the soft purge: /a/2 %q (origin %d); want revalidated (fwd=stale)", cs, hits(counts, "/a/2"))
	}
	if cs := get("/b"); !isHit(cs) {
		t.Errorf("after the soft purge of %s: /b %q, want a hit", prefix, cs)
	}

	st, err := c.Stats(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Hits < 2 || st.Misses < 3 || st.OriginRequests < 5 || st.Entries != 3 || st.Instance == "" {
		t.Errorf("Stats = %+v; want the proxy's counters and the store's figures", st)
	}
}
