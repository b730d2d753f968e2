package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// ChangeFunc receives the records a committed transaction put or deleted
// (Put, Delete, purges, Annotate, eviction, expiry, cluster invalidations).
// all reports that every record may have changed (DeleteAll, a purge-all
// epoch, or a transaction too large to list); keys is then nil. Otherwise
// keys are the changed records. See [Store.Watch].
type ChangeFunc func(all bool, keys []RecordKey)

// RecordKey names one record.
type RecordKey struct{ Key, Variant string }

type watchers struct {
	mu   sync.Mutex
	next int
	fns  atomic.Pointer[[]watcher] // copy-on-write
}

type watcher struct {
	id int
	fn ChangeFunc
}

// Watch registers fn to learn of every committed change to records, so a
// caller that keeps records in memory (httpcache's memory tier) can drop
// exactly those that changed. The store's writer calls fn after the
// transaction committed and before any write of that transaction returns
// to its caller: once a Delete (or a purge) has returned, every watcher
// has seen it. Calls for commits come in commit order; a damaged file set
// aside for a fresh one is reported as all, possibly from another
// goroutine, so fn must be safe for concurrent use. fn must be quick
// and must not call the store's write methods (the writer waits for it);
// it may read. keys belong to fn only during the call. The returned stop
// removes fn; after it returns fn is not called again. Access-time
// flushes are not changes. A read-only store never calls fn.
func (s *Store) Watch(fn ChangeFunc) (stop func()) {
	w := &s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	id := w.next
	var cur []watcher
	if p := w.fns.Load(); p != nil {
		cur = *p
	}
	nw := append(append([]watcher(nil), cur...), watcher{id, fn})
	w.fns.Store(&nw)
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		var cur []watcher
		if p := w.fns.Load(); p != nil {
			cur = *p
		}
		nw := make([]watcher, 0, len(cur))
		for _, x := range cur {
			if x.id != id {
				nw = append(nw, x)
			}
		}
		w.fns.Store(&nw)
		// A notification in progress may still run: wait for the writer
		// to finish its current commit by sending a no-op through it.
		_ = s.do(context.Background(), 0, func(*wtx) error { return nil })
	}
}

// notify runs the watchers for one committed transaction (writer only).
func (s *Store) notify(all bool, cks changeList) {
	p := s.watch.fns.Load()
	if p == nil || len(*p) == 0 {
		return
	}
	var keys []RecordKey
	if !all {
		// One string for every key of the commit; each Key and Variant is
		// a slice of it.
		keys = make([]RecordKey, len(cks.ends))
		all := string(cks.keys)
		start := 0
		for i, end := range cks.ends {
			ck := all[start:end]
			key, variant, _ := strings.Cut(ck, "\x00")
			keys[i] = RecordKey{Key: key, Variant: variant}
			start = end
		}
	}
	for _, w := range *p {
		func() {
			defer func() {
				if v := recover(); v != nil {
					s.log.Error("store: watcher panicked", "panic", fmt.Sprint(v))
				}
			}()
			w.fn(all, keys)
		}()
	}
}

// Touch records an access of the record key/variant for LRU eviction, as
// Get does, without reading it: for callers that serve the record from
// their own memory. It never writes (access times are written lazily, in
// batches) and does nothing on a read-only or closed store, or for a
// record that does not exist.
func (s *Store) Touch(key, variant string) {
	if s.ops == nil || key == "" {
		return
	}
	var kb [256]byte
	s.touchAt(appendRecKey(kb[:0], key, variant), s.opts.Now().UnixNano())
}

// touchAt records an access at ns of record ck (read-write store): no
// lock and no read when the known table says it changes nothing, else
// the stored access time read in a read transaction of its own, then
// decided as a Get's (accessTracker.record). A record that does not exist
// is not recorded.
func (s *Store) touchAt(ck []byte, ns int64) {
	acc := s.access.begin()
	if s.access.known.slots != nil {
		acc.h = s.access.known.hash(ck)
		if s.access.known.fresh(acc.h, ns, s.access.gran) {
			return
		}
	}
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRec).Get(ck) == nil {
			return ErrNotFound // no record: no access to record
		}
		s.access.check(&acc, tx, ck, ns)
		return nil
	})
	if err == nil {
		s.access.record(ck, &acc)
	}
}
