package erlterm

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// Tags of the external term format (erts/emulator/beam/external.h and the
// "External Term Format" chapter of the ERTS user's guide).
const (
	VersionMagic      = 131
	tagCompressed     = 80
	tagNewFloat       = 70
	tagBitBinary      = 77
	tagAtomCacheRef   = 82
	tagNewPid         = 88
	tagNewPort        = 89
	tagNewerReference = 90
	tagSmallInteger   = 97
	tagInteger        = 98
	tagFloat          = 99
	tagAtom           = 100
	tagReference      = 101
	tagPort           = 102
	tagPid            = 103
	tagSmallTuple     = 104
	tagLargeTuple     = 105
	tagNil            = 106
	tagString         = 107
	tagList           = 108
	tagBinary         = 109
	tagSmallBig       = 110
	tagLargeBig       = 111
	tagNewFun         = 112
	tagExport         = 113
	tagNewReference   = 114
	tagSmallAtom      = 115
	tagMap            = 116
	tagFun            = 117
	tagAtomUTF8       = 118
	tagSmallAtomUTF8  = 119
	tagV4Port         = 120
	tagLocal          = 121
)

// Sentinel errors; every [*DecodeError] wraps one of them.
var (
	ErrTruncated   = errors.New("erlterm: input ends early")
	ErrBadVersion  = errors.New("erlterm: missing version byte 131")
	ErrUnknownTag  = errors.New("erlterm: unknown or unsupported tag")
	ErrTooDeep     = errors.New("erlterm: nesting too deep")
	ErrTooLarge    = errors.New("erlterm: length exceeds limits")
	ErrInvalid     = errors.New("erlterm: invalid encoding")
	ErrTrailing    = errors.New("erlterm: trailing bytes after term")
	ErrDecompress  = errors.New("erlterm: bad compressed term")
	ErrUnsupported = errors.New("erlterm: term cannot be encoded")
)

// DecodeError describes why decoding failed and where. Offset counts bytes
// from the start of the input, or, when Compressed is set, from the start of
// the inflated term (which follows the 6-byte compressed header).
type DecodeError struct {
	Offset     int
	Compressed bool
	Msg        string // what was wrong, e.g. "LIST_EXT length 4294967295 exceeds remaining 3 bytes"
	Err        error  // one of the sentinel errors
}

// Error returns "erlterm: offset N: message".
func (e *DecodeError) Error() string {
	where := "offset " + strconv.Itoa(e.Offset)
	if e.Compressed {
		where += " of decompressed term"
	}
	return "erlterm: " + where + ": " + e.Msg
}

// Unwrap returns the sentinel error, for [errors.Is].
func (e *DecodeError) Unwrap() error { return e.Err }

// Default limits of a zero [Decoder].
const (
	DefaultMaxDepth        = 256
	DefaultMaxDecompressed = 1 << 20
)

// Decoder holds decoding limits. The zero value uses the defaults. A Decoder
// is safe for concurrent use.
type Decoder struct {
	// MaxDepth bounds nesting of tuples, lists, maps and funs. If zero,
	// DefaultMaxDepth (256).
	MaxDepth int
	// MaxDecompressed bounds the inflated size of a compressed term (tag
	// 80). If zero, DefaultMaxDecompressed (1 MiB).
	MaxDecompressed int
}

// Decode decodes one term, including the leading version byte 131, from b
// using default limits. The term must use all of b. The returned term may
// share memory with b (binaries are not copied); do not modify b while the
// term is in use.
func Decode(b []byte) (Term, error) {
	var d Decoder
	return d.Decode(b)
}

// Decode is like the package function [Decode] with d's limits.
func (d *Decoder) Decode(b []byte) (Term, error) {
	st := state{maxDepth: d.MaxDepth}
	if st.maxDepth <= 0 {
		st.maxDepth = DefaultMaxDepth
	}
	maxInflate := d.MaxDecompressed
	if maxInflate <= 0 {
		maxInflate = DefaultMaxDecompressed
	}
	if len(b) == 0 {
		return nil, &DecodeError{Offset: 0, Msg: "empty input", Err: ErrTruncated}
	}
	if b[0] != VersionMagic {
		return nil, &DecodeError{Offset: 0, Msg: fmt.Sprintf("first byte %d, want version 131", b[0]), Err: ErrBadVersion}
	}
	if len(b) > 1 && b[1] == tagCompressed {
		if len(b) < 6 {
			return nil, &DecodeError{Offset: len(b), Msg: "compressed term header needs 4 size bytes", Err: ErrTruncated}
		}
		size := binary.BigEndian.Uint32(b[2:6])
		if uint64(size) > uint64(maxInflate) {
			return nil, &DecodeError{Offset: 2, Msg: fmt.Sprintf("compressed term declares %d bytes, limit %d", size, maxInflate), Err: ErrTooLarge}
		}
		zr, err := zlib.NewReader(bytes.NewReader(b[6:]))
		if err != nil {
			return nil, &DecodeError{Offset: 6, Msg: "zlib header: " + err.Error(), Err: ErrDecompress}
		}
		inflated := make([]byte, 0, min(int(size), 64<<10))
		buf := bytes.NewBuffer(inflated)
		// Read at most size+1 bytes: more than size means the header lied.
		n, err := io.Copy(buf, io.LimitReader(zr, int64(size)+1))
		if err != nil {
			return nil, &DecodeError{Offset: 6, Msg: "zlib data: " + err.Error(), Err: ErrDecompress}
		}
		if n != int64(size) {
			return nil, &DecodeError{Offset: 2, Msg: fmt.Sprintf("compressed term declares %d bytes, inflates to %d", size, n), Err: ErrDecompress}
		}
		st.b = buf.Bytes()
		st.compressed = true
		t, err := st.term(0)
		if err != nil {
			return nil, err
		}
		if st.off != len(st.b) {
			return nil, st.fail(ErrTrailing, "%d bytes after the term", len(st.b)-st.off)
		}
		return t, nil
	}
	st.b = b
	st.off = 1
	t, err := st.term(0)
	if err != nil {
		return nil, err
	}
	if st.off != len(st.b) {
		return nil, st.fail(ErrTrailing, "%d bytes after the term", len(st.b)-st.off)
	}
	return t, nil
}

type state struct {
	b          []byte
	off        int
	maxDepth   int
	compressed bool
}

func (s *state) fail(err error, format string, args ...any) *DecodeError {
	return &DecodeError{Offset: s.off, Compressed: s.compressed, Msg: fmt.Sprintf(format, args...), Err: err}
}

func (s *state) remaining() int { return len(s.b) - s.off }

func (s *state) need(n int, what string) error {
	if n < 0 || s.remaining() < n {
		return s.fail(ErrTruncated, "%s needs %d bytes, %d left", what, n, s.remaining())
	}
	return nil
}

func (s *state) u8(what string) (uint8, error) {
	if err := s.need(1, what); err != nil {
		return 0, err
	}
	v := s.b[s.off]
	s.off++
	return v, nil
}

func (s *state) u16(what string) (uint16, error) {
	b, err := s.bytes(2, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b), nil
}

func (s *state) u32(what string) (uint32, error) {
	b, err := s.bytes(4, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

func (s *state) u64(what string) (uint64, error) {
	b, err := s.bytes(8, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

func (s *state) bytes(n int, what string) ([]byte, error) {
	if err := s.need(n, what); err != nil {
		return nil, err
	}
	v := s.b[s.off : s.off+n : s.off+n]
	s.off += n
	return v, nil
}

// count reads a 4-byte element count and checks that at least
// count*minSize bytes remain, before anything is allocated.
func (s *state) count(what string, minSize int) (int, error) {
	start := s.off
	n, err := s.u32(what + " length")
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(minSize) > uint64(s.remaining()) {
		s.off = start
		return 0, s.fail(ErrTooLarge, "%s length %d exceeds remaining %d bytes", what, n, s.remaining()-4)
	}
	return int(n), nil
}

func (s *state) term(depth int) (Term, error) {
	if depth > s.maxDepth {
		return nil, s.fail(ErrTooDeep, "nesting deeper than %d", s.maxDepth)
	}
	tagOff := s.off
	tag, err := s.u8("tag")
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagSmallInteger:
		v, err := s.u8("SMALL_INTEGER_EXT")
		return Int(v), err
	case tagInteger:
		v, err := s.u32("INTEGER_EXT")
		return Int(int32(v)), err
	case tagFloat:
		raw, err := s.bytes(31, "FLOAT_EXT")
		if err != nil {
			return nil, err
		}
		text := string(bytes.TrimRight(raw, "\x00"))
		f, perr := strconv.ParseFloat(text, 64)
		if perr != nil {
			s.off = tagOff + 1
			return nil, s.fail(ErrInvalid, "FLOAT_EXT text %q is not a float", text)
		}
		return Float(f), nil
	case tagNewFloat:
		v, err := s.u64("NEW_FLOAT_EXT")
		return Float(math.Float64frombits(v)), err
	case tagAtom, tagSmallAtom, tagAtomUTF8, tagSmallAtomUTF8:
		s.off = tagOff
		return s.atom()
	case tagSmallTuple:
		n, err := s.u8("SMALL_TUPLE_EXT arity")
		if err != nil {
			return nil, err
		}
		if int(n) > s.remaining() {
			s.off--
			return nil, s.fail(ErrTooLarge, "SMALL_TUPLE_EXT arity %d exceeds remaining %d bytes", n, s.remaining()-1)
		}
		el, err := s.elems(make([]Term, n), depth)
		if err != nil {
			return nil, err
		}
		return Tuple(el), nil
	case tagLargeTuple:
		n, err := s.count("LARGE_TUPLE_EXT", 1)
		if err != nil {
			return nil, err
		}
		el, err := s.elems(make([]Term, n), depth)
		if err != nil {
			return nil, err
		}
		return Tuple(el), nil
	case tagMap:
		n, err := s.count("MAP_EXT", 2)
		if err != nil {
			return nil, err
		}
		m := make(Map, n)
		for i := range m {
			if m[i].Key, err = s.term(depth + 1); err != nil {
				return nil, err
			}
			if m[i].Value, err = s.term(depth + 1); err != nil {
				return nil, err
			}
		}
		return m, nil
	case tagNil:
		return List(nil), nil
	case tagString:
		n, err := s.u16("STRING_EXT length")
		if err != nil {
			return nil, err
		}
		b, err := s.bytes(int(n), "STRING_EXT")
		return Charlist(b), err
	case tagList:
		n, err := s.count("LIST_EXT", 1)
		if err != nil {
			return nil, err
		}
		elems, err := s.elems(make([]Term, n), depth)
		if err != nil {
			return nil, err
		}
		tail, err := s.term(depth + 1)
		if err != nil {
			return nil, err
		}
		if l, ok := tail.(List); ok && len(l) == 0 {
			return List(elems), nil
		}
		return ImproperList{Elems: elems, Tail: tail}, nil
	case tagBinary:
		n, err := s.count("BINARY_EXT", 1)
		if err != nil {
			return nil, err
		}
		b, err := s.bytes(n, "BINARY_EXT")
		return Binary(b), err
	case tagBitBinary:
		n, err := s.count("BIT_BINARY_EXT", 1)
		if err != nil {
			return nil, err
		}
		bits, err := s.u8("BIT_BINARY_EXT bits")
		if err != nil {
			return nil, err
		}
		if bits < 1 || bits > 8 || n == 0 {
			s.off--
			return nil, s.fail(ErrInvalid, "BIT_BINARY_EXT with %d bytes and %d bits in the last byte", n, bits)
		}
		b, err := s.bytes(n, "BIT_BINARY_EXT")
		if err != nil {
			return nil, err
		}
		if bits < 8 && b[n-1]&(0xff>>bits) != 0 {
			s.off--
			return nil, s.fail(ErrInvalid, "BIT_BINARY_EXT unused low bits of last byte are not zero")
		}
		return BitBinary{Data: b, Bits: bits}, nil
	case tagSmallBig:
		n, err := s.u8("SMALL_BIG_EXT length")
		if err != nil {
			return nil, err
		}
		return s.big(int(n))
	case tagLargeBig:
		n, err := s.count("LARGE_BIG_EXT", 1)
		if err != nil {
			return nil, err
		}
		return s.big(n)
	case tagPid, tagNewPid:
		s.off = tagOff
		return s.pid()
	case tagPort, tagNewPort, tagV4Port:
		node, err := s.atomTerm("port node")
		if err != nil {
			return nil, err
		}
		p := Port{Node: node}
		if tag == tagV4Port {
			p.ID, err = s.u64("V4_PORT_EXT id")
		} else {
			var id uint32
			id, err = s.u32("port id")
			p.ID = uint64(id)
		}
		if err != nil {
			return nil, err
		}
		if tag == tagPort {
			var c uint8
			c, err = s.u8("PORT_EXT creation")
			p.Creation = uint32(c)
		} else {
			p.Creation, err = s.u32("port creation")
		}
		return p, err
	case tagReference:
		node, err := s.atomTerm("REFERENCE_EXT node")
		if err != nil {
			return nil, err
		}
		id, err := s.u32("REFERENCE_EXT id")
		if err != nil {
			return nil, err
		}
		c, err := s.u8("REFERENCE_EXT creation")
		return Ref{Node: node, Creation: uint32(c), ID: []uint32{id}}, err
	case tagNewReference, tagNewerReference:
		n, err := s.u16("reference length")
		if err != nil {
			return nil, err
		}
		if n > 5 {
			s.off -= 2
			return nil, s.fail(ErrInvalid, "reference has %d ID words, at most 5", n)
		}
		node, err := s.atomTerm("reference node")
		if err != nil {
			return nil, err
		}
		r := Ref{Node: node}
		if tag == tagNewReference {
			c, err := s.u8("NEW_REFERENCE_EXT creation")
			if err != nil {
				return nil, err
			}
			r.Creation = uint32(c)
		} else if r.Creation, err = s.u32("NEWER_REFERENCE_EXT creation"); err != nil {
			return nil, err
		}
		if err := s.need(4*int(n), "reference ID"); err != nil {
			return nil, err
		}
		r.ID = make([]uint32, n)
		for i := range r.ID {
			r.ID[i], _ = s.u32("reference ID")
		}
		return r, nil
	case tagExport:
		mod, err := s.atomTerm("EXPORT_EXT module")
		if err != nil {
			return nil, err
		}
		fn, err := s.atomTerm("EXPORT_EXT function")
		if err != nil {
			return nil, err
		}
		aOff := s.off
		if t, err := s.u8("EXPORT_EXT arity tag"); err != nil {
			return nil, err
		} else if t != tagSmallInteger {
			s.off = aOff
			return nil, s.fail(ErrInvalid, "EXPORT_EXT arity has tag %d, want SMALL_INTEGER_EXT", t)
		}
		arity, err := s.u8("EXPORT_EXT arity")
		return Export{Module: mod, Function: fn, Arity: arity}, err
	case tagNewFun:
		return s.newFun(tagOff, depth)
	case tagFun:
		return s.oldFun(depth)
	case tagAtomCacheRef:
		s.off = tagOff
		return nil, s.fail(ErrUnknownTag, "ATOM_CACHE_REF (82) only appears in distribution messages")
	case tagLocal:
		s.off = tagOff
		return nil, s.fail(ErrUnknownTag, "LOCAL_EXT (121) is node-local and cannot be decoded")
	case tagCompressed:
		s.off = tagOff
		return nil, s.fail(ErrInvalid, "compressed term (80) nested inside a term")
	}
	s.off = tagOff
	return nil, s.fail(ErrUnknownTag, "unknown tag %d", tag)
}

func (s *state) elems(dst []Term, depth int) ([]Term, error) {
	var err error
	for i := range dst {
		if dst[i], err = s.term(depth + 1); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// atom reads an atom in any of its four encodings.
func (s *state) atom() (Atom, error) {
	tagOff := s.off
	tag, err := s.u8("atom tag")
	if err != nil {
		return "", err
	}
	var n int
	switch tag {
	case tagAtom, tagAtomUTF8:
		v, err := s.u16("atom length")
		if err != nil {
			return "", err
		}
		n = int(v)
	case tagSmallAtom, tagSmallAtomUTF8:
		v, err := s.u8("atom length")
		if err != nil {
			return "", err
		}
		n = int(v)
	default:
		s.off = tagOff
		return "", s.fail(ErrInvalid, "tag %d where an atom was expected", tag)
	}
	b, err := s.bytes(n, "atom text")
	if err != nil {
		return "", err
	}
	if tag == tagAtom || tag == tagSmallAtom {
		return Atom(latin1(b)), nil
	}
	if !utf8.Valid(b) {
		s.off -= n
		return "", s.fail(ErrInvalid, "UTF-8 atom is not valid UTF-8")
	}
	return Atom(b), nil
}

func (s *state) atomTerm(what string) (Atom, error) {
	if err := s.need(1, what); err != nil {
		return "", err
	}
	return s.atom()
}

func latin1(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func (s *state) big(n int) (Term, error) {
	sign, err := s.u8("big integer sign")
	if err != nil {
		return nil, err
	}
	if sign > 1 {
		s.off--
		return nil, s.fail(ErrInvalid, "big integer sign byte %d, want 0 or 1", sign)
	}
	digits, err := s.bytes(n, "big integer digits")
	if err != nil {
		return nil, err
	}
	// Digits are little-endian; big.Int wants big-endian.
	be := make([]byte, n)
	for i, d := range digits {
		be[n-1-i] = d
	}
	v := new(big.Int).SetBytes(be)
	if sign == 1 {
		v.Neg(v)
	}
	if v.IsInt64() {
		return Int(v.Int64()), nil
	}
	return BigInt{V: v}, nil
}

func (s *state) pid() (Pid, error) {
	tag, _ := s.u8("pid tag")
	node, err := s.atomTerm("pid node")
	if err != nil {
		return Pid{}, err
	}
	p := Pid{Node: node}
	if p.ID, err = s.u32("pid id"); err != nil {
		return Pid{}, err
	}
	if p.Serial, err = s.u32("pid serial"); err != nil {
		return Pid{}, err
	}
	if tag == tagPid {
		c, err := s.u8("PID_EXT creation")
		p.Creation = uint32(c)
		return p, err
	}
	p.Creation, err = s.u32("NEW_PID_EXT creation")
	return p, err
}

func (s *state) pidTerm(what string) (Pid, error) {
	if err := s.need(1, what); err != nil {
		return Pid{}, err
	}
	if t := s.b[s.off]; t != tagPid && t != tagNewPid {
		return Pid{}, s.fail(ErrInvalid, "%s has tag %d, want a pid", what, t)
	}
	return s.pid()
}

func (s *state) intTerm(what string) (Int, error) {
	off := s.off
	t, err := s.u8(what)
	if err != nil {
		return 0, err
	}
	switch t {
	case tagSmallInteger:
		v, err := s.u8(what)
		return Int(v), err
	case tagInteger:
		v, err := s.u32(what)
		return Int(int32(v)), err
	}
	s.off = off
	return 0, s.fail(ErrInvalid, "%s has tag %d, want an integer", what, t)
}

func (s *state) newFun(tagOff, depth int) (Term, error) {
	size, err := s.u32("NEW_FUN_EXT size")
	if err != nil {
		return nil, err
	}
	// Size counts itself and everything after the tag.
	if size < 4+1+16+4+4 || uint64(size)-4 > uint64(s.remaining()) {
		s.off -= 4
		return nil, s.fail(ErrTooLarge, "NEW_FUN_EXT size %d does not fit the remaining %d bytes", size, s.remaining()-4)
	}
	end := tagOff + 1 + int(size)
	f := Fun{}
	f.Arity, _ = s.u8("arity")
	u, _ := s.bytes(16, "uniq")
	copy(f.Uniq16[:], u)
	f.Index, _ = s.u32("index")
	numFree, _ := s.u32("NEW_FUN_EXT free variable count")
	if uint64(numFree) > uint64(s.remaining()) {
		s.off -= 4
		return nil, s.fail(ErrTooLarge, "NEW_FUN_EXT free variable count %d exceeds remaining %d bytes", numFree, s.remaining()-4)
	}
	if f.Module, err = s.atomTerm("NEW_FUN_EXT module"); err != nil {
		return nil, err
	}
	if f.OldIndex, err = s.intTerm("NEW_FUN_EXT old index"); err != nil {
		return nil, err
	}
	if f.OldUniq, err = s.intTerm("NEW_FUN_EXT old uniq"); err != nil {
		return nil, err
	}
	if f.Pid, err = s.pidTerm("NEW_FUN_EXT pid"); err != nil {
		return nil, err
	}
	if f.Free, err = s.elems(make([]Term, numFree), depth); err != nil {
		return nil, err
	}
	if s.off != end {
		return nil, s.fail(ErrInvalid, "NEW_FUN_EXT size says it ends at offset %d", end)
	}
	return f, nil
}

func (s *state) oldFun(depth int) (Term, error) {
	numFree, err := s.count("FUN_EXT free variables", 1)
	if err != nil {
		return nil, err
	}
	f := Fun{Old: true}
	if f.Pid, err = s.pidTerm("FUN_EXT pid"); err != nil {
		return nil, err
	}
	if f.Module, err = s.atomTerm("FUN_EXT module"); err != nil {
		return nil, err
	}
	if f.OldIndex, err = s.intTerm("FUN_EXT index"); err != nil {
		return nil, err
	}
	if f.OldUniq, err = s.intTerm("FUN_EXT uniq"); err != nil {
		return nil, err
	}
	if f.Free, err = s.elems(make([]Term, numFree), depth); err != nil {
		return nil, err
	}
	return f, nil
}
