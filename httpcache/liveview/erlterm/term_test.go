package erlterm

import (
	"bytes"
	"compress/zlib"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
)

// cat joins byte pieces; the pieces follow the "External Term Format"
// chapter of the ERTS User's Guide, tag by tag.
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch x := p.(type) {
		case int:
			b = append(b, byte(x))
		case string:
			b = append(b, x...)
		case []byte:
			b = append(b, x...)
		}
	}
	return b
}

func be16(v int) []byte { return []byte{byte(v >> 8), byte(v)} }
func be32(v uint32) []byte {
	return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

var nonode = cat(119, 13, "nonode@nohost") // SMALL_ATOM_UTF8_EXT

func bigFrom(s string) BigInt {
	v, _ := new(big.Int).SetString(s, 10)
	return BigInt{V: v}
}

func TestDecode_Types(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        []byte // without the version byte
		want      Term
		elixir    string
		canonical bool // Encode(want) gives exactly in
	}{
		{"SMALL_INTEGER_EXT", cat(97, 42), Int(42), "42", true},
		{"INTEGER_EXT negative", cat(98, be32(0xffffffff)), Int(-1), "-1", true},
		{"INTEGER_EXT large", cat(98, be32(100000)), Int(100000), "100000", true},
		{"SMALL_BIG_EXT fits int64", cat(110, 8, 0, 0xc3, 0xb4, 0x66, 0xe1, 0xfc, 0x1f, 0x95, 0x17), Int(1699299605376054467), "1699299605376054467", true},
		{"SMALL_BIG_EXT negative", cat(110, 5, 1, 0, 0, 0, 0, 1), Int(-4294967296), "-4294967296", true},
		{"SMALL_BIG_EXT beyond int64", cat(110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), bigFrom("18446744073709551616"), "18446744073709551616", true},
		{"LARGE_BIG_EXT", cat(111, be32(9), 1, 0, 0, 0, 0, 0, 0, 0, 0, 1), bigFrom("-18446744073709551616"), "-18446744073709551616", false},
		{"NEW_FLOAT_EXT", cat(70, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0), Float(1.5), "1.5", true},
		{"NEW_FLOAT_EXT whole", cat(70, 0x40, 0x59, 0, 0, 0, 0, 0, 0), Float(100), "100.0", true},
		{"FLOAT_EXT (old, text)", cat(99, "1.50000000000000000000e+00", make([]byte, 5)), Float(1.5), "1.5", false},
		{"ATOM_EXT", cat(100, be16(2), "ok"), Atom("ok"), ":ok", false},
		{"ATOM_EXT latin-1", cat(100, be16(3), "ab", 0xe9), Atom("abé"), ":abé", false},
		{"SMALL_ATOM_EXT latin-1", cat(115, 4, "caf", 0xe9), Atom("café"), ":café", false},
		{"ATOM_UTF8_EXT", cat(118, be16(5), "café"), Atom("café"), ":café", false},
		{"atom needing quotes", cat(119, 3, "a b"), Atom("a b"), `:"a b"`, true},
		{"SMALL_ATOM_UTF8_EXT", cat(119, 4, "true"), Atom("true"), "true", true},
		{"nil atom", cat(119, 3, "nil"), Atom("nil"), "nil", true},
		{"module atom", cat(119, 19, "Elixir.MyApp.Router"), Atom("Elixir.MyApp.Router"), "MyApp.Router", true},
		{"SMALL_TUPLE_EXT", cat(104, 2, 119, 7, "default", 97, 1), Tuple{Atom("default"), Int(1)}, "{:default, 1}", true},
		{"LARGE_TUPLE_EXT", cat(105, be32(1), 106), Tuple{List(nil)}, "{[]}", false},
		{"empty tuple", cat(104, 0), Tuple{}, "{}", true},
		{"MAP_EXT atom keys", cat(116, be32(2), 119, 2, "id", 109, be32(1), "x", 119, 7, "session", 116, be32(0)), Map{{Atom("id"), Binary("x")}, {Atom("session"), Map{}}}, `%{id: "x", session: %{}}`, true},
		{"MAP_EXT string keys", cat(116, be32(1), 109, be32(3), "abc", 109, be32(3), "def"), Map{{Binary("abc"), Binary("def")}}, `%{"abc" => "def"}`, true},
		{"struct", cat(116, be32(2), 119, 10, "__struct__", 119, 15, "Elixir.URI.Test", 119, 4, "host", 106), Map{{Atom("__struct__"), Atom("Elixir.URI.Test")}, {Atom("host"), List(nil)}}, "%URI.Test{host: []}", true},
		{"NIL_EXT", cat(106), List(nil), "[]", true},
		{"STRING_EXT", cat(107, be16(3), "abc"), Charlist("abc"), `~c"abc"`, true},
		{"STRING_EXT unprintable", cat(107, be16(3), 1, 2, 3), Charlist{1, 2, 3}, "[1, 2, 3]", true},
		{"LIST_EXT proper", cat(108, be32(2), 97, 1, 97, 2, 106), List{Int(1), Int(2)}, "[1, 2]", true},
		{"LIST_EXT improper", cat(108, be32(1), 97, 1, 97, 2), ImproperList{Elems: []Term{Int(1)}, Tail: Int(2)}, "[1 | 2]", true},
		{"keyword list", cat(108, be32(1), 104, 2, 119, 1, "a", 97, 1, 106), List{Tuple{Atom("a"), Int(1)}}, "[a: 1]", true},
		{"BINARY_EXT printable", cat(109, be32(4), "hé\n"), Binary("hé\n"), `"hé\n"`, true},
		{"BINARY_EXT bytes", cat(109, be32(3), 1, 2, 3), Binary{1, 2, 3}, "<<1, 2, 3>>", true},
		{"BINARY_EXT interpolation escaped", cat(109, be32(3), `#{x`), Binary(`#{x`), `"\#{x"`, true},
		{"BIT_BINARY_EXT", cat(77, be32(2), 3, 1, 0xa0), BitBinary{Data: []byte{1, 0xa0}, Bits: 3}, "<<1, 5::size(3)>>", true},
		{"PID_EXT (old)", cat(103, nonode, be32(123), be32(0), 0), Pid{Node: "nonode@nohost", ID: 123}, "#PID<0.123.0>", false},
		{"NEW_PID_EXT", cat(88, nonode, be32(123), be32(4), be32(0)), Pid{Node: "nonode@nohost", ID: 123, Serial: 4}, "#PID<0.123.4>", true},
		{"PORT_EXT (old)", cat(102, nonode, be32(7), 0), Port{Node: "nonode@nohost", ID: 7}, "#Port<0.7>", false},
		{"NEW_PORT_EXT", cat(89, nonode, be32(7), be32(1)), Port{Node: "nonode@nohost", ID: 7, Creation: 1}, "#Port<0.7>", true},
		{"V4_PORT_EXT", cat(120, nonode, 0, 0, 0, 1, 0, 0, 0, 0, be32(1)), Port{Node: "nonode@nohost", ID: 1 << 32, Creation: 1}, "#Port<0.4294967296>", true},
		{"REFERENCE_EXT (oldest)", cat(101, nonode, be32(9), 0), Ref{Node: "nonode@nohost", ID: []uint32{9}}, "#Reference<0.9>", false},
		{"NEW_REFERENCE_EXT", cat(114, be16(3), nonode, 0, be32(1), be32(2), be32(3)), Ref{Node: "nonode@nohost", ID: []uint32{1, 2, 3}}, "#Reference<0.3.2.1>", false},
		{"NEWER_REFERENCE_EXT", cat(90, be16(3), nonode, be32(5), be32(1), be32(2), be32(3)), Ref{Node: "nonode@nohost", Creation: 5, ID: []uint32{1, 2, 3}}, "#Reference<0.3.2.1>", true},
		{"EXPORT_EXT", cat(113, 119, 13, "Elixir.String", 119, 6, "length", 97, 1), Export{Module: "Elixir.String", Function: "length", Arity: 1}, "&String.length/1", true},
		{"EXPORT_EXT erlang module", cat(113, 119, 5, "lists", 119, 3, "map", 97, 2), Export{Module: "lists", Function: "map", Arity: 2}, "&:lists.map/2", true},
		{"NEW_FUN_EXT", newFunBytes(), Fun{Arity: 1, Uniq16: [16]byte{15: 1}, Index: 3, Module: "erl_eval", OldIndex: 3, OldUniq: 99, Pid: Pid{Node: "nonode@nohost", ID: 80}, Free: []Term{Atom("x")}}, "#Function<3.99/1 in :erl_eval>", true},
		{"FUN_EXT (old)", cat(117, be32(0), 88, nonode, be32(80), be32(0), be32(0), 119, 1, "m", 97, 2, 97, 3), Fun{Old: true, Module: "m", OldIndex: 2, OldUniq: 3, Pid: Pid{Node: "nonode@nohost", ID: 80}}, "#Function<2.3 in :m>", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]byte{131}, tt.in...)
			got, err := Decode(in)
			if err != nil {
				t.Fatalf("Decode(% x): %v", in, err)
			}
			if !Equal(got, tt.want) {
				t.Errorf("Decode(% x) = %#v, want %#v", in, got, tt.want)
			}
			if s := Format(got); s != tt.elixir {
				t.Errorf("Format = %s, want %s", s, tt.elixir)
			}
			enc, err := Encode(tt.want)
			if err != nil {
				t.Fatalf("Encode(%v): %v", tt.want, err)
			}
			if tt.canonical && !bytes.Equal(enc, in) {
				t.Errorf("Encode(%v) = % x, want % x", tt.want, enc, in)
			}
			back, err := Decode(enc)
			if err != nil || !Equal(back, tt.want) {
				t.Errorf("Decode(Encode(%v)) = %v, %v", tt.want, back, err)
			}
		})
	}
}

func newFunBytes() []byte {
	body := cat(1, make([]byte, 15), 1, be32(3), be32(1), 119, 8, "erl_eval", 97, 3, 97, 99, 88, nonode, be32(80), be32(0), be32(0), 119, 1, "x")
	return cat(112, be32(uint32(len(body)+4)), body)
}

func TestDecode_Compressed(t *testing.T) {
	t.Parallel()
	raw := cat(109, be32(1000), bytes.Repeat([]byte("a"), 1000))
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw)
	zw.Close()
	in := cat(131, 80, be32(uint32(len(raw))), z.Bytes())
	got, err := Decode(in)
	if err != nil {
		t.Fatalf("Decode(compressed): %v", err)
	}
	if !Equal(got, Binary(strings.Repeat("a", 1000))) {
		t.Errorf("Decode(compressed) = %v, want 1000 a's", got)
	}
	enc, err := EncodeCompressed(got)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(enc)
	if err != nil || !Equal(back, got) {
		t.Errorf("Decode(EncodeCompressed) = %v, %v", back, err)
	}
	d := Decoder{MaxDecompressed: 999}
	if _, err := d.Decode(in); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Decode with MaxDecompressed 999 = %v, want ErrTooLarge", err)
	}
}

func TestDecode_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     []byte
		want   error
		offset int
		msg    string
	}{
		{"empty", nil, ErrTruncated, 0, "empty input"},
		{"no version", cat(97, 1), ErrBadVersion, 0, "want version 131"},
		{"truncated integer", cat(131, 98, 0, 0), ErrTruncated, 2, "INTEGER_EXT needs 4 bytes, 2 left"},
		{"lying list length", cat(131, 108, be32(0xffffffff), 106), ErrTooLarge, 2, "LIST_EXT length 4294967295 exceeds remaining 1 bytes"},
		{"lying binary length", cat(131, 109, be32(10), "abc"), ErrTooLarge, 2, "BINARY_EXT length 10 exceeds remaining 3 bytes"},
		{"lying tuple arity", cat(131, 104, 5, 97, 1), ErrTooLarge, 2, "SMALL_TUPLE_EXT arity 5 exceeds remaining 2 bytes"},
		{"lying map size", cat(131, 116, be32(3), 97, 1, 97, 1), ErrTooLarge, 2, "MAP_EXT length 3"},
		{"unknown tag", cat(131, 104, 1, 200), ErrUnknownTag, 3, "unknown tag 200"},
		{"atom cache ref", cat(131, 82, 0), ErrUnknownTag, 1, "ATOM_CACHE_REF"},
		{"local ext", cat(131, 121, 0), ErrUnknownTag, 1, "LOCAL_EXT"},
		{"trailing", cat(131, 106, 106), ErrTrailing, 2, "1 bytes after the term"},
		{"deep", cat(131, bytes.Repeat([]byte{104, 1}, 300), 106), ErrTooDeep, 1 + 2*257, "nesting deeper than 256"},
		{"bad float text", cat(131, 99, "hello", make([]byte, 26)), ErrInvalid, 2, "FLOAT_EXT text"},
		{"bit binary bits 0", cat(131, 77, be32(1), 0, 0xff), ErrInvalid, 6, "BIT_BINARY_EXT"},
		{"bit binary dirty padding", cat(131, 77, be32(1), 3, 0xff), ErrInvalid, 7, "unused low bits"},
		{"invalid utf-8 atom", cat(131, 119, 1, 0xff), ErrInvalid, 3, "not valid UTF-8"},
		{"pid with non-atom node", cat(131, 88, 97, 1), ErrInvalid, 2, "where an atom was expected"},
		{"too many ref words", cat(131, 90, be16(6), nonode), ErrInvalid, 2, "6 ID words"},
		{"big sign byte", cat(131, 110, 1, 2, 1), ErrInvalid, 3, "sign byte 2"},
		{"fun size lies", cat(131, 112, be32(1000), 1), ErrTooLarge, 2, "NEW_FUN_EXT size 1000"},
		{"nested compressed", cat(131, 104, 1, 80), ErrInvalid, 3, "nested"},
		{"export arity not small int", cat(131, 113, 119, 1, "m", 119, 1, "f", 98, be32(1)), ErrInvalid, 8, "EXPORT_EXT arity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(% x) = %v, want *DecodeError", tt.in, err)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Decode(% x) = %v, want %v", tt.in, err, tt.want)
			}
			if de.Offset != tt.offset {
				t.Errorf("Decode(% x) offset = %d, want %d (%v)", tt.in, de.Offset, tt.offset, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Decode(% x) = %q, want it to contain %q", tt.in, err, tt.msg)
			}
		})
	}
}

func TestEncode_Unsupported(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		in   Term
	}{
		{"nil in tuple", Tuple{nil}},
		{"long atom", Atom(strings.Repeat("a", 256))},
		{"bad bits", BitBinary{Data: []byte{1}, Bits: 0}},
		{"six ref words", Ref{ID: make([]uint32, 6)}},
		{"nil big", BigInt{}},
	} {
		if _, err := Encode(tt.in); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Encode(%s) = %v, want ErrUnsupported", tt.name, err)
		}
	}
}

func TestEncode_Sizes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		in   Term
		tag  byte
	}{
		{"big tuple uses LARGE_TUPLE_EXT", make(Tuple, 256), 105},
		{"long charlist uses LIST_EXT", make(Charlist, 70000), 108},
		{"huge big uses LARGE_BIG_EXT", BigInt{V: new(big.Int).Lsh(big.NewInt(1), 8*300)}, 111},
		{"long atom bytes use ATOM_UTF8_EXT", Atom(strings.Repeat("é", 200)), 118},
		{"min int64", Int(math.MinInt64), 110},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tup, ok := tt.in.(Tuple); ok {
				for i := range tup {
					tup[i] = Int(i)
				}
			}
			enc, err := Encode(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if enc[1] != tt.tag {
				t.Errorf("Encode tag = %d, want %d", enc[1], tt.tag)
			}
			back, err := Decode(enc)
			if err != nil || !Equal(back, tt.in) {
				t.Errorf("round trip = %v, %v", back, err)
			}
		})
	}
}

func TestFormat_Floats(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   float64
		want string
	}{{0, "0.0"}, {-2.5, "-2.5"}, {1e20, "1.0e20"}, {1.5e-7, "1.5e-7"}, {0.1, "0.1"}} {
		if got := Format(Float(tt.in)); got != tt.want {
			t.Errorf("Format(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	in := Tuple{Map{
		{Atom("id"), Binary("phx-1")},
		{Atom("session"), Map{}},
		{Atom("root_pid"), Atom("nil")},
		{Atom("bin"), Binary{0, 1}},
		{Atom("ls"), Tuple{Atom("default"), Int(1699299605376054467)}},
		{Atom("view"), Atom("Elixir.A.B")},
	}, Int(1), List{Atom("true")}}
	want := `{"tuple":[{"id":"phx-1","session":{},"root_pid":null,"bin":{"binary":"AAE="},"ls":{"tuple":[":default",1699299605376054467]},"view":"A.B"},1,[true]]}`
	if got := string(JSON(in)); got != want {
		t.Errorf("JSON =\n%s\nwant\n%s", got, want)
	}
	if got := string(JSON(Map{{Int(1), Int(2)}})); got != `{"map":[[1,2]]}` {
		t.Errorf("JSON(%%{1 => 2}) = %s", got)
	}
}

func TestFormat_HugeBigInt(t *testing.T) {
	t.Parallel()
	huge := BigInt{V: new(big.Int).Lsh(big.NewInt(1), 1<<20)}
	if got := Format(huge); got != "#BigInt<1048577 bits>" {
		t.Errorf("Format(2^(2^20)) = %.40s, want #BigInt<1048577 bits>", got)
	}
	if got := string(JSON(huge)); got != `"#BigInt\u003c1048577 bits\u003e"` {
		t.Errorf("JSON(2^(2^20)) = %.40s", got)
	}
}
