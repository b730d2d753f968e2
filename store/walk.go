package store

import (
	"context"
	"slices"
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
