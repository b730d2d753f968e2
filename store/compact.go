package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// CompactSuffix is appended to the database path for the temporary file
// CompactInPlace writes (<path>.compact-tmp). A leftover from an
// interrupted run is removed by the next CompactInPlace.
const CompactSuffix = ".compact-tmp"

// compactReq asks the writer goroutine to compact the live file.
type compactReq struct {
	before, after int64
	err           error
	done          chan struct{}
}

// CompactInPlace rewrites the live database without its free pages and
// continues on the compacted file: bbolt never shrinks its file, so a
// store that grew and was then mostly purged keeps its size until this
// runs. It returns the file's size on disk before and after.
//
// It runs in the writer goroutine, between two write transactions: every
// write that committed before it is in the compacted file, and writes
// queued while it runs wait (their callers block, ctx honoured only while
// waiting for room in the queue, as for every write) and commit on the
// compacted file afterwards. Reads are not blocked: they go on on the old
// file until the swap, and a read that began on it finishes there (the old
// file is closed once its readers are done). The copy takes one read
// transaction of the whole store plus a write of its live pages: for a
// large store, seconds during which writes wait.
//
// Steps: every bucket is copied into <path>.compact-tmp (bolt.Compact),
// the copy is synced, reopened with the store's options and checked
// against the live counters, renamed over path (the directory is synced),
// and the handle is swapped the way a damaged file is set aside (aside.go).
// The temporary file is locked from its reopen on, so no other process
// can open the new file between the rename and the swap. Records, their
// access times, counters (Stats), Generation and the cluster state
// (applied sequence, epoch, stream) are unchanged; no Watch callback is
// called, since no record changed (in-memory copies stay valid).
//
// On any error before the rename the store keeps serving on the old file,
// unchanged, and the temporary file is removed. Errors: ErrReadOnly,
// ErrClosed, ctx's error if it ends before the writer takes the request,
// or the failing step (wrapping the operating system's error, or ErrCorrupt
// if the live file met a damaged page). Concurrent calls run one after the
// other.
func (s *Store) CompactInPlace(ctx context.Context) (before, after int64, err error) {
	if s.opts.ReadOnly {
		return 0, 0, ErrReadOnly
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	r := &compactReq{done: make(chan struct{}, 1)}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return 0, 0, ErrClosed
	}
	// compactC is unbuffered: once the send succeeds the writer has the
	// request, so Close (which waits for closeMu) cannot strand it.
	select {
	case s.compactC <- r:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return 0, 0, ctx.Err()
	}
	s.closeMu.RUnlock()
	<-r.done
	return r.before, r.after, r.err
}

// compactNow is CompactInPlace in the writer goroutine.
func (s *Store) compactNow() (before, after int64, err error) {
	old := s.db.Load()
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact %s: %w", s.path, err)
	}
	before = fi.Size()
	tmp := s.path + CompactSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return before, 0, fmt.Errorf("store: compact %s: removing the leftover %s: %w", s.path, tmp, err)
	}
	var db *bolt.DB // the compacted file, reopened
	defer func() {
		if err != nil {
			if db != nil {
				_ = db.Close()
			}
			_ = os.Remove(tmp)
		}
	}()
	// step runs one step (after the test hook, which may fail it).
	step := func(name string, fn func() error) error {
		var err error
		if s.compactHook != nil {
			err = s.compactHook(name)
		}
		if err == nil {
			err = fn()
		}
		if err != nil {
			return fmt.Errorf("store: compact %s: %s: %w", s.path, name, err)
		}
		return nil
	}
	var delta int64
	if err := step("copy", func() (err error) { delta, err = s.copyTo(old, tmp); return err }); err != nil {
		return before, 0, err
	}
	// Reopen with the live options (1 GiB mapping, the caller's NoSync)
	// and check the copy before it replaces anything.
	if err := step("reopen", func() (err error) { db, err = openBolt(tmp, s.opts); return err }); err != nil {
		return before, 0, err
	}
	if err := step("verify", func() error {
		return db.View(func(tx *bolt.Tx) error {
			mb := tx.Bucket(bucketMeta)
			if mb == nil {
				return fmt.Errorf("%w: the copy has no meta bucket", ErrCorrupt)
			}
			c, ok := decodeCounters(mb.Get(metaCounters))
			want := s.cnt
			want.Bytes += delta // version-1 records rewritten
			if !ok || c != want {
				return fmt.Errorf("%w: the copy's counters %+v differ from the live ones %+v", ErrCorrupt, c, want)
			}
			for _, name := range dataBuckets {
				if tx.Bucket(name) == nil {
					return fmt.Errorf("%w: the copy has no bucket %q", ErrCorrupt, name)
				}
			}
			return nil
		})
	}); err != nil {
		return before, 0, err
	}
	if err := step("rename", func() error { return os.Rename(tmp, s.path) }); err != nil {
		return before, 0, err
	}
	// From here on the compacted file is the database: no failure may
	// send the store back to the old one.
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		s.log.Warn("store: compact: syncing the directory after the rename failed", "path", s.path, "err", err)
	}
	s.swapDB(db)
	s.cnt.Bytes += delta
	s.publish()
	_ = db.View(func(tx *bolt.Tx) error { s.fileSize.Store(tx.Size()); return nil })
	if fi, err := os.Stat(s.path); err == nil {
		after = fi.Size()
	}
	s.log.Info("store: compacted the database file", "path", s.path, "before_bytes", before, "after_bytes", after)
	return before, after, nil
}

// copyTo writes a compacted, synced copy of src to the new file dst and
// returns how much the copy's Stats.Bytes differ (copyStore).
func (s *Store) copyTo(src *bolt.DB, dst string) (delta int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: bbolt: %v", ErrCorrupt, p)
			s.reportDamage(src, err)
		}
	}()
	// No initial mapping, so that the file is only as long as its pages
	// (bbolt grows a file mapped at 1 GiB in 16 MiB steps); no sync per
	// internal commit: one at the end.
	d, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: s.opts.Timeout, NoSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return 0, err
	}
	delta, err = copyStore(d, src, 64<<20)
	if err == nil && !s.opts.NoSync {
		err = d.Sync()
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return delta, err
}

// copyStore copies every bucket of src into the empty database dst, each
// packed full, in transactions of about txMaxSize bytes, as bolt.Compact
// does, and writes the copy in the current format: version-1 records
// (format 1) are rewritten as version 2, their large bodies moved to the
// body bucket; damaged ones are copied as they are. It returns the
// difference this makes to the stored bytes (Stats.Bytes), already
// applied to the copy's counters.
func copyStore(dst, src *bolt.DB, txMaxSize int64) (delta int64, err error) {
	tx, err := dst.Begin(true)
	if err != nil {
		return 0, err
	}
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	var size int64
	grow := func(n int) error {
		if size += int64(n); size < txMaxSize {
			return nil
		}
		err := tx.Commit()
		tx = nil
		if err != nil {
			return err
		}
		tx, err = dst.Begin(true)
		size = 0
		return err
	}
	// at opens the bucket at path in the current transaction.
	at := func(path [][]byte) *bolt.Bucket {
		b := tx.Bucket(path[0])
		for _, k := range path[1:] {
			b = b.Bucket(k)
		}
		b.FillPercent = 1.0
		return b
	}
	var walk func(path [][]byte, sb *bolt.Bucket) error
	walk = func(path [][]byte, sb *bolt.Bucket) error {
		return sb.ForEach(func(k, v []byte) error {
			if v == nil {
				child := sb.Bucket(k)
				nb, err := at(path).CreateBucket(k)
				if err != nil {
					return err
				}
				if err := nb.SetSequence(child.Sequence()); err != nil {
					return err
				}
				if err := grow(len(k)); err != nil {
					return err
				}
				return walk(append(path[:len(path):len(path)], k), child)
			}
			if len(path) == 1 && string(path[0]) == string(bucketRec) && len(v) > 0 && v[0] == recordV1 {
				if r, _, err := decodeRecord(v, nil); err == nil {
					nv := encodeRecord(r)
					n := len(nv)
					if separateBody(len(r.Body)) {
						bb := tx.Bucket(bucketBody)
						if bb.Bucket(k) != nil { // a leftover body under this key (damage): the record's wins
							if err := bb.DeleteBucket(k); err != nil {
								return err
							}
						}
						sub, err := bb.CreateBucket(k)
						if err != nil {
							return err
						}
						if err := sub.Put(bodyKey, r.Body); err != nil {
							return err
						}
						n += len(r.Body)
					}
					delta += int64(n - len(v))
					if err := at(path).Put(k, nv); err != nil {
						return err
					}
					return grow(len(k) + n)
				}
			}
			if err := at(path).Put(k, v); err != nil {
				return err
			}
			return grow(len(k) + len(v))
		})
	}
	if _, err := tx.CreateBucket(bucketBody); err != nil {
		return 0, err
	}
	err = src.View(func(stx *bolt.Tx) error {
		return stx.ForEach(func(name []byte, b *bolt.Bucket) error {
			nb, err := tx.CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			if err := nb.SetSequence(b.Sequence()); err != nil {
				return err
			}
			return walk([][]byte{name}, b)
		})
	})
	if err != nil {
		return 0, err
	}
	if mb := tx.Bucket(bucketMeta); mb != nil {
		if err := mb.Put(metaFormat, binary.BigEndian.AppendUint32(nil, FormatVersion)); err != nil {
			return 0, err
		}
		if c, ok := decodeCounters(mb.Get(metaCounters)); ok && delta != 0 {
			c.Bytes += delta
			if err := mb.Put(metaCounters, c.encode()); err != nil {
				return 0, err
			}
		}
	}
	err = tx.Commit()
	tx = nil
	return delta, err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// swapDB makes db the live file (writer goroutine only). A read that
// loaded the old *bolt.DB and begins after it closed runs again on db
// (view); the old file is closed once its open read transactions end, and
// Close waits for that.
func (s *Store) swapDB(db *bolt.DB) {
	old := s.db.Swap(db)
	s.oldWG.Add(1)
	go func() {
		defer s.oldWG.Done()
		_ = old.Close()
	}()
}
