package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The outbox holds messages a node must still publish to the cluster (an
// invalidation it applied while NATS was unreachable, or whose publication
// was not acknowledged yet). Items are kept in the order they were added,
// under an 8-byte big-endian local sequence, until [Store.OutboxRemove].

// OutboxItem is one message waiting to be published. ID is the message's
// deduplication id (non-empty, at most 255 bytes); Data its payload
// (opaque to the store). Seq and Added are set by the store.
type OutboxItem struct {
	Seq   uint64 // local order, assigned when added; the handle for OutboxRemove
	ID    string
	Data  []byte
	Added time.Time
}

// Value encoding: uvarint len(ID), ID, 8-byte BE added ns, Data.
func (o *OutboxItem) encode() ([]byte, error) {
	if o.ID == "" || len(o.ID) > 255 {
		return nil, fmt.Errorf("outbox item id %q: empty or longer than 255 bytes: %w", o.ID, ErrInvalid)
	}
	b := binary.AppendUvarint(nil, uint64(len(o.ID)))
	b = append(b, o.ID...)
	added := o.Added
	if added.IsZero() {
		added = time.Now()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(clampNs(timeNanos(added))))
	return append(b, o.Data...), nil
}

func decodeOutbox(k, v []byte) (OutboxItem, error) {
	if len(k) != 8 {
		return OutboxItem{}, errors.New("bad outbox key")
	}
	n, l := binary.Uvarint(v)
	if l <= 0 || uint64(len(v)-l) < n+8 {
		return OutboxItem{}, errTruncated
	}
	id := string(v[l : l+int(n)])
	rest := v[l+int(n):]
	return OutboxItem{
		Seq:   binary.BigEndian.Uint64(k),
		ID:    id,
		Added: nanosTime(int64(binary.BigEndian.Uint64(rest))),
		Data:  append([]byte(nil), rest[8:]...),
	}, nil
}

// outboxAppend adds an encoded item in w's transaction.
func (w *wtx) outboxAppend(val []byte) error {
	b, err := w.tx.CreateBucketIfNotExists(bucketOutbox)
	if err != nil {
		return must(err)
	}
	seq, err := b.NextSequence()
	if err != nil {
		return must(err)
	}
	return must(b.Put(binary.BigEndian.AppendUint64(nil, seq), val))
}

// OutboxAdd appends item to the outbox and returns after commit.
func (s *Store) OutboxAdd(ctx context.Context, item OutboxItem) error {
	val, err := item.encode()
	if err != nil {
		return fmt.Errorf("store: outbox add: %w", err)
	}
	return s.do(ctx, len(val), func(w *wtx) error { return w.outboxAppend(val) })
}

// ApplyAndQueue applies inv as [Store.ApplyInvalidation] with sequence 0
// does, and appends item to the outbox in the same transaction as the
// first step of the application: once it returns (even with an error
// after that first step), the message will be published. It returns the
// records deleted or marked.
func (s *Store) ApplyAndQueue(ctx context.Context, inv Invalidation, item OutboxItem) (int, error) {
	return s.applyLocal(ctx, inv, &item)
}

// Outbox returns up to limit items (all when limit <= 0) in the order they
// were added, after the local sequence after (0: from the first). Items
// owned by the caller. A damaged item is returned with its Seq, an empty
// ID and nil Data, so that it can be removed.
func (s *Store) Outbox(ctx context.Context, after uint64, limit int) ([]OutboxItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var items []OutboxItem
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil; k, v = c.Next() {
			if limit > 0 && len(items) == limit {
				break
			}
			it, err := decodeOutbox(k, v)
			if err != nil {
				s.corrupt.Add(1)
				if len(k) == 8 {
					it = OutboxItem{Seq: binary.BigEndian.Uint64(k)}
				} else {
					continue
				}
			}
			items = append(items, it)
		}
		return nil
	})
	return items, err
}

// OutboxLen returns the number of items in the outbox.
func (s *Store) OutboxLen(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketOutbox); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, err
}

// OutboxRemove removes the items with the given local sequences (missing
// ones are ignored) and returns after commit.
func (s *Store) OutboxRemove(ctx context.Context, seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	return s.do(ctx, 0, func(w *wtx) error {
		b := w.tx.Bucket(bucketOutbox)
		if b == nil {
			return nil
		}
		for _, seq := range seqs {
			if err := b.Delete(binary.BigEndian.AppendUint64(w.key[:0], seq)); err != nil {
				return must(err)
			}
		}
		return nil
	})
}
