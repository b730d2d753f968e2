package admin

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/firstrender/firstrender/store"
)

// # Cursors
//
// A cursor is a position in the store's record order: records sort by the
// bytes key NUL variant, and a cursor names a byte string S of that order
// (always holding a NUL). after=S lists records greater than S, before=S
// those less than S. On the wire it is "c" followed by S in base64url
// without padding, so keys holding any byte survive URLs and JSON.

// Cursor kinds: 'c' is exclusive (after=c: records above the position,
// before=c: records below it); 'g' is inclusive, for after only (the
// record at the position itself comes first).
const (
	cursorVersion   = 'c'
	cursorInclusive = 'g'
)

// recPos is the position of a record: key NUL variant, the store's order.
func recPos(key, variant string) string { return key + "\x00" + variant }

func encodeCursor(pos string) string {
	return string(cursorVersion) + base64.RawURLEncoding.EncodeToString([]byte(pos))
}

func encodeCursorFrom(pos string) string {
	return string(cursorInclusive) + base64.RawURLEncoding.EncodeToString([]byte(pos))
}

// decodeCursor returns the position a cursor names and whether it is
// inclusive, or a *Error (400).
func decodeCursor(c string) (string, bool, error) {
	bad := func(why string) error {
		return &Error{Status: 400, Code: "bad_request", Message: "invalid cursor: " + why}
	}
	if len(c) < 2 || (c[0] != cursorVersion && c[0] != cursorInclusive) {
		return "", false, bad("not a cursor of this API")
	}
	incl := c[0] == cursorInclusive
	if len(c) > 2*store.MaxKeyLen+16 {
		return "", false, bad("too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(c[1:])
	if err != nil {
		return "", false, bad("not base64url")
	}
	i := bytes.IndexByte(b, 0)
	if i <= 0 {
		return "", false, bad("no key")
	}
	if len(b) > store.MaxKeyLen+2 {
		return "", false, bad("too long")
	}
	return string(b), incl, nil
}

// ParseListQuery reads GET entries' query parameters: after, before,
// limit, prefix, contains, tag, status, findings, disabled, last. Booleans
// accept strconv.ParseBool forms ("1", "true"). Errors are *Error (400).
// It checks everything ListQuery promises: at most one cursor, a limit in
// 0..MaxLimit, a prefix of at most MaxPrefix bytes without NUL, a status
// class "1xx".."5xx" or a code 100..599.
func ParseListQuery(v url.Values) (ListQuery, error) {
	var q ListQuery
	bad := func(f string, a ...any) (ListQuery, error) {
		return ListQuery{}, &Error{Status: 400, Code: "bad_request", Message: fmt.Sprintf(f, a...)}
	}
	for k, vs := range v {
		if len(vs) != 1 {
			return bad("parameter %q given %d times", k, len(vs))
		}
		val := vs[0]
		var err error
		switch k {
		case "after":
			q.After = val
		case "before":
			q.Before = val
		case "limit":
			q.Limit, err = strconv.Atoi(val)
			if err != nil {
				return bad("limit %q is not a number", val)
			}
		case "prefix":
			q.Prefix = val
		case "contains":
			q.Contains = val
		case "tag":
			q.Tag = val
		case "status":
			q.Status = val
		case "findings":
			q.Findings, err = strconv.ParseBool(val)
		case "disabled":
			q.Disabled, err = strconv.ParseBool(val)
		case "last":
			q.Last, err = strconv.ParseBool(val)
		default:
			return bad("unknown parameter %q", k)
		}
		if err != nil {
			return bad("%s %q is not a boolean", k, val)
		}
	}
	return q, q.validate()
}

// Values is the inverse of ParseListQuery: the query string of q.
func (q ListQuery) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("after", q.After)
	set("before", q.Before)
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	set("prefix", q.Prefix)
	set("contains", q.Contains)
	set("tag", q.Tag)
	set("status", q.Status)
	for _, b := range []struct {
		k  string
		on bool
	}{{"findings", q.Findings}, {"disabled", q.Disabled}, {"last", q.Last}} {
		if b.on {
			v.Set(b.k, "1")
		}
	}
	return v
}

func (q ListQuery) validate() error {
	bad := func(f string, a ...any) error {
		return &Error{Status: 400, Code: "bad_request", Message: fmt.Sprintf(f, a...)}
	}
	n := 0
	for _, on := range []bool{q.After != "", q.Before != "", q.Last} {
		if on {
			n++
		}
	}
	if n > 1 {
		return bad("after, before and last exclude each other")
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return bad("limit %d is outside 0..%d", q.Limit, MaxLimit)
	}
	if len(q.Prefix) > MaxPrefix {
		return bad("prefix is %d bytes, at most %d", len(q.Prefix), MaxPrefix)
	}
	if strings.IndexByte(q.Prefix, 0) >= 0 || strings.IndexByte(q.Contains, 0) >= 0 || strings.IndexByte(q.Tag, 0) >= 0 {
		return bad("prefix, contains and tag cannot hold a NUL byte")
	}
	if len(q.Contains) > MaxPrefix || len(q.Tag) > MaxPrefix {
		return bad("contains and tag are at most %d bytes", MaxPrefix)
	}
	if _, _, err := statusFilter(q.Status); err != nil {
		return err
	}
	if q.After != "" {
		if _, _, err := decodeCursor(q.After); err != nil {
			return err
		}
	}
	if q.Before != "" {
		_, incl, err := decodeCursor(q.Before)
		if err != nil {
			return err
		}
		if incl {
			return bad("invalid cursor: an inclusive cursor is only valid as after")
		}
	}
	return nil
}

// statusFilter parses "2xx" (class 2) or "404" (code); both zero: none.
func statusFilter(s string) (class, code int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	if len(s) == 3 && (s[1:] == "xx" || s[1:] == "XX") && s[0] >= '1' && s[0] <= '5' {
		return int(s[0] - '0'), 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 100 && n <= 599 && len(s) == 3 {
		return 0, n, nil
	}
	return 0, 0, &Error{Status: 400, Code: "bad_request", Message: fmt.Sprintf("status %q is neither a class (1xx..5xx) nor a code (100..599)", s)}
}

// filter is a compiled ListQuery (without paging).
type filter struct {
	prefix, contains, tag string
	class, code           int
	findings, disabled    bool
}

func (f *filter) none() bool {
	return f.contains == "" && f.tag == "" && f.class == 0 && f.code == 0 && !f.findings && !f.disabled
}

func (f *filter) match(m *store.Meta) bool {
	if f.contains != "" && !strings.Contains(m.Key, f.contains) {
		return false
	}
	if m.Corrupt {
		// Damaged records match only filters on the key, so that they
		// can be found and purged.
		return f.tag == "" && f.class == 0 && f.code == 0 && !f.findings && !f.disabled
	}
	if f.tag != "" {
		found := false
		for _, t := range m.Tags {
			if t == f.tag {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if f.class != 0 && m.Status/100 != f.class {
		return false
	}
	if f.code != 0 && m.Status != f.code {
		return false
	}
	if f.findings && !hasFindings(m.Annotations) {
		return false
	}
	if f.disabled {
		if _, ok := m.Annotations[annDisabled]; !ok {
			return false
		}
	}
	return true
}

// lister pages through a Reader; budget bounds the records one call
// examines.
type lister struct {
	r      Reader
	budget int
	now    func() time.Time
	hits   func(key, variant string) (int64, bool)
	hints  hintSet
}

// hintSet remembers record positions earlier backward searches met, as
// starting points for later ones (paging backward asks for the records
// just below the last search's). A hint is only a guess: every use is
// checked by a probe, so stale hints (records since deleted) cost one
// probe and never give a wrong page. Safe for concurrent use.
type hintSet struct {
	mu  sync.Mutex
	pos []string // sorted
}

const maxHints = 4096

func (h *hintSet) add(ps ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range ps {
		i, found := slices.BinarySearch(h.pos, p)
		if found {
			continue
		}
		if len(h.pos) >= maxHints {
			// Forget every other hint: cheap, keeps the spread.
			k := 0
			for j := 0; j < len(h.pos); j += 2 {
				h.pos[k] = h.pos[j]
				k++
			}
			h.pos = h.pos[:k]
			i, _ = slices.BinarySearch(h.pos, p)
		}
		h.pos = slices.Insert(h.pos, i, p)
	}
}

// below returns up to k hints under top, nearest first, above floor.
func (h *hintSet) below(top bound, floor string, k int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	i, _ := slices.BinarySearch(h.pos, top.s)
	if top.inf {
		i, _ = slices.BinarySearch(h.pos, top.s+"\xff\xff\xff\xff\xff\xff\xff\xff")
	}
	for i--; i >= 0 && len(out) < k; i-- {
		p := h.pos[i]
		if p <= floor {
			break
		}
		if top.below(p) {
			out = append(out, p)
		}
	}
	return out
}

// scanChunk is the most records one Scan (one read transaction) returns.
const scanChunk = 1000

// backwardReads bounds the records a backward call's probes read, as a
// multiple of the scan budget.
const backwardReads = 4

// list serves one GET entries call for a validated q.
func (l *lister) list(ctx context.Context, q ListQuery) (Page, error) {
	f := filter{prefix: q.Prefix, contains: q.Contains, tag: q.Tag, findings: q.Findings, disabled: q.Disabled}
	f.class, f.code, _ = statusFilter(q.Status)
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	var (
		metas []store.Meta
		p     Page
		err   error
	)
	switch {
	case q.Before != "" || q.Last:
		var hi string
		if q.Before != "" {
			hi, _, _ = decodeCursor(q.Before)
		}
		metas, p, err = l.backward(ctx, &f, hi, q.Last, limit)
	default:
		var lo string
		var incl bool
		if q.After != "" {
			lo, incl, _ = decodeCursor(q.After)
		}
		metas, p, err = l.forward(ctx, &f, lo, incl, limit)
	}
	if err != nil {
		return Page{}, err
	}
	now := l.now()
	p.Items = make([]Entry, len(metas))
	for i := range metas {
		p.Items[i] = entryOf(&metas[i], now, l.hits)
	}
	p.ApproxTotal = l.r.Stats().Records
	return p, nil
}

// forward lists matches after position lo ("" = from the start), or from
// it with incl.
func (l *lister) forward(ctx context.Context, f *filter, lo string, incl bool, limit int) ([]store.Meta, Page, error) {
	var (
		out  []store.Meta
		p    Page
		last string // position of the last record consumed
	)
	cur := lo
	if incl {
		// The store seeks exclusively; a scan with the position as its
		// prefix starts exactly at it.
		pg, err := l.r.Scan(ctx, store.ScanOptions{Prefix: lo, Limit: 1})
		if err != nil {
			return nil, Page{}, storeErr(err)
		}
		if len(pg.Entries) == 1 && recPos(pg.Entries[0].Key, pg.Entries[0].Variant) == lo && strings.HasPrefix(lo, f.prefix) {
			m := &pg.Entries[0]
			p.Scanned++
			last = lo
			if f.match(m) {
				out = append(out, *m)
			}
		}
	}
	for {
		want := scanChunk
		if f.none() {
			want = limit - len(out) + 1 // one more: is there a next page?
		}
		want = min(want, l.budget-p.Scanned+1, scanChunk)
		pg, err := l.r.Scan(ctx, store.ScanOptions{Prefix: f.prefix, After: cur, Limit: want})
		if err != nil {
			return nil, Page{}, storeErr(err)
		}
		for i := range pg.Entries {
			m := &pg.Entries[i]
			if len(out) == limit || p.Scanned == l.budget {
				// A record remains beyond what this call takes.
				p.Next = encodeCursor(last)
				return out, l.prevOf(p, out, lo, incl), nil
			}
			p.Scanned++
			last = recPos(m.Key, m.Variant)
			if f.match(m) {
				out = append(out, *m)
			}
		}
		if len(pg.Entries) < want || pg.Next == "" {
			p.Done = true
			return out, l.prevOf(p, out, lo, incl), nil
		}
		cur = last
	}
}

// prevOf sets the Prev cursor of a forward page that started after lo.
func (l *lister) prevOf(p Page, out []store.Meta, lo string, incl bool) Page {
	switch {
	case lo == "":
		// The start of the store: nothing before.
	case len(out) > 0:
		p.Prev = encodeCursor(recPos(out[0].Key, out[0].Variant))
	case incl:
		p.Prev = encodeCursor(lo) // every record below lo
	default:
		p.Prev = encodeCursor(lo + "\x00") // every record up to and including lo
	}
	return p
}

// backward lists the last limit matches before position hi (or, with
// last, before the end). Items come in key order.
func (l *lister) backward(ctx context.Context, f *filter, hi string, last bool, limit int) ([]store.Meta, Page, error) {
	var p Page
	var out []store.Meta // matches, in reverse order of discovery (chunks prepended)
	top := bound{s: hi}
	if last {
		top = bound{s: f.prefix, inf: true}
	}
	startHi := top
	reads := 0 // records the backward search read, examined or not
	for {
		n := scanChunk / 4
		if f.none() {
			n = limit - len(out)
		}
		n = max(min(n, l.budget-p.Scanned), 1)
		// A chunk holds n..4n records; take its top n. The untaken lower
		// part's start is remembered (hints), so the next chunk below, in
		// this call or the next page's, is found with one probe.
		chunk, atStart, err := l.before(ctx, f.prefix, top, n, &reads)
		if err != nil {
			return nil, Page{}, err
		}
		stop := 0 // chunk[stop:] is taken, from its end
		if !atStart {
			stop = max(len(chunk)-n, 0)
		}
		i := len(chunk) - 1
		for ; i >= stop; i-- {
			if len(out) == limit || p.Scanned == l.budget {
				break
			}
			p.Scanned++
			if f.match(&chunk[i]) {
				out = append(out, chunk[i])
			}
		}
		if i >= stop {
			// Stopped at the limit or budget: records remain before
			// chunk[i+1], the earliest taken.
			m := chunk[i+1]
			p.Prev = encodeCursor(recPos(m.Key, m.Variant))
			break
		}
		if atStart || len(chunk) == 0 {
			p.Done = true // took everything down to the start
			break
		}
		// The probes read more than they examine; bound that too, so a
		// filtered backward call costs about what a forward one does.
		m := chunk[stop]
		if len(out) == limit || p.Scanned >= l.budget || reads >= backwardReads*l.budget {
			p.Prev = encodeCursor(recPos(m.Key, m.Variant))
			break
		}
		top = bound{s: recPos(m.Key, m.Variant)}
	}
	// Reverse into key order.
	for a, b := 0, len(out)-1; a < b; a, b = a+1, b-1 {
		out[a], out[b] = out[b], out[a]
	}
	switch {
	case len(out) > 0:
		lm := out[len(out)-1]
		p.Next = encodeCursor(recPos(lm.Key, lm.Variant))
	case !startHi.inf:
		// Nothing matched: the next page starts at hi itself.
		p.Next = encodeCursorFrom(startHi.s)
	}
	if startHi.inf && len(out) > 0 {
		p.Next = "" // the last page: nothing after it
	}
	return out, p, nil
}

// bound is an upper bound of a backward walk: the position s, or with inf
// the supremum of every string starting with s.
type bound struct {
	s   string
	inf bool
}

// below reports whether position k is under b.
func (b bound) below(k string) bool {
	if b.inf {
		return k < b.s || strings.HasPrefix(k, b.s)
	}
	return k < b.s
}

// maxBisect bounds the bisection of before; past it the walk goes forward
// from the best lower bound found (correct, only slower). Keys cluster
// (URLs share long prefixes), so reaching them from the top of the byte
// space takes about eight probes per shared byte; those probes find
// nothing and cost one seek each.
const maxBisect = 1024

// before returns records under top (within prefix) that end just below
// it, in key order: between n and 4n of them, or all of them when fewer
// than 4n exist (atStart true). The store scans only forward, so it finds
// a starting position from the hints (where earlier searches went; a
// hint is good for n..4n records), else by bisecting the byte space
// between a lower bound known to leave at least 2n records (snapped to a
// record) and an upper bound known to leave fewer, for a chunk of 2n..4n: taking n of those leaves a hint for the next n below.
// Each probe is one short Scan of at most 4n+1 records; reads counts the
// records they read.
func (l *lister) before(ctx context.Context, prefix string, top bound, n int, reads *int) ([]store.Meta, bool, error) {
	window := 4 * n
	probe := func(after string) ([]store.Meta, bool, error) {
		pg, err := l.r.Scan(ctx, store.ScanOptions{Prefix: prefix, After: after, Limit: window + 1})
		if err != nil {
			return nil, false, storeErr(err)
		}
		es := pg.Entries
		*reads += len(es)
		for i := range es {
			if !top.below(recPos(es[i].Key, es[i].Variant)) {
				es = es[:i]
				break
			}
		}
		return es, len(es) < window+1, nil // reached top (or the end) iff short
	}
	var lo string
	hb := top
	for _, h := range l.hints.below(top, prefix, 3) {
		recs, reached, err := probe(h)
		if err != nil {
			return nil, false, err
		}
		if !reached {
			lo = recPos(recs[2*n].Key, recs[2*n].Variant)
			break
		}
		if len(recs) >= n {
			return recs, false, nil
		}
		hb = bound{s: h}
	}
	if lo == "" {
		recs, reached, err := probe("")
		if err != nil {
			return nil, false, err
		}
		if reached {
			return recs, true, nil // everything below top
		}
		// count(recs[2n], top) >= window+1 - (2n+1) = 2n.
		lo = recPos(recs[2*n].Key, recs[2*n].Variant)
	}
	for range maxBisect {
		s, ok := midpoint(lo, hb)
		if !ok {
			break
		}
		recs, reached, err := probe(s)
		if err != nil {
			return nil, false, err
		}
		switch {
		case !reached: // more than 4n between s and top: raise lo
			lo = recPos(recs[2*n].Key, recs[2*n].Variant)
			l.hints.add(s) // a start for pages further down
		case len(recs) < 2*n:
			// Too few: every position from s up leaves too few. (Not the
			// first record above s: it is higher, and need not be below
			// the old hb, which would stall the search.)
			hb = bound{s: s}
		default:
			l.hints.add(s)
			return recs, false, nil
		}
	}
	// Fallback: walk forward from lo to top keeping the last 4n records.
	ring := make([]store.Meta, 0, 8*n)
	cur := lo
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		pg, err := l.r.Scan(ctx, store.ScanOptions{Prefix: prefix, After: cur, Limit: scanChunk})
		if err != nil {
			return nil, false, storeErr(err)
		}
		*reads += len(pg.Entries)
		done := len(pg.Entries) < scanChunk
		for _, m := range pg.Entries {
			if !top.below(recPos(m.Key, m.Variant)) {
				done = true
				break
			}
			ring = append(ring, m)
		}
		if len(ring) > window {
			ring = append(ring[:0], ring[len(ring)-window:]...)
		}
		if done || len(pg.Entries) == 0 {
			return ring, false, nil
		}
		last := pg.Entries[len(pg.Entries)-1]
		cur = recPos(last.Key, last.Variant)
	}
}

// midpoint returns a position strictly between lo and hb holding a NUL
// (so the store seeks to it exactly), reading the strings as base-256
// fractions; ok is false when there is none it can find.
func midpoint(lo string, hb bound) (string, bool) {
	hs := hb.s
	n := max(len(lo), len(hs)) + 2
	a := new(big.Int).SetBytes(pad([]byte(lo), n, 0))
	var b *big.Int
	if hb.inf {
		b = new(big.Int).SetBytes(pad([]byte(hs), n, 0xff))
		b.Add(b, big.NewInt(1))
	} else {
		b = new(big.Int).SetBytes(pad([]byte(hs), n, 0))
	}
	m := new(big.Int).Add(a, b)
	m.Rsh(m, 1)
	mb := m.FillBytes(make([]byte, n))
	// Drop the zero padding, keeping what distinguishes it.
	mb = bytes.TrimRight(mb, "\x00")
	s := string(mb)
	if strings.IndexByte(s, 0) < 0 {
		s += "\x00"
	}
	if s <= lo || !hb.below(s) {
		return "", false
	}
	return s, true
}

func pad(b []byte, n int, with byte) []byte {
	out := make([]byte, n)
	copy(out, b)
	for i := len(b); i < n; i++ {
		out[i] = with
	}
	return out
}
