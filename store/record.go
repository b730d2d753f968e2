package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// Record is one stored response: a primary key, a variant within it, and
// the data a cache entry needs. The store attaches no HTTP meaning to any
// field. Records returned by the store are copies owned by the caller.
type Record struct {
	// Key is the primary key (opaque to the store; httpcache puts the
	// normalized URL here). It must be non-empty and contain no NUL byte.
	Key string
	// Variant names the variant within Key ("" is the sole variant).
	Variant string
	Status  int
	// Header is opaque to the store (httpcache stores an http.Header).
	Header map[string][]string
	Body   []byte
	// RequestTime and ResponseTime are kept as given. StoredTime zero is
	// set to Options.Now() in the stored copy. Times are stored with
	// nanosecond precision and returned in UTC; the Unix epoch instant
	// itself reads back as the zero time, and times before 1677-09-21 or
	// after 2262-04-11 (beyond int64 nanoseconds) read back as those
	// bounds.
	RequestTime, ResponseTime, StoredTime time.Time
	// Expires is a removal hint: RemoveExpired deletes records whose
	// Expires is not after its argument, and eviction takes them first.
	// Zero means never.
	Expires time.Time
	// Tags are surrogate keys for DeleteTag. A tag must not contain NUL.
	Tags []string
	// Annotations is a small string map other packages add (lint
	// findings, token expiry); see Store.Annotate.
	Annotations map[string]string
}

// Meta is everything about a record except its Header and Body. Listing
// Meta is cheap: only the record's metadata section is read and checked.
type Meta struct {
	Key, Variant string
	Status       int
	// Size is the bytes the record takes in the store (encoded record plus
	// key), the unit of Stats.Bytes and Options.MaxSize. BodySize is
	// len(Body).
	Size, BodySize                                 int64
	RequestTime, ResponseTime, StoredTime, Expires time.Time
	// LastAccess is the last Get (or the Put) as known to the store; it
	// may lag by up to Options.AccessFlushInterval after a restart.
	LastAccess  time.Time
	Tags        []string
	Annotations map[string]string
	// Corrupt is true when the record's metadata failed its checksum; only
	// Key, Variant and Size are then set. Delete it with Store.Delete.
	Corrupt bool
}

// Encoding (version 1), all integers little-endian:
//
//	[0]      version (1)
//	[1:5]    uint32 length M of the metadata section
//	[5:9]    CRC-32C of bytes [0:5] and the metadata section
//	[9:13]   CRC-32C of the payload section
//	[13:13+M] metadata: key, variant, status, four times, body length, tags, annotations
//	[13+M:]  payload: header, then the body as the remaining bytes
//
// Strings are uvarint length + bytes; times are zigzag varint Unix
// nanoseconds (0 = zero time). The split lets listings check and decode only
// the metadata.
const (
	recordVersion = 1
	recHdrLen     = 13
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errTruncated = errors.New("truncated record")
	errChecksum  = errors.New("checksum mismatch")
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// The instants int64 Unix nanoseconds can hold (1677-09-21 to 2262-04-11).
var (
	minNanosTime = time.Unix(0, math.MinInt64)
	maxNanosTime = time.Unix(0, math.MaxInt64)
)

// timeNanos is t in Unix nanoseconds, 0 for the zero time. A time outside
// what int64 nanoseconds hold is saturated to the nearest end: t.UnixNano
// would wrap it into an unrelated instant (a far-future Expires into the
// past, removing the record at once).
func timeNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minNanosTime):
		return math.MinInt64
	case t.After(maxNanosTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func nanosTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// encodeRecord encodes r into a new slice of exactly the right size. It
// does not validate keys or sizes.
func encodeRecord(r *Record) []byte {
	return appendRecord(make([]byte, 0, encodedSize(r)), r)
}

// uvarintLen is the length of binary.AppendUvarint(nil, x).
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// varintLen is the length of binary.AppendVarint(nil, x).
func varintLen(x int64) int { return uvarintLen(uint64(x<<1) ^ uint64(x>>63)) }

func stringLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

// encodedSize is len(encodeRecord(r)), computed without encoding.
func encodedSize(r *Record) int {
	n := recHdrLen + stringLen(r.Key) + stringLen(r.Variant) + varintLen(int64(r.Status))
	n += varintLen(timeNanos(r.RequestTime)) + varintLen(timeNanos(r.ResponseTime)) +
		varintLen(timeNanos(r.StoredTime)) + varintLen(timeNanos(r.Expires))
	n += uvarintLen(uint64(len(r.Body))) + uvarintLen(uint64(len(r.Tags)))
	for _, t := range r.Tags {
		n += stringLen(t)
	}
	n += uvarintLen(uint64(len(r.Annotations)))
	for k, v := range r.Annotations {
		n += stringLen(k) + stringLen(v)
	}
	n += uvarintLen(uint64(len(r.Header)))
	for k, vs := range r.Header {
		n += stringLen(k) + uvarintLen(uint64(len(vs)))
		for _, v := range vs {
			n += stringLen(v)
		}
	}
	return n + len(r.Body)
}

// sortedKeys appends the keys of m to buf[:0] in order. With a buf on the
// caller's stack, small maps need no allocation.
func sortedKeys[V any](buf []string, m map[string]V) []string {
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendRecord appends the encoding of r to b (growing it at most once,
// to the exact size) and returns the result. It does not validate keys or
// sizes.
func appendRecord(b []byte, r *Record) []byte {
	if need := encodedSize(r); cap(b)-len(b) < need {
		b = slices.Grow(b, need)
	}
	start := len(b)
	b = append(b, recordVersion)
	b = append(b, make([]byte, recHdrLen-1)...) // filled in below; no allocation
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
	var kbuf [16]string
	b = binary.AppendUvarint(b, uint64(len(r.Annotations)))
	for _, k := range sortedKeys(kbuf[:], r.Annotations) {
		b = appendString(b, k)
		b = appendString(b, r.Annotations[k])
	}
	metaEnd := len(b)
	b = binary.AppendUvarint(b, uint64(len(r.Header)))
	for _, k := range sortedKeys(kbuf[:], r.Header) {
		b = appendString(b, k)
		vs := r.Header[k]
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	b = append(b, r.Body...)
	e := b[start:]
	metaEnd -= start
	binary.LittleEndian.PutUint32(e[1:5], uint32(metaEnd-recHdrLen))
	crc := crc32.Update(crc32.Checksum(e[0:5], castagnoli), castagnoli, e[recHdrLen:metaEnd])
	binary.LittleEndian.PutUint32(e[5:9], crc)
	binary.LittleEndian.PutUint32(e[9:13], crc32.Checksum(e[metaEnd:], castagnoli))
	return b
}

// decoder reads the fields of one section; the first error sticks.
type decoder struct {
	b   []byte
	err error
	// s, when set, is a string copy of the first len(s) bytes of the
	// input, which was full bytes long: strings inside it are slices of
	// s instead of an allocation each (decodeRecord's header fields).
	s    string
	full int
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errTruncated
		return ""
	}
	var s string
	if at := d.full - len(d.b); d.s != "" && at >= 0 && at+int(n) <= len(d.s) {
		s = d.s[at : at+int(n)]
	} else {
		s = string(d.b[:n])
	}
	d.b = d.b[n:]
	return s
}

// count reads an element count; every element takes at least one byte, so
// a count beyond the remaining bytes is damage (and would over-allocate).
func (d *decoder) count() int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errTruncated
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

// checkHeader verifies the version and metadata checksum of an encoded
// record and returns the metadata and payload sections.
func checkHeader(v []byte) (meta, payload []byte, err error) {
	if len(v) < 1 {
		return nil, nil, errTruncated
	}
	if v[0] != recordVersion {
		return nil, nil, fmt.Errorf("record encoding version %d, this binary reads %d: %w", v[0], recordVersion, ErrVersion)
	}
	if len(v) < recHdrLen {
		return nil, nil, errTruncated
	}
	m := binary.LittleEndian.Uint32(v[1:5])
	if uint64(m) > uint64(len(v)-recHdrLen) {
		return nil, nil, errTruncated
	}
	end := recHdrLen + int(m)
	crc := crc32.Update(crc32.Checksum(v[0:5], castagnoli), castagnoli, v[recHdrLen:end])
	if crc != binary.LittleEndian.Uint32(v[5:9]) {
		return nil, nil, fmt.Errorf("metadata %w", errChecksum)
	}
	return v[recHdrLen:end], v[end:], nil
}

// decodeMeta decodes the metadata section of an encoded record (checked by
// its own checksum). Size is set to len(v); LastAccess is left zero.
func decodeMeta(v []byte) (*Meta, error) {
	meta, _, err := checkHeader(v)
	if err != nil {
		return nil, err
	}
	d := decoder{b: meta}
	m := &Meta{
		Key:     d.string(),
		Variant: d.string(),
		Status:  int(d.varint()),
	}
	m.RequestTime = nanosTime(d.varint())
	m.ResponseTime = nanosTime(d.varint())
	m.StoredTime = nanosTime(d.varint())
	m.Expires = nanosTime(d.varint())
	m.BodySize = int64(d.uvarint())
	if n := d.count(); n > 0 {
		m.Tags = make([]string, 0, min(n, 8))
		for range n {
			if d.err != nil {
				break
			}
			m.Tags = append(m.Tags, d.string())
		}
	}
	if n := d.count(); n > 0 {
		m.Annotations = make(map[string]string, min(n, 16)) // n is bounded by the bytes left, not by what is sane: no hint from damaged data
		for range n {
			if d.err != nil {
				break
			}
			k := d.string()
			m.Annotations[k] = d.string()
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, errors.New("trailing bytes in metadata")
	}
	if m.BodySize < 0 || m.BodySize > int64(len(v)) {
		return nil, errTruncated
	}
	m.Size = int64(len(v))
	return m, nil
}

// decodeRecord decodes and checks a whole encoded record. Everything
// returned is a copy: v may be memory owned by a bbolt transaction.
func decodeRecord(v []byte) (*Record, *Meta, error) {
	m, err := decodeMeta(v)
	if err != nil {
		return nil, nil, err
	}
	_, payload, _ := checkHeader(v)
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(v[9:13]) {
		return nil, nil, fmt.Errorf("payload %w", errChecksum)
	}
	d := decoder{b: payload}
	if hl := int64(len(payload)) - m.BodySize; hl > 0 && m.BodySize >= 0 {
		// One string for every header name and value (~15 allocations
		// fewer per Get of a page); they live as long as the record.
		d.s, d.full = string(payload[:hl]), len(payload)
	}
	var header map[string][]string
	if n := d.count(); n > 0 {
		header = make(map[string][]string, min(n, 64))
		for range n {
			if d.err != nil {
				break
			}
			k := d.string()
			// Grow as values are read: a damaged count must not make each
			// of many names allocate for the whole remaining input.
			nv := d.count()
			vs := make([]string, 0, min(nv, 8))
			for range nv {
				if d.err != nil {
					break
				}
				vs = append(vs, d.string())
			}
			header[k] = vs
		}
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	if int64(len(d.b)) != m.BodySize {
		return nil, nil, fmt.Errorf("body is %d bytes, metadata says %d: %w", len(d.b), m.BodySize, errTruncated)
	}
	r := &Record{
		Key: m.Key, Variant: m.Variant, Status: m.Status,
		Header:      header,
		Body:        append(make([]byte, 0, len(d.b)), d.b...),
		RequestTime: m.RequestTime, ResponseTime: m.ResponseTime, StoredTime: m.StoredTime,
		Expires:     m.Expires,
		Tags:        m.Tags,
		Annotations: m.Annotations,
	}
	return r, m, nil
}

// MaxKeyLen is the longest Key plus Variant the store accepts, in bytes.
const MaxKeyLen = 16 << 10

// maxTagLen is the longest tag accepted.
const maxTagLen = 1 << 10

// validate checks what the store needs of a record's key, variant and tags.
func validate(r *Record) error {
	if err := validateKey(r.Key); err != nil {
		return err
	}
	if len(r.Key)+len(r.Variant) > MaxKeyLen {
		return fmt.Errorf("key and variant are %d bytes, more than %d: %w", len(r.Key)+len(r.Variant), MaxKeyLen, ErrInvalid)
	}
	for _, t := range r.Tags {
		if t == "" || strings.IndexByte(t, 0) >= 0 || len(t) > maxTagLen {
			return fmt.Errorf("tag %q is empty, contains NUL or is longer than %d bytes: %w", t, maxTagLen, ErrInvalid)
		}
	}
	return nil
}

func validateKey(key string) error {
	if key == "" {
		return fmt.Errorf("empty key: %w", ErrInvalid)
	}
	if strings.IndexByte(key, 0) >= 0 {
		return fmt.Errorf("key %q contains a NUL byte: %w", key, ErrInvalid)
	}
	return nil
}

// recKey is the bbolt key of a record: key NUL variant. Keys contain no
// NUL, so records sort by primary key, then variant.
func recKey(key, variant string) []byte {
	b := make([]byte, 0, len(key)+1+len(variant))
	b = append(b, key...)
	b = append(b, 0)
	return append(b, variant...)
}

// splitRecKey splits a bbolt record key into key and variant.
func splitRecKey(k []byte) (key, variant string) {
	i := slices.Index(k, 0)
	if i < 0 {
		return string(k), ""
	}
	return string(k[:i]), string(k[i+1:])
}
