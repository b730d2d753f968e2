package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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
// batches), opens no read transaction (it may be called inside Lookup's
// choose), and does nothing on a read-only or closed store, or for a
// record that does not exist when its access is decided.
func (s *Store) Touch(key, variant string) {
	if s.ops == nil || key == "" {
		return
	}
	var kb [256]byte
	s.touchAt(appendRecKey(kb[:0], key, variant), s.opts.Now().UnixNano())
}

// touchAt records an access at ns of record ck (read-write store): no
// lock when the known table says it changes nothing, else decided under
// the tracker's lock as far as it can be without the stored time
// (accessTracker.touch). It opens no read transaction: Touch may be
// called inside one (a Lookup's choose), and a read transaction opened
// inside another can deadlock against a writer re-mapping the file.
func (s *Store) touchAt(ck []byte, ns int64) {
	if s.access.known.freshKey(ck, ns, s.access.gran) {
		return
	}
	s.access.touch(ck, ns)
}
