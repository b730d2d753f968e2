package tui

import (
	"context"
	"errors"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// Source is everything the TUI reads or changes, in the admin API's own
// types. The admin API's Go client satisfies it for a running server, and
// the offline store reader for a database file (read-only: its Stats say
// ReadOnly and its Purge fails).
//
// Every method may be called from several goroutines at once, must honour
// ctx, and returns an error (typically an *admin.Error with a Code) rather
// than a partial value.
type Source interface {
	// List returns one page of entries in key order, applying every filter
	// of q on the server. The TUI passes back only cursors from earlier
	// Pages (Next as After, Prev as Before) and sets Last for G.
	List(ctx context.Context, q admin.ListQuery) (admin.Page, error)
	// Entry returns one variant of a key with everything stored about it;
	// with decode, the body comes with its Content-Encoding removed.
	Entry(ctx context.Context, key, variant string, decode bool) (admin.EntryDetail, error)
	// Decode decodes a pasted Phoenix token. Token.Signature is "verified"
	// only if the server checked it with the secret.
	Decode(ctx context.Context, token string) (admin.Token, error)
	// Purge deletes (or, with DryRun, counts) what req selects; the
	// result comes only after the deletion committed.
	Purge(ctx context.Context, req admin.PurgeRequest) (admin.PurgeResult, error)
	// Stats returns the server's counters; the TUI polls it once a second
	// for the header's hit ratios and request rate.
	Stats(ctx context.Context) (admin.Stats, error)
}

// The admin API's Go client is a Source as it is.
var _ Source = (*admin.Client)(nil)

// ErrReadOnly is what the TUI reports when a purge is asked of a read-only
// session; a read-only Source should return an *admin.Error with Code
// "read_only" (or an error wrapping ErrReadOnly) from Purge.
var ErrReadOnly = errors.New("tui: read-only: purge is not available")

// isReadOnlyErr reports whether err says the source refuses writes.
func isReadOnlyErr(err error) bool {
	var ae *admin.Error
	if errors.As(err, &ae) && ae.Code == "read_only" {
		return true
	}
	return errors.Is(err, ErrReadOnly)
}
