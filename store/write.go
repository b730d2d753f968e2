package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Writes go through one writer goroutine. A caller queues an op and waits;
// the writer takes every op queued at that moment (up to maxBatchOps /
// maxBatchBytes) and runs them in one bbolt transaction, so concurrent
// writers share one commit and one fsync. While a commit runs, the next
// batch gathers: group commit without an artificial delay.
const (
	maxBatchOps   = 1024
	maxBatchBytes = 32 << 20
)

// defaultChunk is how many records one step of a bulk delete touches in
// one transaction, so a purge of millions does not stall other writers
// (Options.chunk; tests lower it to cross step boundaries with few records).
const defaultChunk = 10000

type op struct {
	fn func(w *wtx) error
	// put, when fn is nil, is the op: a Put's arguments carried in the
	// pooled op instead of a closure allocated per Put.
	put  putArgs
	size int
	err  error
	// deferred: the op may wait for company (PutDeferred; linger).
	deferred bool
	// done receives one value when the op's transaction has ended; after
	// sending it the writer no longer touches the op, which do then
	// returns to opPool.
	done chan struct{}
}

var opPool = sync.Pool{New: func() any { return &op{done: make(chan struct{}, 1)} }}

// hardError aborts the whole batch transaction; any other error returned by
// an op function is that op's result and the batch commits.
type hardError struct{ err error }

func (e *hardError) Error() string { return e.err.Error() }
func (e *hardError) Unwrap() error { return e.err }

// must turns a bbolt error into one that aborts the transaction.
func must(err error) error {
	if err == nil {
		return nil
	}
	return &hardError{err}
}

// wtx is the state of one write transaction.
type wtx struct {
	tx                              *bolt.Tx
	rec, body, tag, exp, atime, lru *bolt.Bucket
	cnt                             *counters
	nowNs                           int64
	// changed is set by every change to records (put, del, DeleteAll), so
	// that the commit advances Store.generation.
	changed bool
	// changes lists the records put or deleted (bbolt keys, copied) for
	// the Watch callbacks; changedAll replaces it when every record may
	// have changed (DeleteAll, a purge-all epoch) or the list grew past
	// maxChangeList.
	changes    changeList
	changedAll bool
	// key is scratch space for index keys: bbolt copies the keys given to
	// Put and keeps none given to Get or Delete.
	key []byte
	// vals holds index values, which bbolt keeps (uncopied) until the
	// commit: appended to, never overwritten, during one transaction.
	vals []byte
	// known is the table of stored access times (nil: none); atimes the
	// changes this transaction made to it, applied after the commit
	// (atimes.go).
	known  *knownAtimes
	atimes []atimeNote
	// recCur is a cursor of the rec bucket for recGet, made on first use
	// and again when w.rec is replaced (DeleteAll recreates the bucket): a
	// Seek reuses its stack, where each Bucket.Get makes a cursor and grows
	// a new one.
	recCur *bolt.Cursor
}

// recGet is w.rec.Get(ck): record ck's value, nil when there is none. A
// Seek searches from the bucket's root through this transaction's
// changes, as Get does, so the cursor stays valid across the puts and
// deletes between two calls; one of a bucket w.rec no longer is (dropped
// in this transaction) is not used.
func (w *wtx) recGet(ck []byte) []byte {
	if w.recCur == nil || w.recCur.Bucket() != w.rec {
		w.recCur = w.rec.Cursor()
	}
	k, v := w.recCur.Seek(ck)
	if !bytes.Equal(k, ck) {
		return nil
	}
	return v // nil for a nested bucket, as Get returns (rec holds none)
}

// do queues fn and waits for its transaction to commit. ctx is honoured
// while waiting for room in the queue; once queued, do waits for the
// commit so that the outcome is known.
func (s *Store) do(ctx context.Context, size int, fn func(w *wtx) error) error {
	return s.run(ctx, size, false, fn)
}

// run is do; a deferred op lets the writer wait for company (CommitDelay).
func (s *Store) run(ctx context.Context, size int, deferred bool, fn func(w *wtx) error) error {
	return s.runOp(ctx, size, deferred, fn, nil)
}

// runOp is run with the op either fn or, when fn is nil, the put pa (whose
// slices must stay unchanged until runOp returns).
func (s *Store) runOp(ctx context.Context, size int, deferred bool, fn func(w *wtx) error, pa *putArgs) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	o := opPool.Get().(*op)
	o.fn, o.size, o.err, o.deferred = fn, size, nil, deferred
	if fn == nil {
		o.put = *pa
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		opPool.Put(o)
		return ErrClosed
	}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		opPool.Put(o)
		return ctx.Err()
	}
	s.closeMu.RUnlock()
	<-o.done
	err := o.err
	o.fn, o.err, o.put = nil, nil, putArgs{}
	opPool.Put(o)
	return err
}

// putArgs is one Put as an op carries it: w.put's arguments but the
// access time, which is the transaction's time.
type putArgs struct {
	ck, v, body []byte
	tags        []string
	expires     time.Time
}

// exec runs o's operation in w's transaction.
func (o *op) exec(w *wtx) error {
	if o.fn != nil {
		return o.fn(w)
	}
	pa := &o.put
	return w.put(pa.ck, pa.v, pa.body, pa.tags, pa.expires, w.nowNs)
}

// Nudge ends the writer's wait for company of deferred writes
// ([Store.PutDeferred], Options.CommitDelay): what it holds commits now,
// and deferred writes queued within CommitDelay after the call do not
// wait either. Call it before waiting for something that waits for
// deferred writes (httpcache registers a purge after in-flight fills
// wrote, and a fill may queue its write just after the call). If the
// writer is not waiting, its next wait ends at once. It never blocks.
func (s *Store) Nudge() {
	s.nudgedAt.Store(s.lingerNow().UnixNano())
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

// lingerNow is the clock of the deferred wait (tests replace it).
func (s *Store) lingerNow() time.Time {
	if c := s.opts.lingerClock; c != nil {
		return c.now()
	}
	return time.Now()
}

// nudgedRecently reports whether Nudge was called within CommitDelay.
func (s *Store) nudgedRecently() bool {
	at := s.nudgedAt.Load()
	return at != 0 && s.lingerNow().UnixNano()-at < int64(s.opts.CommitDelay)
}

func (s *Store) writer() {
	defer close(s.writerDone)
	var batch []*op
	for {
		var o *op
		select {
		case d := <-s.damagedC:
			if d.db == s.db.Load() {
				s.swapFresh(d.err)
			}
			continue
		case r := <-s.compactC:
			// Between transactions: queued ops wait in s.ops.
			r.before, r.after, r.err = s.compactNow()
			r.done <- struct{}{}
			continue
		case o2, ok := <-s.ops:
			if !ok {
				return
			}
			o = o2
		}
		batch = append(batch[:0], o)
		size := o.size
		// Let the writers woken by the previous commit queue their next op
		// (runtime.Gosched), so they join this batch instead of the next;
		// keep gathering while a round brings new ops. This costs
		// microseconds against a commit's milliseconds, and adds no delay
		// when there is a single writer.
		for round := 0; round < 4; round++ {
			runtime.Gosched()
			added := 0
		drain:
			for len(batch) < maxBatchOps && size < maxBatchBytes {
				select {
				case o2, ok := <-s.ops:
					if !ok {
						break drain
					}
					batch = append(batch, o2)
					size += o2.size
					added++
				default:
					break drain
				}
			}
			if added == 0 {
				break
			}
		}
		closed := false
		if s.opts.CommitDelay > 0 && allDeferred(batch) && !s.nudgedRecently() {
			batch, closed = s.linger(batch, size)
		}
		s.commit(batch)
		clear(batch) // the ops are back in opPool
		if closed {
			return
		}
	}
}

// allDeferred reports whether every op of batch is a deferred one.
func allDeferred(batch []*op) bool {
	for _, o := range batch {
		if !o.deferred {
			return false
		}
	}
	return true
}

// linger holds a batch of deferred ops while more arrive: until
// Options.CommitDelay has passed without a new one, and for no more than
// Options.MaxCommitDelay in all. It ends at once when a write that is not
// deferred arrives, on Nudge, when the batch is full, or when the queue
// closes (closed: commit and stop). A write that waits here was queued by
// a caller that does not wait on it (PutDeferred's contract), and FIFO
// order within the batch is kept, so a delete queued after a deferred put
// still removes it.
func (s *Store) linger(batch []*op, size int) (_ []*op, closed bool) {
	now, after := s.lingerNow, time.After
	if c := s.opts.lingerClock; c != nil {
		after = c.after
	}
	start := now()
	last := start // the latest deferred arrival
	wake := after(s.opts.CommitDelay)
	if s.opts.lingering != nil {
		s.opts.lingering <- len(batch)
	}
	for len(batch) < maxBatchOps && size < maxBatchBytes {
		select {
		case o, ok := <-s.ops:
			if !ok {
				return batch, true
			}
			batch = append(batch, o)
			size += o.size
			if !o.deferred {
				return batch, false
			}
			last = now()
			if s.opts.lingerAdded != nil {
				s.opts.lingerAdded <- len(batch)
			}
		case <-s.nudge:
			return batch, false
		case t := <-wake:
			// Quiet for CommitDelay, or the bound reached: commit.
			// Otherwise wait on until CommitDelay after the latest
			// arrival (one timer per CommitDelay, not one per write).
			end := last.Add(s.opts.CommitDelay)
			if bound := start.Add(s.opts.MaxCommitDelay); bound.Before(end) {
				end = bound
			}
			if !t.Before(end) {
				return batch, false
			}
			wake = after(end.Sub(t))
		}
	}
	return batch, false
}

// commit runs batch in one transaction. If the transaction fails, each op
// is retried alone, so one bad op cannot fail its neighbours. A failure
// of the file itself (a *WriteError) moves the store's Health; a damaged
// file is first set aside (Options.SetAsideCorrupt), so the retries run on
// the fresh one.
func (s *Store) commit(batch []*op) {
	err := s.runTx(batch)
	if werr, ok := errors.AsType[*WriteError](err); ok && werr.Cause == CauseDamaged && s.swapFresh(werr) {
		err = s.runTx(batch) // once, on the fresh file
	}
	if err != nil && len(batch) > 1 {
		s.noteFailure(err, 0)
		for _, o := range batch {
			if err := s.runTx([]*op{o}); err != nil {
				o.err = err
				s.noteFailure(err, 1)
			} else {
				s.noteTx(1, nil)
			}
		}
	} else if err != nil {
		batch[0].err = err
		s.noteFailure(err, 1)
	} else {
		s.noteTx(len(batch), nil)
	}
	for _, o := range batch {
		o.done <- struct{}{}
	}
	if s.opts.MaxSize > 0 && s.cnt.Bytes > s.opts.MaxSize {
		s.kickEvict()
	}
}

// runTx runs batch in one write transaction. An error of the
// transaction itself (the commit's write or sync, a bbolt panic on a
// damaged page) is a *WriteError; an op's own hard error is returned as
// it is.
func (s *Store) runTx(batch []*op) (err error) {
	cnt := s.cnt
	var size int64
	var changed, all bool
	var changes changeList
	var opErr error
	var w *wtx
	defer func() {
		if p := recover(); p != nil {
			err = &WriteError{Cause: CauseDamaged, Err: fmt.Errorf("store: %s: %w: bbolt: %v", s.path, ErrCorrupt, p)}
		}
	}()
	if s.opts.WriteFault != nil {
		if ferr := s.opts.WriteFault(); ferr != nil {
			return &WriteError{Cause: classify(ferr), Err: fmt.Errorf("store: %s: write: %w", s.path, ferr)}
		}
	}
	err = s.db.Load().Update(func(tx *bolt.Tx) error {
		w = &wtx{
			tx:     tx,
			rec:    tx.Bucket(bucketRec),
			body:   tx.Bucket(bucketBody),
			tag:    tx.Bucket(bucketTag),
			exp:    tx.Bucket(bucketExp),
			atime:  tx.Bucket(bucketAtime),
			lru:    tx.Bucket(bucketLRU),
			cnt:    &cnt,
			nowNs:  clampNs(s.opts.Now().UnixNano()),
			known:  &s.access.known,
			atimes: s.atimeNotes[:0],
			// The previous commit's change list, emptied: its keys were
			// turned into strings for the watchers (notify) and are not
			// referred to any more.
			changes: changeList{keys: s.changeBuf.keys[:0], ends: s.changeBuf.ends[:0]},
		}
		for _, o := range batch {
			o.err = o.exec(w)
			if he, ok := errors.AsType[*hardError](o.err); ok {
				opErr = he.err
				return he.err
			}
		}
		if err := tx.Bucket(bucketMeta).Put(metaCounters, cnt.encode()); err != nil {
			return err
		}
		size = tx.Size()
		changed, all, changes = w.changed, w.changedAll, w.changes
		return nil
	})
	if err != nil {
		if w != nil && cap(w.atimes) <= maxKeptAtimeNotes {
			s.atimeNotes = w.atimes[:0] // not applied: the transaction failed
		}
		werr := fmt.Errorf("store: %s: write: %w", s.path, err)
		if opErr != nil && err == opErr && classify(err) == CauseOther {
			return werr // the op's own failure (a bad argument bbolt refused)
		}
		return &WriteError{Cause: classify(err), Err: werr}
	}
	s.cnt = cnt
	// Before any op of the batch returns: the access times it stored are
	// known from now on (a slot never claims an uncommitted time).
	s.access.applied(w.atimes)
	if cap(w.atimes) <= maxKeptAtimeNotes {
		s.atimeNotes = w.atimes[:0]
	}
	s.publish()
	s.fileSize.Store(size)
	s.commits.Add(1)
	s.writes.Add(int64(len(batch)))
	if changed {
		// After the commit, so that a reader who sees the old generation
		// cannot have read data older than it.
		s.generation.Add(1)
		// Still before any op of the batch returns: a caller whose write
		// (a purge) was acknowledged knows every watcher has seen it.
		s.notify(all, changes)
	}
	if cap(changes.keys) <= maxKeptChangeBytes {
		s.changeBuf = changes
	}
	return nil
}

func clampNs(ns int64) int64 { return max(ns, 0) }

// maxKeptAtimeNotes bounds the notes buffer the writer keeps between
// transactions (Store.atimeNotes; a flush of many accesses grows it).
const maxKeptAtimeNotes = 1 << 17

// maxChangeList bounds the record keys one transaction reports to
// watchers one by one; past it the change is reported as "all".
const maxChangeList = 1 << 16

// maxKeptChangeBytes bounds the change list's array the writer keeps for
// the next transaction (Store.changeBuf).
const maxKeptChangeBytes = 1 << 20

// noteChange records that record ck was put or deleted.
func (w *wtx) noteChange(ck []byte) {
	w.changed = true
	if w.changedAll {
		return
	}
	if bytes.Equal(w.changes.last(), ck) {
		return // a put replacing the record it just deleted
	}
	if w.changes.len() >= maxChangeList {
		w.changedAll, w.changes = true, changeList{}
		return
	}
	w.changes.add(ck)
}

// noteChangeAll records that every record may have changed.
func (w *wtx) noteChangeAll() {
	w.changed, w.changedAll, w.changes = true, true, changeList{}
}

// changeList is the record keys (bbolt keys) one transaction changed, in
// order: copied into one array as they come (bbolt's keys are valid only
// within the transaction), so that a commit's list costs a few growths of
// that array instead of an allocation per record, and the watchers' strings
// are made from it in one conversion (see Store.notify).
type changeList struct {
	keys []byte // the keys, one after the other
	ends []int  // where each key ends in keys
}

func (c *changeList) add(ck []byte) {
	c.keys = append(c.keys, ck...)
	c.ends = append(c.ends, len(c.keys))
}

func (c *changeList) len() int { return len(c.ends) }

// last is the key added last (nil when none).
func (c *changeList) last() []byte {
	n := len(c.ends)
	if n == 0 {
		return nil
	}
	start := 0
	if n > 1 {
		start = c.ends[n-2]
	}
	return c.keys[start:c.ends[n-1]]
}

// appendTsKey appends an index key ordered by time: 8-byte big-endian ns,
// then ck.
func appendTsKey(b []byte, ns int64, ck []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(clampNs(ns)))
	return append(b, ck...)
}

func appendTagKey(b []byte, tag string, ck []byte) []byte {
	b = append(b, tag...)
	b = append(b, 0)
	return append(b, ck...)
}

// tsKey and tagKey in w's scratch space, valid until the next call.
func (w *wtx) tsKey(ns int64, ck []byte) []byte {
	w.key = appendTsKey(w.key[:0], ns, ck)
	return w.key
}

func (w *wtx) tagKey(tag string, ck []byte) []byte {
	w.key = appendTagKey(w.key[:0], tag, ck)
	return w.key
}

// del removes the record ck (whose current value is v), its index
// entries and its separate body. A damaged value's tag and expiry entries
// cannot be found; they stay behind and are dropped when DeleteTag or
// RemoveExpired meets them (its body is found by key, so it goes).
func (w *wtx) del(ck, v []byte) error {
	if err := w.unindex(ck, v); err != nil {
		return err
	}
	found, err := w.dropBody(ck)
	if err != nil {
		return err
	}
	if !found {
		// A body counted by put but lost since (damage) is uncounted now.
		var m Meta
		if _, ref, err := decodeMetaInto(v, &m); err == nil && ref.separate {
			w.cnt.Bytes -= m.BodySize
		}
	}
	return w.delValue(ck, v)
}

// unindex removes the tag, expiry and access-time entries of record ck
// (value v).
func (w *wtx) unindex(ck, v []byte) error {
	if m, err := decodeMeta(v); err == nil {
		for _, t := range m.Tags {
			if err := w.tag.Delete(w.tagKey(t, ck)); err != nil {
				return must(err)
			}
		}
		if !m.Expires.IsZero() {
			if err := w.exp.Delete(w.tsKey(timeNanos(m.Expires), ck)); err != nil {
				return must(err)
			}
		}
	}
	if a := w.atime.Get(ck); len(a) == 8 {
		if err := w.lru.Delete(w.tsKey(int64(binary.BigEndian.Uint64(a)), ck)); err != nil {
			return must(err)
		}
	}
	w.noteAtime(ck, forgetAtime)
	return must(w.atime.Delete(ck))
}

// delValue removes record ck's value v from the rec bucket.
func (w *wtx) delValue(ck, v []byte) error {
	w.cnt.Records--
	w.cnt.Bytes -= int64(len(ck) + len(v))
	w.noteChange(ck)
	return must(w.rec.Delete(ck))
}

// dropBody removes record ck's separate body, if there is one (found),
// and its bytes from the counters. The bytes counted are what the body
// bucket holds, not what the record's metadata says, so that a damaged
// record's body is accounted for too.
func (w *wtx) dropBody(ck []byte) (found bool, err error) {
	if w.body == nil {
		return false, nil
	}
	sub := w.body.Bucket(ck)
	if sub == nil {
		return false, nil
	}
	w.cnt.Bytes -= int64(len(sub.Get(bodyKey)))
	return true, must(w.body.DeleteBucket(ck))
}

// put stores v under ck, and body (a separate body, nil for a record
// whose body is inline) in its own bucket, replacing any old record and
// body, with access time atimeNs; tags (without duplicates) and expires
// are v's, for the indexes. v and body must stay unchanged until the
// transaction ends.
func (w *wtx) put(ck, v, body []byte, tags []string, expires time.Time, atimeNs int64) error {
	if old := w.recGet(ck); old != nil {
		if err := w.del(ck, old); err != nil {
			return err
		}
	}
	if body != nil {
		sub, err := w.body.CreateBucket(ck)
		if errors.Is(err, berrors.ErrBucketExists) {
			// A body left without its record (never by this package):
			// replace it, uncounted as it was.
			if err := w.body.DeleteBucket(ck); err != nil {
				return must(err)
			}
			sub, err = w.body.CreateBucket(ck)
		}
		if err != nil {
			return must(err)
		}
		if err := sub.Put(bodyKey, body); err != nil {
			return must(err)
		}
		w.cnt.Bytes += int64(len(body))
	}
	return w.putValue(ck, v, tags, expires, atimeNs)
}

// replace stores v under ck in place of old, keeping the record's
// separate body where it is (Annotate, cluster marks: only the metadata
// changes, and v must describe the same body).
func (w *wtx) replace(ck, old, v []byte, tags []string, expires time.Time, atimeNs int64) error {
	if err := w.unindex(ck, old); err != nil {
		return err
	}
	if err := w.delValue(ck, old); err != nil {
		return err
	}
	return w.putValue(ck, v, tags, expires, atimeNs)
}

// putValue stores record value v under ck with its index entries; ck has
// no value and no access time (put and replace removed them).
func (w *wtx) putValue(ck, v []byte, tags []string, expires time.Time, atimeNs int64) error {
	if err := w.rec.Put(ck, v); err != nil {
		return must(err)
	}
	for _, t := range tags {
		if err := w.tag.Put(w.tagKey(t, ck), nil); err != nil {
			return must(err)
		}
	}
	if !expires.IsZero() {
		if err := w.exp.Put(w.tsKey(timeNanos(expires), ck), nil); err != nil {
			return must(err)
		}
	}
	if err := w.addAtime(ck, atimeNs); err != nil {
		return err
	}
	w.cnt.Records++
	w.cnt.Bytes += int64(len(ck) + len(v))
	w.noteChange(ck)
	return nil
}

// setAtime moves ck's access time from old (had: ck has one; the caller
// read it from the atime bucket in this transaction) to ns, in the atime
// and lru buckets.
func (w *wtx) setAtime(ck []byte, old int64, had bool, ns int64) error {
	if had {
		if err := w.lru.Delete(w.tsKey(old, ck)); err != nil {
			return must(err)
		}
	}
	return w.addAtime(ck, ns)
}

// addAtime is setAtime for a ck that has no access time.
func (w *wtx) addAtime(ck []byte, ns int64) error {
	if len(w.vals)+8 > cap(w.vals) {
		w.vals = make([]byte, 0, 8*64) // earlier values stay in the old array
	}
	w.vals = binary.BigEndian.AppendUint64(w.vals, uint64(clampNs(ns)))
	if err := w.atime.Put(ck, w.vals[len(w.vals)-8:]); err != nil {
		return must(err)
	}
	w.noteAtime(ck, clampNs(ns))
	return must(w.lru.Put(w.tsKey(ns, ck), nil))
}

// lingerClock replaces, in tests, the clock and timers of linger.
type lingerClock struct {
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
}
