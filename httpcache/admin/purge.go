package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/store"
)

// Selector is what a purge removes: exactly one of Key (every variant of
// one normalized key), Keys, Prefix (of normalized keys), Tag, or All.
// Soft marks the selected records stale instead of removing them (see
// AnnotationSoftPurged). Scope is PurgeRequest.Scope, for a clustered
// purger ("" or "local" for a single node).
//
// The handler validates a Selector before a Purger sees it (one selector,
// no NUL, lengths bounded, All confirmed) and handles dry runs itself by
// counting through the read side: a Purger is never asked to pretend.
type Selector struct {
	Key    string
	Keys   []string
	Prefix string
	Tag    string
	All    bool
	Soft   bool
	Scope  string
}

// Purger carries out purges and enables. The server implements it with
// the proxy, so that everything the proxy remembers about a purged key
// (variants, hit-for-pass, in-memory copies, join-guard counts) goes with
// it; StorePurger implements it over the store alone, for offline use.
//
// Contract:
//   - Purge returns only after the removal (or, with Soft, the marking)
//     has committed to the store, so an acknowledged purge survives a
//     crash. n is the number of records removed or marked.
//   - A response whose origin fetch started before Purge was called and
//     that the selector covers must not be stored afterwards: a purged page
//     never comes back from a fill that was already under way.
//   - On an error midway, n is what was done before it.
//   - Enable removes a join-guard or manual disable from one variant; it
//     returns an error matching store.ErrNotFound when there is no such
//     entry.
//
// Both are called from concurrent requests.
type Purger interface {
	Purge(ctx context.Context, sel Selector) (n int, err error)
	Enable(ctx context.Context, key, variant string) error
}

// StorePurger is a Purger over a store alone, for cmd/admin offline and
// tests. It knows nothing of fills in flight (there are none offline). Soft
// purges annotate every selected record with AnnotationSoftPurged, in
// parallel so that the store's group commit takes many per transaction.
type StorePurger struct {
	Store *store.Store
	// Now is the clock of soft-purge marks. Nil means time.Now.
	Now func() time.Time
}

var _ Purger = (*StorePurger)(nil)

// Purge implements Purger.
func (p *StorePurger) Purge(ctx context.Context, sel Selector) (int, error) {
	st := p.Store
	if sel.Soft {
		return p.soft(ctx, sel)
	}
	switch {
	case sel.Key != "":
		return st.DeleteKey(ctx, sel.Key)
	case len(sel.Keys) > 0:
		n := 0
		for _, k := range sel.Keys {
			c, err := st.DeleteKey(ctx, k)
			n += c
			if err != nil {
				return n, err
			}
		}
		return n, nil
	case sel.Prefix != "":
		return st.DeletePrefix(ctx, sel.Prefix)
	case sel.Tag != "":
		return st.DeleteTag(ctx, sel.Tag)
	case sel.All:
		return st.DeleteAll(ctx)
	}
	return 0, errors.New("admin: purge: empty selector")
}

// Enable implements Purger: it deletes the httpcache.disabled annotation.
func (p *StorePurger) Enable(ctx context.Context, key, variant string) error {
	return p.Store.Annotate(ctx, key, variant, map[string]string{annDisabled: ""})
}

func (p *StorePurger) soft(ctx context.Context, sel Selector) (int, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	mark := map[string]string{AnnotationSoftPurged: now().UTC().Format(time.RFC3339Nano)}
	return p.Store.AnnotateEach(ctx, mark, func(visit func(*store.Meta) bool) error {
		return forEachSelected(ctx, p.Store, sel, visit)
	})
}

// forEachSelected calls fn for every record sel covers, in key order,
// scanning in short read transactions, until fn returns false.
func forEachSelected(ctx context.Context, r Reader, sel Selector, fn func(*store.Meta) bool) error {
	var keys []string
	switch {
	case sel.Key != "":
		keys = []string{sel.Key}
	case len(sel.Keys) > 0:
		keys = sel.Keys
	}
	if keys != nil {
		for _, k := range keys {
			ms, err := r.Variants(ctx, k)
			if err != nil {
				return err
			}
			for i := range ms {
				if !fn(&ms[i]) {
					return nil
				}
			}
		}
		return nil
	}
	return store.Walk(ctx, r, sel.Prefix, sel.Tag, fn)
}

// countSelected is a dry run: how many records sel covers now.
func countSelected(ctx context.Context, r Reader, sel Selector) (int, error) {
	if sel.All {
		return int(r.Stats().Records), nil
	}
	n := 0
	err := forEachSelected(ctx, r, sel, func(*store.Meta) bool { n++; return true })
	return n, err
}

// MaxPurgeKeys bounds PurgeRequest.Keys.
const MaxPurgeKeys = 10000

// selectorOf validates req and turns it into a Selector; key resolves
// req.URL (nil: URL purges are refused). Errors are *Error.
func selectorOf(req *PurgeRequest, key func(string) (string, error)) (Selector, error) {
	bad := func(code, f string, a ...any) (Selector, error) {
		return Selector{}, &Error{Status: 400, Code: code, Message: fmt.Sprintf(f, a...)}
	}
	set := 0
	for _, on := range []bool{req.Key != "", len(req.Keys) > 0, req.URL != "", req.Prefix != "", req.Tag != "", req.All} {
		if on {
			set++
		}
	}
	if set != 1 {
		return bad("bad_request", "give exactly one of key, keys, url, prefix, tag, all (got %d)", set)
	}
	if req.Confirm != "" && !req.All {
		return bad("bad_request", `confirm is only for "all"`)
	}
	switch req.Scope {
	case "", "local", "cluster":
	default:
		return bad("bad_request", "scope %q is neither \"local\" nor \"cluster\"", req.Scope)
	}
	sel := Selector{Soft: req.Soft, Scope: req.Scope}
	checkKey := func(what, k string) error {
		switch {
		case k == "":
			return &Error{Status: 400, Code: "bad_request", Message: what + " is empty"}
		case strings.IndexByte(k, 0) >= 0:
			return &Error{Status: 400, Code: "bad_request", Message: what + " holds a NUL byte"}
		case len(k) > store.MaxKeyLen:
			return &Error{Status: 400, Code: "bad_request", Message: fmt.Sprintf("%s is %d bytes, at most %d", what, len(k), store.MaxKeyLen)}
		}
		return nil
	}
	switch {
	case req.Key != "":
		if err := checkKey("key", req.Key); err != nil {
			return Selector{}, err
		}
		sel.Key = req.Key
	case len(req.Keys) > 0:
		if len(req.Keys) > MaxPurgeKeys {
			return bad("bad_request", "%d keys, at most %d per purge", len(req.Keys), MaxPurgeKeys)
		}
		seen := make(map[string]bool, len(req.Keys))
		for i, k := range req.Keys {
			if err := checkKey("keys["+strconv.Itoa(i)+"]", k); err != nil {
				return Selector{}, err
			}
			if !seen[k] {
				seen[k] = true
				sel.Keys = append(sel.Keys, k)
			}
		}
	case req.URL != "":
		if key == nil {
			return Selector{}, &Error{Status: 501, Code: "unavailable", Message: "url purges need the server's key normalization; give key instead"}
		}
		k, err := key(req.URL)
		if err != nil {
			return bad("bad_request", "url %q: %v", req.URL, err)
		}
		sel.Key = k
	case req.Prefix != "":
		if len(req.Prefix) > MaxPrefix {
			return bad("bad_request", "prefix is %d bytes, at most %d", len(req.Prefix), MaxPrefix)
		}
		if strings.IndexByte(req.Prefix, 0) >= 0 {
			return bad("bad_request", "prefix holds a NUL byte")
		}
		sel.Prefix = req.Prefix
	case req.Tag != "":
		if err := checkKey("tag", req.Tag); err != nil {
			return Selector{}, err
		}
		sel.Tag = req.Tag
	case req.All:
		if req.Confirm != "all" {
			return bad("confirm_required", `purging everything needs "confirm": "all"`)
		}
		sel.All = true
	}
	return sel, nil
}

// auditLog is the ring of recent purges.
type auditLog struct {
	mu   sync.Mutex
	ring []PurgeRecord
	next int // index of the oldest when full
	seq  atomic.Uint64
	base string // per-handler prefix of ids
}

func newAuditLog(n int, now time.Time) *auditLog {
	return &auditLog{ring: make([]PurgeRecord, 0, n), base: strconv.FormatInt(now.Unix(), 36)}
}

func (a *auditLog) newID() string {
	return "p" + a.base + "-" + strconv.FormatUint(a.seq.Add(1), 10)
}

func (a *auditLog) add(r PurgeRecord) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ring) < cap(a.ring) {
		a.ring = append(a.ring, r)
		return
	}
	a.ring[a.next] = r
	a.next = (a.next + 1) % len(a.ring)
}

// list returns the records newest first.
func (a *auditLog) list() []PurgeRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]PurgeRecord, 0, len(a.ring))
	n := len(a.ring)
	for i := range n {
		// newest is just before next (or at the end when not yet wrapped)
		j := (a.next - 1 - i + 2*n) % n
		if len(a.ring) < cap(a.ring) {
			j = n - 1 - i
		}
		out = append(out, a.ring[j])
	}
	return out
}
