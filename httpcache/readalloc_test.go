package httpcache

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// A plain hit served from the store allocates no more than the store read
// of its record does (store.Store.GetInto, which allocates a Record the
// hit reads into its own entry): the entry, its prepared fields,
// Content-Length and Age / Cache-Status values share one allocation
// (readEntry), and the key and variant strings are the ones the Vary
// memory already holds. With or without an Accept-Encoding the plan
// normalizes.
func TestPlainHit_StoreReadAllocs(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Etag", `"v1"`)
		w.Header().Set("Vary", "Accept-Encoding")
		w.Write(bytes.Repeat([]byte("x"), 20480))
	}, tierConfig("store"))
	host := strings.TrimPrefix(r.Front.URL, "http://")
	for _, ae := range []string{"", "gzip", "gzip, deflate, br, zstd"} {
		t.Run("ae="+ae, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://"+host+"/p", nil)
			req.Host = host
			if ae != "" {
				req.Header.Set("Accept-Encoding", ae)
			}
			w := &discardWriter{h: make(http.Header, 16)}
			serve := func() {
				clear(w.h)
				w.n = 0
				r.Proxy.ServeHTTP(w, req)
				if w.code != 200 || w.n != 20480 {
					t.Fatalf("status %d, %d bytes", w.code, w.n)
				}
			}
			for range 3 { // the miss, then hits
				serve()
			}
			r.Proxy.Wait(context.Background())
			serve()
			if cs := w.h.Get("Cache-Status"); !strings.HasPrefix(cs, CacheName+"; hit") {
				t.Fatalf("Cache-Status %q, want a hit", cs)
			}
			ms, err := r.Store.Variants(context.Background(), "http://"+host+"/p")
			if err != nil || len(ms) == 0 {
				t.Fatalf("Variants = %v, %v", ms, err)
			}
			// Every variant's record has the same fields and body: any
			// one's read allocates what the hit's does.
			buf := make([]byte, 20480)
			read := testing.AllocsPerRun(200, func() {
				if _, err := r.Store.GetInto(context.Background(), ms[0].Key, ms[0].Variant, func(int) []byte { return buf }); err != nil {
					t.Fatal(err)
				}
			})
			hit := testing.AllocsPerRun(200, serve)
			if hit > read {
				t.Errorf("a plain hit from the store allocates %v times, its record's read %v: want no more", hit, read)
			}
			t.Logf("hit %v allocations, GetInto %v", hit, read)
		})
	}
}

// variantString returns the variant's text, sharing one string per
// variant (no allocation once made) among the first maxVariantStrings of
// at most maxVariantString bytes; others are made per call, still right.
func TestVaryMemory_VariantString(t *testing.T) {
	var v varyMemory
	if s := v.variantString(nil); s != "" {
		t.Fatalf("variantString(nil) = %q", s)
	}
	b := []byte("Accept-Encoding=gzip")
	first := v.variantString(b)
	if first != string(b) {
		t.Fatalf("variantString = %q, want %q", first, b)
	}
	if again := v.variantString(b); again != first || unsafe.StringData(again) != unsafe.StringData(first) {
		t.Error("a second variantString of the same bytes made another string")
	}
	if n := testing.AllocsPerRun(100, func() { v.variantString(b) }); n != 0 {
		t.Errorf("variantString of a known variant allocates %v times, want 0", n)
	}
	for i := range 2 * maxVariantStrings {
		vb := []byte("Cookie=" + strconv.Itoa(i))
		if s := v.variantString(vb); s != string(vb) {
			t.Fatalf("variantString(%q) = %q", vb, s)
		}
	}
	if n := len(*v.variants.Load()); n > maxVariantStrings {
		t.Errorf("%d variants kept, bound %d", n, maxVariantStrings)
	}
	long := bytes.Repeat([]byte("x"), maxVariantString+1)
	if s := v.variantString(long); s != string(long) {
		t.Error("a long variant changed")
	}
	if _, kept := (*v.variants.Load())[string(long)]; kept {
		t.Error("a variant longer than maxVariantString was kept")
	}
}
