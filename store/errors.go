package store

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with [errors.Is]; the store wraps them with
// context (the path, the key) but never hides them.
var (
	// ErrNotFound is returned when no record exists for a key and variant.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed is returned by every method called after [Store.Close].
	ErrClosed = errors.New("store: closed")
	// ErrTooLarge is returned by [Store.Put] for a record whose encoding is
	// bigger than [Options.MaxObjectSize].
	ErrTooLarge = errors.New("store: object too large")
	// ErrReadOnly is returned by writes on a store opened with
	// [Options.ReadOnly].
	ErrReadOnly = errors.New("store: read-only")
	// ErrLocked is returned by [Open] when another process (or another Open
	// in this process) holds the database file's lock for longer than
	// [Options.Timeout].
	ErrLocked = errors.New("store: database is locked by another process")
	// ErrCorrupt is returned by [Open] when the file is not a bbolt
	// database, is not a firstrender store, or is damaged. A damaged record
	// is reported as a [*CorruptError], which also matches ErrCorrupt.
	ErrCorrupt = errors.New("store: corrupt or not a firstrender database")
	// ErrVersion is returned by [Open] when the file was written by a newer
	// on-disk format than this binary knows, and (inside a [*CorruptError])
	// for a record with an unknown encoding version.
	ErrVersion = errors.New("store: unsupported on-disk format version")
	// ErrInvalid is returned for arguments the store cannot accept: an empty
	// key, a key or tag containing a NUL byte, a key longer than
	// [MaxKeyLen], or invalid [Options].
	ErrInvalid = errors.New("store: invalid argument")
)

// OpenError is returned by [Open]. It names the path, and Err is one of
// [ErrLocked], [ErrCorrupt], [ErrVersion], [ErrInvalid] or the operating
// system's error (match [io/fs.ErrPermission] or [io/fs.ErrNotExist] with
// [errors.Is]).
type OpenError struct {
	Path string
	Err  error
}

func (e *OpenError) Error() string { return fmt.Sprintf("store: open %s: %v", e.Path, e.Err) }

// Unwrap returns e.Err.
func (e *OpenError) Unwrap() error { return e.Err }

// CorruptError reports a damaged record: its checksum does not match, its
// encoding is truncated, or its version is unknown. The record's data is
// never returned; it can be removed with [Store.Delete] and is skipped (and
// flagged with [Meta.Corrupt]) by listings. errors.Is(err, ErrCorrupt) is
// true for every CorruptError.
type CorruptError struct {
	Key, Variant string
	Err          error // what is wrong; may wrap ErrVersion
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store: record %q variant %q is damaged: %v", e.Key, e.Variant, e.Err)
}

// Unwrap returns e.Err.
func (e *CorruptError) Unwrap() error { return e.Err }

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
