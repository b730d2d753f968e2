package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestStore_GetInto: GetInto and LookupInto copy the body into the memory
// the caller's BodyBuffer gives when it is large enough (Record.Body
// aliases it, its capacity kept), allocate it otherwise, and call the
// BodyBuffer at most once, with the body's length, and never for a
// damaged record, a missing one or an empty body.
func TestStore_GetInto(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	big, small := pageRec("https://example.com/big", "v", 20<<10), pageRec("https://example.com/small", "v", 300)
	empty := pageRec("https://example.com/empty", "v", 1)
	empty.Body = nil
	mustPut(t, s, big, small, empty)
	choose := func(ms []Meta) (string, bool) { return ms[0].Variant, true }
	reads := map[string]func(key string, b BodyBuffer) (*Record, error){
		"GetInto":    func(key string, b BodyBuffer) (*Record, error) { return s.GetInto(ctx, key, "v", b) },
		"LookupInto": func(key string, b BodyBuffer) (*Record, error) { return s.LookupInto(ctx, key, choose, b) },
	}
	for name, read := range reads {
		for _, want := range []*Record{big, small} { // a body kept apart, and one inline
			buf := bytes.Repeat([]byte{0xAA}, len(want.Body)+100)
			calls := 0
			got, err := read(want.Key, func(n int) []byte {
				calls++
				if n != len(want.Body) {
					t.Errorf("%s(%s): BodyBuffer(%d), want the body's length %d", name, want.Key, n, len(want.Body))
				}
				return buf[:0]
			})
			if err != nil || calls != 1 {
				t.Fatalf("%s(%s) = %v, BodyBuffer called %d times", name, want.Key, err, calls)
			}
			if !bytes.Equal(got.Body, want.Body) {
				t.Fatalf("%s(%s): body differs from what was stored", name, want.Key)
			}
			if &got.Body[0] != &buf[0] || cap(got.Body) != cap(buf) {
				t.Errorf("%s(%s): Body is not the caller's buffer (cap %d, buffer's %d)", name, want.Key, cap(got.Body), cap(buf))
			}
			if buf[len(want.Body)] != 0xAA {
				t.Errorf("%s(%s): wrote past the body's length", name, want.Key)
			}
			// Declined (too small, nil): allocated as Get does.
			for _, offer := range [][]byte{nil, make([]byte, len(want.Body)-1)} {
				got, err := read(want.Key, func(int) []byte { return offer })
				if err != nil || !bytes.Equal(got.Body, want.Body) {
					t.Fatalf("%s(%s) with a buffer of capacity %d = %v", name, want.Key, cap(offer), err)
				}
				if offer != nil && &got.Body[0] == &offer[:1][0] {
					t.Errorf("%s(%s): a body was copied into a buffer too small for it", name, want.Key)
				}
			}
		}
		never := func(n int) []byte { t.Errorf("%s: BodyBuffer(%d) called", name, n); return nil }
		if got, err := read(empty.Key, never); err != nil || len(got.Body) != 0 {
			t.Errorf("%s of an empty body = %v, %v", name, got, err)
		}
		if _, err := read("https://example.com/none", never); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a missing key = %v, want ErrNotFound", name, err)
		}
	}
	// A damaged body: a *CorruptError and no Record, whether the body was
	// copied into the caller's memory (its checksum is checked on the
	// copy; at most one call) or allocated.
	damageBody(t, s, big.Key, "v", func(v []byte) []byte { v[100] ^= 1; return v })
	for name, read := range reads {
		for _, offer := range []bool{true, false} {
			buf, calls := make([]byte, len(big.Body)), 0
			got, err := read(big.Key, func(n int) []byte {
				if calls++; n != len(big.Body) {
					t.Errorf("%s of a damaged body: BodyBuffer(%d), want %d", name, n, len(big.Body))
				}
				if offer {
					return buf
				}
				return nil
			})
			if !errors.Is(err, ErrCorrupt) || got != nil || calls > 1 {
				t.Errorf("%s of a damaged body (buffer offered: %v) = %v, %v after %d BodyBuffer calls, want ErrCorrupt, no record, at most one call", name, offer, got, err, calls)
			}
		}
	}
	// nil BodyBuffer: Get and Lookup.
	if got, err := s.GetInto(ctx, small.Key, "v", nil); err != nil || !bytes.Equal(got.Body, small.Body) {
		t.Errorf("GetInto(nil) = %v, %v", got, err)
	}
}

// TestStore_GetInto_Reuse: one buffer reused across reads of different
// records always holds the record last read, whole, under concurrent
// readers each with its own buffer (with -race: the store keeps no
// reference to a buffer after the read returned).
func TestStore_GetInto_Reuse(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{NoSync: true})
	const n = 40
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = pageRec(fmt.Sprintf("https://example.com/r/%02d", i), "", 4<<10+i*512)
		for j := range recs[i].Body {
			recs[i].Body[j] = byte(i + j)
		}
	}
	mustPut(t, s, recs...)
	errc := make(chan error, 4)
	for g := range 4 {
		go func() {
			buf := make([]byte, 64<<10)
			for k := range 200 {
				want := recs[(g*7+k*13)%n]
				got, err := s.GetInto(ctx, want.Key, "", func(int) []byte { return buf })
				if err == nil && !bytes.Equal(got.Body, want.Body) {
					err = fmt.Errorf("read %d of %s: body differs", k, want.Key)
				}
				if err != nil {
					errc <- err
					return
				}
				clear(got.Body) // the caller owns it: scribbling must not reach the store
			}
			errc <- nil
		}()
	}
	for range 4 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range recs {
		mustGet(t, s, r)
	}
}

// TestStore_GetHeaderValues: the header a read returns, whose values share
// one array with the Record (RecordBuf) when they fit and one of their
// own when they do not, is the stored one, and appending to one field's
// values changes no other field.
func TestStore_GetHeaderValues(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	few := pageRec("https://example.com/few", "v", 20<<10)
	few.Header = map[string][]string{"A": {"1", "2"}, "B": {"3"}, "C": {"4"}}
	many := pageRec("https://example.com/many", "v", 300)
	many.Header = map[string][]string{}
	for i := range recordBufValues + 3 {
		many.Header[fmt.Sprint("F", i)] = []string{fmt.Sprint(i), "x"}
	}
	mustPut(t, s, few, many)
	for _, want := range []*Record{few, many} {
		for name, read := range map[string]func() (*Record, error){
			"Get": func() (*Record, error) { return s.Get(ctx, want.Key, "v") },
			"Lookup": func() (*Record, error) {
				return s.Lookup(ctx, want.Key, func([]Meta) (string, bool) { return "v", true })
			},
		} {
			got, err := read()
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.Header) != fmt.Sprint(want.Header) {
				t.Fatalf("%s %s: header %v, want %v", name, want.Key, got.Header, want.Header)
			}
			done := map[string]bool{}
			for k := range got.Header {
				got.Header[k] = append(got.Header[k], "appended")
				done[k] = true
				for k2, v2 := range got.Header {
					exp := slices.Clone(want.Header[k2])
					if done[k2] {
						exp = append(exp, "appended")
					}
					if !slices.Equal(v2, exp) {
						t.Fatalf("%s %s: after appending to %s, %s is %q, want %q", name, want.Key, k, k2, v2, exp)
					}
				}
			}
		}
	}
}
