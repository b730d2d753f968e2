package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// asMain is the variable that makes the test binary run realMain: the
// process tests start it as a real firstrender process.
const asMain = "FRTEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		os.Exit(realMain(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// proc is a firstrender child process with its log.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	seen chan struct{} // signalled on every log line
	done chan struct{}
	err  error
}

func (p *proc) logs() string { p.mu.Lock(); defer p.mu.Unlock(); return p.log.String() }

// waitLog waits until the log contains s (15s at most).
func (p *proc) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for !strings.Contains(p.logs(), s) {
		select {
		case <-p.seen:
		case <-p.done:
			if !strings.Contains(p.logs(), s) {
				t.Fatalf("process exited (%v) before logging %q; log:\n%s", p.err, s, p.logs())
			}
		case <-deadline:
			t.Fatalf("no %q in the log after 15s; log:\n%s", s, p.logs())
		}
	}
}

// wait returns the exit code once the process has exited (15s at most).
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("process did not exit; log:\n%s", p.logs())
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", p.err)
	return -1
}

// startProc runs firstrender (this test binary as main) with args and
// env. With files, they are passed as descriptors 3, 4, ... and the
// process is started through sh so that LISTEN_PID names the process
// itself, as systemd does (exec keeps the shell's pid).
func startProc(t *testing.T, args, env []string, files ...*os.File) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if len(files) > 0 {
		cmd = exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, exe}, args...)...)
	} else {
		cmd = exec.Command(exe, args...)
	}
	cmd.Env = append([]string{asMain + "=1", "PATH=" + os.Getenv("PATH")}, env...)
	cmd.ExtraFiles = files
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &proc{cmd: cmd, seen: make(chan struct{}, 1), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.seen <- struct{}{}:
			default:
			}
		}
	}()
	go func() { p.err = cmd.Wait(); pw.Close(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestProcess_SIGHUPIsLoggedNotFatal: a real process keeps serving after
// SIGHUP, says flags are read only at start, and still shuts down
// cleanly on SIGTERM.
func TestProcess_SIGHUPIsLoggedNotFatal(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := startProc(t, []string{"--listen", addr, "--admin-listen=", "--db", filepath.Join(t.TempDir(), "hup.db")}, nil)
	p.waitLog(t, "msg=listening listener=public")
	for i := range 2 {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for strings.Count(p.logs(), "SIGHUP received and ignored") <= i {
			p.waitLog(t, "SIGHUP received and ignored")
		}
	}
	if !strings.Contains(p.logs(), "flags and FIRSTRENDER_* variables are read only at start") {
		t.Errorf("SIGHUP log does not say the configuration is read only at start:\n%s", p.logs())
	}
	if code, _ := get(t, "http://"+addr+"/"); code != 200 {
		t.Errorf("GET / after SIGHUP: %d, want 200", code)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit after SIGHUP, SIGHUP, SIGTERM = %d, want 0; log:\n%s", code, p.logs())
	}
	if !strings.Contains(p.logs(), "msg=stopped") {
		t.Errorf("no clean shutdown in the log:\n%s", p.logs())
	}
}

// TestProcess_SocketActivationRestartWithoutAGap: the listening socket is
// passed as descriptor 3 (LISTEN_FDS=1, LISTEN_FDNAMES=public). A second
// process started on the same socket and database waits for the lock
// (--db-lock-wait) while the first still serves; the first is stopped and
// the second takes over: no request meets a closed port.
func TestProcess_SocketActivationRestartWithoutAGap(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := listenerFile(t, ln)
	defer f.Close()
	addr := ln.Addr().String()
	db := filepath.Join(t.TempDir(), "activated.db")
	args := []string{"--listen", "127.0.0.1:1", "--admin-listen=", "--db", db, "--db-lock-wait", "30s", "--log-format", "text"}
	env := []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=public"}

	a := startProc(t, args, env, f)
	a.waitLog(t, "msg=listening listener=public addr="+addr)
	if !strings.Contains(a.logs(), "socket activation: serving the passed sockets") {
		t.Errorf("first process does not log socket activation:\n%s", a.logs())
	}
	if code, body := get(t, "http://"+addr+"/"); code != 200 || !strings.Contains(body, "data-phx-session") {
		t.Fatalf("GET / from the activated process: %d", code)
	}

	b := startProc(t, args, env, f)
	// b binds nothing (the socket is passed) and waits for a's lock.
	select {
	case <-b.done:
		t.Fatalf("second process exited while the first held the database: %v\n%s", b.err, b.logs())
	default:
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 1)
	var served int
	go func() {
		// Requests all through the hand-over: each must be answered.
		c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for ctx.Err() == nil {
			res, err := c.Get("http://" + addr + "/")
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			served++
		}
		errs <- nil
	}()
	a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.wait(t); code != 0 {
		t.Errorf("first process exit %d, want 0; log:\n%s", code, a.logs())
	}
	b.waitLog(t, "msg=listening listener=public addr="+addr)
	if code, _ := get(t, "http://"+addr+"/"); code != 200 {
		t.Errorf("GET / from the second process: %d", code)
	}
	cancel()
	if err := <-errs; err != nil {
		t.Errorf("a request during the restart failed: %v (after %d served)\nfirst:\n%s\nsecond:\n%s", err, served, a.logs(), b.logs())
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	if code := b.wait(t); code != 0 {
		t.Errorf("second process exit %d; log:\n%s", code, b.logs())
	}
	if !strings.Contains(b.logs(), "store opened") {
		t.Errorf("second process never opened the store:\n%s", b.logs())
	}
	t.Logf("%d requests answered across the restart", served)
}

// listenerFile returns a descriptor for ln's socket that can be passed
// to children. Not ln.File(): exec calls Fd() on it, which switches the
// shared socket to blocking mode while the first child accepts on it
// (its accept then blocks in the kernel and shutdown cannot wake it).
// A dup of the raw descriptor is already non-blocking, so os.File leaves
// it alone.
func listenerFile(t *testing.T, ln net.Listener) *os.File {
	t.Helper()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = syscall.Dup(int(fd)) }); err != nil || derr != nil {
		t.Fatalf("dup: %v %v", err, derr)
	}
	syscall.CloseOnExec(nfd)
	return os.NewFile(uintptr(nfd), "listener")
}

// TestProcess_WarnsAboutTyposAndAPublicDemo: FIRSTRENDER_UPSTREM (a typo)
// starts the demo origin, as no flag reads it: the log says so once at
// start, with the variable meant, and warns that the demo is served on a
// non-loopback address.
func TestProcess_WarnsAboutTyposAndAPublicDemo(t *testing.T) {
	t.Parallel()
	p := startProc(t, []string{"--listen", "0.0.0.0:0", "--admin-listen=", "--db", filepath.Join(t.TempDir(), "typo.db")},
		[]string{"FIRSTRENDER_UPSTREM=http://127.0.0.1:4000"})
	p.waitLog(t, "msg=listening listener=public")
	p.waitLog(t, "demo origin is served on a non-loopback public address")
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
	const want = "FIRSTRENDER_UPSTREM is set but no flag of firstrender reads it: ignored (did you mean FIRSTRENDER_UPSTREAM, i.e. --upstream?)"
	if n := strings.Count(p.logs(), want); n != 1 {
		t.Errorf("the typo warning appears %d times, want once:\n%s", n, p.logs())
	}
}
