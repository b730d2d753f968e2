package httpcache

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain poisons every recycled store-read buffer (readPoison) in
// every test of the package, so that any test that reads a body served
// after its buffer went back to the pool sees 0xDB bytes. Benchmarks run
// without it: they measure the real cost.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		readPoison.Store(true)
	}
	os.Exit(m.Run())
}

// TestReadBuf_Classes: a pooled buffer fits its body with at most 1/8
// (128 bytes below 1 KiB) to spare, in a class of its own capacity;
// bodies above maxReadBody are declined (the store allocates); a buffer
// held is not replaced.
func TestReadBuf_Classes(t *testing.T) {
	prev := -1
	for n := 1; n <= maxReadBody; n++ {
		c, size := readClass(n)
		if c < prev || c > prev+1 || c >= readClasses || size < n || size-n > max(128, n/8) {
			t.Fatalf("readClass(%d) = %d, %d (previous class %d)", n, c, size, prev)
		}
		if c2, size2 := readClass(size); c2 != c || size2 != size {
			t.Fatalf("readClass(%d) = %d, %d: a buffer of class %d is not in it", size, c2, size2, c)
		}
		prev = c
	}
	if prev != readClasses-1 {
		t.Errorf("the last class is %d, want %d", prev, readClasses-1)
	}
	for _, n := range []int{1, 4095, 4096, 4097, 20480, 20481, maxReadBody - 1, maxReadBody} {
		var rb readBuf
		b := rb.body(n)
		if _, size := readClass(n); cap(b) != size || !rb.owned() {
			t.Errorf("body(%d): capacity %d, owned %v", n, cap(b), rb.owned())
		}
		if rb.body(n) != nil {
			t.Errorf("body(%d) a second time gave a buffer", n)
		}
		rb.recycle(nil)
		if rb.owned() {
			t.Errorf("recycle left body(%d)'s buffer held", n)
		}
	}
	var rb readBuf
	if b := rb.body(maxReadBody + 1); b != nil || rb.owned() {
		t.Errorf("body(%d) = capacity %d, want none", maxReadBody+1, cap(b))
	}
	h2 := &http.Request{ProtoMajor: 2}
	rb.body(100)
	before := readRecycles.Load()
	rb.recycle(h2)
	if rb.owned() || (readPoison.Load() && readRecycles.Load() != before) {
		t.Error("an HTTP/2 request's buffer was recycled")
	}
}

// readPage is page i of TestStoreReadBuffers_Intact's origin: distinct
// bytes for every page and offset, of sizes spread over the pool's
// classes (and, every 11th, above maxReadBody: allocated, not pooled).
func readPage(i int) []byte {
	n := 1500 + (i*7919)%40000
	if i%11 == 10 {
		n = maxReadBody + 3000
	}
	b := make([]byte, 0, n+32)
	for len(b) < n {
		b = fmt.Appendf(b, "<p%03d@%06d>", i, len(b))
	}
	return b[:n]
}

// TestStoreReadBuffers_Intact: store-served hits read their bodies into
// pooled buffers, recycled after plain hits. Under concurrent clients
// mixing plain hits, HEAD, Range (one and several parts), conditional
// requests (304 from the cache), gzip decoding, stale-while-revalidate
// (background revalidations), no-cache entries revalidated with the
// origin (304: the stored body served through the origin path), memory-
// tier admissions and evictions and purges, every response carries
// exactly its own page's bytes, while every recycled buffer is poisoned
// (TestMain): a buffer recycled while anything still served it, or
// reused for another page, shows. With the memory tier on (4 MiB for
// about 2.8 MB of pages in 64 shards: it admits, refuses and evicts) and
// off; on a guarded listener,
// as the server runs the proxy (corked writes), over HTTP/1.1.
func TestStoreReadBuffers_Intact(t *testing.T) {
	if !readPoison.Load() {
		t.Skip("needs readPoison (TestMain)")
	}
	for _, tc := range []struct {
		name string
		hot  int64
	}{{"memory-tier", 4 << 20}, {"store-only", -1}} {
		t.Run(tc.name, func(t *testing.T) { testStoreReadBuffers(t, tc.hot) })
	}
}

func testStoreReadBuffers(t *testing.T, hotSize int64) {
	const pages = 132
	plain := make([][]byte, pages)
	gz := make([][]byte, pages)
	for i := range plain {
		plain[i] = readPage(i)
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(plain[i])
		zw.Close()
		gz[i] = buf.Bytes()
	}
	// Kinds, by i%6: 0 plain, 1 gzip-encoded, 2 stale-while-revalidate,
	// 3 no-cache (revalidated by every request), 4 plain, 5 purged now and then.
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		i, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/p/"))
		if err != nil || i < 0 || i >= pages {
			http.NotFound(w, req)
			return
		}
		h := w.Header()
		etag := fmt.Sprintf(`"p%d"`, i)
		h.Set("Etag", etag)
		h.Set("Content-Type", "text/html")
		switch i % 6 {
		case 2:
			h.Set("Cache-Control", "public, max-age=1, stale-while-revalidate=3600")
		case 3:
			h.Set("Cache-Control", "public, no-cache")
		default:
			h.Set("Cache-Control", "public, max-age=600")
		}
		if req.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := plain[i]
		if i%6 == 1 {
			h.Set("Content-Encoding", "gzip")
			h.Set("Vary", "Accept-Encoding")
			body = gz[i]
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}, func(c *Config) { c.MemoryCacheSize = hotSize })
	guarded := guardedServer(t, r.Proxy)
	host := strings.TrimPrefix(r.Front.URL, "http://") // the host the rig's proxy caches
	base := "http://" + guarded
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 8}}
	t.Cleanup(client.CloseIdleConnections)

	get := func(i int, method string, hdr ...string) (*http.Response, []byte, error) {
		req, err := http.NewRequest(method, fmt.Sprintf("%s/p/%d", base, i), nil)
		if err != nil {
			return nil, nil, err
		}
		req.Host = host
		for k := 0; k+1 < len(hdr); k += 2 {
			req.Header.Set(hdr[k], hdr[k+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b, err
	}
	// Fill the store (every page a miss, stored), then read each once
	// more so the tier's doorkeeper has seen them.
	for round := range 2 {
		for i := range pages {
			if _, _, err := get(i, http.MethodGet, "Accept-Encoding", "gzip"); err != nil {
				t.Fatal(err)
			}
		}
		if round == 0 {
			r.Settle()
		}
	}
	r.Settle()

	recycled := readRecycles.Load()
	const workers, each = 6, 250
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	purged := make(chan error, 1)
	stop := make(chan struct{})
	go func() { // purges of kind-5 pages and a clock that moves
		for k := 0; ; k++ {
			select {
			case <-stop:
				purged <- nil
				return
			case <-time.After(2 * time.Millisecond):
			}
			r.Clock.Advance(700 * time.Millisecond)
			i := 5 + 6*(k%(pages/6))
			key, err := r.Proxy.Key(fmt.Sprintf("http://%s/p/%d", host, i))
			if err == nil {
				_, err = r.Proxy.Purge(context.Background(), Selection{Keys: []string{key}})
			}
			if err != nil {
				purged <- err
				return
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			for range each {
				i := rnd.IntN(pages)
				want := plain[i]
				ae := "identity"
				if i%6 == 1 && rnd.IntN(2) == 0 {
					ae, want = "gzip", gz[i]
				}
				var (
					resp *http.Response
					body []byte
					err  error
					what string
				)
				switch k := rnd.IntN(10); {
				case k < 5:
					what = "GET"
					resp, body, err = get(i, http.MethodGet, "Accept-Encoding", ae)
				case k == 5:
					what = "HEAD"
					resp, body, err = get(i, http.MethodHead, "Accept-Encoding", ae)
				case k == 6:
					what = "Range"
					resp, body, err = get(i, http.MethodGet, "Accept-Encoding", ae, "Range", "bytes=100-1099")
				case k == 7:
					what = "multi-Range"
					resp, body, err = get(i, http.MethodGet, "Accept-Encoding", ae, "Range", "bytes=0-9,-10")
				case k == 8:
					what = "If-None-Match"
					resp, body, err = get(i, http.MethodGet, "Accept-Encoding", ae, "If-None-Match", fmt.Sprintf(`"p%d"`, i))
				default:
					what = "GET"
					resp, body, err = get(i, http.MethodGet, "Accept-Encoding", "gzip")
					if i%6 == 1 {
						want = gz[i]
					} else {
						want = plain[i]
					}
				}
				if err == nil {
					err = checkReadBody(resp, body, want, what)
				}
				if err != nil {
					errc <- fmt.Errorf("/p/%d %s (Accept-Encoding %s): %w", i, what, ae, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-purged; err != nil {
		t.Fatal(err)
	}
	r.Settle()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := readRecycles.Load() - recycled; n == 0 {
		t.Fatal("no store-read buffer was recycled: the test proves nothing")
	} else {
		t.Logf("%d store-read buffers recycled (poisoned)", n)
	}
	if hotSize > 0 {
		if n, _ := r.Proxy.hot.stats(); n == 0 {
			t.Error("the memory tier admitted nothing")
		}
	}
}

// checkReadBody reports how resp (body read whole) differs from what a
// request of kind what for the page want is owed.
func checkReadBody(resp *http.Response, body, want []byte, what string) error {
	bad := func(format string, a ...any) error {
		if i := bytes.Index(body, bytes.Repeat([]byte{readPoisonByte}, 16)); i >= 0 {
			return fmt.Errorf("status %d, Cache-Status %q: POISONED bytes at %d (a recycled buffer was served): "+format,
				append([]any{resp.StatusCode, resp.Header.Get("Cache-Status"), i}, a...)...)
		}
		return fmt.Errorf("status %d, Cache-Status %q: "+format, append([]any{resp.StatusCode, resp.Header.Get("Cache-Status")}, a...)...)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if what == "HEAD" {
			if len(body) != 0 {
				return bad("HEAD with %d body bytes", len(body))
			}
			return nil
		}
		if !bytes.Equal(body, want) {
			return bad("body of %d bytes differs from the page's %d", len(body), len(want))
		}
	case http.StatusPartialContent:
		switch what {
		case "Range":
			if !bytes.Equal(body, want[100:min(1100, len(want))]) {
				return bad("part differs from the page's bytes 100-1099")
			}
		case "multi-Range":
			_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if err != nil {
				return bad("Content-Type: %v", err)
			}
			mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
			for k, part := range [][]byte{want[:10], want[len(want)-10:]} {
				p, err := mr.NextPart()
				if err != nil {
					return bad("part %d: %v", k, err)
				}
				got, err := io.ReadAll(p)
				if err != nil || !bytes.Equal(got, part) {
					return bad("part %d is %q, want %q (%v)", k, got, part, err)
				}
			}
			if _, err := mr.NextPart(); err != io.EOF {
				return bad("more than two parts (%v)", err)
			}
		default:
			return bad("unexpected 206")
		}
	case http.StatusNotModified:
		if what != "If-None-Match" || len(body) != 0 {
			return bad("unexpected 304 with %d body bytes", len(body))
		}
	default:
		return bad("unexpected status")
	}
	return nil
}

// TestInspectedBodyBuffers_HTTP2NotRecycled: an inspected miss's pooled
// body (fill.pooled) goes back to its pool after an HTTP/1 response, and
// is left to the GC after an HTTP/2 one, whose server may still hold a
// DATA frame's bytes after Write returned (readBuf.recycle); the bodies
// stay intact either way.
func TestInspectedBodyBuffers_HTTP2NotRecycled(t *testing.T) {
	if !readPoison.Load() {
		t.Skip("needs readPoison (TestMain)")
	}
	body := readPage(7)
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html")
		h.Set("Cache-Control", "public, max-age=600")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}, func(c *Config) {
		// An Inspector makes every miss read its body whole first, into
		// the pooled buffer (fill.inspectNow).
		c.Inspector = InspectorFunc(func(*http.Request, *Response) Verdict { return Verdict{} })
	})
	h1 := httptest.NewServer(r.Proxy)
	t.Cleanup(h1.Close)
	h2 := httptest.NewUnstartedServer(r.Proxy)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)
	get := func(c *http.Client, url string, wantProto int) {
		t.Helper()
		res, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || !bytes.Equal(got, body) || res.ProtoMajor != wantProto {
			t.Fatalf("GET %s: HTTP/%d, %d bytes intact=%v (%v); want HTTP/%d and the page", url, res.ProtoMajor, len(got), bytes.Equal(got, body), err, wantProto)
		}
	}
	// waitStored waits for the fills' store writes: a fill's buffer is
	// settled once its Put returned, and the write starts before the
	// handler returns (Proxy.Wait).
	waitStored := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Proxy.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := missRecycles.Load()
	get(h1.Client(), h1.URL+"/one", 1)
	waitStored()
	if missRecycles.Load() == before {
		t.Fatal("an HTTP/1 inspected miss did not recycle its buffer: the control case no longer exercises the pool")
	}
	before = missRecycles.Load()
	get(h2.Client(), h2.URL+"/two", 2)
	waitStored()
	if n := missRecycles.Load() - before; n != 0 {
		t.Errorf("an HTTP/2 inspected miss recycled %d buffers", n)
	}
}
