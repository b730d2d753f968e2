package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The smoke test of issue 10: the real cmd/server binary with a seeded
// database, and the real TUI (the built cmd/admin binary) in tmux, driven
// with send-keys and read with capture-pane. It needs tmux (.ci/run
// installs it) and a server that serves the admin API.

// smokeDeadline bounds every wait on the outside processes.
const smokeDeadline = 30 * time.Second

// buildBinary builds the main package pkg into dir.
func buildBinary(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP polls url until it answers (any status) or the deadline.
func waitHTTP(t *testing.T, url string, logs func() string) *http.Response {
	t.Helper()
	deadline := time.Now().Add(smokeDeadline)
	for {
		res, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within %v: %v\n%s", url, smokeDeadline, err, logs())
		}
		time.Sleep(50 * time.Millisecond) // waiting on another process
	}
}

// tmuxSession is a detached tmux session on a private server socket.
type tmuxSession struct {
	t      *testing.T
	socket string
	name   string
	// stderr is the file the TUI's stderr goes to, read when a wait fails.
	stderr string
}

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %q: %v\n%s", args, err, out)
	}
	return string(out)
}

func (s *tmuxSession) capture() string { return s.tmux("capture-pane", "-p", "-t", s.name) }

// keys sends tmux key names (Enter, Tab, Escape) or literal text with
// literal set.
func (s *tmuxSession) keys(literal bool, keys ...string) {
	s.t.Helper()
	args := []string{"send-keys", "-t", s.name}
	if literal {
		args = append(args, "-l")
	}
	s.tmux(append(args, keys...)...)
}

// waitFor polls the pane until ok accepts it, within smokeDeadline.
func (s *tmuxSession) waitFor(what string, ok func(screen string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(smokeDeadline)
	for {
		screen := s.capture()
		if ok(screen) {
			return screen
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the TUI did not show %s within %v; screen:\n%s\n%s", what, smokeDeadline, screen, s.diagnose())
		}
		time.Sleep(50 * time.Millisecond) // waiting on another process
	}
}

// diagnose explains a failed wait: the pane's processes and their kernel
// state, then the TUI's stderr after a SIGQUIT, which makes the Go runtime
// print every goroutine's stack there (the shell keeps the pane open).
func (s *tmuxSession) diagnose() string {
	var b strings.Builder
	out, err := exec.Command("tmux", "-L", s.socket, "-f", "/dev/null", "display-message", "-p", "-t", s.name, "#{pane_pid} #{pane_tty} #{pane_width}x#{pane_height} dead=#{pane_dead}").CombinedOutput()
	fmt.Fprintf(&b, "pane: %s (%v)\n", strings.TrimSpace(string(out)), err)
	pane := strings.Fields(string(out))
	if len(pane) > 0 {
		ps, _ := exec.Command("ps", "-o", "pid,ppid,stat,wchan:24,etime,args", "--ppid", pane[0], "-p", pane[0]).CombinedOutput()
		fmt.Fprintf(&b, "ps:\n%s", ps)
		if kids, err := exec.Command("pgrep", "-P", pane[0]).Output(); err == nil {
			for _, pid := range strings.Fields(string(kids)) {
				if comm, _ := os.ReadFile("/proc/" + pid + "/comm"); strings.TrimSpace(string(comm)) == "admin" {
					exec.Command("kill", "-QUIT", pid).Run()
				}
			}
		}
	}
	// The runtime writes the dump, then exits 2: wait for the shell's echo.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) { // waiting on another process
		if c, _ := exec.Command("tmux", "-L", s.socket, "-f", "/dev/null", "capture-pane", "-p", "-t", s.name).Output(); strings.Contains(string(c), "EXITED") {
			break
		}
	}
	if s.stderr != "" {
		e, err := os.ReadFile(s.stderr)
		fmt.Fprintf(&b, "TUI stderr (%v):\n%s", err, e)
	}
	return b.String()
}

func (s *tmuxSession) waitText(subs ...string) string {
	s.t.Helper()
	return s.waitFor(fmt.Sprintf("%q", subs), func(screen string) bool {
		for _, sub := range subs {
			if !strings.Contains(screen, sub) {
				return false
			}
		}
		return true
	})
}

// smokeServer starts the built server binary on a new database and
// returns its public and admin base URLs; it skips the test when the
// server does not serve the admin API.
func smokeServer(t *testing.T, bin, db string) (public, adminURL string) {
	t.Helper()
	pub, adm := freeAddr(t), freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--db", db, "--listen", pub, "--admin-listen", adm)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "FIRSTRENDER_LOG_LEVEL=info")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(smokeDeadline):
			cmd.Process.Kill()
			<-done
		}
	})
	public, adminURL = "http://"+pub, "http://"+adm
	waitHTTP(t, adminURL+"/healthz", logs.String)
	if res := waitHTTP(t, adminURL+"/admin/v1/stats", logs.String); res.StatusCode != http.StatusUnauthorized {
		t.Skipf("the server binary does not serve the admin API yet (GET /admin/v1/stats without a token = %d, want 401): the wiring of httpcache/admin into httpcache/server has not landed", res.StatusCode)
	}
	return public, adminURL
}

func cacheStatus(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s = %d", url, res.StatusCode)
	}
	return res.Header.Get("Cache-Status")
}

// listed reports whether the list on screen has a row for key (the
// status line may name it too).
func listed(screen, key string) bool {
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(l, "  "+key+" ") || strings.HasPrefix(l, "▸ "+key+" ") {
			return true
		}
	}
	return false
}

func TestSmoke_TUIInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke test: builds two binaries")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (.ci/run installs it): skipping the TUI smoke test")
	}
	dir := t.TempDir()
	serverBin := buildBinary(t, dir, "github.com/firstrender/firstrender/cmd/server")
	db := filepath.Join(dir, "firstrender.db")
	public, adminURL := smokeServer(t, serverBin, db)
	adminBin := buildBinary(t, dir, "github.com/firstrender/firstrender/cmd/admin")

	// Seed: the demo pages through the server, so they are stored; the
	// second request of each is a hit.
	for _, p := range demoPaths {
		cacheStatus(t, public+p)
	}
	deadline := time.Now().Add(smokeDeadline)
	for _, p := range demoPaths {
		for !strings.Contains(cacheStatus(t, public+p), "; hit") {
			if time.Now().After(deadline) {
				t.Fatalf("%s never became a hit", p)
			}
			time.Sleep(20 * time.Millisecond) // the server stores a miss beside the response
		}
	}

	s := &tmuxSession{t: t, socket: fmt.Sprintf("fr-smoke-%d-%d", os.Getpid(), time.Now().UnixNano()), name: "admin", stderr: filepath.Join(dir, "tui.stderr")}
	// The shell keeps the pane open after the TUI exits, to read its code;
	// the TUI's stderr goes to a file, read when a wait fails.
	cmdline := fmt.Sprintf("env NO_COLOR=1 TERM=xterm-256color GOTRACEBACK=all %s --admin %s --db %s 2>%s; echo EXITED $?; sleep 600", adminBin, adminURL, db, s.stderr)
	s.tmux("new-session", "-d", "-s", s.name, "-x", "120", "-y", "40", cmdline)
	t.Cleanup(func() { exec.Command("tmux", "-L", s.socket, "kill-server").Run() })

	target := public + "/?p=1"
	screen := s.waitText("rows 1-3 of ~3", public+"/?p=2", "RW")
	t.Logf("list:\n%s", screen)

	// Filter on the server: a word is a substring.
	s.keys(false, "/")
	s.keys(true, "p=1")
	s.keys(false, "Enter")
	screen = s.waitFor("the filtered list", func(sc string) bool {
		return strings.Contains(sc, "matches 1-1") && strings.Contains(sc, target) && !strings.Contains(sc, public+"/?p=2")
	})

	// Open the entry, go to its tokens, decode the first.
	s.keys(false, "Enter")
	screen = s.waitText("[overview]", "why this ttl", target)
	t.Logf("detail:\n%s", screen)
	// One key at a time: keys read together arrive as one message.
	s.keys(false, "l")
	s.waitText("[headers]")
	s.keys(false, "l")
	s.waitText("[body]")
	s.keys(false, "l")
	screen = s.waitText("[tokens 2]", "data-phx-session")
	s.keys(false, "Enter")
	screen = s.waitText("Decode a Phoenix token", "signed at", "countdown", "signature")
	t.Logf("decode:\n%s", screen)

	// Back to the entry, purge it: the dialog counts first, Cancel is the
	// default, tab moves to Purge.
	s.keys(false, "q")
	s.waitText("[tokens 2]")
	s.keys(false, "d")
	screen = s.waitText("dry run: 1", "Purge 1")
	t.Logf("purge dialog:\n%s", screen)
	s.keys(false, "Tab")
	s.waitText("▸[ Purge 1 ]◂")
	s.keys(false, "Enter")
	// The purge closes the entry's screen: back on the filtered list,
	// which no longer has it.
	screen = s.waitText("purged 1", "no entries match contains:p=1")
	t.Logf("purged:\n%s", screen)

	// Gone from the list, the others still there.
	s.keys(false, "Escape")
	screen = s.waitFor("the list without the purged entry", func(sc string) bool {
		return strings.Contains(sc, "rows 1-2 of") && listed(sc, public+"/?p=2") && listed(sc, public+"/") && !listed(sc, target)
	})
	t.Logf("after the purge:\n%s", screen)

	// The next request for the purged page is a miss; the others hit.
	if cs := cacheStatus(t, target); !strings.Contains(cs, "fwd=") || strings.Contains(cs, "; hit") {
		t.Errorf("GET %s after the purge: Cache-Status %q, want a miss", target, cs)
	}
	if cs := cacheStatus(t, public+"/?p=2"); !strings.Contains(cs, "; hit") {
		t.Errorf("GET /?p=2 after purging /?p=1: Cache-Status %q, want a hit", cs)
	}

	s.keys(false, "q")
	s.waitText("EXITED 0")
}
