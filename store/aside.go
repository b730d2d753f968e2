package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A cache is disposable: with Options.SetAsideCorrupt, a damaged file is
// moved aside (renamed to <path>.corrupt-<UTC time>) and the store goes
// on with a fresh, empty file at the same path, at Open (the file is not
// a firstrender store, is truncated or damaged) and at run time (bbolt met
// a damaged page: a panic recovered in a read or write transaction). The
// swap happens in the writer goroutine, between transactions; readers
// load the current *bolt.DB and retry when a swap closed theirs before
// they began.

// asideName returns a free name for the damaged file at path.
func asideName(path string, now time.Time) string {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	name := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name
		}
		name = base + "-" + strconv.Itoa(i)
	}
}

// setAsideAtOpen moves the file at path aside after Open found it
// corrupt (openErr), and returns the new name.
func setAsideAtOpen(path string, opts Options, openErr error) (string, error) {
	aside := asideName(path, opts.Now())
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("moving the damaged file aside: %w", err)
	}
	opts.Logger.Warn("store: the database file is damaged or not a firstrender store; moved it aside and starting empty",
		"path", path, "moved_to", aside, "reason", openErr.Error())
	return aside, nil
}

// damaged is sent by a reader that met a damaged page in db.
type damaged struct {
	db  *bolt.DB
	err error
}

// reportDamage asks the writer to set the file aside (reader side). It
// never blocks: one pending report is enough.
func (s *Store) reportDamage(db *bolt.DB, err error) {
	if s.damagedC == nil || !s.opts.SetAsideCorrupt {
		return
	}
	select {
	case s.damagedC <- damaged{db, err}:
	default:
	}
}

// swapFresh sets the damaged file aside and continues on a fresh one at
// s.path (writer goroutine only). It reports whether it did; the reason
// is logged once with the new name of the damaged file.
func (s *Store) swapFresh(reason error) bool {
	if !s.opts.SetAsideCorrupt || s.opts.ReadOnly {
		return false
	}
	fresh := s.path + ".fresh"
	_ = os.Remove(fresh)
	db, err := openBolt(fresh, s.opts)
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error { return s.createBuckets(tx) })
		if err != nil {
			db.Close()
		}
	}
	if err != nil {
		_ = os.Remove(fresh)
		s.log.Error("store: the database file is damaged and a fresh one could not be created; keeping it", "path", s.path, "reason", reason.Error(), "err", err)
		return false
	}
	aside := asideName(s.path, s.opts.Now())
	if err := os.Rename(s.path, aside); err != nil {
		db.Close()
		_ = os.Remove(fresh)
		s.log.Error("store: the database file is damaged and could not be moved aside; keeping it", "path", s.path, "reason", reason.Error(), "err", err)
		return false
	}
	if err := os.Rename(fresh, s.path); err != nil {
		// The damaged file is aside and the fresh one is in use under its
		// temporary name: serving goes on; the next start creates path.
		s.log.Error("store: the fresh database could not be renamed into place", "path", s.path, "fresh", fresh, "err", err)
	}
	s.swapDB(db) // the old file is closed once its readers finish
	s.cnt = counters{}
	s.publish()
	s.fileSize.Store(0)
	_ = db.View(func(tx *bolt.Tx) error { s.fileSize.Store(tx.Size()); return nil })
	s.access.reset() // the access times are of records that are gone
	s.generation.Add(1)
	s.notify(true, changeList{}) // every record is gone
	s.health.setAside.Add(1)
	s.health.asidePath.Store(&aside)
	s.log.Warn("store: the database file is damaged; moved it aside, serving continues on a fresh empty file",
		"path", s.path, "moved_to", aside, "reason", reason.Error())
	return true
}

// createBuckets writes the meta and data buckets of a new file, with the
// cluster state (applied sequence, epoch, stream) this store holds, so
// that a fresh file after a swap does not look like a node that missed
// invalidations (it holds no records they could apply to).
func (s *Store) createBuckets(tx *bolt.Tx) error {
	mb, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return err
	}
	if err := mb.Put(metaFormat, binary.BigEndian.AppendUint32(nil, FormatVersion)); err != nil {
		return err
	}
	if err := mb.Put(metaCounters, counters{}.encode()); err != nil {
		return err
	}
	for _, name := range dataBuckets {
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	cl := &s.cl
	applied, epoch, stream := cl.applied.Load(), cl.epochNs.Load(), cl.stream.Load()
	if applied == 0 && epoch == 0 && (stream == nil || *stream == "") {
		return nil
	}
	b, err := tx.CreateBucket(bucketCluster)
	if err != nil {
		return err
	}
	if err := b.Put(clusterApplied, binary.BigEndian.AppendUint64(nil, applied)); err != nil {
		return err
	}
	if epoch != 0 {
		if err := b.Put(clusterEpoch, binary.BigEndian.AppendUint64(nil, uint64(epoch))); err != nil {
			return err
		}
	}
	if stream != nil && *stream != "" {
		return b.Put(clusterStream, []byte(*stream))
	}
	return nil
}
