package httpcache

import (
	"math/bits"
	"net/http"
	"sync"
	"sync/atomic"
)

// Body buffers for inspected responses (fill.inspectNow), pooled by
// size class from 4 KiB to 256 KiB (InspectBuffer's default), eight
// classes per doubling as in Go's own allocator (bodyClass: a buffer is at
// most 1/8 larger than its body). A fresh 20 KB buffer per miss cost more
// than copying into it: the allocation's zeroing and the first writes to
// new memory, and its share of the garbage that sets the GC's pace.
//
// A fill holds its buffer until its store write commits, which the
// store may defer for up to store.Options.MaxCommitDelay (80 ms) to share
// the commit: at thousands of misses a second, hundreds of buffers are out
// at once and come back together. A sync.Pool alone dropped most of them
// at the next garbage collections before they were asked for again (in
// the loadtest's miss scenario about 45% of misses allocated a fresh
// buffer), so recycled buffers first go to a free list the GC does not
// empty, bounded by maxFreeBodyBytes in all, and only beyond that to the
// classes' sync.Pools. Up to that bound stays allocated while idle.
//
// A pooled buffer has one owner at a time; see fill.pooled for who owns
// an inspected body and when it is recycled.
const (
	minPooledBody = 12 // log2 of the smallest pooled capacity
	maxPooledBody = 18 // log2 of the largest
	// bodyClasses is the number of bodyClass classes: one up to 4 KiB,
	// then 8 per doubling up to 256 KiB.
	bodyClasses = 1 + 8*(maxPooledBody-minPooledBody)
	// maxFreeBodyBytes bounds the capacity the free list keeps.
	maxFreeBodyBytes = 8 << 20
)

var bodyPools [bodyClasses]sync.Pool

// freeBodies is the free list of recycled body buffers, by class.
var freeBodies struct {
	mu    sync.Mutex
	bytes int // capacity held, at most maxFreeBodyBytes
	c     [bodyClasses][]*[]byte
}

// bodyClass is the class of a buffer for n bytes and its capacity, the
// class's largest n; class -1 when n is too large to pool.
func bodyClass(n int) (class, size int) {
	if n <= 1<<minPooledBody {
		return 0, 1 << minPooledBody
	}
	if n > 1<<maxPooledBody {
		return -1, 0
	}
	c, size := eighthClass(n, minPooledBody)
	return 1 + c, size
}

// eighthClass is the size class of n bytes, n > 1<<lo, in classes eight
// per doubling (as in Go's own allocator: a buffer is at most 1/8 larger
// than the n it is for), class 0 being (1<<lo, 1<<lo + 1<<(lo-3)], and
// its capacity, the class's largest n. bodyClass and readClass use it
// above their smallest classes.
func eighthClass(n, lo int) (class, size int) {
	e := bits.Len(uint(n-1)) - 1 // 2^e <= n-1 < 2^(e+1), e >= lo
	step := 1 << (e - 3)
	k := (n - 1 - 1<<e) / step
	return (e-lo)*8 + k, 1<<e + (k+1)*step
}

// getBody returns a buffer of length n, its contents undefined, and the
// handle to give back to putBody (nil when n is not pooled: the buffer is
// then the GC's).
func getBody(n int) ([]byte, *[]byte) {
	c, size := bodyClass(n)
	if c < 0 {
		return make([]byte, n), nil
	}
	fb := &freeBodies
	fb.mu.Lock()
	if l := fb.c[c]; len(l) > 0 {
		bp := l[len(l)-1]
		l[len(l)-1] = nil
		fb.c[c] = l[:len(l)-1]
		fb.bytes -= cap(*bp)
		fb.mu.Unlock()
		return (*bp)[:n], bp
	}
	fb.mu.Unlock()
	if bp, ok := bodyPools[c].Get().(*[]byte); ok {
		return (*bp)[:n], bp
	}
	b := make([]byte, size)
	return b[:n], &b
}

// putBody recycles a buffer from getBody; nothing may use it afterwards.
func putBody(bp *[]byte) {
	if bp == nil {
		return
	}
	c, size := bodyClass(cap(*bp))
	if c < 0 || cap(*bp) != size {
		return // not one of getBody's
	}
	if readPoison.Load() {
		b := (*bp)[:cap(*bp)]
		for i := range b {
			b[i] = readPoisonByte
		}
		missRecycles.Add(1)
	}
	fb := &freeBodies
	fb.mu.Lock()
	if fb.bytes+size <= maxFreeBodyBytes {
		fb.c[c] = append(fb.c[c], bp)
		fb.bytes += size
		fb.mu.Unlock()
		return
	}
	fb.mu.Unlock()
	bodyPools[c].Put(bp)
}

// Store-read bodies. A hit the memory tier does not hold reads its record
// from the store (lookup), and bbolt's values are valid only inside their
// read transaction, so the body is copied out of the memory map before
// the read returns (store.BodyBuffer). The transaction is never held
// while the client reads the body: a slow client would keep bbolt from
// re-mapping a growing file. The copy itself is cheap; a fresh 20 KB
// allocation per store-served hit was not (in the loadtest's large
// scenario, about a third of the server's CPU went to copying into new
// memory, and every body became garbage). So the copy goes into a buffer
// from readPools, one pool per size class up to maxReadBody, eight
// classes per doubling as in Go's own allocator (readClass): a buffer is
// at most 1/8 larger than its body (128 bytes below 1 KiB), which matters
// when the memory tier keeps it and charges its capacity. A larger body
// is allocated by the store as before.
//
// Ownership (readBuf): the request whose lookup read the record owns the
// buffer, and only it may recycle it, only once nothing else can refer to
// the body:
//
//   - the memory tier admitted the entry (hotCache.put reported true): the
//     buffer is the tier's from then on, never recycled (disown);
//   - the entry is spliced (Splicer.Load may keep slices of the body):
//     disowned before Load;
//   - the entry is served by anything but a plain fresh hit answered in
//     the handler (servePlainHit): stale-while-revalidate starts a
//     background revalidation with it, a revalidation keeps it in the
//     exchange, its fill and the flight's waiters (a 304 shares the
//     body), stale-if-error replaces the origin's response with it: all
//     disowned, left to the GC;
//   - a plain hit writes the body with w.Write inside the handler and
//     flushes the cork before serveEntry returns (hit.go; io.Writer
//     implementations must not retain p, and net/http's HTTP/1 writer
//     copies or writes synchronously). HTTP/2's server can still hold a
//     DATA frame's bytes after a Write that returned early (the stream
//     was reset or the connection ended while the frame was queued), so
//     only an HTTP/1 request's buffer is recycled; any other is the GC's;
//   - a lookup that returned no entry (damaged, disabled, past not-after,
//     hidden by a purge-all epoch) leaves the buffer unreferenced, and
//     it is recycled at once.
//
// When in doubt the buffer is disowned: a recycled buffer still
// referenced would serve one page's bytes as another's.
const maxReadBody = 64 << 10

var readPools [readClasses]sync.Pool

// readClasses is the number of readClass classes: 8 of 128 bytes up to
// 1 KiB, then 8 per doubling up to maxReadBody.
const readClasses = 8 + 8*6

// readClass is the class of a buffer for n bytes (0 < n <= maxReadBody)
// and its capacity, the class's largest n.
func readClass(n int) (class, size int) {
	if n <= 1<<10 {
		c := (n - 1) >> 7
		return c, (c + 1) << 7
	}
	c, size := eighthClass(n, 10)
	return 8 + c, size
}

// readBuf is the pooled buffer one store read copied a body into; the
// zero readBuf holds none. Used by one goroutine (the request's).
type readBuf struct {
	bp *[]byte
}

// body is rb's store.BodyBuffer: a pooled buffer for a body of n bytes,
// or nil (the store allocates) above maxReadBody or when rb already holds
// one.
func (rb *readBuf) body(n int) []byte {
	if n > maxReadBody || n <= 0 || rb.bp != nil {
		return nil
	}
	c, size := readClass(n)
	bp, _ := readPools[c].Get().(*[]byte)
	if bp == nil {
		b := make([]byte, size)
		bp = &b
	}
	rb.bp = bp
	return *bp
}

// owned reports whether rb holds a buffer.
func (rb *readBuf) owned() bool { return rb.bp != nil }

// disown gives rb's buffer up to whoever else holds the body (the memory
// tier, or the GC once nothing does): it is never recycled.
func (rb *readBuf) disown() { rb.bp = nil }

// recycle returns rb's buffer to its pool, if it holds one; r is the
// request the body was written for, in the handler that recycles: only
// HTTP/1's server is known to keep nothing of a Write once it returned
// (see above), so for another protocol the buffer is only disowned. The
// caller guarantees that nothing refers to the body any more.
func (rb *readBuf) recycle(r *http.Request) {
	bp := rb.bp
	if bp == nil {
		return
	}
	rb.bp = nil
	if !reusableAfter(r) {
		return
	}
	if readPoison.Load() {
		b := (*bp)[:cap(*bp)]
		for i := range b {
			b[i] = readPoisonByte
		}
		readRecycles.Add(1)
	}
	c, _ := readClass(cap(*bp))
	readPools[c].Put(bp)
}

// reusableAfter reports whether a buffer whose bytes were written to r's
// client (r nil: to nobody) may be reused once the write returned: only
// HTTP/1's server is known to keep nothing of a Write after it returned;
// HTTP/2's may still hold a DATA frame's bytes (see readBuf above).
func reusableAfter(r *http.Request) bool { return r == nil || r.ProtoMajor == 1 }

// readPoison (tests: TestMain sets it outside benchmarks) fills every
// recycled buffer with readPoisonByte and counts it: store-read buffers
// in readRecycles, inspected bodies' (putBody) in missRecycles, so a body
// served after its buffer was recycled shows.
var (
	readPoison   atomic.Bool
	readRecycles atomic.Int64
	missRecycles atomic.Int64
)

const readPoisonByte = 0xDB
