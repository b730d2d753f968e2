package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

func sampleRecords() []*Record {
	at := time.Date(2026, 11, 25, 12, 0, 0, 123, time.UTC)
	return []*Record{
		{Key: "k"},
		{Key: "https://example.com/", Variant: "v", Status: 200,
			Header:      map[string][]string{"Content-Type": {"text/html"}, "Vary": {"Accept", "Cookie"}},
			Body:        []byte("<html>hello</html>"),
			RequestTime: at, ResponseTime: at, StoredTime: at, Expires: at.Add(time.Hour),
			Tags: []string{"a", "b"}, Annotations: map[string]string{"x": "y", "": "empty key"}},
		{Key: "k", Status: -5, Body: make([]byte, 5000), Expires: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
}

func TestRecordEncoding_RoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range sampleRecords() {
		v := encodeRecord(r)
		got, m, err := decodeRecord(v)
		if err != nil {
			t.Fatalf("decodeRecord(encodeRecord(%q)) = %v", r.Key, err)
		}
		if !recordsEqual(got, r) {
			t.Errorf("decodeRecord(encodeRecord(r)) = %+v, want %+v", got, r)
		}
		if m.Size != int64(len(v)) || m.BodySize != int64(len(r.Body)) {
			t.Errorf("meta sizes = %d, %d; want %d, %d", m.Size, m.BodySize, len(v), len(r.Body))
		}
	}
}

// TestRecordEncoding_DetectsDamage flips every byte and cuts the encoding
// at every length: each must be reported, never decoded as data.
func TestRecordEncoding_DetectsDamage(t *testing.T) {
	t.Parallel()
	for _, r := range sampleRecords()[:2] {
		v := encodeRecord(r)
		for i := range v {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				d := append([]byte(nil), v...)
				d[i] ^= mask
				if _, _, err := decodeRecord(d); err == nil {
					t.Errorf("record %q with byte %d ^ %#x: decodeRecord = nil error, want damage reported", r.Key, i, mask)
				}
			}
		}
		for n := range len(v) {
			if _, _, err := decodeRecord(v[:n]); err == nil {
				t.Errorf("record %q cut to %d of %d bytes: decodeRecord = nil error", r.Key, n, len(v))
			}
		}
		unknown := append([]byte(nil), v...)
		unknown[0] = recordVersion + 1
		if _, _, err := decodeRecord(unknown); !errors.Is(err, ErrVersion) {
			t.Errorf("unknown version: decodeRecord = %v, want ErrVersion", err)
		}
	}
}

// FuzzDecodeRecord: decoding arbitrary bytes never panics, and whatever
// decodes re-encodes to an equal record (round trip), with metadata
// agreeing with the full decode.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range sampleRecords() {
		v := encodeRecord(r)
		f.Add(v)
		f.Add(v[:len(v)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		m, merr := decodeMeta(v)
		r, m2, err := decodeRecord(v)
		if err != nil {
			return
		}
		if merr != nil {
			t.Fatalf("decodeRecord ok but decodeMeta = %v", merr)
		}
		if m.Key != m2.Key || m.BodySize != int64(len(r.Body)) {
			t.Fatalf("decodeMeta and decodeRecord disagree: %+v vs %+v", m, m2)
		}
		again, _, err := decodeRecord(encodeRecord(r))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !recordsEqual(again, r) {
			t.Fatalf("round trip changed the record: %+v -> %+v", r, again)
		}
	})
}

// FuzzRecordRoundTrip: any record encodes and decodes to itself.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("https://example.com/", "v", 200, []byte("body"), "tag", "ann", "val", "Content-Type", "text/html", int64(1764072000000000000))
	f.Add("k", "", -1, []byte{}, "t", "", "", "", "", int64(0))
	f.Fuzz(func(t *testing.T, key, variant string, status int, body []byte, tag, ak, av, hk, hv string, ns int64) {
		r := &Record{Key: key, Variant: variant, Status: int(int32(status)), Body: body,
			Tags: []string{tag}, Annotations: map[string]string{ak: av},
			Header:      map[string][]string{hk: {hv, hv}},
			RequestTime: nanosTime(ns), Expires: nanosTime(ns / 2)}
		got, _, err := decodeRecord(encodeRecord(r))
		if err != nil {
			t.Fatalf("decodeRecord(encodeRecord(%+v)) = %v", r, err)
		}
		if !recordsEqual(got, r) {
			t.Fatalf("round trip: got %+v, want %+v", got, r)
		}
	})
}

// sealRecord wraps arbitrary metadata and payload sections in a valid
// header with correct checksums, so fuzzing reaches the section parsers
// behind the checksums.
func sealRecord(meta, payload []byte) []byte {
	v := make([]byte, recHdrLen, recHdrLen+len(meta)+len(payload))
	v[0] = recordVersion
	binary.LittleEndian.PutUint32(v[1:5], uint32(len(meta)))
	v = append(v, meta...)
	v = append(v, payload...)
	crc := crc32.Update(crc32.Checksum(v[0:5], castagnoli), castagnoli, meta)
	binary.LittleEndian.PutUint32(v[5:9], crc)
	binary.LittleEndian.PutUint32(v[9:13], crc32.Checksum(payload, castagnoli))
	return v
}

// FuzzDecodeSections: section contents behind valid checksums never panic
// the decoder, and what decodes round-trips.
func FuzzDecodeSections(f *testing.F) {
	for _, r := range sampleRecords() {
		v := encodeRecord(r)
		m := binary.LittleEndian.Uint32(v[1:5])
		f.Add(v[recHdrLen:recHdrLen+m], v[recHdrLen+m:])
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, []byte{0x80})
	f.Fuzz(func(t *testing.T, meta, payload []byte) {
		v := sealRecord(meta, payload)
		if sealed := sealRecord(meta, payload); !bytes.Equal(sealed, v) {
			t.Fatal("sealRecord is not deterministic")
		}
		r, _, err := decodeRecord(v)
		if err != nil {
			return
		}
		again, _, err := decodeRecord(encodeRecord(r))
		if err != nil || !recordsEqual(again, r) {
			t.Fatalf("round trip: %+v -> %+v, %v", r, again, err)
		}
	})
}

// TestRecordEncoding_Size checks that encodedSize is exact (Put sizes its
// buffer once with it), that appendRecord appends the same bytes as
// encodeRecord after a prefix it leaves alone, and that it allocates
// nothing when the buffer has room.
func TestRecordEncoding_Size(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses to run in parallel tests.
	big := &Record{Key: "https://example.com/big", Status: 1 << 20, Body: make([]byte, 200<<10),
		Header: map[string][]string{}, Annotations: map[string]string{}, StoredTime: time.Unix(0, -1)}
	for i := range 40 { // more names than sortedKeys' stack buffer
		big.Header[string(rune('A'+i))+"-Name"] = []string{strings.Repeat("v", 130*i)}
		big.Annotations[string(rune('a'+i))] = strings.Repeat("x", i)
	}
	for _, r := range append(sampleRecords(), big) {
		v := encodeRecord(r)
		if got, want := encodedSize(r), len(v); got != want {
			t.Errorf("encodedSize(%q) = %d, want %d", r.Key, got, want)
		}
		if cap(v) != len(v) {
			t.Errorf("encodeRecord(%q): cap %d, len %d; want exact", r.Key, cap(v), len(v))
		}
		prefix := []byte("prefix")
		got := appendRecord(prefix, r)
		if !bytes.Equal(got[:len(prefix)], []byte("prefix")) || !bytes.Equal(got[len(prefix):], v) {
			t.Errorf("appendRecord(prefix, %q) differs from prefix + encodeRecord", r.Key)
		}
		buf := make([]byte, 0, len(v)+8)
		if n := testing.AllocsPerRun(10, func() { appendRecord(buf[:0], r) }); n != 0 && len(r.Header) <= 16 {
			t.Errorf("appendRecord(%q) into a big enough buffer: %v allocations, want 0", r.Key, n)
		}
	}
}
