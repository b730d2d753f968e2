package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

// Scanner pages through records with [Store.Scan]'s contract: a
// *Store, or a read-only view of one (the admin API's Reader).
type Scanner interface {
	Scan(ctx context.Context, o ScanOptions) (Page, error)
}

// walkPage is the page size of [Walk]: each page is one short read
// transaction, so a walk over millions of records never holds one open.
const walkPage = 1000

// Walk calls fn for every record whose primary key starts with prefix
// ("": every record) and, if tag is not "", that carries tag, in key
// order, until fn returns false (Walk then returns nil) or a Scan fails
// (its error is returned; ctx's end is one). fn may write to the store:
// records written behind the walk's position are not visited again, and
// ones written ahead of it may be.
func Walk(ctx context.Context, s Scanner, prefix, tag string, fn func(*Meta) bool) error {
	after := ""
	for {
		pg, err := s.Scan(ctx, ScanOptions{Prefix: prefix, After: after, Limit: walkPage})
		if err != nil {
			return err
		}
		for i := range pg.Entries {
			m := &pg.Entries[i]
			if tag != "" && !slices.Contains(m.Tags, tag) {
				continue
			}
			if !fn(m) {
				return nil
			}
		}
		if pg.Next == "" || len(pg.Entries) == 0 {
			return nil
		}
		after = pg.Next
	}
}

// annotateInFlight is how many Annotate calls [Store.AnnotateEach] keeps
// in flight, so the writer's group commit takes many per transaction.
const annotateInFlight = 64

// AnnotateEach sets the annotations set (as [Store.Annotate] does) on
// every record walk yields: walk calls visit for each, and stops when
// visit returns false (the context ended or an Annotate failed). Up to 64
// Annotate calls are in flight at once. Records gone or found damaged
// meanwhile are skipped (a purge or the corrupt-record path removes
// them); any other failure ends the walk and is returned, as is walk's
// own error or ctx's end. It returns how many records were annotated.
func (s *Store) AnnotateEach(ctx context.Context, set map[string]string, walk func(visit func(*Meta) bool) error) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type rv struct{ k, v string }
	work := make(chan rv, annotateInFlight)
	var (
		n     atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range annotateInFlight {
		wg.Go(func() {
			for r := range work {
				err := s.Annotate(ctx, r.k, r.v, set)
				switch {
				case err == nil:
					n.Add(1)
				case errors.Is(err, ErrNotFound), errors.Is(err, ErrCorrupt):
				default:
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
	err := walk(func(m *Meta) bool {
		select {
		case work <- rv{m.Key, m.Variant}:
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(work)
	wg.Wait()
	switch {
	case first != nil:
		return int(n.Load()), first
	case err != nil:
		return int(n.Load()), err
	}
	return int(n.Load()), ctx.Err()
}
