package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Get returns a copy of the record stored under key and variant, owned by
// the caller. It returns ErrNotFound when there is none, a *CorruptError
// (errors.Is ErrCorrupt) when the stored bytes fail their checksum, and
// ErrClosed after Close. Get never writes: the access time it records for
// LRU eviction is kept in memory and written later in a batch.
func (s *Store) Get(ctx context.Context, key, variant string) (*Record, error) {
	return s.GetInto(ctx, key, variant, nil)
}

// BodyBuffer supplies the memory a read copies a record's body into
// ([Store.GetInto], [Store.LookupInto]), so that a caller serving many
// reads (a cache answering hits from the store) can reuse buffers instead
// of having every body copied into fresh memory.
//
// bbolt's values live in its memory map and are valid only inside their
// read transaction. The store copies the body out inside the transaction,
// as Get always did, and never holds the transaction past the call: a
// caller that kept it open while a slow client read the body would keep
// bbolt from re-mapping a growing file (a re-map waits for every open
// reader and holds new ones back). What BodyBuffer changes is only where
// that one copy goes.
//
// The store calls it at most once per read, inside the read transaction,
// with n > 0, the length of a body whose record's metadata and header
// checksums passed and whose stored length checks out. It returns a slice
// of capacity at least n: the store copies the body into its first n
// bytes, checks the body's CRC-32C on that copy (as for Get: the bytes
// returned are the bytes checked; the copy fetches them from the memory
// map faster than the checksum loop would), and sets [Record.Body] to that
// slice resliced to length n (its capacity kept). A body that fails its
// checksum is a *CorruptError after the call: nothing returned refers to
// the memory, which the caller may reuse at once. A slice of smaller capacity (nil included)
// declines: the body is then allocated as Get does, for example for a
// body larger than the caller pools. It must be quick and must not call
// the Store (like Lookup's choose).
//
// Ownership: the memory stays the caller's. The store keeps no reference
// to it once the read returns, whether it succeeded or not (after an
// error it may have been written to); on success Record.Body aliases it,
// so the caller must not reuse the memory while anything still reads
// that Body.
type BodyBuffer func(n int) []byte

// GetInto is [Store.Get] with the record's body copied into memory from
// body (see [BodyBuffer]); a nil body is Get. Everything else of the
// Record is fresh memory owned by the caller, as Get returns it.
func (s *Store) GetInto(ctx context.Context, key, variant string, body BodyBuffer) (*Record, error) {
	return s.GetBuf(ctx, key, variant, new(RecordBuf), body)
}

// GetBuf is [Store.GetInto] with the Record read into rb, memory the
// caller provides (a RecordBuf embedded in its own structure, so a read
// allocates no Record of its own): on success it returns &rb.Record. rb
// must not be nil; whatever it held is overwritten, on success or not
// (after an error its contents are undefined), and the store keeps no
// reference to it once GetBuf returns. The strings, slices and maps of the
// Record returned are fresh memory the caller owns, as Get's are, except
// that header values may live in rb itself: rb must not be read into
// again while that Record is in use.
func (s *Store) GetBuf(ctx context.Context, key, variant string, rb *RecordBuf, body BodyBuffer) (*Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	var kb [256]byte
	ck := appendRecKey(kb[:0], key, variant)
	r := &rb.Record
	acc := s.access.begin()
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRec).Get(ck)
		if v == nil {
			return ErrNotFound
		}
		if err := s.readRecord(tx, ck, v, key, variant, rb, body); err != nil {
			return err
		}
		s.checkAccess(&acc, tx, ck)
		return nil
	})
	return s.found(ck, key, variant, r, &acc, err)
}

// checkAccess checks, inside the read transaction tx that found record
// ck, the access of a read-write store's read (accessTracker.check).
func (s *Store) checkAccess(c *accessCheck, tx *bolt.Tx, ck []byte) {
	if s.ops != nil {
		s.access.check(c, tx, ck, s.opts.Now().UnixNano())
	}
}

// RecordBuf is room for one Record read by [Store.GetBuf] (Get, GetInto,
// Lookup and LookupInto allocate one per read): the Record, and room for
// its header values in the same memory (decodeHeader), the fields of a
// typical stored page, each with one value. The zero RecordBuf is ready
// to use.
type RecordBuf struct {
	Record
	vals [recordBufValues]string
}

// recordBufValues is how many header values a RecordBuf holds.
const recordBufValues = 10

// readRecord decodes record ck (value v, expected to be key and variant)
// into rb, with its body from the body bucket copied into memory from dst
// (nil: allocated), inside tx. Damage is a *CorruptError, counted in
// Stats.Corrupt.
func (s *Store) readRecord(tx *bolt.Tx, ck, v []byte, key, variant string, rb *RecordBuf, dst BodyBuffer) error {
	r := &rb.Record
	var m Meta
	p, ref, err := decodeMetaText(v, &m)
	if err == nil {
		err = s.readRest(tx, ck, v, p, ref, &m, rb, dst)
	}
	if err == nil && (r.Key != key || r.Variant != variant) {
		err = fmt.Errorf("record says key %q variant %q", r.Key, r.Variant)
	}
	if err != nil {
		s.corrupt.Add(1)
		return &CorruptError{Key: key, Variant: variant, Err: err}
	}
	return nil
}

// readRest is readRecord after the metadata m of v (sections p, body
// ref) decoded: the header and the body, from the body bucket if kept
// apart, the body copied into memory from dst (nil: allocated).
func (s *Store) readRest(tx *bolt.Tx, ck, v []byte, p parsed, ref bodyRef, m *Meta, rb *RecordBuf, dst BodyBuffer) error {
	var body []byte
	if ref.separate {
		body = bodyValue(tx.Bucket(bucketBody), ck)
	}
	p.vals = rb.vals[:]
	return decodeRest(v, p, ref, body, &rb.Record, m, true, dst)
}

// found finishes a read of record ck into r that returned err: bbolt's
// damage becomes a *CorruptError, a record older than the cluster's
// purge-all epoch is not found, and the access acc is recorded.
func (s *Store) found(ck []byte, key, variant string, r *Record, acc *accessCheck, err error) (*Record, error) {
	if err != nil {
		if _, ok := errors.AsType[*CorruptError](err); !ok && errors.Is(err, ErrCorrupt) {
			// bbolt panicked on a damaged page (recovered in view, which
			// reported the damage): the record cannot be read.
			err = &CorruptError{Key: key, Variant: variant, Err: err}
		}
		return nil, err
	}
	if s.beforeEpoch(r.StoredTime) { // cluster purge-all epoch (applied.go)
		return nil, ErrNotFound
	}
	if s.ops != nil {
		s.access.record(ck, acc)
	}
	return r, nil
}

// bodyValue returns the separate body of record ck from the body bucket
// b, nil if there is none (or no bucket: a format-1 file opened
// read-only). The bytes belong to the transaction.
func bodyValue(b *bolt.Bucket, ck []byte) []byte {
	if b == nil {
		return nil
	}
	sub := b.Bucket(ck)
	if sub == nil {
		return nil
	}
	return sub.Get(bodyKey)
}

// Lookup reads, in one read transaction, the variants of key and the
// record of the one choose picks: the two reads a cache makes for a key
// whose variant it cannot name yet (Variants, then Get) without a second
// transaction or a second search.
//
// choose is called once, inside the read transaction, with the stored
// variants of key in variant order (at least one; damaged ones have
// Meta.Corrupt set, and LastAccess is left zero): it returns the variant
// to read, or ok false to read none. It must be quick and must not read
// or write the Store's file (Get, Variants, Scan, any write: a read inside
// a read transaction can deadlock against a writer that grows the file);
// the in-memory methods Epoch, Touch, Stats and Generation are fine. The
// Meta values are copies it may keep but must not modify: the chosen
// one's Tags and Annotations are those of the Record returned.
//
// Lookup returns the chosen record as Get does (a copy owned by the
// caller, the access recorded, the cluster's purge-all epoch applied), or
// ErrNotFound when key has no variant, choose returned false, or the
// chosen variant is not among those listed. A damaged chosen record is a
// *CorruptError; ErrClosed after Close; ctx's error if it ended before
// the read.
func (s *Store) Lookup(ctx context.Context, key string, choose func(variants []Meta) (variant string, ok bool)) (*Record, error) {
	return s.LookupInto(ctx, key, choose, nil)
}

// LookupInto is [Store.Lookup] with the chosen record's body copied into
// memory from body (see [BodyBuffer]); a nil body is Lookup.
func (s *Store) LookupInto(ctx context.Context, key string, choose func(variants []Meta) (variant string, ok bool), body BodyBuffer) (*Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("store: lookup: %w", err)
	}
	s.clusterLoad() // its one read, before ours: choose may call Epoch
	acc := s.access.begin()
	var kb [256]byte
	prefix := append(append(kb[:0], key...), 0)
	var (
		rb      *RecordBuf // allocated once a variant is listed
		variant string
		ck      []byte
	)
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRec).Cursor()
		k, v := c.Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) {
			// A key with no variant (every miss): nothing listed, so
			// nothing allocated (mbuf, which choose may keep, lives on
			// the heap).
			return ErrNotFound
		}
		rb = new(RecordBuf)
		if err := s.lookupListed(tx, c, k, v, prefix, key, choose, rb, body, &variant, &ck); err != nil {
			return err
		}
		s.checkAccess(&acc, tx, ck)
		return nil
	})
	if ck == nil {
		ck = append(prefix, variant...)
	}
	var r *Record
	if rb != nil {
		r = &rb.Record
	}
	return s.found(ck, key, variant, r, &acc, err)
}

// lookupListed is LookupInto's read once the cursor c stands on the first
// record of key (k, v): it lists key's variants, asks choose, and reads the
// chosen one into rb, setting *variant and *ck.
func (s *Store) lookupListed(tx *bolt.Tx, c *bolt.Cursor, k, v, prefix []byte, key string, choose func(variants []Meta) (variant string, ok bool), rb *RecordBuf, body BodyBuffer, variant *string, ck *[]byte) error {
	type listed struct {
		v   []byte
		p   parsed
		ref bodyRef
	}
	var (
		mbuf [4]Meta
		lbuf [4]listed
	)
	ms, ls := mbuf[:0], lbuf[:0]
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		m, p, ref := s.metaParsed(k, v)
		ms = append(ms, m)
		ls = append(ls, listed{v, p, ref})
	}
	var ok bool
	if *variant, ok = choose(slices.Clip(ms)); !ok {
		return ErrNotFound
	}
	i, found := slices.BinarySearchFunc(ms, *variant, func(m Meta, v string) int { return strings.Compare(m.Variant, v) })
	if !found {
		return ErrNotFound
	}
	*ck = append(prefix, *variant...)
	if ms[i].Corrupt {
		return s.readRecord(tx, *ck, ls[i].v, key, *variant, rb, body) // reports the damage
	}
	// The metadata listed is the record's: its strings, tags and
	// annotations are shared with the Record returned.
	m := ms[i]
	if err := s.readRest(tx, *ck, ls[i].v, ls[i].p, ls[i].ref, &m, rb, body); err != nil {
		s.corrupt.Add(1)
		return &CorruptError{Key: key, Variant: *variant, Err: err}
	}
	return nil
}

// Put stores a copy of r, replacing any record with the same Key and
// Variant, and returns after the write is committed (and synced unless
// Options.NoSync). Concurrent Puts share transactions. The record is
// encoded in the caller's goroutine; r is not modified or retained after
// Put returns (r.Body must not change while Put runs). A zero
// StoredTime is set to Options.Now() in the stored copy.
//
// Errors: ErrInvalid (empty key, NUL in key or tag), ErrTooLarge (encoding
// above Options.MaxObjectSize), ErrReadOnly, ErrClosed, ctx's error if it
// ends before the write is queued.
func (s *Store) Put(ctx context.Context, r *Record) error {
	return s.put(ctx, r, false)
}

// PutDeferred is [Store.Put] for a write nobody is waiting on (a cache
// fill stored after its response was sent): the writer may hold its
// transaction for other writes to share the commit and its fsyncs, until
// Options.CommitDelay passes without another deferred write and never
// beyond Options.MaxCommitDelay. It returns, like Put, after the commit;
// any other write, or [Store.Nudge], ends the wait.
func (s *Store) PutDeferred(ctx context.Context, r *Record) error {
	return s.put(ctx, r, true)
}

func (s *Store) put(ctx context.Context, r *Record, deferred bool) error {
	if r == nil {
		return fmt.Errorf("store: put: nil record: %w", ErrInvalid)
	}
	if err := validate(r); err != nil {
		return fmt.Errorf("store: put: %w", err)
	}
	rr := *r
	if rr.StoredTime.IsZero() {
		rr.StoredTime = s.opts.Now()
	}
	// One buffer holds the bbolt key and the encoded value, sized once and
	// reused across Puts: bbolt keeps the value (not the key) until the
	// transaction commits, and do returns only after that.
	bp := encPool.Get().(*[]byte)
	buf := append((*bp)[:0], rr.Key...)
	buf = append(buf, 0)
	buf = append(buf, rr.Variant...)
	nk := len(buf)
	buf = appendRecord(buf, &rr)
	ck, v := buf[:nk:nk], buf[nk:]
	defer func() {
		if cap(buf) <= maxPooledEncoding {
			*bp = buf[:0]
			encPool.Put(bp)
		}
	}()
	// A large body is stored as it is, from the caller's slice: bbolt
	// copies it into its pages at the commit, before Put returns.
	var body []byte
	if separateBody(len(rr.Body)) {
		body = rr.Body
	}
	if size := int64(len(buf) + len(body)); size > s.opts.MaxObjectSize {
		return fmt.Errorf("store: put %q: %d bytes, limit %d: %w", rr.Key, size, s.opts.MaxObjectSize, ErrTooLarge)
	}
	pa := putArgs{ck: ck, v: v, body: body, tags: uniq(rr.Tags), expires: rr.Expires}
	return s.runOp(ctx, len(v)+len(body), deferred, nil, &pa)
}

// encPool holds Put's encoding buffers (*[]byte); buffers above
// maxPooledEncoding are left to the garbage collector, so a rare huge
// record does not stay pinned.
var encPool = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledEncoding = 1 << 20

func uniq(tags []string) []string {
	if len(tags) < 2 {
		return tags
	}
	t := slices.Clone(tags)
	slices.Sort(t)
	return slices.Compact(t)
}

// Delete removes one record, returning after the removal is committed. It
// returns ErrNotFound if there is none. A damaged record can be deleted.
func (s *Store) Delete(ctx context.Context, key, variant string) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	ck := recKey(key, variant)
	return s.do(ctx, 0, func(w *wtx) error {
		v := w.rec.Get(ck)
		if v == nil {
			return ErrNotFound
		}
		return w.del(ck, v)
	})
}

// DeleteKey removes every variant of key and returns how many records it
// removed (0 and no error when there were none), after commit.
func (s *Store) DeleteKey(ctx context.Context, key string) (int, error) {
	if err := validateKey(key); err != nil {
		return 0, fmt.Errorf("store: delete key: %w", err)
	}
	return s.deleteRange(ctx, append([]byte(key), 0))
}

// DeletePrefix removes every record whose primary key starts with prefix
// and returns how many it removed, after the last removal is committed.
// Large purges are split into transactions of 10,000 records; if ctx ends
// or an error occurs midway, the count removed so far is returned with the
// error. An empty prefix is ErrInvalid (use DeleteAll).
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if prefix == "" {
		return 0, fmt.Errorf("store: delete prefix: empty prefix (use DeleteAll): %w", ErrInvalid)
	}
	return s.deleteRange(ctx, []byte(prefix))
}

func (s *Store) deleteRange(ctx context.Context, prefix []byte) (int, error) {
	return s.inSteps(ctx, func(w *wtx) (n int, more bool, err error) {
		keys, more := prefixKeys(w.rec.Cursor(), prefix, s.opts.chunk)
		for _, k := range keys {
			if err := w.del(k, w.rec.Get(k)); err != nil {
				return n, false, err
			}
			n++
		}
		return n, more, nil
	})
}

// inSteps runs step in one write transaction after another, until it
// reports no more work, and returns the sum of its counts. A step whose
// transaction failed counts nothing: the error is returned with the total
// of the steps committed before it.
func (s *Store) inSteps(ctx context.Context, step func(w *wtx) (n int, more bool, err error)) (int, error) {
	total := 0
	for {
		var n int
		var more bool
		err := s.do(ctx, 0, func(w *wtx) error {
			var err error
			n, more, err = step(w) // set afresh if the op is retried alone
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if !more {
			return total, nil
		}
	}
}

// prefixKeys returns copies of the first max keys at or after c.Seek(prefix)
// that start with prefix, and whether more follow.
func prefixKeys(c *bolt.Cursor, prefix []byte, max int) (keys [][]byte, more bool) {
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(keys) == max {
			return keys, true
		}
		keys = append(keys, bytes.Clone(k))
	}
	return keys, false
}

// DeleteTag removes every record carrying tag and returns how many it
// removed, after commit. It uses the tag index, not a scan.
func (s *Store) DeleteTag(ctx context.Context, tag string) (int, error) {
	if tag == "" {
		return 0, fmt.Errorf("store: delete tag: empty tag: %w", ErrInvalid)
	}
	prefix := append([]byte(tag), 0)
	return s.inSteps(ctx, func(w *wtx) (n int, more bool, err error) {
		iks, more := prefixKeys(w.tag.Cursor(), prefix, s.opts.chunk)
		for _, ik := range iks {
			ck := ik[len(prefix):]
			v := w.rec.Get(ck)
			if v != nil {
				m, err := decodeMeta(v)
				if err != nil || slices.Contains(m.Tags, tag) {
					if err := w.del(ck, v); err != nil {
						return n, false, err
					}
					n++
					continue
				}
			}
			// Stale entry (record gone, or re-stored without the tag).
			if err := w.tag.Delete(ik); err != nil {
				return n, false, must(err)
			}
		}
		return n, more, nil
	})
}

// DeleteAll removes every record and returns how many there were, after
// commit. It drops and recreates the buckets in one transaction.
func (s *Store) DeleteAll(ctx context.Context) (int, error) {
	var n int
	err := s.do(ctx, 0, func(w *wtx) (err error) {
		n, err = w.deleteAll()
		return err
	})
	return n, err
}

// deleteAll is DeleteAll in w's transaction: it returns how many records
// there were.
func (w *wtx) deleteAll() (int, error) {
	n := int(w.cnt.Records)
	for _, name := range dataBuckets {
		if err := w.tx.DeleteBucket(name); err != nil {
			return 0, must(err)
		}
		b, err := w.tx.CreateBucket(name)
		if err != nil {
			return 0, must(err)
		}
		switch string(name) {
		case string(bucketRec):
			w.rec = b
		case string(bucketBody):
			w.body = b
		case string(bucketTag):
			w.tag = b
		case string(bucketExp):
			w.exp = b
		case string(bucketAtime):
			w.atime = b
		case string(bucketLRU):
			w.lru = b
		}
	}
	w.cnt.Records, w.cnt.Bytes = 0, 0
	w.noteChangeAll()
	w.forgetAllAtimes()
	return n, nil
}

// ScanOptions select a page of Scan.
type ScanOptions struct {
	// Prefix limits the scan to primary keys starting with it.
	Prefix string
	// After is the cursor: Page.Next of the previous page (exclusive).
	// A plain primary key (no NUL byte) skips that key and all its variants.
	After string
	// Limit is the page size. Zero means 100; it is capped at 10,000.
	Limit int
}

// Page is one page of Scan.
type Page struct {
	Entries []Meta
	// Next is the cursor for the following page, "" when there is none.
	// It is opaque: pass it back as ScanOptions.After.
	Next string
}

const (
	defaultScanLimit = 100
	maxScanLimit     = 10000
)

// Scan lists records in key order (primary key, then variant), from a
// cursor, one page at a time. It seeks to the cursor (cost grows with the
// log of the number of records, not with the page's depth) and reads only
// each record's metadata. Damaged records are listed with Meta.Corrupt set.
func (s *Store) Scan(ctx context.Context, o ScanOptions) (Page, error) {
	if err := ctx.Err(); err != nil {
		return Page{}, err
	}
	limit := o.Limit
	switch {
	case limit < 0:
		return Page{}, fmt.Errorf("store: scan: negative limit %d: %w", limit, ErrInvalid)
	case limit == 0:
		limit = defaultScanLimit
	case limit > maxScanLimit:
		limit = maxScanLimit
	}
	prefix := []byte(o.Prefix)
	seek := prefix
	var after []byte
	if o.After != "" {
		after = []byte(o.After)
		if bytes.IndexByte(after, 0) < 0 {
			after = append(after, 1) // past every "key NUL variant"
		}
		if bytes.Compare(after, seek) > 0 {
			seek = after
		}
	}
	var p Page
	err := s.view(func(tx *bolt.Tx) error {
		atime := tx.Bucket(bucketAtime)
		c := tx.Bucket(bucketRec).Cursor()
		k, v := c.Seek(seek)
		if k != nil && after != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(p.Entries) == limit {
				p.Next = string(p.Entries[len(p.Entries)-1].cursor())
				break
			}
			p.Entries = append(p.Entries, s.meta(k, v, atime))
		}
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	return p, nil
}

func (m *Meta) cursor() []byte { return recKey(m.Key, m.Variant) }

// meta decodes the listing entry for record k (value v).
func (s *Store) meta(k, v []byte, atime *bolt.Bucket) Meta {
	m := s.metaOf(k, v)
	if m.Corrupt {
		return m
	}
	// The later of the stored and the pending time (a pending one a
	// write has since overtaken is not the latest).
	var ns int64
	ok := false
	if a := atime.Get(k); len(a) == 8 {
		ns, ok = int64(binary.BigEndian.Uint64(a)), true
	}
	ns, ok, _, _ = s.access.accessAt(k, ns, ok)
	if ok {
		m.LastAccess = nanosTime(ns)
	}
	return m
}

// metaOf is meta without the access time. A damaged record's Size counts
// only its value (its separate body is not looked up).
func (s *Store) metaOf(k, v []byte) Meta {
	m, _, _ := s.metaParsed(k, v)
	return m
}

// metaParsed is metaOf with the sections and body reference of a sound
// record.
func (s *Store) metaParsed(k, v []byte) (Meta, parsed, bodyRef) {
	var m Meta
	p, ref, err := decodeMetaInto(v, &m)
	if err != nil || len(k) != len(m.Key)+1+len(m.Variant) || string(k[:len(m.Key)]) != m.Key || k[len(m.Key)] != 0 || string(k[len(m.Key)+1:]) != m.Variant {
		key, variant := splitRecKey(k)
		s.corrupt.Add(1)
		return Meta{Key: key, Variant: variant, Size: int64(len(k) + len(v)), Corrupt: true}, parsed{}, bodyRef{}
	}
	m.Size += int64(len(k))
	return m, p, ref
}

// Variants lists the stored variants of key in variant order (empty, with
// no error, when there are none).
func (s *Store) Variants(ctx context.Context, key string) ([]Meta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("store: variants: %w", err)
	}
	prefix := append([]byte(key), 0)
	var ms []Meta
	err := s.view(func(tx *bolt.Tx) error {
		atime := tx.Bucket(bucketAtime)
		c := tx.Bucket(bucketRec).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			ms = append(ms, s.meta(k, v, atime))
		}
		return nil
	})
	return ms, err
}

// Annotate merges set into the record's annotations ("" as a value deletes
// that annotation) and returns after commit. The record's access time is
// kept. It returns ErrNotFound, or a *CorruptError for a damaged record.
// Options.MaxObjectSize is not applied (the new size does count in
// Stats.Bytes): marking a record, such as disabling it, must not fail
// because the record is at the limit. Keep annotations small.
func (s *Store) Annotate(ctx context.Context, key, variant string, set map[string]string) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("store: annotate: %w", err)
	}
	ck := recKey(key, variant)
	set = maps.Clone(set)
	return s.do(ctx, 0, func(w *wtx) error {
		v := w.rec.Get(ck)
		if v == nil {
			return ErrNotFound
		}
		err := w.annotate(ck, v, set)
		if _, hard := errors.AsType[*hardError](err); err != nil && !hard {
			err = &CorruptError{Key: key, Variant: variant, Err: err}
		}
		return err
	})
}

// annotate merges set into the annotations of record ck (value v; "" as
// a value deletes) and rewrites the record's value, keeping its access
// time and its separate body where it is (a version-1 record is rewritten
// as version 2, its body moved apart if large). A damaged record is left
// as it is: the decoding error is returned, unwrapped.
func (w *wtx) annotate(ck, v []byte, set map[string]string) error {
	var r Record
	var m Meta
	ref, err := decodeRecordInto(v, nil, &r, &m, false)
	if err != nil {
		return err
	}
	if r.Annotations == nil {
		r.Annotations = map[string]string{}
	}
	for k, val := range set {
		if val == "" {
			delete(r.Annotations, k)
		} else {
			r.Annotations[k] = val
		}
	}
	if len(r.Annotations) == 0 {
		r.Annotations = nil
	}
	atimeNs := w.nowNs
	if a := w.atime.Get(ck); len(a) == 8 {
		atimeNs = int64(binary.BigEndian.Uint64(a))
	}
	if ref.separate {
		nv := appendRecordRef(nil, &r, ref)
		return w.replace(ck, v, nv, uniq(m.Tags), m.Expires, atimeNs)
	}
	var body []byte
	if separateBody(len(r.Body)) {
		body = r.Body
	}
	return w.put(ck, encodeRecord(&r), body, uniq(m.Tags), m.Expires, atimeNs)
}

// RemoveExpired removes every record whose Expires is set and not after
// now, and returns how many, after commit. It walks the expiry index from
// the oldest entry, so its cost grows with the number of expired records,
// not with the store. Stats.Expired counts them.
func (s *Store) RemoveExpired(ctx context.Context, now time.Time) (int, error) {
	limit := clampNs(timeNanos(now))
	return s.inSteps(ctx, func(w *wtx) (int, bool, error) {
		return w.removeExpired(limit, s.opts.chunk, nil)
	})
}

// removeExpired removes up to max expired records (expiry <= limitNs),
// oldest expiry first, while stop (if non-nil) returns false.
func (w *wtx) removeExpired(limitNs int64, max int, stop func() bool) (n int, more bool, err error) {
	var iks [][]byte
	c := w.exp.Cursor()
	for k, _ := c.First(); k != nil && len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) <= limitNs; k, _ = c.Next() {
		if len(iks) == max {
			more = true
			break
		}
		iks = append(iks, bytes.Clone(k))
	}
	for _, ik := range iks {
		if stop != nil && stop() {
			return n, false, nil
		}
		ck := ik[8:]
		if v := w.rec.Get(ck); v != nil {
			m, err := decodeMeta(v)
			if err != nil || (!m.Expires.IsZero() && clampNs(timeNanos(m.Expires)) == int64(binary.BigEndian.Uint64(ik))) {
				if err := w.del(ck, v); err != nil {
					return n, false, err
				}
				w.cnt.Expired++
				n++
				continue
			}
		}
		if err := w.exp.Delete(ik); err != nil {
			return n, false, must(err)
		}
	}
	return n, more, nil
}

// Compact writes a compacted copy of the store to a new file dst (which
// must not exist), for example to reclaim space: bbolt never shrinks its
// file. Writes may continue meanwhile; the copy is a consistent snapshot.
// ctx is checked before starting. Open dst afterwards to use it.
func (s *Store) Compact(ctx context.Context, dst string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("store: compact to %s: file exists: %w", dst, os.ErrExist)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: compact to %s: %w", dst, err)
	}
	if s.ops != nil {
		_ = s.flushAccess(ctx)
	}
	s.closeMu.RLock()
	closed := s.closed
	s.closeMu.RUnlock()
	if closed {
		return ErrClosed
	}
	d, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: s.opts.Timeout, NoSync: s.opts.NoSync, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("store: compact to %s: %w", dst, err)
	}
	_, err = copyStore(d, s.db.Load(), 64<<20)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("store: compact %s to %s: %w", s.path, dst, err)
	}
	return nil
}

// CheckResult is the outcome of Check.
type CheckResult struct {
	Records int64  // records examined
	Damaged []Meta // records failing their checks (Key, Variant, Size; Corrupt set)
	// Problems are structural errors reported by bbolt's consistency check
	// (unreachable or doubly used pages, bad ordering).
	Problems []string
}

// Check verifies the whole file: bbolt's page-level consistency check and
// both checksums of every record. Unlike everything else here it reads the
// whole database (seconds for a million records), inside one read
// transaction; writers are not blocked. It returns ctx's error if ctx ends
// first. Damaged records can then be removed with Delete.
func (s *Store) Check(ctx context.Context) (CheckResult, error) {
	var res CheckResult
	err := s.view(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			res.Problems = append(res.Problems, err.Error())
		}
		rec, body := tx.Bucket(bucketRec), tx.Bucket(bucketBody)
		c := rec.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if res.Records%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			res.Records++
			key, variant := splitRecKey(k)
			bv := bodyValue(body, k)
			r, _, err := decodeRecord(v, bv)
			if err != nil || r.Key != key || r.Variant != variant {
				res.Damaged = append(res.Damaged, Meta{Key: key, Variant: variant, Size: int64(len(k) + len(v) + len(bv)), Corrupt: true})
			}
		}
		if body == nil {
			return nil
		}
		// A body whose record is gone would never be read or counted.
		c = body.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if rec.Get(k) == nil {
				key, variant := splitRecKey(k)
				res.Problems = append(res.Problems, fmt.Sprintf("a body without its record: key %q variant %q", key, variant))
			}
		}
		return nil
	})
	return res, err
}
