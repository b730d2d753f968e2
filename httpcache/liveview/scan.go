package liveview

import (
	"bytes"

	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
)

// pattern is a fixed string the linter looks for in a page, found by the
// byte of it that is rarest in HTML (its anchor) instead of its first.
//
// bytes.Index looks for the first byte of the pattern with IndexByte and
// compares from there; for "data-phx-s" and "csrf-token" that byte (d, c)
// is one in 25 of a LiveView page, so a 20 KB page costs ~1,400 IndexByte
// calls that each find a false candidate a few bytes on (about 20 µs per
// page). Searching on x (data-phx-s) or k (csrf-token) instead finds a
// few hundred candidates at most, and IndexByte runs over the gaps at
// memory speed. A page full of the anchor byte falls back to bytes.Index
// after as many false candidates as bytes.Index itself tolerates, so no
// input costs much more than bytes.Index would.
type pattern struct {
	s      []byte
	anchor int // index in s of the byte searched for
}

var (
	patTokenPrefix = pattern{s: []byte(phxtoken.TokenPrefix), anchor: 2} // SFMyNTY.: M
	patPhxS        = pattern{s: []byte("data-phx-s"), anchor: 7}         // x
	patCSRF        = pattern{s: []byte("csrf-token"), anchor: 7}         // k
)

// index returns the index of the first occurrence of p in b, or -1: the
// same as bytes.Index(b, p.s).
func (p *pattern) index(b []byte) int {
	n := len(p.s)
	if len(b) < n {
		return -1
	}
	c := p.s[p.anchor]
	last := len(b) - n + p.anchor // the last position the anchor can take
	fails := 0
	for i := p.anchor; i <= last; {
		j := bytes.IndexByte(b[i:last+1], c)
		if j < 0 {
			return -1
		}
		i += j
		start := i - p.anchor
		if bytes.Equal(b[start:start+n], p.s) {
			return start
		}
		i++
		// Every start before i-p.anchor is ruled out.
		if fails++; fails > 4+i>>4 {
			if k := bytes.Index(b[i-p.anchor:], p.s); k >= 0 {
				return i - p.anchor + k
			}
			return -1
		}
	}
	return -1
}
