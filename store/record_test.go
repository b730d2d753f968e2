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
		v, body := encodeWhole(r)
		got, m, err := decodeRecord(v, body)
		if err != nil {
			t.Fatalf("decodeRecord(encodeRecord(%q)) = %v", r.Key, err)
		}
		if !recordsEqual(got, r) {
			t.Errorf("decodeRecord(encodeRecord(r)) = %+v, want %+v", got, r)
		}
		if m.Size != int64(len(v)+len(body)) || m.BodySize != int64(len(r.Body)) {
			t.Errorf("meta sizes = %d, %d; want %d, %d", m.Size, m.BodySize, len(v)+len(body), len(r.Body))
		}
		if (body != nil) != (len(r.Body) > inlineBodyMax) {
			t.Errorf("record %q with a %d-byte body: kept apart = %v", r.Key, len(r.Body), body != nil)
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
				if _, _, err := decodeRecord(d, nil); err == nil {
					t.Errorf("record %q with byte %d ^ %#x: decodeRecord = nil error, want damage reported", r.Key, i, mask)
				}
			}
		}
		for n := range len(v) {
			if _, _, err := decodeRecord(v[:n], nil); err == nil {
				t.Errorf("record %q cut to %d of %d bytes: decodeRecord = nil error", r.Key, n, len(v))
			}
		}
		unknown := append([]byte(nil), v...)
		unknown[0] = recordVersion + 1
		if _, _, err := decodeRecord(unknown, nil); !errors.Is(err, ErrVersion) {
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
		r, m2, err := decodeRecord(v, nil)
		if err != nil {
			return
		}
		if merr != nil {
			t.Fatalf("decodeRecord ok but decodeMeta = %v", merr)
		}
		if m.Key != m2.Key || m.BodySize != int64(len(r.Body)) {
			t.Fatalf("decodeMeta and decodeRecord disagree: %+v vs %+v", m, m2)
		}
		again, _, err := decodeRecord(encodeWhole(r))
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
		got, _, err := decodeRecord(encodeWhole(r))
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
		r, _, err := decodeRecord(v, nil)
		if err != nil {
			return
		}
		again, _, err := decodeRecord(encodeWhole(r))
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
		if got, want := encodedSize(r, refOf(r.Body)), len(v); got != want {
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

// encodeWhole returns r's record value and its separate body (nil when
// the body is kept inline), as Put stores them.
func encodeWhole(r *Record) (v, body []byte) {
	if separateBody(len(r.Body)) {
		body = r.Body
	}
	return encodeRecord(r), body
}

// encodeRecordV1 is the version-1 encoding (format 1 files), as the
// binaries before format 2 wrote it: the body always inline, one checksum
// over the header section and the body.
func encodeRecordV1(r *Record) []byte {
	b := []byte{recordV1}
	b = append(b, make([]byte, recHdrLen-1)...)
	b = appendString(b, r.Key)
	b = appendString(b, r.Variant)
	b = binary.AppendVarint(b, int64(r.Status))
	b = binary.AppendVarint(b, timeNanos(r.RequestTime))
	b = binary.AppendVarint(b, timeNanos(r.ResponseTime))
	b = binary.AppendVarint(b, timeNanos(r.StoredTime))
	b = binary.AppendVarint(b, timeNanos(r.Expires))
	b = binary.AppendUvarint(b, uint64(len(r.Body)))
	b = binary.AppendUvarint(b, uint64(len(r.Tags)))
	for _, t := range r.Tags {
		b = appendString(b, t)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Annotations)))
	for _, k := range sortedKeys(nil, r.Annotations) {
		b = appendString(b, k)
		b = appendString(b, r.Annotations[k])
	}
	metaEnd := len(b)
	b = binary.AppendUvarint(b, uint64(len(r.Header)))
	for _, k := range sortedKeys(nil, r.Header) {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(r.Header[k])))
		for _, v := range r.Header[k] {
			b = appendString(b, v)
		}
	}
	b = append(b, r.Body...)
	binary.LittleEndian.PutUint32(b[1:5], uint32(metaEnd-recHdrLen))
	binary.LittleEndian.PutUint32(b[5:9], crc32.Update(crc32.Checksum(b[0:5], castagnoli), castagnoli, b[recHdrLen:metaEnd]))
	binary.LittleEndian.PutUint32(b[9:13], crc32.Checksum(b[metaEnd:], castagnoli))
	return b
}

// TestRecordEncoding_ReadsVersion1: records of format-1 files decode to
// what was stored, and their damage is still reported.
func TestRecordEncoding_ReadsVersion1(t *testing.T) {
	t.Parallel()
	for _, r := range append(sampleRecords(), pageRecord("https://example.com/big", 20<<10)) {
		v := encodeRecordV1(r)
		got, m, err := decodeRecord(v, nil)
		if err != nil {
			t.Fatalf("decodeRecord(v1 %q) = %v", r.Key, err)
		}
		if !recordsEqual(got, r) {
			t.Errorf("decodeRecord(v1) = %+v, want %+v", got, r)
		}
		if m.Size != int64(len(v)) || m.BodySize != int64(len(r.Body)) {
			t.Errorf("v1 meta sizes = %d, %d; want %d, %d", m.Size, m.BodySize, len(v), len(r.Body))
		}
		if _, _, err := decodeRecord(v, []byte("x")); err == nil {
			t.Errorf("v1 record %q with a body in the body bucket: decodeRecord = nil error", r.Key)
		}
		if len(v) > 10_000 {
			continue // the byte flips below are for the small ones
		}
		for i := range v {
			d := append([]byte(nil), v...)
			d[i] ^= 0x41
			if _, _, err := decodeRecord(d, nil); err == nil {
				t.Errorf("v1 record %q with byte %d flipped: decodeRecord = nil error", r.Key, i)
			}
		}
	}
}

// TestRecordEncoding_SeparateBody: a large body is kept out of the value,
// and every way it can be wrong (missing, cut, longer, flipped, or present
// for a record whose body is inline) is reported.
func TestRecordEncoding_SeparateBody(t *testing.T) {
	t.Parallel()
	r := pageRecord("https://example.com/page", 20<<10)
	v, body := encodeWhole(r)
	if body == nil || len(v) > 1024 {
		t.Fatalf("a 20 KB page: value %d bytes, body apart %v; want a small value and the body apart", len(v), body != nil)
	}
	m, err := decodeMeta(v)
	if err != nil || m.BodySize != int64(len(r.Body)) || m.Size != int64(len(v)+len(body)) {
		t.Fatalf("decodeMeta = %+v, %v", m, err)
	}
	flipped := append([]byte(nil), body...)
	flipped[len(flipped)/2] ^= 1
	for name, b := range map[string][]byte{
		"missing": nil,
		"cut":     body[:len(body)-1],
		"longer":  append(append([]byte(nil), body...), 'x'),
		"flipped": flipped,
	} {
		if _, _, err := decodeRecord(v, b); err == nil {
			t.Errorf("body %s: decodeRecord = nil error", name)
		}
	}
	if _, _, err := decodeRecord(v, nil); !errors.Is(err, errNoBody) {
		t.Errorf("body missing: decodeRecord = %v, want errNoBody", err)
	}
	small := sampleRecords()[1]
	if _, _, err := decodeRecord(encodeRecord(small), []byte("stray")); err == nil {
		t.Error("an inline record with a body in the body bucket: decodeRecord = nil error")
	}
	// The metadata alone may be rewritten without the body (Annotate).
	var got Record
	var gm Meta
	ref, err := decodeRecordInto(v, nil, &got, &gm, false)
	if err != nil || got.Body != nil || !ref.separate || ref.size != len(body) {
		t.Fatalf("decodeRecordInto(without the body) = %+v, %v; body %v", ref, err, got.Body != nil)
	}
	again := appendRecordRef(nil, &got, ref)
	if !bytes.Equal(again, v) {
		t.Error("re-encoding with the kept body's ref changed the value")
	}
}
