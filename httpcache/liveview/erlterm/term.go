// Package erlterm decodes and encodes the Erlang external term format, the
// bytes produced by :erlang.term_to_binary/1 and read by
// :erlang.binary_to_term/1.
//
// Phoenix tokens (Phoenix.Token, Plug.Crypto.sign) carry such a term in
// their payload; package liveview uses this package to read them.
//
// # Terms
//
// A decoded term is a [Term]: one of [Int], [BigInt], [Float], [Atom],
// [Binary], [BitBinary], [Charlist], [List], [ImproperList], [Tuple], [Map],
// [Pid], [Port], [Ref], [Fun] and [Export]. The empty list is List(nil).
// Every encoding of a type decodes to the same Go type: the four atom
// encodings all give an [Atom], SMALL_BIG_EXT and LARGE_BIG_EXT give an [Int]
// when the value fits in an int64 and a [BigInt] otherwise, the old pid,
// port and reference encodings give the same structs as the new ones.
//
// # Hostile input
//
// [Decode] is written for untrusted bytes: nesting depth is bounded
// ([Decoder.MaxDepth]), every count and length is checked against the
// remaining input before anything is allocated, and compressed terms (tag
// 80) are inflated only up to [Decoder.MaxDecompressed]. Every failure is a
// [*DecodeError] carrying the byte offset, and matches one of the sentinel
// errors with [errors.Is].
//
// # Rendering
//
// [Format] prints a term as an Elixir developer reads it in iex
// (%{id: "phx-…", session: %{}}, {:default, 1}, nil, <<1, 2>>), and
// [AppendJSON] / [JSON] give a JSON form for APIs.
package erlterm

import (
	"math/big"
)

// Term is a decoded Erlang term. The concrete types are listed in the
// package documentation; the interface is sealed.
type Term interface {
	isTerm()
}

// Int is an integer that fits in an int64 (SMALL_INTEGER_EXT, INTEGER_EXT,
// or a small enough big integer).
type Int int64

// BigInt is an integer outside the int64 range (SMALL_BIG_EXT,
// LARGE_BIG_EXT). V is never nil in a decoded term.
type BigInt struct{ V *big.Int }

// Float is a float (NEW_FLOAT_EXT, or the old textual FLOAT_EXT).
type Float float64

// Atom is an atom, held as UTF-8 (Latin-1 atoms are converted). The atoms
// nil, true and false are plain Atoms.
type Atom string

// Binary is a binary (BINARY_EXT): in Elixir, a string when it is UTF-8.
type Binary []byte

// BitBinary is a bitstring whose length is not a multiple of 8
// (BIT_BINARY_EXT). Bits is the number of significant bits in the last byte
// of Data, 1 to 8; the significant bits are the high ones.
type BitBinary struct {
	Data []byte
	Bits uint8
}

// Charlist is a proper list of integers 0..255 encoded compactly
// (STRING_EXT); in Elixir, a charlist such as ~c"abc".
type Charlist []byte

// List is a proper list. The empty list (NIL_EXT) is a nil or empty List.
type List []Term

// ImproperList is a list whose tail is not the empty list: [1, 2 | Tail].
type ImproperList struct {
	Elems []Term
	Tail  Term
}

// Tuple is a tuple (SMALL_TUPLE_EXT, LARGE_TUPLE_EXT).
type Tuple []Term

// Map is a map (MAP_EXT), its pairs in encoded order.
type Map []MapPair

// MapPair is one key/value pair of a [Map].
type MapPair struct {
	Key, Value Term
}

// Get returns the value stored under key, compared with [Equal], and
// whether it was found.
func (m Map) Get(key Term) (Term, bool) {
	for _, p := range m {
		if Equal(p.Key, key) {
			return p.Value, true
		}
	}
	return nil, false
}

// Pid is a process identifier (PID_EXT, NEW_PID_EXT).
type Pid struct {
	Node                 Atom
	ID, Serial, Creation uint32
}

// Port is a port identifier (PORT_EXT, NEW_PORT_EXT, V4_PORT_EXT).
type Port struct {
	Node     Atom
	ID       uint64
	Creation uint32
}

// Ref is a reference (REFERENCE_EXT, NEW_REFERENCE_EXT,
// NEWER_REFERENCE_EXT). ID holds the ID words in encoded order.
type Ref struct {
	Node     Atom
	Creation uint32
	ID       []uint32
}

// Fun is an anonymous function (NEW_FUN_EXT, or the old FUN_EXT when Old is
// set; old funs carry no Arity, Uniq16 or OldIndex).
type Fun struct {
	Old      bool
	Arity    uint8
	Uniq16   [16]byte
	Index    uint32
	Module   Atom
	OldIndex Int
	OldUniq  Int
	Pid      Pid
	Free     []Term
}

// Export is an external function reference, fun Module:Function/Arity
// (EXPORT_EXT).
type Export struct {
	Module, Function Atom
	Arity            uint8
}

func (Int) isTerm()          {}
func (BigInt) isTerm()       {}
func (Float) isTerm()        {}
func (Atom) isTerm()         {}
func (Binary) isTerm()       {}
func (BitBinary) isTerm()    {}
func (Charlist) isTerm()     {}
func (List) isTerm()         {}
func (ImproperList) isTerm() {}
func (Tuple) isTerm()        {}
func (Map) isTerm()          {}
func (Pid) isTerm()          {}
func (Port) isTerm()         {}
func (Ref) isTerm()          {}
func (Fun) isTerm()          {}
func (Export) isTerm()       {}

// Equal reports whether a and b are the same Erlang term. Different Go
// representations of one term are equal: a [Charlist] and a [List] of the
// same small [Int]s, an [Int] and a [BigInt] of the same value, a nil and an
// empty [List].
func Equal(a, b Term) bool {
	a, b = normalize(a), normalize(b)
	switch x := a.(type) {
	case Int:
		y, ok := b.(Int)
		return ok && x == y
	case BigInt:
		y, ok := b.(BigInt)
		return ok && x.V.Cmp(y.V) == 0
	case Float:
		y, ok := b.(Float)
		return ok && (x == y || (x != x && y != y))
	case Atom:
		y, ok := b.(Atom)
		return ok && x == y
	case Binary:
		y, ok := b.(Binary)
		return ok && string(x) == string(y)
	case BitBinary:
		y, ok := b.(BitBinary)
		return ok && x.Bits == y.Bits && string(x.Data) == string(y.Data)
	case List:
		y, ok := b.(List)
		return ok && equalSlices(x, y)
	case ImproperList:
		y, ok := b.(ImproperList)
		return ok && equalSlices(x.Elems, y.Elems) && Equal(x.Tail, y.Tail)
	case Tuple:
		y, ok := b.(Tuple)
		return ok && equalSlices(x, y)
	case Map:
		y, ok := b.(Map)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i].Key, y[i].Key) || !Equal(x[i].Value, y[i].Value) {
				return false
			}
		}
		return true
	case Pid:
		y, ok := b.(Pid)
		return ok && x == y
	case Port:
		y, ok := b.(Port)
		return ok && x == y
	case Ref:
		y, ok := b.(Ref)
		if !ok || x.Node != y.Node || x.Creation != y.Creation || len(x.ID) != len(y.ID) {
			return false
		}
		for i := range x.ID {
			if x.ID[i] != y.ID[i] {
				return false
			}
		}
		return true
	case Fun:
		y, ok := b.(Fun)
		return ok && x.Old == y.Old && x.Arity == y.Arity && x.Uniq16 == y.Uniq16 &&
			x.Index == y.Index && x.Module == y.Module && x.OldIndex == y.OldIndex &&
			x.OldUniq == y.OldUniq && x.Pid == y.Pid && equalSlices(x.Free, y.Free)
	case Export:
		y, ok := b.(Export)
		return ok && x == y
	case nil:
		return b == nil
	}
	return false
}

func equalSlices(a, b []Term) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// normalize maps equal terms with several Go forms to one form.
func normalize(t Term) Term {
	switch x := t.(type) {
	case Charlist:
		l := make(List, len(x))
		for i, c := range x {
			l[i] = Int(c)
		}
		return l
	case BigInt:
		if x.V != nil && x.V.IsInt64() {
			return Int(x.V.Int64())
		}
		if x.V == nil {
			return Int(0)
		}
	case ImproperList:
		// [a | [b]] is the proper list [a, b].
		switch tail := normalize(x.Tail).(type) {
		case List:
			return append(append(List{}, x.Elems...), tail...)
		case ImproperList:
			return ImproperList{Elems: append(append([]Term{}, x.Elems...), tail.Elems...), Tail: tail.Tail}
		}
		if len(x.Elems) == 0 {
			return normalize(x.Tail)
		}
	}
	return t
}
