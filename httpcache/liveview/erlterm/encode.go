package erlterm

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"unicode/utf8"
)

// Encode returns the external term format of t, starting with the version
// byte 131, the way a current OTP release encodes it: atoms as
// SMALL_ATOM_UTF8_EXT / ATOM_UTF8_EXT, integers in the smallest of
// SMALL_INTEGER_EXT, INTEGER_EXT and SMALL_BIG_EXT, floats as
// NEW_FLOAT_EXT, pids as NEW_PID_EXT, ports as NEW_PORT_EXT (V4_PORT_EXT
// when the ID needs 64 bits), references as NEWER_REFERENCE_EXT.
//
// It returns an error wrapping [ErrUnsupported] for terms that have no
// encoding: a nil Term inside a container, an atom longer than 255
// characters, a reference with more than 5 ID words, an invalid
// [BitBinary].
func Encode(t Term) ([]byte, error) {
	return AppendTerm([]byte{VersionMagic}, t)
}

// EncodeCompressed is like [Encode] but emits a compressed term (tag 80,
// zlib), as term_to_binary(T, [compressed]) does.
func EncodeCompressed(t Term) ([]byte, error) {
	raw, err := AppendTerm(nil, t)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Write([]byte{VersionMagic, tagCompressed, 0, 0, 0, 0})
	binary.BigEndian.PutUint32(buf.Bytes()[2:], uint32(len(raw)))
	zw := zlib.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	return buf.Bytes(), nil
}

// AppendTerm appends the encoding of t, without the version byte, to dst.
func AppendTerm(dst []byte, t Term) ([]byte, error) {
	switch x := t.(type) {
	case Int:
		return appendInt(dst, int64(x)), nil
	case BigInt:
		if x.V == nil {
			return nil, fmt.Errorf("%w: BigInt with nil value", ErrUnsupported)
		}
		if x.V.IsInt64() {
			return appendInt(dst, x.V.Int64()), nil
		}
		return appendBig(dst, x.V), nil
	case Float:
		dst = append(dst, tagNewFloat)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(float64(x))), nil
	case Atom:
		return appendAtom(dst, x)
	case Binary:
		dst = append(dst, tagBinary)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)))
		return append(dst, x...), nil
	case BitBinary:
		if x.Bits < 1 || x.Bits > 8 || len(x.Data) == 0 {
			return nil, fmt.Errorf("%w: BitBinary with %d bytes and %d bits", ErrUnsupported, len(x.Data), x.Bits)
		}
		dst = append(dst, tagBitBinary)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(x.Data)))
		dst = append(dst, x.Bits)
		dst = append(dst, x.Data...)
		// Unused low bits must be zero.
		dst[len(dst)-1] &^= byte(0xff >> x.Bits)
		return dst, nil
	case Charlist:
		if len(x) == 0 {
			return append(dst, tagNil), nil
		}
		if len(x) <= math.MaxUint16 {
			dst = append(dst, tagString)
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(x)))
			return append(dst, x...), nil
		}
		dst = append(dst, tagList)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)))
		for _, c := range x {
			dst = append(dst, tagSmallInteger, c)
		}
		return append(dst, tagNil), nil
	case List:
		if len(x) == 0 {
			return append(dst, tagNil), nil
		}
		return appendList(dst, x, List(nil))
	case ImproperList:
		if len(x.Elems) == 0 {
			return AppendTerm(dst, x.Tail)
		}
		return appendList(dst, x.Elems, x.Tail)
	case Tuple:
		if len(x) <= math.MaxUint8 {
			dst = append(dst, tagSmallTuple, byte(len(x)))
		} else {
			dst = append(dst, tagLargeTuple)
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)))
		}
		return appendTerms(dst, x)
	case Map:
		dst = append(dst, tagMap)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)))
		var err error
		for _, p := range x {
			if dst, err = AppendTerm(dst, p.Key); err != nil {
				return nil, err
			}
			if dst, err = AppendTerm(dst, p.Value); err != nil {
				return nil, err
			}
		}
		return dst, nil
	case Pid:
		return appendPid(dst, x)
	case Port:
		var err error
		if x.ID > math.MaxUint32 {
			dst = append(dst, tagV4Port)
			if dst, err = appendAtom(dst, x.Node); err != nil {
				return nil, err
			}
			dst = binary.BigEndian.AppendUint64(dst, x.ID)
		} else {
			dst = append(dst, tagNewPort)
			if dst, err = appendAtom(dst, x.Node); err != nil {
				return nil, err
			}
			dst = binary.BigEndian.AppendUint32(dst, uint32(x.ID))
		}
		return binary.BigEndian.AppendUint32(dst, x.Creation), nil
	case Ref:
		if len(x.ID) > 5 {
			return nil, fmt.Errorf("%w: reference with %d ID words", ErrUnsupported, len(x.ID))
		}
		dst = append(dst, tagNewerReference)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(x.ID)))
		var err error
		if dst, err = appendAtom(dst, x.Node); err != nil {
			return nil, err
		}
		dst = binary.BigEndian.AppendUint32(dst, x.Creation)
		for _, w := range x.ID {
			dst = binary.BigEndian.AppendUint32(dst, w)
		}
		return dst, nil
	case Fun:
		return appendFun(dst, x)
	case Export:
		dst = append(dst, tagExport)
		var err error
		if dst, err = appendAtom(dst, x.Module); err != nil {
			return nil, err
		}
		if dst, err = appendAtom(dst, x.Function); err != nil {
			return nil, err
		}
		return append(dst, tagSmallInteger, x.Arity), nil
	case nil:
		return nil, fmt.Errorf("%w: nil term", ErrUnsupported)
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupported, t)
}

func appendTerms(dst []byte, ts []Term) ([]byte, error) {
	var err error
	for _, e := range ts {
		if dst, err = AppendTerm(dst, e); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func appendList(dst []byte, elems []Term, tail Term) ([]byte, error) {
	dst = append(dst, tagList)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(elems)))
	dst, err := appendTerms(dst, elems)
	if err != nil {
		return nil, err
	}
	return AppendTerm(dst, tail)
}

func appendInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0 && v <= math.MaxUint8:
		return append(dst, tagSmallInteger, byte(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		dst = append(dst, tagInteger)
		return binary.BigEndian.AppendUint32(dst, uint32(int32(v)))
	}
	return appendBig(dst, big.NewInt(v))
}

func appendBig(dst []byte, v *big.Int) []byte {
	mag := new(big.Int).Abs(v).Bytes() // big-endian
	n := len(mag)
	if n <= math.MaxUint8 {
		dst = append(dst, tagSmallBig, byte(n))
	} else {
		dst = append(dst, tagLargeBig)
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	}
	if v.Sign() < 0 {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, mag[i])
	}
	return dst
}

func appendAtom(dst []byte, a Atom) ([]byte, error) {
	if !utf8.ValidString(string(a)) {
		return nil, fmt.Errorf("%w: atom is not valid UTF-8", ErrUnsupported)
	}
	if utf8.RuneCountInString(string(a)) > 255 {
		return nil, fmt.Errorf("%w: atom longer than 255 characters", ErrUnsupported)
	}
	if len(a) <= math.MaxUint8 {
		dst = append(dst, tagSmallAtomUTF8, byte(len(a)))
	} else {
		dst = append(dst, tagAtomUTF8)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(a)))
	}
	return append(dst, a...), nil
}

func appendPid(dst []byte, p Pid) ([]byte, error) {
	dst = append(dst, tagNewPid)
	dst, err := appendAtom(dst, p.Node)
	if err != nil {
		return nil, err
	}
	dst = binary.BigEndian.AppendUint32(dst, p.ID)
	dst = binary.BigEndian.AppendUint32(dst, p.Serial)
	return binary.BigEndian.AppendUint32(dst, p.Creation), nil
}

func appendSmallInt(dst []byte, v Int) []byte {
	if v >= 0 && v <= math.MaxUint8 {
		return append(dst, tagSmallInteger, byte(v))
	}
	dst = append(dst, tagInteger)
	return binary.BigEndian.AppendUint32(dst, uint32(int32(v)))
}

func appendFun(dst []byte, f Fun) ([]byte, error) {
	if f.OldIndex < math.MinInt32 || f.OldIndex > math.MaxInt32 || f.OldUniq < math.MinInt32 || f.OldUniq > math.MaxInt32 {
		return nil, fmt.Errorf("%w: fun index or uniq outside 32 bits", ErrUnsupported)
	}
	var err error
	if f.Old {
		dst = append(dst, tagFun)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(f.Free)))
		if dst, err = appendPid(dst, f.Pid); err != nil {
			return nil, err
		}
		if dst, err = appendAtom(dst, f.Module); err != nil {
			return nil, err
		}
		dst = appendSmallInt(dst, f.OldIndex)
		dst = appendSmallInt(dst, f.OldUniq)
		return appendTerms(dst, f.Free)
	}
	start := len(dst)
	dst = append(dst, tagNewFun, 0, 0, 0, 0, f.Arity)
	dst = append(dst, f.Uniq16[:]...)
	dst = binary.BigEndian.AppendUint32(dst, f.Index)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(f.Free)))
	if dst, err = appendAtom(dst, f.Module); err != nil {
		return nil, err
	}
	dst = appendSmallInt(dst, f.OldIndex)
	dst = appendSmallInt(dst, f.OldUniq)
	if dst, err = appendPid(dst, f.Pid); err != nil {
		return nil, err
	}
	if dst, err = appendTerms(dst, f.Free); err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst, nil
}
