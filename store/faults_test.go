package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// logLines is a slog handler that keeps every record's message and
// attributes as one line, safe for concurrent use.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }

// count returns how many lines contain sub.
func (l *logLines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// asideFiles lists the files Open or a swap moved aside from path.
func asideFiles(t *testing.T, path string) []string {
	t.Helper()
	m, err := filepath.Glob(path + ".corrupt-*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOpen_SetAsideCorrupt: with SetAsideCorrupt, a file that is not a
// usable store is moved aside byte for byte (logged with the reason), the
// store starts empty at the same path and works; a zero-byte file is
// simply initialized.
func TestOpen_SetAsideCorrupt(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	storeFile := func(t *testing.T, path string) []byte {
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			r := mkrec(fmt.Sprintf("k%d", i), "")
			r.Body = make([]byte, 3000)
			mustPut(t, s, r)
		}
		data := s.Stats().FileSize
		s.Close()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b[:data/2] // truncated
	}
	otherBolt := func(t *testing.T, path string) []byte {
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err })
		db.Close()
		b, _ := os.ReadFile(path)
		os.Remove(path)
		return b
	}
	sqlite := append([]byte("SQLite format 3\x00"), random(8192)...)
	tests := []struct {
		name      string
		content   func(t *testing.T, path string) []byte
		wantAside bool
	}{
		{"zero bytes are initialized", func(*testing.T, string) []byte { return []byte{} }, false},
		{"two bytes of garbage", func(*testing.T, string) []byte { return []byte("xx") }, true},
		{"4 KB of random bytes", func(*testing.T, string) []byte { return random(4096) }, true},
		{"64 KB of random bytes", func(*testing.T, string) []byte { return random(64 << 10) }, true},
		{"another format (SQLite header)", func(*testing.T, string) []byte { return sqlite }, true},
		{"another application's bbolt file", otherBolt, true},
		{"a truncated store", storeFile, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "fr.db")
			content := tt.content(t, path)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			if s0, err := Open(path, Options{Timeout: 100 * time.Millisecond}); !tt.wantAside && err != nil {
				t.Fatalf("Open without SetAsideCorrupt = %v", err)
			} else if err == nil {
				s0.Close()
			} else if tt.wantAside && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open without SetAsideCorrupt = %v, want ErrCorrupt", err)
			}
			if !tt.wantAside {
				os.WriteFile(path, content, 0o600)
			}
			logs := &logLines{}
			s, err := Open(path, Options{NoSync: true, SetAsideCorrupt: true, Logger: slog.New(logs)})
			if err != nil {
				t.Fatalf("Open with SetAsideCorrupt = %v, want a fresh store", err)
			}
			defer s.Close()
			aside := asideFiles(t, path)
			h := s.Health()
			if !tt.wantAside {
				if len(aside) != 0 || h.SetAside != 0 {
					t.Fatalf("a zero-byte file was set aside: %v, Health %+v", aside, h)
				}
			} else {
				if len(aside) != 1 || h.SetAside != 1 || h.SetAsidePath != aside[0] {
					t.Fatalf("aside files %v, Health %+v; want one, named in Health", aside, h)
				}
				got, _ := os.ReadFile(aside[0])
				if !bytes.Equal(got, content) {
					t.Errorf("the file set aside differs from the damaged file (%d vs %d bytes)", len(got), len(content))
				}
				if n := logs.count("moved it aside"); n != 1 || logs.count("reason=") != 1 {
					t.Errorf("want one log line with the reason, got:\n%s", logs)
				}
			}
			if st := s.Stats(); st.Records != 0 {
				t.Errorf("fresh store has %d records", st.Records)
			}
			mustPut(t, s, mkrec("/after", ""))
			if _, err := s.Get(context.Background(), "/after", ""); err != nil {
				t.Errorf("Get after set-aside: %v", err)
			}
			s.Close()
			checkIntegrity(t, path)
		})
	}
}

// TestOpen_SetAsideCorrupt_Locked: a second open of a file another open
// holds gets ErrLocked, and the file is not touched.
func TestOpen_SetAsideCorrupt_Locked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fr.db")
	holder, err := Open(path, Options{NoSync: true, SetAsideCorrupt: true})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	mustPut(t, holder, mkrec("/k", ""))
	_, err = Open(path, Options{Timeout: 50 * time.Millisecond, SetAsideCorrupt: true})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if a := asideFiles(t, path); len(a) != 0 {
		t.Fatalf("a locked file was moved aside: %v", a)
	}
	if _, err := holder.Get(context.Background(), "/k", ""); err != nil {
		t.Fatalf("holder lost its record: %v", err)
	}
}

// damageInterior writes n random bytes into the middle of the first
// size bytes of the file at path (its data; bbolt preallocates beyond),
// page-aligned so that page headers are hit.
func damageInterior(t *testing.T, path string, size int64, n int, seed uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rnd := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	off := (size / 2) &^ 4095
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestStore_DamagedInterior_SetAside: 64 KB of random bytes inside an
// otherwise valid file open without a word; reading and writing every
// record then meets the damaged pages. Nothing panics, the damaged file
// is set aside once (one log line, Health().SetAside == 1), and the store
// continues on a fresh file that takes and keeps writes and passes
// bbolt's check.
func TestStore_DamagedInterior_SetAside(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "fr.db")
			s, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			const n = 3000
			for i := range n {
				r := mkrec(fmt.Sprintf("/page/%05d", i), "")
				r.Body = bytes.Repeat([]byte{byte(i)}, 500+i%1500)
				mustPut(t, s, r)
			}
			size := s.Stats().FileSize
			s.Close()
			damageInterior(t, path, size, 64<<10, seed)

			logs := &logLines{}
			s, err = Open(path, Options{NoSync: true, SetAsideCorrupt: true, Logger: slog.New(logs)})
			if err != nil {
				t.Fatalf("Open of an interior-damaged file = %v (should open: damage is found at run time)", err)
			}
			defer s.Close()
			ctx := context.Background()
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += 4 {
						k := fmt.Sprintf("/page/%05d", i)
						if _, err := s.Get(ctx, k, ""); err != nil && !errors.Is(err, ErrNotFound) {
							if _, ok := errors.AsType[*CorruptError](err); !ok {
								t.Errorf("Get(%s) on a damaged file = %v, want a record or a *CorruptError", k, err)
							}
						}
						_, _ = s.Scan(ctx, ScanOptions{After: k, Limit: 5})
						r := mkrec(k, "")
						r.Body = []byte("rewritten")
						_ = s.Put(ctx, r)
					}
				}()
			}
			wg.Wait()
			h := s.Health()
			if h.SetAside != 1 {
				t.Fatalf("Health().SetAside = %d after meeting the damage, want 1; log:\n%s", h.SetAside, logs)
			}
			if c := logs.count("serving continues on a fresh"); c != 1 {
				t.Errorf("want one set-aside log line, got %d:\n%s", c, logs)
			}
			if a := asideFiles(t, path); len(a) != 1 || a[0] != h.SetAsidePath {
				t.Errorf("aside files %v, Health path %q", a, h.SetAsidePath)
			}
			// The fresh file works and keeps what is written to it.
			for i := range 50 {
				r := mkrec(fmt.Sprintf("/fresh/%d", i), "")
				if err := s.Put(ctx, r); err != nil {
					t.Fatalf("Put on the fresh file: %v", err)
				}
			}
			for i := range 50 {
				if _, err := s.Get(ctx, fmt.Sprintf("/fresh/%d", i), ""); err != nil {
					t.Fatalf("Get on the fresh file: %v", err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			checkIntegrity(t, path)
			s2, err := Open(path, Options{NoSync: true, SetAsideCorrupt: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if s2.Health().SetAside != 0 {
				t.Errorf("the fresh file was set aside again at reopen")
			}
			if _, err := s2.Get(ctx, "/fresh/49", ""); err != nil {
				t.Errorf("after reopen: %v", err)
			}
		})
	}
}

// TestStore_WriteFault_Health: while writes fail (injected ENOSPC, then
// EROFS), reads still answer, every failed write is a *WriteError with
// its cause and is counted, the state changes are logged once each (not
// once per write), and writes resume when the fault ends.
func TestStore_WriteFault_Health(t *testing.T) {
	t.Parallel()
	var fault atomic.Pointer[error]
	logs := &logLines{}
	s := newTestStore(t, Options{Logger: slog.New(logs), WriteFault: func() error {
		if e := fault.Load(); e != nil {
			return *e
		}
		return nil
	}})
	ctx := context.Background()
	mustPut(t, s, mkrec("/kept", ""))
	if h := s.Health(); h.Failing || s.WritesFailing() {
		t.Fatalf("healthy store reports %+v", h)
	}
	for _, tc := range []struct {
		errno syscall.Errno
		cause Cause
	}{{syscall.ENOSPC, CauseNoSpace}, {syscall.EROFS, CauseReadOnly}} {
		var e error = &os.PathError{Op: "write", Path: s.Path(), Err: tc.errno}
		fault.Store(&e)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.Put(ctx, mkrec(fmt.Sprintf("/fail/%d", i), ""))
				we, ok := errors.AsType[*WriteError](err)
				if !ok || we.Cause != tc.cause || !errors.Is(err, tc.errno) {
					t.Errorf("Put while %v = %v, want a *WriteError (%s)", tc.errno, err, tc.cause)
				}
			}()
		}
		wg.Wait()
		if _, err := s.Get(ctx, "/kept", ""); err != nil {
			t.Errorf("Get while %v: %v", tc.errno, err)
		}
		h := s.Health()
		if !h.Failing || h.Cause != tc.cause || !s.WritesFailing() || h.FailedWrites[tc.cause] != 20 {
			t.Errorf("Health while %v = %+v, want failing, %s, 20 failed", tc.errno, h, tc.cause)
		}
	}
	if c := logs.count("writes failing"); c != 2 {
		t.Errorf("%d 'writes failing' lines for two state changes and 40 failed writes:\n%s", c, logs)
	}
	fault.Store(nil)
	mustPut(t, s, mkrec("/after", ""))
	if h := s.Health(); h.Failing || h.Cause != "" || h.FailedWrites[CauseNoSpace] != 20 || h.FailedWrites[CauseReadOnly] != 20 {
		t.Errorf("Health after the fault = %+v", h)
	}
	if c := logs.count("writes resumed"); c != 1 {
		t.Errorf("%d 'writes resumed' lines, want 1:\n%s", c, logs)
	}
	for i := range 20 {
		if _, err := s.Get(ctx, fmt.Sprintf("/fail/%d", i), ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("a failed Put left a record: %v", err)
		}
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips
// the test when mounting is not allowed here.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes a file in dir until the file system is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return p
		}
	}
}

// TestStore_DiskFull_Tmpfs: on a real full file system (a small tmpfs),
// writes fail with CauseNoSpace, reads go on, and writes resume once
// space returns; the file stays consistent throughout.
func TestStore_DiskFull_Tmpfs(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, 20<<20)
	path := filepath.Join(dir, "fr.db")
	logs := &logLines{}
	s, err := Open(path, Options{Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), 20<<10)
	for i := range 20 {
		r := mkrec(fmt.Sprintf("/before/%d", i), "")
		r.Body = body
		mustPut(t, s, r)
	}
	filler := fillDisk(t, dir)
	failed := 0
	for i := range 200 {
		r := mkrec(fmt.Sprintf("/full/%d", i), "")
		r.Body = body
		if err := s.Put(ctx, r); err != nil {
			we, ok := errors.AsType[*WriteError](err)
			if !ok || we.Cause != CauseNoSpace {
				t.Fatalf("Put on a full disk = %v, want a *WriteError no-space", err)
			}
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no Put failed on a full disk")
	}
	if !s.WritesFailing() || s.Health().FailedWrites[CauseNoSpace] != int64(failed) {
		t.Errorf("Health on a full disk = %+v, %d failed", s.Health(), failed)
	}
	for i := range 20 {
		if _, err := s.Get(ctx, fmt.Sprintf("/before/%d", i), ""); err != nil {
			t.Fatalf("Get on a full disk: %v", err)
		}
	}
	if c := logs.count("writes failing"); c != 1 {
		t.Errorf("%d 'writes failing' lines for %d failed writes:\n%s", c, failed, logs)
	}
	os.Remove(filler)
	r := mkrec("/after", "")
	r.Body = body
	if err := s.Put(ctx, r); err != nil {
		t.Fatalf("Put after space returned: %v", err)
	}
	if s.WritesFailing() || logs.count("writes resumed") != 1 {
		t.Errorf("after space returned: %+v\n%s", s.Health(), logs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkIntegrity(t, path)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want Cause
	}{
		{&os.PathError{Op: "write", Err: syscall.ENOSPC}, CauseNoSpace},
		{fmt.Errorf("x: %w", syscall.EDQUOT), CauseNoSpace},
		{errors.New("file resize error: truncate x: no space left on device"), CauseNoSpace},
		{&os.PathError{Op: "write", Err: syscall.EROFS}, CauseReadOnly},
		{errors.New("fdatasync: read-only file system"), CauseReadOnly},
		{&os.PathError{Op: "write", Err: syscall.EIO}, CauseIO},
		{fmt.Errorf("%w: bbolt: assertion failed", ErrCorrupt), CauseDamaged},
		{errors.New("something else"), CauseOther},
	} {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}
