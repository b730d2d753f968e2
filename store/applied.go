package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Cluster support: invalidations applied at a stream sequence, the
// purge-all epoch, and the identity of the stream the sequence counts in.
// The state lives in its own bucket (created on first use, so files of
// earlier binaries open unchanged) and is loaded lazily on first use.

var (
	bucketCluster = []byte("cluster") // applied sequence, epoch, stream identity
	bucketOutbox  = []byte("outbox")  // see outbox.go

	clusterApplied = []byte("applied") // 8-byte BE stream sequence
	clusterEpoch   = []byte("epoch")   // 8-byte BE Unix ns
	clusterStream  = []byte("stream")  // stream identity string
)

// Invalidation is one cluster invalidation as the store applies it. Exactly
// one of Keys, Prefix, Tag and All selects what it covers:
//
//   - Keys: every variant of each primary key;
//   - Prefix: every record whose primary key starts with Prefix (non-empty);
//   - Tag: every record carrying Tag (through the tag index);
//   - All: every record stored until now, as an epoch: the store records
//     the instant and from then on [Store.Get] treats every record whose
//     StoredTime is not after it as absent (ErrNotFound). Nothing is
//     scanned; [Store.SweepEpoch] removes those records in the background.
//
// Mark, when non-nil, makes it a soft invalidation: instead of deleting a
// matching record, Mark is merged into its annotations (as
// [Store.Annotate] does; "" deletes an annotation), keeping its access
// time. The store gives the annotations no meaning: the caller (httpcache)
// chooses what marks an entry stale. Mark cannot be combined with All. A
// damaged record is deleted, never marked.
type Invalidation struct {
	Keys   []string
	Prefix string
	Tag    string
	All    bool
	Mark   map[string]string
}

func (inv *Invalidation) validate() error {
	n := 0
	if len(inv.Keys) > 0 {
		n++
		for _, k := range inv.Keys {
			if err := validateKey(k); err != nil {
				return err
			}
		}
	}
	if inv.Prefix != "" {
		n++
	}
	if inv.Tag != "" {
		n++
		if bytes.IndexByte([]byte(inv.Tag), 0) >= 0 {
			return fmt.Errorf("tag %q contains NUL: %w", inv.Tag, ErrInvalid)
		}
	}
	if inv.All {
		n++
		if inv.Mark != nil {
			return fmt.Errorf("a soft (Mark) invalidation of All: %w", ErrInvalid)
		}
	}
	if n != 1 {
		return fmt.Errorf("invalidation selects %d of Keys, Prefix, Tag, All; want exactly one: %w", n, ErrInvalid)
	}
	return nil
}

// Sequenced is an invalidation at a stream sequence, for
// [Store.ApplyInvalidations]. Count is an output: ApplyInvalidations adds
// the records this item deleted or marked (for All: hid) once they are
// committed.
//
// Done marks an invalidation whose effect this store already has (a node's
// own purge, applied with [Store.ApplyAndQueue] before it was published):
// only its sequence is recorded, in order with the other items and in the
// same transaction style, and Inv is neither validated nor applied, so a
// record stored since the local apply is not deleted again.
type Sequenced struct {
	Seq   uint64
	Inv   Invalidation
	Done  bool
	Count int
}

// clusterState is the in-memory copy of the cluster bucket. Readers load
// atomics; writers that change it hold mu from before their transaction
// until the new values are published, so the published values follow the
// commits in order.
type clusterState struct {
	once    sync.Once
	mu      sync.Mutex
	applied atomic.Uint64
	epochNs atomic.Int64
	stream  atomic.Pointer[string]
}

// clusterLoad reads the cluster bucket once. A store that cannot be read
// (closed) keeps the zero state.
func (s *Store) clusterLoad() *clusterState {
	cl := &s.cl
	cl.once.Do(func() {
		empty := ""
		cl.stream.Store(&empty)
		_ = s.view(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketCluster)
			if b == nil {
				return nil
			}
			if v := b.Get(clusterApplied); len(v) == 8 {
				cl.applied.Store(binary.BigEndian.Uint64(v))
			}
			if v := b.Get(clusterEpoch); len(v) == 8 {
				cl.epochNs.Store(int64(binary.BigEndian.Uint64(v)))
			}
			if v := b.Get(clusterStream); v != nil {
				st := string(v)
				cl.stream.Store(&st)
			}
			return nil
		})
	})
	return cl
}

// beforeEpoch reports whether a record stored at stored is covered by the
// purge-all epoch. It is the check [Store.Get] makes: one atomic load.
func (s *Store) beforeEpoch(stored time.Time) bool {
	e := s.clusterLoad().epochNs.Load()
	return e != 0 && timeNanos(stored) <= e
}

// AppliedSequence returns the stream sequence of the last invalidation
// applied with [Store.ApplyInvalidations] (0 when none), as committed. It is
// an atomic load after the first call; safe for concurrent use.
func (s *Store) AppliedSequence() uint64 { return s.clusterLoad().applied.Load() }

// Epoch returns the purge-all epoch: records whose StoredTime is not after
// it are treated as absent by [Store.Get] (the zero time when no purge-all
// was applied). Listings ([Store.Scan], [Store.Variants]) and [Stats] still
// count such records until [Store.SweepEpoch] has removed them; a caller
// listing entries can hide them by comparing Meta.StoredTime with Epoch.
func (s *Store) Epoch() time.Time { return nanosTime(s.clusterLoad().epochNs.Load()) }

// ClusterStream returns the identity of the stream the applied sequence
// counts in, as last given to [Store.ResetCluster] ("" when never set).
func (s *Store) ClusterStream() string { return *s.clusterLoad().stream.Load() }

// ApplyInvalidation applies one invalidation and returns how many records
// it deleted or marked (for All: how many records the epoch hides). With
// seq > 0 it is [Store.ApplyInvalidations] of one item: a no-op returning
// 0 when seq is not above [Store.AppliedSequence]. With seq == 0 it is
// applied without touching the applied sequence (a node applying its own
// purge before publishing it).
func (s *Store) ApplyInvalidation(ctx context.Context, seq uint64, inv Invalidation) (int, error) {
	if seq == 0 {
		return s.applyLocal(ctx, inv, nil)
	}
	return s.ApplyInvalidations(ctx, []Sequenced{{Seq: seq, Inv: inv}})
}

// ApplyInvalidations applies batch in order and records the sequence of
// the last one applied in the same transaction as its effect, so that
// progress and effect commit together; it returns the records deleted or
// marked. Items whose Seq is not above the applied sequence are skipped
// (idempotent: a message delivered twice is applied once); a Done item
// only advances the applied sequence. Seqs must
// increase within batch and be non-zero (ErrInvalid otherwise, before
// anything is applied).
//
// Small invalidations share one transaction; one touching many records is
// split into transactions of 10,000, the sequence being recorded with the
// last. If ctx ends or a write fails midway, the count so far is returned
// with the error, and [Store.AppliedSequence] says how far it got: an
// invalidation interrupted midway is applied again from the start next
// time, which deletes nothing twice.
func (s *Store) ApplyInvalidations(ctx context.Context, batch []Sequenced) (int, error) {
	var prev uint64
	for i := range batch {
		if batch[i].Seq == 0 || batch[i].Seq <= prev {
			return 0, fmt.Errorf("store: apply invalidations: sequence %d after %d: %w", batch[i].Seq, prev, ErrInvalid)
		}
		prev = batch[i].Seq
		if batch[i].Done {
			continue
		}
		if err := batch[i].Inv.validate(); err != nil {
			return 0, fmt.Errorf("store: apply invalidation %d: %w", batch[i].Seq, err)
		}
	}
	cl := s.clusterLoad()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	applied := cl.applied.Load()
	i := 0
	for i < len(batch) && batch[i].Seq <= applied {
		i++
	}
	batch = batch[i:]
	total := 0
	var p progress
	for len(batch) > 0 {
		var (
			n, done int
			epoch   int64
			last    uint64
			counts  = make([]int, len(batch))
		)
		err := s.do(ctx, 0, func(w *wtx) error {
			n, done, epoch, last = 0, 0, cl.epochNs.Load(), 0
			clear(counts)
			pp := p // a retried op starts from the same place
			budget := s.opts.chunk
			for done < len(batch) && budget > 0 {
				it := &batch[done]
				if it.Done {
					budget--
					done++
					last = it.Seq
					continue
				}
				k, fin, e, err := w.apply(&it.Inv, &pp, &budget, epoch)
				n += k
				counts[done] += k
				budget-- // each item costs at least one, even when it matches nothing
				if err != nil {
					return err
				}
				epoch = e
				if !fin {
					break
				}
				done++
				last = it.Seq
				pp = progress{}
			}
			if last == 0 {
				p = pp
				return nil // a large invalidation continues in the next step
			}
			if err := w.putCluster(clusterApplied, binary.BigEndian.AppendUint64(nil, last)); err != nil {
				return err
			}
			if epoch != cl.epochNs.Load() {
				if err := w.putCluster(clusterEpoch, binary.BigEndian.AppendUint64(nil, uint64(epoch))); err != nil {
					return err
				}
			}
			p = pp
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		for i, k := range counts {
			batch[i].Count += k
		}
		if last != 0 {
			cl.applied.Store(last)
			cl.epochNs.Store(epoch)
		}
		batch = batch[done:]
	}
	return total, nil
}

// applyLocal applies inv without a sequence and, if out is non-nil,
// appends it to the outbox in the first transaction (so that the intent is
// durable before any effect).
func (s *Store) applyLocal(ctx context.Context, inv Invalidation, out *OutboxItem) (int, error) {
	if err := inv.validate(); err != nil {
		return 0, fmt.Errorf("store: apply invalidation: %w", err)
	}
	var val []byte
	if out != nil {
		var err error
		if val, err = out.encode(); err != nil {
			return 0, fmt.Errorf("store: outbox: %w", err)
		}
	}
	cl := s.clusterLoad()
	if inv.All {
		// The epoch is shared state: serialize with the sequenced writers.
		cl.mu.Lock()
		defer cl.mu.Unlock()
	}
	total := 0
	var p progress
	first := true
	for {
		var n int
		var fin bool
		var epoch int64
		err := s.do(ctx, len(val), func(w *wtx) error {
			pp := p
			budget := s.opts.chunk
			if first && out != nil {
				if err := w.outboxAppend(val); err != nil {
					return err
				}
			}
			var err error
			n, fin, epoch, err = w.apply(&inv, &pp, &budget, cl.epochNs.Load())
			if err != nil {
				return err
			}
			if inv.All && fin {
				if err := w.putCluster(clusterEpoch, binary.BigEndian.AppendUint64(nil, uint64(epoch))); err != nil {
					return err
				}
			}
			p = pp
			return nil
		})
		if err != nil {
			return total, err
		}
		first = false
		total += n
		if inv.All {
			cl.epochNs.Store(epoch)
		}
		if fin {
			return total, nil
		}
	}
}

// ResetCluster drops the whole cache as a purge-all epoch and records
// stream as the stream identity and applied as the applied sequence, in
// one transaction. A node calls it when it cannot catch up: the stream was
// recreated, or messages it missed have aged out. It returns the records
// the epoch hides.
func (s *Store) ResetCluster(ctx context.Context, stream string, applied uint64) (int, error) {
	cl := s.clusterLoad()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var n int
	var epoch int64
	err := s.do(ctx, 0, func(w *wtx) error {
		n = int(w.cnt.Records)
		epoch = max(w.nowNs, cl.epochNs.Load())
		w.noteChangeAll()
		if err := w.putCluster(clusterEpoch, binary.BigEndian.AppendUint64(nil, uint64(epoch))); err != nil {
			return err
		}
		if err := w.putCluster(clusterApplied, binary.BigEndian.AppendUint64(nil, applied)); err != nil {
			return err
		}
		return w.putCluster(clusterStream, []byte(stream))
	})
	if err != nil {
		return 0, err
	}
	cl.epochNs.Store(epoch)
	cl.applied.Store(applied)
	cl.stream.Store(&stream)
	return n, nil
}

// SetClusterStream records the stream identity without touching records or
// the applied sequence: for a node joining a stream whose whole history it
// can still read.
func (s *Store) SetClusterStream(ctx context.Context, stream string) error {
	cl := s.clusterLoad()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	err := s.do(ctx, 0, func(w *wtx) error {
		return w.putCluster(clusterStream, []byte(stream))
	})
	if err != nil {
		return err
	}
	cl.stream.Store(&stream)
	return nil
}

// SweepEpoch removes the records the purge-all epoch hides (StoredTime not
// after [Store.Epoch]) and returns how many, in transactions of 10,000 so
// that it never stalls other writers. It reads every record's metadata
// (O(n)): run it in the background after an epoch. A record whose Put was
// under way while the epoch was set may be committed after the sweep has
// passed its key; Get keeps treating it as absent, and the next sweep,
// eviction, or a Put of the same key removes it.
func (s *Store) SweepEpoch(ctx context.Context) (int, error) {
	epoch := s.clusterLoad().epochNs.Load()
	if epoch == 0 {
		return 0, nil
	}
	var after []byte
	return s.inSteps(ctx, func(w *wtx) (int, bool, error) {
		c := w.rec.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		type kv struct{ k, v []byte }
		var del []kv
		seen := 0
		for ; k != nil && seen < s.opts.chunk; k, v = c.Next() {
			seen++
			after = bytes.Clone(k)
			m, err := decodeMeta(v)
			if err == nil && timeNanos(m.StoredTime) <= epoch {
				del = append(del, kv{after, v})
			}
		}
		more := k != nil
		for _, d := range del {
			if err := w.del(d.k, d.v); err != nil {
				return 0, false, err
			}
		}
		return len(del), more, nil
	})
}

// progress is where an interrupted invalidation resumes.
type progress struct {
	key   int    // index into Keys
	after []byte // last bbolt key handled in the current range; nil: from the start
}

// apply applies as much of inv as budget allows (budget counts bbolt keys
// examined and is decreased), resuming at p. It returns the records
// deleted or marked, whether inv is complete, and the epoch after it
// (epoch unchanged unless inv.All).
func (w *wtx) apply(inv *Invalidation, p *progress, budget *int, epoch int64) (n int, fin bool, newEpoch int64, err error) {
	switch {
	case inv.All:
		w.noteChangeAll()
		return int(w.cnt.Records), true, max(w.nowNs, epoch), nil
	case len(inv.Keys) > 0:
		for p.key < len(inv.Keys) {
			if *budget <= 0 {
				return n, false, epoch, nil
			}
			k, done, err := w.applyRange(inv, append([]byte(inv.Keys[p.key]), 0), p, budget)
			n += k
			if err != nil || !done {
				return n, false, epoch, err
			}
			p.key++
			p.after = nil
		}
		return n, true, epoch, nil
	case inv.Prefix != "":
		k, done, err := w.applyRange(inv, []byte(inv.Prefix), p, budget)
		return k, done, epoch, err
	default:
		k, done, err := w.applyTag(inv, p, budget)
		return k, done, epoch, err
	}
}

// rangeKeys returns copies of up to max keys starting with prefix, after
// after (exclusive; nil: from the first), and whether more follow.
func rangeKeys(c *bolt.Cursor, prefix, after []byte, max int) (keys [][]byte, more bool) {
	seek := prefix
	if after != nil {
		seek = after
	}
	k, _ := c.Seek(seek)
	if after != nil && k != nil && bytes.Equal(k, after) {
		k, _ = c.Next()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(keys) == max {
			return keys, true
		}
		keys = append(keys, bytes.Clone(k))
	}
	return keys, false
}

func (w *wtx) applyRange(inv *Invalidation, prefix []byte, p *progress, budget *int) (n int, done bool, err error) {
	keys, more := rangeKeys(w.rec.Cursor(), prefix, p.after, max(*budget, 1))
	*budget -= len(keys)
	for _, ck := range keys {
		k, err := w.invalidate(ck, w.rec.Get(ck), inv.Mark)
		n += k
		if err != nil {
			return n, false, err
		}
		p.after = ck
	}
	return n, !more, nil
}

func (w *wtx) applyTag(inv *Invalidation, p *progress, budget *int) (n int, done bool, err error) {
	prefix := append([]byte(inv.Tag), 0)
	iks, more := rangeKeys(w.tag.Cursor(), prefix, p.after, max(*budget, 1))
	*budget -= len(iks)
	for _, ik := range iks {
		p.after = ik
		ck := ik[len(prefix):]
		if v := w.rec.Get(ck); v != nil {
			m, err := decodeMeta(v)
			if err != nil || slices.Contains(m.Tags, inv.Tag) {
				k, err := w.invalidate(ck, v, inv.Mark)
				n += k
				if err != nil {
					return n, false, err
				}
				continue
			}
		}
		// Stale index entry (record gone, or re-stored without the tag).
		if err := w.tag.Delete(ik); err != nil {
			return n, false, must(err)
		}
	}
	return n, !more, nil
}

// invalidate deletes record ck (value v), or merges mark into its
// annotations when mark is non-nil and the record is sound.
func (w *wtx) invalidate(ck, v []byte, mark map[string]string) (int, error) {
	if v == nil {
		return 0, nil
	}
	if mark == nil {
		return 1, w.del(ck, v)
	}
	if err := w.annotate(ck, v, mark); err != nil {
		if _, ok := errors.AsType[*hardError](err); ok {
			return 1, err
		}
		return 1, w.del(ck, v) // damaged: never served, so remove it
	}
	return 1, nil
}

// putCluster sets a key of the cluster bucket, creating the bucket on
// first use. bbolt keeps val until the commit: pass a fresh slice.
func (w *wtx) putCluster(key, val []byte) error {
	b, err := w.tx.CreateBucketIfNotExists(bucketCluster)
	if err != nil {
		return must(err)
	}
	return must(b.Put(key, val))
}
