package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/httpcache/httpcachetest"
	"github.com/firstrender/firstrender/httpcache/server"
	"github.com/firstrender/firstrender/store/storetest"
)

func TestMain(m *testing.M) {
	// The default admin address must not reach a server another process
	// on this machine may run on 127.0.0.1:9090: point it at a port that
	// was just closed, so "nothing answers at the default" is what the
	// tests meet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defaultAdmin = "http://" + ln.Addr().String()
	ln.Close()
	os.Exit(m.Run())
}

// liveServer is a real firstrender server (server.New, the demo origin)
// on loopback ports, with its admin API reachable at admin with the token
// in tokenFile.
type liveServer struct {
	srv       *server.Server
	db        string
	public    string // http://127.0.0.1:PORT
	admin     string // http://127.0.0.1:PORT
	tokenFile string
	logs      *httpcachetest.SyncBuffer
	cancel    context.CancelFunc
	done      chan error
}

const testAdminToken = "cmd-admin-test-token-0123456789abcdef"

// startServer runs a server on db (a new file in t.TempDir() when "")
// until stop or the end of the test.
//
// Until httpcache/server mounts the admin API itself, the test mounts
// admin.NewHandler over the server's store on its admin listener, with a
// StorePurger: the same API and client as the real wiring, without the
// proxy forgetting what it remembers of a purged page.
func startServer(t *testing.T, db string) *liveServer {
	t.Helper()
	if db == "" {
		db = filepath.Join(t.TempDir(), "firstrender.db")
	}
	logs := &httpcachetest.SyncBuffer{}
	srv, err := server.New(server.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", DB: db,
		ShutdownTimeout: 5 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatalf("server.New: %v\n%s", err, logs)
	}
	tokenFile := admin.TokenFile(db)
	if err := os.WriteFile(tokenFile, []byte(testAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := admin.NewHandler(admin.HandlerConfig{
		Token: testAdminToken, Store: srv.Store(), Purger: &admin.StorePurger{Store: srv.Store()},
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Version: "test",
		// As httpcache/server wires it (TestAdmin_CompactOnline there).
		Compact: func(ctx context.Context) (admin.CompactResult, error) {
			b, a, err := srv.Store().CompactInPlace(ctx)
			return admin.CompactResult{BeforeBytes: b, AfterBytes: a}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.HandleAdmin("/admin/", h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &liveServer{srv: srv, db: db, tokenFile: tokenFile, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-s.done:
		t.Fatalf("Run returned before it was ready: %v\n%s", err, logs)
	}
	s.public = "http://" + srv.PublicAddr().String()
	s.admin = "http://" + srv.AdminAddr().String()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop ends Run and waits for it (idempotent).
func (s *liveServer) stop(t *testing.T) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("server Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("server did not stop\n%s", s.logs)
	}
	storetest.Check(t, s.db)
}

// get requests path through the public listener and returns the
// response's Cache-Status and body.
func (s *liveServer) get(t *testing.T, path string) (status, body string) {
	t.Helper()
	res, err := http.Get(s.public + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s = %d\n%s", path, res.StatusCode, b)
	}
	return res.Header.Get("Cache-Status"), string(b)
}

// stored waits until the proxy's pending store writes committed.
func (s *liveServer) stored(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Proxy().Wait(ctx); err != nil {
		t.Fatalf("Proxy.Wait: %v", err)
	}
}

// demoPaths are the demo origin's cacheable pages the tests store.
var demoPaths = []string{"/", "/?p=1", "/?p=2"}

// seeded starts a server and stores the demo pages through it.
func seeded(t *testing.T) *liveServer {
	t.Helper()
	s := startServer(t, "")
	for _, p := range demoPaths {
		s.get(t, p)
	}
	s.get(t, "/account") // refused by the lint: never stored
	s.stored(t)
	return s
}

// seededFile returns a database holding the demo pages, with no server
// running, and the public base URL its keys were stored under.
func seededFile(t *testing.T) (db, public string) {
	t.Helper()
	s := seeded(t)
	s.stop(t)
	return s.db, s.public
}

// flags are the connection flags that reach s.
func (s *liveServer) flags() []string {
	return []string{"--admin", s.admin, "--token-file", s.tokenFile}
}

type result struct {
	code           int
	stdout, stderr string
}

// admin runs the command line in process with the environment vars.
func adminCmd(t *testing.T, stdin string, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		lookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	code := mainCtx(context.Background(), args, e)
	return result{code, out.String(), errb.String()}
}

// want fails the test unless r exited with code.
func (r result) want(t *testing.T, code int, args ...string) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("admin %q: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, r.code, code, r.stdout, r.stderr)
	}
	return r
}

// expect is adminCmd without stdin or variables, wanting exit code.
func expect(t *testing.T, code int, args ...string) result {
	t.Helper()
	return adminCmd(t, "", nil, args...).want(t, code, args...)
}
