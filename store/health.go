package store

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

// Cause is why a write transaction could not be committed, for
// [Health] and [*WriteError].
type Cause string

// The causes of failed writes.
const (
	// CauseNoSpace: the disk (or quota) is full (ENOSPC, EDQUOT).
	CauseNoSpace Cause = "no-space"
	// CauseReadOnly: the file system is read-only (EROFS) or the file
	// cannot be written (EACCES, EPERM).
	CauseReadOnly Cause = "read-only"
	// CauseIO: the device reported an I/O error (EIO).
	CauseIO Cause = "io"
	// CauseDamaged: the file is structurally damaged (bbolt met a bad
	// page). With [Options.SetAsideCorrupt] the file is set aside and the
	// store continues on a fresh one.
	CauseDamaged Cause = "damaged"
	// CauseOther: any other failure of the transaction.
	CauseOther Cause = "other"
)

// Causes lists every Cause, in a fixed order (metric labels).
var Causes = []Cause{CauseNoSpace, CauseReadOnly, CauseIO, CauseDamaged, CauseOther}

// WriteError reports a write whose transaction failed for a reason
// outside the operation itself (the disk, the file): the operation did not
// happen. The store's [Health] changes with it and the store logs each
// change of state once, so callers need not log every WriteError.
// errors.Is(err, ErrCorrupt) holds for Cause CauseDamaged.
type WriteError struct {
	Cause Cause
	Err   error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("store: write failed (%s): %v", e.Cause, e.Err)
}

// Unwrap returns e.Err.
func (e *WriteError) Unwrap() error { return e.Err }

// classify names the cause of a failed write transaction.
func classify(err error) Cause {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		return CauseNoSpace
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM),
		errors.Is(err, berrors.ErrDatabaseReadOnly):
		return CauseReadOnly
	case errors.Is(err, syscall.EIO):
		return CauseIO
	case errors.Is(err, ErrCorrupt):
		return CauseDamaged
	}
	// bbolt formats some errors with %s ("file resize error: ..."), which
	// loses the errno: fall back to the text.
	switch msg := err.Error(); {
	case strings.Contains(msg, "no space left on device"), strings.Contains(msg, "disk quota exceeded"):
		return CauseNoSpace
	case strings.Contains(msg, "read-only file system"):
		return CauseReadOnly
	case strings.Contains(msg, "input/output error"):
		return CauseIO
	}
	return CauseOther
}

// quiet reports whether a background error need not be logged: a
// *WriteError is already reported by the health state's one line per
// change.
func quiet(err error) bool {
	_, ok := errors.AsType[*WriteError](err)
	return ok
}

// Health is the state of the store's writes: whether they currently
// commit, and since when. Hits (reads) do not depend on it: a store whose
// writes fail still serves what it holds.
type Health struct {
	// Failing is true from a write transaction that failed (a
	// [*WriteError]) until the next one that commits. Background work
	// (access-time flushes, eviction) and every write method count.
	Failing bool
	// Cause is the cause of the latest failure while Failing ("" when
	// not failing).
	Cause Cause
	// Err is the latest failure's text while Failing.
	Err string
	// Since is when the current state (failing, or healthy again) began;
	// the time of Open at first.
	Since time.Time
	// FailedWrites counts write operations that failed with a
	// [*WriteError] since Open, by cause (every Cause is present).
	FailedWrites map[Cause]int64
	// SetAside counts damaged files moved aside since Open (Open's own
	// included), with [Options.SetAsideCorrupt]; SetAsidePath is the
	// latest one's new name ("" if none).
	SetAside     int64
	SetAsidePath string
}

// healthState is the published part of Health; the writer goroutine
// replaces it (it is never modified after publishing).
type healthState struct {
	failing bool
	cause   Cause
	err     string
	since   time.Time
}

type healthTracker struct {
	state     atomic.Pointer[healthState]
	failed    [5]atomic.Int64 // by index in Causes
	setAside  atomic.Int64
	asidePath atomic.Pointer[string]
}

func causeIndex(c Cause) int {
	for i, x := range Causes {
		if x == c {
			return i
		}
	}
	return len(Causes) - 1
}

// Health returns the store's write health. It is cheap (atomic loads and
// a small map) and safe for concurrent use.
func (s *Store) Health() Health {
	h := Health{FailedWrites: make(map[Cause]int64, len(Causes))}
	if st := s.health.state.Load(); st != nil {
		h.Failing, h.Cause, h.Err, h.Since = st.failing, st.cause, st.err, st.since
	}
	for i, c := range Causes {
		h.FailedWrites[c] = s.health.failed[i].Load()
	}
	h.SetAside = s.health.setAside.Load()
	if p := s.health.asidePath.Load(); p != nil {
		h.SetAsidePath = *p
	}
	return h
}

// WritesFailing reports whether the latest write transaction failed (see
// [Health]); one atomic load, for the request path.
func (s *Store) WritesFailing() bool {
	st := s.health.state.Load()
	return st != nil && st.failing
}

// noteTx records the outcome of a write transaction of n operations
// (writer goroutine only): it moves the health state, logging each
// change once.
func (s *Store) noteTx(n int, werr *WriteError) {
	cur := s.health.state.Load()
	now := s.opts.Now()
	if werr == nil {
		if cur != nil && cur.failing {
			s.log.Info("store: writes resumed", "path", s.path, "failed_for", now.Sub(cur.since).Round(time.Millisecond).String(), "after", string(cur.cause))
			s.health.state.Store(&healthState{since: now})
		}
		return
	}
	s.health.failed[causeIndex(werr.Cause)].Add(int64(n))
	if cur == nil || !cur.failing || cur.cause != werr.Cause {
		s.log.Warn("store: writes failing; serving what is stored, storing nothing until writes commit again", "path", s.path, "cause", string(werr.Cause), "err", werr.Err.Error())
		s.health.state.Store(&healthState{failing: true, cause: werr.Cause, err: werr.Err.Error(), since: now})
	}
}

// noteFailure records a failed transaction of n operations: only a
// *WriteError (the file or the disk) moves the health state.
func (s *Store) noteFailure(err error, n int) {
	if werr, ok := errors.AsType[*WriteError](err); ok {
		s.noteTx(n, werr)
	}
}
