package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/firstrender/firstrender/cmd/server/loadtest/page"
)

func writeExec(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// Detection: -x=off, a given path, PATH, the sbin fallback, absent.
func TestLookPeer(t *testing.T) {
	onPath, sbin, empty := t.TempDir(), t.TempDir(), t.TempDir()
	fake := writeExec(t, onPath, "nginx")
	fakeSbin := writeExec(t, sbin, "varnishd")
	notExec := filepath.Join(empty, "plain")
	os.WriteFile(notExec, []byte("x"), 0o644)
	old := peerSbinDirs
	t.Cleanup(func() { peerSbinDirs = old })
	t.Setenv("PATH", onPath)
	peerSbinDirs = []string{sbin}

	if p, why := lookPeer("nginx", "off", "nginx"); p != "" || !strings.Contains(why, "-nginx=off") {
		t.Errorf("off: %q %q", p, why)
	}
	if p, why := lookPeer("nginx", "", "nginx"); p != fake || why != "" {
		t.Errorf("on PATH: %q %q, want %q", p, why, fake)
	}
	if p, why := lookPeer("varnishd", "", "varnishd"); p != fakeSbin || why != "" {
		t.Errorf("sbin fallback: %q %q, want %q", p, why, fakeSbin)
	}
	if p, why := lookPeer("nginx", fakeSbin, "nginx"); p != fakeSbin || why != "" {
		t.Errorf("given path: %q %q", p, why)
	}
	if p, why := lookPeer("nginx", notExec, "nginx"); p != "" || !strings.Contains(why, "not an executable") {
		t.Errorf("not executable: %q %q", p, why)
	}
	t.Setenv("PATH", empty)
	peerSbinDirs = []string{empty}
	p, why := lookPeer("varnishd", "", "varnishd")
	if p != "" || !strings.HasPrefix(why, "skipped: varnishd not found") || !strings.Contains(why, "-varnishd") {
		t.Errorf("absent: %q %q", p, why)
	}
	// An absent peer is a skipped row, not a failure.
	e := &Env{varnishNote: why}
	if _, err := e.StartVarnish(context.Background(), &Proc{Addr: "127.0.0.1:1"}, PeerOpts{}); err == nil || err.Error() != why {
		t.Errorf("StartVarnish without varnishd: %v", err)
	}
}

// The generated configurations stay inside the run's directory, listen
// on the loopback port given, size the cache for the pages and, where the
// binary is installed, pass its own syntax check.
func TestPeerConfigs(t *testing.T) {
	dir := t.TempDir()
	e := &Env{Opts: Options{PageSize: 20480}}
	cb := e.cacheBytes(PeerOpts{Pages: 10_000})
	if want := int64(10_000 * 20480); cb < want {
		t.Errorf("cacheBytes(10,000 pages) = %d, less than the pages (%d)", cb, want)
	}
	conf := nginxConfig(dir, "127.0.0.1:18080", "127.0.0.1:18081", nginxUser(), cb, 10_000)
	for _, want := range []string{
		"daemon off;", "listen 127.0.0.1:18080 ", "server 127.0.0.1:18081;",
		"proxy_cache_path " + filepath.Join(dir, "cache") + " ", "keys_zone=fr:3m", "max_size=" + strconv.FormatInt(cb>>20, 10) + "m",
		"proxy_cache fr;", "proxy_cache_valid 200", "add_header X-Cache $upstream_cache_status",
		"pid " + filepath.Join(dir, "nginx.pid"), "proxy_set_header Upgrade $http_upgrade;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx config lacks %q:\n%s", want, conf)
		}
	}
	for _, bad := range []string{"/etc/", "/var/", "proxy_ignore_headers", "include "} {
		if strings.Contains(conf, bad) {
			t.Errorf("nginx config contains %q", bad)
		}
	}
	vcl := varnishVCL("127.0.0.1", "18081")
	for _, want := range []string{"vcl 4.1;", `.host = "127.0.0.1";`, `.port = "18081";`, "return (purge);", "obj.hits > 0", `X-Cache = "HIT"`} {
		if !strings.Contains(vcl, want) {
			t.Errorf("VCL lacks %q:\n%s", want, vcl)
		}
	}

	if bin, why := lookPeer("nginx", "", "nginx"); bin == "" {
		t.Logf("nginx syntax check skipped: %s", why)
	} else {
		f := filepath.Join(dir, "nginx.conf")
		os.WriteFile(f, []byte(conf), 0o600)
		out, err := exec.Command(bin, "-t", "-p", dir+"/", "-c", f, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
		if err != nil {
			t.Errorf("nginx -t: %v\n%s", err, out)
		}
	}
	if bin, why := lookPeer("varnishd", "", "varnishd"); bin == "" {
		t.Logf("VCL compile check skipped: %s", why)
	} else {
		f := filepath.Join(dir, "t.vcl")
		os.WriteFile(f, []byte(vcl), 0o600)
		out, err := exec.Command(bin, "-C", "-j", "none", "-n", filepath.Join(dir, "vwork"), "-f", f).CombinedOutput()
		if err != nil {
			t.Errorf("varnishd -C: %v\n%s", err, out)
		}
	}
}

// Each installed peer starts as the current user on a loopback port,
// caches what Cache-Control allows (and nothing marked no-store), says so
// in X-Cache (Varnish also with Age), is charged its whole process
// group's CPU, and leaves no process behind when stopped.
func TestPeersLive(t *testing.T) {
	var mu sync.Mutex
	served := map[string]int{}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served[r.URL.Path]++
		mu.Unlock()
		page.Header(w.Header(), 0)
		if strings.HasPrefix(r.URL.Path, "/ns/") {
			w.Header().Set("Cache-Control", "no-store")
		}
		w.Write(page.Body(2048, 0))
	}))
	defer origin.Close()
	env, err := newEnv(Options{PageSize: 2048, Dir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer env.cleanup()
	op := &Proc{Addr: strings.TrimPrefix(origin.URL, "http://")}
	for _, k := range []struct {
		name  string
		bin   string
		start func(context.Context, *Proc, PeerOpts) (*Proc, error)
		age   bool
	}{{"nginx", env.nginx, env.StartNginx, false}, {"varnish", env.varnishd, env.StartVarnish, true}} {
		t.Run(k.name, func(t *testing.T) {
			if k.bin == "" {
				t.Skipf("%s not installed", k.name)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, err := k.start(ctx, op, PeerOpts{Pages: 10})
			if err != nil {
				t.Fatal(err)
			}
			stopped := false
			defer func() {
				if !stopped {
					p.Stop()
				}
			}()
			c := &conn{addr: p.Addr}
			defer c.close()
			mu.Lock()
			clear(served)
			mu.Unlock()
			for _, path := range []string{"/p/1", "/ns/1"} {
				for i := range 3 {
					r, err := c.get(path)
					if err != nil || r.status != 200 || r.body != 2048 {
						t.Fatalf("GET %s: %+v %v", path, r, err)
					}
					wantHit := i > 0 && path == "/p/1"
					if r.hit != wantHit {
						t.Errorf("GET %s #%d: hit %v, want %v", path, i+1, r.hit, wantHit)
					}
					if wantHit && k.age && r.age < 0 {
						t.Errorf("GET %s #%d: a Varnish hit without Age", path, i+1)
					}
				}
			}
			// The miss scenario's check holds for the real peer.
			if err := checkStores(p.Addr); err != nil {
				t.Errorf("checkStores: %v", err)
			}
			mu.Lock()
			if served["/p/1"] != 1 || served["/ns/1"] != 3 {
				t.Errorf("origin served %v, want /p/1 once (then cached) and /ns/1 three times (no-store)", served)
			}
			mu.Unlock()
			if own, err := cpuTime(p.Pid()); err != nil {
				t.Error(err)
			} else if tree, err := p.cpu(); err != nil || tree < own {
				t.Errorf("group CPU %v (%v) below the leader's %v", tree, err, own)
			}
			pgid := p.Pid()
			t0 := time.Now()
			p.Stop()
			stopped = true
			if d := time.Since(t0); d > peerStopWait+2*time.Second {
				t.Errorf("Stop took %v", d)
			}
			if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process group %d still there after Stop: %v", pgid, err)
			}
		})
	}
}

// treeCPU includes the process itself.
func TestTreeCPU(t *testing.T) {
	own, err := cpuTime(os.Getpid())
	if err != nil {
		t.Skip(err)
	}
	tree, err := treeCPU(os.Getpid())
	if err != nil || tree < own {
		t.Errorf("treeCPU = %v, %v; own %v", tree, err, own)
	}
}

// A skipped peer's row says why and shows no figures (no 0 req/s, no
// ratios).
func TestPrintTableSkipped(t *testing.T) {
	var b strings.Builder
	ref := Measurement{RPS: 100, P99: time.Millisecond, CPUPerReq: time.Microsecond, Allocs: -1, GCShare: -1, HitRatio: -1}
	printTable(&b, []Row{
		{Scenario: "hot", Target: "baseline", M: ref},
		{Scenario: "hot", Target: "varnish", Note: "skipped: varnishd not found", Skipped: true},
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("table:\n%s", b.String())
	}
	f := strings.Fields(lines[2])
	if f[1] != "varnish" || f[2] != "-" || !strings.Contains(lines[2], "skipped: varnishd not found") || strings.Contains(lines[2], "0.00") {
		t.Errorf("skipped row %q", lines[2])
	}
}

// readSysIO counts this process's own writes: a write to a pipe adds at
// least one.
func TestReadSysIO(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	before, err := readSysIO(os.Getpid())
	if err != nil {
		t.Skipf("no /proc/<pid>/io here: %v", err)
	}
	for range 3 {
		if _, err := w.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	after, err := readSysIO(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after.writes - before.writes; d < 3 {
		t.Errorf("3 writes counted as %d", d)
	}
	p := &Proc{cmd: &exec.Cmd{Process: &os.Process{Pid: os.Getpid()}}, group: true}
	if tr, err := p.sysIO(); err != nil || tr.writes < after.writes {
		t.Errorf("group sysIO = %+v, %v; below the process's own %+v", tr, err, after)
	}
}
