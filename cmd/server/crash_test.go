package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
)

// crashBody is what the test origin serves for page n: 1-30 KB, the
// page's number repeated, so a stored body can be checked byte for byte.
func crashBody(n int) []byte {
	size := 1024 + (n*7919)%(29*1024)
	return bytes.Repeat([]byte(strconv.Itoa(n)+"."), size/(len(strconv.Itoa(n))+1))
}

// TestProcess_KillNineUnderWriteLoad: a real firstrender process stores
// misses and applies invalidations (POST) from 6 concurrent clients and
// is killed with SIGKILL at a random moment, 6 times on the same file.
// Every restart opens the file (nothing is set aside) and serves; at the
// end bbolt's check and every record's checksums pass, and every stored
// body is byte for byte what the origin served for that URL.
func TestProcess_KillNineUnderWriteLoad(t *testing.T) {
	t.Parallel()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/p/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		b := crashBody(n)
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	}))
	defer origin.Close()
	db := filepath.Join(t.TempDir(), "crash.db")
	rnd := rand.New(rand.NewPCG(11, 2))
	const rounds = 6
	var stored atomic.Int64
	for round := range rounds {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		p := startProc(t, []string{"--listen", addr, "--admin-listen=", "--db", db, "--upstream", origin.URL,
			"--log-format", "text", "--log-level", "warn", "--db-lock-wait", "10s"}, nil)
		waitServing(t, p, "http://"+addr+"/p/0")
		if strings.Contains(p.logs(), "moved it aside") || strings.Contains(p.logs(), "corrupt") {
			t.Fatalf("round %d: the restart after kill -9 found the file damaged:\n%s", round, p.logs())
		}
		ctx, stop := context.WithCancel(context.Background())
		var ok atomic.Int64
		var wg sync.WaitGroup
		c := &http.Client{Timeout: 5 * time.Second}
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for ctx.Err() == nil {
					n := r.IntN(3000)
					method := http.MethodGet
					if r.IntN(10) == 0 {
						method = http.MethodPost
					}
					req, _ := http.NewRequestWithContext(ctx, method, fmt.Sprintf("http://%s/p/%d", addr, n), nil)
					res, err := c.Do(req)
					if err != nil {
						continue // killed
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if strings.Contains(res.Header.Get("Cache-Status"), "stored") {
						stored.Add(1)
					}
					ok.Add(1)
				}
			}()
		}
		// Kill at a random moment once writes are flowing.
		for ok.Load() < 30 {
			select {
			case <-p.done:
				t.Fatalf("round %d: the process exited under load:\n%s", round, p.logs())
			case <-time.After(5 * time.Millisecond):
			}
		}
		time.Sleep(time.Duration(rnd.IntN(400)) * time.Millisecond) // the random kill moment, not a synchronization
		p.cmd.Process.Signal(syscall.SIGKILL)
		if code := p.wait(t); code != 128+int(syscall.SIGKILL) {
			t.Fatalf("round %d: exit %d, want killed", round, code)
		}
		stop()
		wg.Wait()
	}
	if stored.Load() == 0 {
		t.Fatal("no response was stored: the load did not write")
	}
	storetest.Check(t, db) // bbolt's check, every record's checksums
	st, err := store.Open(db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var records int
	for page, after := (store.Page{}), ""; ; after = page.Next {
		page, err = st.Scan(ctx, store.ScanOptions{After: after, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Entries {
			rec, err := st.Get(ctx, m.Key, m.Variant)
			if err != nil {
				t.Errorf("%s: %v", m.Key, err)
				continue
			}
			i := strings.LastIndex(rec.Key, "/p/")
			n, err := strconv.Atoi(rec.Key[i+3:])
			if i < 0 || err != nil {
				t.Errorf("unexpected key %q", rec.Key)
				continue
			}
			if rec.Status != 200 || !bytes.Equal(rec.Body, crashBody(n)) {
				t.Errorf("%s: status %d, %d body bytes differ from the origin's %d", rec.Key, rec.Status, len(rec.Body), len(crashBody(n)))
			}
			records++
		}
		if page.Next == "" {
			break
		}
	}
	t.Logf("%d rounds of kill -9: %d responses said stored, %d records whole at the end", rounds, stored.Load(), records)
}

// waitServing polls url until the process answers (15s at most).
func waitServing(t *testing.T, p *proc, url string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := c.Get(url); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("process exited before serving (%v):\n%s", p.err, p.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("not serving after 15s:\n%s", p.logs())
}
