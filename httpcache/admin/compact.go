package admin

import (
	"context"
	"fmt"
	"os"

	"github.com/firstrender/firstrender/store"
)

// CompactFile compacts the store file at path while no server holds it
// (cmd/admin compact offline): it opens the store (failing with
// store.ErrLocked when another process has it), writes a compacted copy
// beside it, closes the store and renames the copy over the original. The
// original is untouched if anything fails before the rename. opts are
// passed to store.Open (ReadOnly must be false).
func CompactFile(ctx context.Context, path string, opts store.Options) (CompactResult, error) {
	if opts.ReadOnly {
		return CompactResult{}, fmt.Errorf("admin: compact %s: needs the store read-write", path)
	}
	st, err := store.Open(path, opts)
	if err != nil {
		return CompactResult{}, fmt.Errorf("admin: compact: %w", err)
	}
	var res CompactResult
	if fi, err := os.Stat(path); err == nil {
		res.BeforeBytes = fi.Size()
	}
	tmp := path + ".compact"
	_ = os.Remove(tmp) // a leftover of an interrupted run
	if err := st.Compact(ctx, tmp); err != nil {
		st.Close()
		os.Remove(tmp)
		return CompactResult{}, fmt.Errorf("admin: compact %s: %w", path, err)
	}
	if err := st.Close(); err != nil {
		os.Remove(tmp)
		return CompactResult{}, fmt.Errorf("admin: compact %s: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return CompactResult{}, fmt.Errorf("admin: compact %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil {
		res.AfterBytes = fi.Size()
	}
	return res, nil
}
