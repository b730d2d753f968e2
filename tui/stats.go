package tui

import (
	"time"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// historyCap bounds the samples kept: a little over 1000 s at one sample a
// second, so the 1000 s hit ratio has its far end.
const historyCap = 1030

// sample is one Stats poll reduced to what the header derives figures from.
type sample struct {
	at                     time.Time
	requests, hits, misses int64
}

// history is a fixed ring of samples, oldest first. Its memory is constant.
type history struct {
	buf   [historyCap]sample
	start int
	n     int
}

// add appends s. A counter that went down means the server restarted (or
// another one answers): the history restarts with s, so no window mixes
// two processes' counters. A sample not newer than the last is ignored.
func (h *history) add(s sample) {
	if h.n > 0 {
		last := h.at(h.n - 1)
		if !s.at.After(last.at) {
			return
		}
		if s.requests < last.requests || s.hits < last.hits || s.misses < last.misses {
			h.n, h.start = 0, 0
		}
	}
	if h.n == historyCap {
		h.start = (h.start + 1) % historyCap
		h.n--
	}
	h.buf[(h.start+h.n)%historyCap] = s
	h.n++
}

func (h *history) at(i int) sample { return h.buf[(h.start+i)%historyCap] }

func (h *history) last() (sample, bool) {
	if h.n == 0 {
		return sample{}, false
	}
	return h.at(h.n - 1), true
}

// since returns the oldest sample no older than window before the newest
// one (or the oldest held, when the history is shorter).
func (h *history) since(window time.Duration) (sample, bool) {
	if h.n < 2 {
		return sample{}, false
	}
	newest := h.at(h.n - 1)
	cut := newest.at.Add(-window)
	// Binary search the first sample at or after cut.
	lo, hi := 0, h.n-1
	for lo < hi {
		mid := (lo + hi) / 2
		if h.at(mid).at.Before(cut) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == h.n-1 {
		return sample{}, false
	}
	return h.at(lo), true
}

// hitRatio is hits / (hits + misses) over the last window (over what the
// history holds when it is shorter: varnishstat's averages also fill up).
// ok is false when no lookup happened in the window.
func (h *history) hitRatio(window time.Duration) (ratio float64, ok bool) {
	old, ok := h.since(window)
	if !ok {
		return 0, false
	}
	cur, _ := h.last()
	dh, dm := cur.hits-old.hits, cur.misses-old.misses
	if dh+dm <= 0 {
		return 0, false
	}
	return float64(dh) / float64(dh+dm), true
}

// rate is requests per second over the last window.
func (h *history) rate(window time.Duration) (float64, bool) {
	old, ok := h.since(window)
	if !ok {
		return 0, false
	}
	cur, _ := h.last()
	secs := cur.at.Sub(old.at).Seconds()
	if secs <= 0 {
		return 0, false
	}
	return float64(cur.requests-old.requests) / secs, true
}

// rates returns n buckets of requests per second covering span back from
// the newest sample, oldest first; a bucket with no samples is -1.
func (h *history) rates(span time.Duration, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = -1
	}
	if h.n < 2 || n <= 0 {
		return out
	}
	newest := h.at(h.n - 1).at
	width := span / time.Duration(n)
	if width <= 0 {
		return out
	}
	sum := make([]float64, n)
	dur := make([]float64, n)
	for i := h.n - 1; i > 0; i-- {
		a, b := h.at(i-1), h.at(i)
		age := newest.Sub(b.at)
		if age >= span {
			break
		}
		k := n - 1 - int(age/width)
		sum[k] += float64(b.requests - a.requests)
		dur[k] += b.at.Sub(a.at).Seconds()
	}
	for k := range out {
		if dur[k] > 0 {
			out[k] = sum[k] / dur[k]
		}
	}
	return out
}

// sparkline draws values (negative: no data, drawn as a space) scaled to
// their maximum with the eight block glyphs.
func sparkline(values []float64) string {
	const bars = "▁▂▃▄▅▆▇█"
	glyphs := []rune(bars)
	max := 0.0
	for _, v := range values {
		if v > max {
			max = v
		}
	}
	out := make([]rune, len(values))
	for i, v := range values {
		switch {
		case v < 0:
			out[i] = ' '
		case max == 0:
			out[i] = glyphs[0]
		default:
			k := int(v / max * float64(len(glyphs)-1))
			out[i] = glyphs[k]
		}
	}
	return string(out)
}

func sampleOf(at time.Time, s *admin.Stats) sample {
	return sample{at: at, requests: s.Requests, hits: s.Hits, misses: s.Misses}
}
