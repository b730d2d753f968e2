package httpcache

import (
	"math/bits"
	"sync"
)

// Body buffers for inspected responses (fill.inspectNow), pooled by
// power-of-two capacity from 4 KiB to 256 KiB (InspectBuffer's default).
// A fresh 20 KB buffer per miss cost more than copying into it: the
// allocation's zeroing and the first writes to new memory, and its share
// of the garbage that sets the GC's pace.
//
// A pooled buffer has one owner at a time; see fill.pooled for who owns
// an inspected body and when it is recycled.
const (
	minPooledBody = 12 // log2 of the smallest pooled capacity
	maxPooledBody = 18 // log2 of the largest
)

var bodyPools [maxPooledBody - minPooledBody + 1]sync.Pool

// bodyClass is the index in bodyPools of a buffer for n bytes, or -1 when
// n is too large to pool.
func bodyClass(n int) int {
	if n <= 1<<minPooledBody {
		return 0
	}
	c := bits.Len(uint(n-1)) - minPooledBody
	if c >= len(bodyPools) {
		return -1
	}
	return c
}

// getBody returns a buffer of length n, its contents undefined, and the
// handle to give back to putBody (nil when n is not pooled: the buffer is
// then the GC's).
func getBody(n int) ([]byte, *[]byte) {
	c := bodyClass(n)
	if c < 0 {
		return make([]byte, n), nil
	}
	if bp, ok := bodyPools[c].Get().(*[]byte); ok {
		return (*bp)[:n], bp
	}
	b := make([]byte, 1<<(c+minPooledBody))
	return b[:n], &b
}

// putBody recycles a buffer from getBody; nothing may use it afterwards.
func putBody(bp *[]byte) {
	if bp == nil {
		return
	}
	if c := bodyClass(cap(*bp)); c >= 0 && cap(*bp) == 1<<(c+minPooledBody) {
		bodyPools[c].Put(bp)
	}
}
