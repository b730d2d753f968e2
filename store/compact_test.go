package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// bigRec is a record whose body is derived from its key, so a reader can
// tell a right body from a wrong or damaged one.
func bigRec(key string, size int) *Record {
	r := mkrec(key, "", "t")
	r.Body = bytes.Repeat([]byte(key+";"), size/(len(key)+1)+1)[:size]
	return r
}

func checkBody(r *Record, size int) error {
	want := bigRec(r.Key, size).Body
	if !bytes.Equal(r.Body, want) {
		return fmt.Errorf("record %q: body of %d bytes differs from what was put (%d bytes)", r.Key, len(r.Body), len(want))
	}
	return nil
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestStore_CompactInPlace_Shrinks grows a store, deletes most of it and
// compacts it while open: the file on disk shrinks, and the records, the
// counters, the cluster state and access times are those of before; no
// change is reported to watchers; a reopen finds every record.
func TestStore_CompactInPlace_Shrinks(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "grow.db")
	s, err := Open(path, Options{}) // with fsync, as the server runs
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if s != nil {
			s.Close()
		}
	}()
	if _, err := s.ResetCluster(ctx, "stream-1", 42); err != nil {
		t.Fatal(err)
	}
	const n, size = 2000, 8 << 10
	var rs []*Record
	for i := range n {
		rs = append(rs, bigRec(fmt.Sprintf("k%04d", i), size))
	}
	for i := 0; i < n; i += 100 {
		mustPut(t, s, rs[i:i+100]...)
	}
	for _, p := range []string{"k0", "k10", "k11", "k12", "k13", "k14", "k15", "k16", "k17", "k18"} {
		if _, err := s.DeletePrefix(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, "k1900", ""); err != nil { // a pending access time
		t.Fatal(err)
	}
	statsBefore, gen, epoch := s.Stats(), s.Generation(), s.Epoch()
	var watched atomic.Int64
	stop := s.Watch(func(bool, []RecordKey) { watched.Add(1) })
	defer stop()

	before, after, err := s.CompactInPlace(ctx)
	if err != nil {
		t.Fatalf("CompactInPlace = %v", err)
	}
	t.Logf("CompactInPlace: %d -> %d bytes, %d records", before, after, statsBefore.Records)
	if onDisk := fileSize(t, path); after != onDisk || after*4 > before {
		t.Errorf("CompactInPlace = %d -> %d bytes (file now %d): want the reported size and under a quarter of before", before, after, onDisk)
	}
	if _, err := os.Stat(path + CompactSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file after success: %v, want gone", err)
	}
	got := s.Stats()
	if got.Records != statsBefore.Records || got.Bytes != statsBefore.Bytes || got.Evictions != statsBefore.Evictions || got.Expired != statsBefore.Expired {
		t.Errorf("Stats after = %+v, before %+v: records, bytes, evictions, expired must not change", got, statsBefore)
	}
	if got.FileSize > after || got.FileSize == 0 {
		t.Errorf("Stats().FileSize = %d after compaction, file %d", got.FileSize, after)
	}
	if g := s.Generation(); g != gen {
		t.Errorf("Generation = %d after compaction, %d before: no record changed", g, gen)
	}
	if w := watched.Load(); w != 0 {
		t.Errorf("watchers were called %d times: no record changed", w)
	}
	if s.AppliedSequence() != 42 || s.ClusterStream() != "stream-1" || !s.Epoch().Equal(epoch) {
		t.Errorf("cluster state after = %d %q %v, want 42 stream-1 %v", s.AppliedSequence(), s.ClusterStream(), s.Epoch(), epoch)
	}
	// The compacted file takes writes (and grows again) like any other.
	mustPut(t, s, bigRec("new", size))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = nil
	checkIntegrity(t, path)

	r, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen = %v", err)
	}
	defer r.Close()
	if got, want := r.Stats().Records, statsBefore.Records+1; got != want {
		t.Errorf("reopened: %d records, want %d", got, want)
	}
	for _, want := range append(rs[1900:], bigRec("new", size)) {
		g, err := r.Get(ctx, want.Key, "")
		if err != nil {
			t.Errorf("reopened Get(%q) = %v", want.Key, err)
			continue
		}
		if err := checkBody(g, size); err != nil {
			t.Error(err)
		}
	}
	if r.AppliedSequence() != 42 || r.ClusterStream() != "stream-1" {
		t.Errorf("reopened cluster state = %d %q, want 42 stream-1", r.AppliedSequence(), r.ClusterStream())
	}
	// The access time of k1900 (pending in memory during compaction) was
	// written to the compacted file at Close: it is the newest.
	var lruLast string
	if err := r.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketLRU).Cursor().Last()
		key, _ := splitRecKey(k[8:])
		lruLast = key
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if lruLast != "new" && lruLast != "k1900" {
		t.Errorf("most recently used after reopen = %q, want k1900 or new", lruLast)
	}
}

// TestStore_CompactInPlace_Concurrent runs Puts and Gets from several
// goroutines across repeated compactions (run it with -race): every Put
// that returned nil is found afterwards, every Get returns the body that
// was put, and none fails.
func TestStore_CompactInPlace_Concurrent(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	const size = 2 << 10
	for i := range 200 {
		mustPut(t, s, bigRec(fmt.Sprintf("seed%03d", i), size))
	}
	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		errs    = make(chan error, 100)
		mu      sync.Mutex
		written []string
	)
	started := make(chan struct{}, 8)
	for g := range 4 {
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%05d", g, i)
				if err := s.Put(ctx, bigRec(key, size)); err != nil {
					errs <- fmt.Errorf("Put(%q) = %w", key, err)
					return
				}
				mu.Lock()
				written = append(written, key)
				mu.Unlock()
				if i == 0 {
					started <- struct{}{}
				}
			}
		}()
		go func() { // reader
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.Get(ctx, fmt.Sprintf("seed%03d", (i*7+g)%200), "")
				if err == nil {
					err = checkBody(r, size)
				}
				if err != nil {
					errs <- fmt.Errorf("Get during compaction: %w", err)
					return
				}
				if i == 0 {
					started <- struct{}{}
				}
			}
		}()
	}
	for range 8 {
		<-started
	}
	for range 5 {
		if _, _, err := s.CompactInPlace(ctx); err != nil {
			t.Errorf("CompactInPlace = %v", err)
		}
		if _, err := s.DeletePrefix(ctx, "w0-"); err != nil { // something to compact away
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var found int
	for _, key := range written {
		r, err := s.Get(ctx, key, "")
		if errors.Is(err, ErrNotFound) && key[:3] == "w0-" {
			continue // purged above
		}
		if err == nil {
			err = checkBody(r, size)
		}
		if err != nil {
			t.Errorf("after compactions: %v", err)
			continue
		}
		found++
	}
	if found == 0 {
		t.Error("no write outside the purged prefix was found")
	}
	t.Logf("%d writes acknowledged, %d checked after 5 compactions", len(written), found)
}

// TestStore_CompactInPlace_WritesWaitReadsGoOn holds the compaction after
// its copy: a read is served meanwhile, a Put queued meanwhile returns
// only after the swap and lands in the compacted file.
func TestStore_CompactInPlace_WritesWaitReadsGoOn(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	mustPut(t, s, bigRec("a", 100))
	release := make(chan struct{})
	copied := make(chan struct{})
	s.compactHook = func(step string) error {
		if step == "verify" {
			close(copied)
			<-release
		}
		return nil
	}
	done := make(chan error, 1)
	go func() { _, _, err := s.CompactInPlace(ctx); done <- err }()
	<-copied
	if r, err := s.Get(ctx, "a", ""); err != nil || checkBody(r, 100) != nil {
		t.Errorf("Get during compaction = %v, %v", r, err)
	}
	put := make(chan error, 1)
	go func() { put <- s.Put(ctx, bigRec("b", 100)) }()
	select {
	case err := <-put:
		t.Errorf("Put returned (%v) while the compaction held the writer", err)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("CompactInPlace = %v", err)
	}
	if err := <-put; err != nil {
		t.Fatalf("Put queued during compaction = %v", err)
	}
	if r, err := s.Get(ctx, "b", ""); err != nil || checkBody(r, 100) != nil {
		t.Errorf("Get(b) after compaction = %v, %v", r, err)
	}
}

// TestStore_CompactInPlace_Failure fails the compaction at each step (and
// with a temporary path that cannot be written): the error names the
// step, the store keeps serving on the same file, the temporary file is
// gone, and nothing is lost.
func TestStore_CompactInPlace_Failure(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"unwritable", "copy", "reopen", "verify", "rename"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			s := newTestStore(t, Options{})
			path := s.Path()
			for i := range 50 {
				mustPut(t, s, bigRec(fmt.Sprintf("k%02d", i), 1000))
			}
			fiBefore, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			injected := errors.New("injected failure")
			if step == "unwritable" {
				// A non-empty directory where the temporary file goes.
				if err := os.MkdirAll(filepath.Join(path+CompactSuffix, "x"), 0o700); err != nil {
					t.Fatal(err)
				}
			} else {
				s.compactHook = func(at string) error {
					if at == step {
						return injected
					}
					return nil
				}
			}
			gen := s.Generation()
			_, _, err = s.CompactInPlace(ctx)
			if err == nil {
				t.Fatal("CompactInPlace = nil, want the injected failure")
			}
			if step != "unwritable" && !errors.Is(err, injected) {
				t.Errorf("CompactInPlace = %v, want the injected error", err)
			}
			t.Logf("CompactInPlace = %v", err)
			if step != "unwritable" {
				if _, err := os.Stat(path + CompactSuffix); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("temporary file after a failure: %v, want removed", err)
				}
			}
			fiAfter, err := os.Stat(path)
			if err != nil || !os.SameFile(fiBefore, fiAfter) {
				t.Errorf("the database file was replaced by a failed compaction (%v)", err)
			}
			if s.Generation() != gen {
				t.Error("Generation changed")
			}
			mustPut(t, s, bigRec("after", 1000))
			for _, key := range []string{"k00", "k49", "after"} {
				if r, err := s.Get(ctx, key, ""); err != nil || checkBody(r, 1000) != nil {
					t.Errorf("Get(%q) after a failed compaction = %v", key, err)
				}
			}
			if st := s.Stats(); st.Records != 51 {
				t.Errorf("Stats().Records = %d, want 51", st.Records)
			}
		})
	}
}

func TestStore_CompactInPlace_Errors(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.CompactInPlace(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("CompactInPlace(cancelled) = %v, want context.Canceled", err)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CompactInPlace(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("CompactInPlace after Close = %v, want ErrClosed", err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, _, err := ro.CompactInPlace(ctx); !errors.Is(err, ErrReadOnly) {
		t.Errorf("CompactInPlace(read-only) = %v, want ErrReadOnly", err)
	}
}
