package erlterm

import (
	"encoding/base64"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Format renders t the way Elixir's inspect/1 prints it, on one line:
//
//	%{id: "phx-F5UgOQKJJCK_shjD", session: %{}, view: MyAppWeb.UserLive.Show}
//	{:default, 1699299605376054467}
//	nil, true, false, :ok, [a: 1], ~c"abc", "text", <<1, 2, 3>>
//
// Binaries that are printable UTF-8 print as strings, others as <<…>>.
// Maps print in encoded order. A nil Term prints as "<nil>".
func Format(t Term) string {
	var sb strings.Builder
	formatTo(&sb, t)
	return sb.String()
}

// String implementations make every term print in Elixir form with %v;
// each is [Format] of the term.

// String returns [Format] of the Int.
func (x Int) String() string { return Format(x) }

// String returns [Format] of the BigInt.
func (x BigInt) String() string { return Format(x) }

// String returns [Format] of the Float.
func (x Float) String() string { return Format(x) }

// String returns [Format] of the Atom.
func (x Atom) String() string { return Format(x) }

// String returns [Format] of the Binary.
func (x Binary) String() string { return Format(x) }

// String returns [Format] of the BitBinary.
func (x BitBinary) String() string { return Format(x) }

// String returns [Format] of the Charlist.
func (x Charlist) String() string { return Format(x) }

// String returns [Format] of the List.
func (x List) String() string { return Format(x) }

// String returns [Format] of the ImproperList.
func (x ImproperList) String() string { return Format(x) }

// String returns [Format] of the Tuple.
func (x Tuple) String() string { return Format(x) }

// String returns [Format] of the Map.
func (x Map) String() string { return Format(x) }

// String returns [Format] of the Pid.
func (x Pid) String() string { return Format(x) }

// String returns [Format] of the Port.
func (x Port) String() string { return Format(x) }

// String returns [Format] of the Ref.
func (x Ref) String() string { return Format(x) }

// String returns [Format] of the Fun.
func (x Fun) String() string { return Format(x) }

// String returns [Format] of the Export.
func (x Export) String() string { return Format(x) }

var (
	identAtom  = regexp.MustCompile(`^[\p{Ll}_][\p{L}\p{N}_@]*[?!]?$`)
	moduleName = regexp.MustCompile(`^Elixir(\.[A-Z][a-zA-Z0-9_]*)+$`)
)

// atomText renders an atom as an expression: nil, :ok, MyApp.Mod, :"a b".
func atomText(a Atom) string {
	s := string(a)
	switch s {
	case "nil", "true", "false":
		return s
	}
	if moduleName.MatchString(s) {
		return s[len("Elixir."):]
	}
	if identAtom.MatchString(s) {
		return ":" + s
	}
	return ":" + quote(s)
}

// keyText renders an atom as a keyword key without the colon: "id", "\"a b\"".
func keyText(a Atom) string {
	s := string(a)
	if identAtom.MatchString(s) || s == "nil" || s == "true" || s == "false" {
		return s
	}
	return quote(s)
}

func quote(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for i, r := range s {
		switch r {
		case '"':
			sb.WriteString(`\"`)
		case '\\':
			sb.WriteString(`\\`)
		case '\n':
			sb.WriteString(`\n`)
		case '\t':
			sb.WriteString(`\t`)
		case '\r':
			sb.WriteString(`\r`)
		case '#':
			if i+1 < len(s) && s[i+1] == '{' {
				sb.WriteString(`\#`)
			} else {
				sb.WriteByte('#')
			}
		default:
			if unicode.IsPrint(r) {
				sb.WriteRune(r)
			} else {
				sb.WriteString(`\x{` + strconv.FormatInt(int64(r), 16) + `}`)
			}
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// printable reports whether b is UTF-8 made of printable characters and the
// usual whitespace escapes, as Elixir's String.printable?/1.
func printable(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		if !unicode.IsPrint(r) && !strings.ContainsRune("\n\t\r\v\b\f\x1b\a", r) {
			return false
		}
		b = b[n:]
	}
	return true
}

func formatTo(sb *strings.Builder, t Term) {
	switch x := t.(type) {
	case nil:
		sb.WriteString("<nil>")
	case Int:
		sb.WriteString(strconv.FormatInt(int64(x), 10))
	case BigInt:
		sb.WriteString(bigText(x))
	case Float:
		sb.WriteString(formatFloat(float64(x)))
	case Atom:
		sb.WriteString(atomText(x))
	case Binary:
		if printable(x) {
			sb.WriteString(quote(string(x)))
			return
		}
		sb.WriteString("<<")
		for i, c := range x {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(strconv.Itoa(int(c)))
		}
		sb.WriteString(">>")
	case BitBinary:
		sb.WriteString("<<")
		n := len(x.Data)
		for i, c := range x.Data {
			if i > 0 {
				sb.WriteString(", ")
			}
			if i == n-1 && x.Bits < 8 {
				sb.WriteString(strconv.Itoa(int(c >> (8 - x.Bits))))
				sb.WriteString("::size(" + strconv.Itoa(int(x.Bits)) + ")")
			} else {
				sb.WriteString(strconv.Itoa(int(c)))
			}
		}
		sb.WriteString(">>")
	case Charlist:
		if len(x) == 0 {
			sb.WriteString("[]")
		} else if printable(x) {
			sb.WriteString("~c" + quote(string(x)))
		} else {
			sb.WriteByte('[')
			for i, c := range x {
				if i > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString(strconv.Itoa(int(c)))
			}
			sb.WriteByte(']')
		}
	case List:
		formatList(sb, x, nil)
	case ImproperList:
		formatList(sb, x.Elems, x.Tail)
	case Tuple:
		sb.WriteByte('{')
		for i, e := range x {
			if i > 0 {
				sb.WriteString(", ")
			}
			formatTo(sb, e)
		}
		sb.WriteByte('}')
	case Map:
		formatMap(sb, x)
	case Pid:
		sb.WriteString("#PID<" + nodePrefix(x.Node) + "." + u32(x.ID) + "." + u32(x.Serial) + ">")
	case Port:
		sb.WriteString("#Port<" + nodePrefix(x.Node) + "." + strconv.FormatUint(x.ID, 10) + ">")
	case Ref:
		sb.WriteString("#Reference<" + nodePrefix(x.Node))
		for i := len(x.ID) - 1; i >= 0; i-- {
			sb.WriteString("." + u32(x.ID[i]))
		}
		sb.WriteByte('>')
	case Fun:
		if x.Old {
			sb.WriteString("#Function<" + strconv.FormatInt(int64(x.OldIndex), 10) + "." + strconv.FormatInt(int64(x.OldUniq), 10) + " in " + moduleText(x.Module) + ">")
		} else {
			sb.WriteString("#Function<" + u32(x.Index) + "." + strconv.FormatInt(int64(x.OldUniq), 10) + "/" + strconv.Itoa(int(x.Arity)) + " in " + moduleText(x.Module) + ">")
		}
	case Export:
		sb.WriteString("&" + moduleText(x.Module) + "." + funName(x.Function) + "/" + strconv.Itoa(int(x.Arity)))
	default:
		sb.WriteString("<unknown term>")
	}
}

// maxBigBits bounds the integers printed in decimal: converting a
// megabyte-long integer (possible inside a 1 MiB compressed term) to decimal
// takes seconds.
const maxBigBits = 1 << 14

// bigText is the decimal form of x, or #BigInt<N bits> when x is huge.
func bigText(x BigInt) string {
	if x.V == nil {
		return "0"
	}
	if x.V.BitLen() > maxBigBits {
		return "#BigInt<" + strconv.Itoa(x.V.BitLen()) + " bits>"
	}
	return x.V.String()
}

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// nodePrefix is 0 for the local node (nonode@nohost), as iex prints it,
// and the node name otherwise (the real node index is not in the bytes).
func nodePrefix(n Atom) string {
	if n == "nonode@nohost" || n == "" {
		return "0"
	}
	return string(n)
}

func moduleText(a Atom) string {
	if moduleName.MatchString(string(a)) {
		return string(a)[len("Elixir."):]
	}
	return atomText(a)
}

func funName(a Atom) string {
	if identAtom.MatchString(string(a)) {
		return string(a)
	}
	return quote(string(a))
}

func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	abs := math.Abs(f)
	if abs != 0 && (abs >= 1e16 || abs < 1e-4) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		mant, exp, _ := strings.Cut(s, "e")
		if !strings.Contains(mant, ".") {
			mant += ".0"
		}
		exp = strings.TrimPrefix(exp, "+")
		neg := strings.HasPrefix(exp, "-")
		exp = strings.TrimLeft(strings.TrimPrefix(exp, "-"), "0")
		if neg {
			exp = "-" + exp
		}
		return mant + "e" + exp
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func isKeyword(elems []Term) bool {
	if len(elems) == 0 {
		return false
	}
	for _, e := range elems {
		t, ok := e.(Tuple)
		if !ok || len(t) != 2 {
			return false
		}
		if _, ok := t[0].(Atom); !ok {
			return false
		}
	}
	return true
}

func formatList(sb *strings.Builder, elems []Term, tail Term) {
	sb.WriteByte('[')
	kw := tail == nil && isKeyword(elems)
	for i, e := range elems {
		if i > 0 {
			sb.WriteString(", ")
		}
		if kw {
			t := e.(Tuple)
			sb.WriteString(keyText(t[0].(Atom)) + ": ")
			formatTo(sb, t[1])
			continue
		}
		formatTo(sb, e)
	}
	if tail != nil {
		sb.WriteString(" | ")
		formatTo(sb, tail)
	}
	sb.WriteByte(']')
}

func formatMap(sb *strings.Builder, m Map) {
	allAtoms := true
	var structName Atom
	for _, p := range m {
		k, ok := p.Key.(Atom)
		if !ok {
			allAtoms = false
			continue
		}
		if k == "__struct__" {
			if v, ok := p.Value.(Atom); ok && moduleName.MatchString(string(v)) {
				structName = v
			}
		}
	}
	if allAtoms && structName != "" {
		sb.WriteString("%" + string(structName)[len("Elixir."):] + "{")
	} else {
		sb.WriteString("%{")
	}
	first := true
	for _, p := range m {
		if allAtoms && structName != "" && p.Key == Atom("__struct__") {
			continue
		}
		if !first {
			sb.WriteString(", ")
		}
		first = false
		if allAtoms {
			sb.WriteString(keyText(p.Key.(Atom)) + ": ")
		} else {
			formatTo(sb, p.Key)
			sb.WriteString(" => ")
		}
		formatTo(sb, p.Value)
	}
	sb.WriteByte('}')
}

// JSON returns the JSON form of t (see [AppendJSON]).
func JSON(t Term) []byte {
	return AppendJSON(nil, t)
}

// AppendJSON appends a JSON form of t to dst. It is meant for display in
// APIs, not for round trips:
//
//   - nil, true, false → null, true, false; other atoms → the Elixir
//     expression as a string (":default", "MyApp.Mod").
//   - integers → JSON numbers (exact digits, also beyond 2^53); floats →
//     numbers (non-finite ones as strings).
//   - printable binaries → strings; other binaries and bitstrings →
//     {"binary": "<base64>"} (plus "bits" for a bitstring).
//   - proper lists and charlists → arrays; improper lists →
//     {"list": [...], "tail": ...}; tuples → {"tuple": [...]}.
//   - maps whose keys are all atoms or printable binaries → objects in
//     encoded order; other maps → {"map": [[key, value], ...]}.
//   - pids, ports, references, funs → their Elixir text as a string.
func AppendJSON(dst []byte, t Term) []byte {
	switch x := t.(type) {
	case nil:
		return append(dst, "null"...)
	case Int:
		return strconv.AppendInt(dst, int64(x), 10)
	case BigInt:
		if t := bigText(x); t[0] != '#' {
			return append(dst, t...)
		}
		return appendJSONString(dst, bigText(x))
	case Float:
		f := float64(x)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return strconv.AppendQuote(dst, formatFloat(f))
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	case Atom:
		switch x {
		case "nil":
			return append(dst, "null"...)
		case "true", "false":
			return append(dst, x...)
		}
		return appendJSONString(dst, atomText(x))
	case Binary:
		if printable(x) {
			return appendJSONString(dst, string(x))
		}
		dst = append(dst, `{"binary":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, `"}`...)
	case BitBinary:
		dst = append(dst, `{"binary":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, x.Data)
		dst = append(dst, `","bits":`...)
		dst = strconv.AppendInt(dst, int64(x.Bits), 10)
		return append(dst, '}')
	case Charlist:
		dst = append(dst, '[')
		for i, c := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(c), 10)
		}
		return append(dst, ']')
	case List:
		return appendJSONArray(dst, x)
	case ImproperList:
		dst = append(dst, `{"list":`...)
		dst = appendJSONArray(dst, x.Elems)
		dst = append(dst, `,"tail":`...)
		dst = AppendJSON(dst, x.Tail)
		return append(dst, '}')
	case Tuple:
		dst = append(dst, `{"tuple":`...)
		dst = appendJSONArray(dst, x)
		return append(dst, '}')
	case Map:
		object := true
		for _, p := range x {
			switch k := p.Key.(type) {
			case Atom:
			case Binary:
				object = object && printable(k)
			default:
				object = false
			}
		}
		if object {
			dst = append(dst, '{')
			for i, p := range x {
				if i > 0 {
					dst = append(dst, ',')
				}
				switch k := p.Key.(type) {
				case Atom:
					dst = appendJSONString(dst, string(k))
				case Binary:
					dst = appendJSONString(dst, string(k))
				}
				dst = append(dst, ':')
				dst = AppendJSON(dst, p.Value)
			}
			return append(dst, '}')
		}
		dst = append(dst, `{"map":[`...)
		for i, p := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '[')
			dst = AppendJSON(dst, p.Key)
			dst = append(dst, ',')
			dst = AppendJSON(dst, p.Value)
			dst = append(dst, ']')
		}
		return append(dst, "]}"...)
	}
	return appendJSONString(dst, Format(t))
}

func appendJSONArray(dst []byte, ts []Term) []byte {
	dst = append(dst, '[')
	for i, e := range ts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSON(dst, e)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r < 0x20 || r == 0x2028 || r == 0x2029 || r == '<' || r == '>' || r == '&':
			dst = append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return append(dst, '"')
}
