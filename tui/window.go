package tui

import "github.com/firstrender/firstrender/httpcache/admin"

// origin is how a page was asked for, so a refresh can ask again.
// fromStart and toEnd carry what a filtered scan that went on across
// budget-limited calls already proved: nothing before (after) the cursor
// matches, so the page is the first (last) one.
type origin struct {
	after, before    string
	first, last      bool
	fromStart, toEnd bool
}

// page is one fetched run of entries with the cursors on either side
// ("" when nothing lies that way).
type page struct {
	items      []admin.Entry
	prev, next string
	from       origin
}

// window is the resident, contiguous part of the entry list: at most a few
// pages, in key order. base is the absolute row number of the first
// resident row when baseKnown (counted from the start; after G it is
// estimated from the store's approximate total, and approx is set).
type window struct {
	pages     []page
	size      int // rows resident
	base      int64
	baseKnown bool
	approx    bool
}

func (w *window) len() int { return w.size }

// row returns the i-th resident row; i must be in [0, len).
func (w *window) row(i int) *admin.Entry {
	for p := range w.pages {
		if i < len(w.pages[p].items) {
			return &w.pages[p].items[i]
		}
		i -= len(w.pages[p].items)
	}
	return nil
}

// pageOf returns the index of the page holding row i.
func (w *window) pageOf(i int) int {
	for p := range w.pages {
		if i < len(w.pages[p].items) {
			return p
		}
		i -= len(w.pages[p].items)
	}
	return len(w.pages) - 1
}

func (w *window) atStart() bool { return len(w.pages) == 0 || w.pages[0].prev == "" }
func (w *window) atEnd() bool   { return len(w.pages) == 0 || w.pages[len(w.pages)-1].next == "" }

func (w *window) headCursor() string {
	if len(w.pages) == 0 {
		return ""
	}
	return w.pages[0].prev
}

func (w *window) tailCursor() string {
	if len(w.pages) == 0 {
		return ""
	}
	return w.pages[len(w.pages)-1].next
}

func (w *window) push(p page) {
	w.pages = append(w.pages, p)
	w.size += len(p.items)
}

// unshift adds p before the first page and returns how many rows the
// existing ones moved down by.
func (w *window) unshift(p page) int {
	w.pages = append([]page{p}, w.pages...)
	w.size += len(p.items)
	w.base -= int64(len(p.items))
	if p.prev == "" {
		// Reached the start: the row numbers are exact from here on.
		w.base, w.baseKnown, w.approx = 0, true, false
	}
	return len(p.items)
}

// dropHead drops the first page and returns its row count.
func (w *window) dropHead() int {
	n := len(w.pages[0].items)
	w.pages = append(w.pages[:0:0], w.pages[1:]...)
	w.size -= n
	w.base += int64(n)
	return n
}

func (w *window) dropTail() int {
	n := len(w.pages[len(w.pages)-1].items)
	w.pages = w.pages[: len(w.pages)-1 : len(w.pages)-1]
	w.size -= n
	return n
}

// remove deletes the rows drop matches and returns how many rows before
// index i went (so a cursor at i can follow its row) and how many in all.
// Pages left empty are dropped; their neighbours' cursors stay valid,
// since a cursor marks a place in key order.
func (w *window) remove(drop func(*admin.Entry) bool, i int) (before, total int) {
	wasStart, wasEnd := w.atStart(), w.atEnd()
	idx := 0
	out := w.pages[:0]
	for _, p := range w.pages {
		kept := p.items[:0]
		for k := range p.items {
			if drop(&p.items[k]) {
				if idx < i {
					before++
				}
				total++
			} else {
				kept = append(kept, p.items[k])
			}
			idx++
		}
		if len(kept) == 0 && len(w.pages) > 1 {
			// Keep the outer cursors of the window when an end page goes.
			switch {
			case len(out) == 0:
				// First page gone: the next page's prev still points before it.
			default:
				out[len(out)-1].next = p.next
			}
			continue
		}
		p.items = kept
		out = append(out, p)
	}
	if len(out) > 0 && wasStart {
		out[0].prev = "" // the start stays the start
	}
	if len(out) > 0 && wasEnd {
		out[len(out)-1].next = ""
	}
	w.pages = out
	w.size -= total
	return before, total
}
