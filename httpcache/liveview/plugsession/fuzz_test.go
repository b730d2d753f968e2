package plugsession

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
)

func fuzzCodecs(t testing.TB, v *vectors) (signed, encrypted *Codec) {
	signed, err := NewCodec(Config{SecretKeyBase: v.SecretKeyBase, SigningSalt: v.SigningSalt})
	if err != nil {
		t.Fatal(err)
	}
	encrypted, err = NewCodec(Config{SecretKeyBase: v.SecretKeyBase, SigningSalt: v.SigningSalt, EncryptionSalt: v.EncryptionSalt})
	if err != nil {
		t.Fatal(err)
	}
	return signed, encrypted
}

// FuzzCodecDecode feeds cookie values to the signed and the encrypted
// codec: never a panic, every error one of the documented kinds, and a
// decoded session encodes and decodes back to itself.
func FuzzCodecDecode(f *testing.F) {
	v := loadVectors(f)
	for _, s := range v.Sessions {
		f.Add(s.Signed)
		f.Add(s.Encrypted)
		f.Add(s.Signed[:len(s.Signed)/2])
	}
	f.Add(v.LegacySession.Encrypted)
	f.Add("SFMyNTY..")
	f.Add("XCP.")
	f.Add("QTEyOEdDTQ.....")
	f.Add("SFMzODQ.YQ==.YQ==")
	signed, encrypted := fuzzCodecs(f, v)
	f.Fuzz(func(t *testing.T, value string) {
		for _, c := range []*Codec{signed, encrypted} {
			m, err := c.Decode(value)
			if err != nil {
				if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUndecodable) && !errors.Is(err, ErrNotMap) {
					t.Fatalf("Decode(%q): undocumented error %v", value, err)
				}
				continue
			}
			out, err := c.Encode(m)
			if err != nil {
				t.Fatalf("Encode(Decode(%q)): %v", value, err)
			}
			back, err := c.Decode(out)
			if err != nil || !erlterm.Equal(back, m) {
				t.Fatalf("round trip of %q: %s, %v", value, erlterm.Format(back), err)
			}
		}
	})
}

// FuzzUnmask checks the masked-token parser: never a panic, and whatever
// unmasks validates against its own token, and masks back to itself when
// written in canonical base64url.
func FuzzUnmask(f *testing.F) {
	v := loadVectors(f)
	for _, c := range v.CSRFMask {
		f.Add(c.Masked)
	}
	for _, c := range v.CSRFValid {
		f.Add(c.Masked)
	}
	f.Add(strings.Repeat("=", MaskedTokenSize))
	f.Fuzz(func(t *testing.T, masked string) {
		un, err := Unmask(masked)
		if err != nil {
			if !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("Unmask(%q): %v", masked, err)
			}
			if ValidMasked(strings.Repeat("A", TokenSize), masked) && len(masked) == MaskedTokenSize {
				t.Fatalf("ValidMasked accepts %q, which Unmask refuses", masked)
			}
			return
		}
		if len(un) != TokenSize || !ValidMasked(un, masked) {
			t.Fatalf("Unmask(%q) = %q, which ValidMasked refuses", masked, un)
		}
		re, err := Mask(un, masked[32:])
		if err != nil || !ValidMasked(un, re) {
			t.Fatalf("Mask(Unmask(%q)) = %q, %v: not valid", masked, re, err)
		}
		if d, _ := decodeMaskedPart(masked[:32]); base64.URLEncoding.EncodeToString(d) == masked[:32] && re != masked {
			t.Fatalf("Mask(Unmask(%q)) = %q, want the input back", masked, re)
		}
	})
}

// FuzzFindTokens checks the splice-point finder: never a panic, and
// whatever it accepts is a valid Page whose spans all hold one token.
func FuzzFindTokens(f *testing.F) {
	v := loadVectors(f)
	tok := v.CSRFMask[0].Masked
	f.Add(phxPage(tok), "")
	f.Add(phxPage(tok), tok)
	f.Add([]byte(`<meta name=csrf-token content=`+tok+`>`), "")
	f.Add([]byte(`<script><meta name="csrf-token" content="`+tok+`"></script>`), "")
	f.Add([]byte(`<!-- <input name="_csrf_token" value="`+tok+`"> -->`), "")
	f.Add([]byte(`<a data-csrf='`+tok+`' data-csrf="x">`), "")
	f.Add([]byte(`<textarea></textarea x><meta name="csrf-token" content="`+tok), "")
	f.Fuzz(func(t *testing.T, body []byte, token string) {
		spans, err := FindTokens(body, FindOptions{Token: token})
		if err != nil {
			var fe *FindError
			if !errors.As(err, &fe) {
				t.Fatalf("FindTokens error %v is not a *FindError", err)
			}
			return
		}
		p, err := NewPage(body, spans)
		if err != nil {
			t.Fatalf("FindTokens spans %v refused by NewPage: %v", spans, err)
		}
		first := string(body[spans[0].Start:spans[0].End])
		if _, err := Unmask(first); err != nil {
			t.Fatalf("accepted token %q does not unmask: %v", first, err)
		}
		if n := bytes.Count(body, []byte(first)); n != len(p.Spans()) {
			t.Fatalf("token occurs %d times, %d spans", n, len(p.Spans()))
		}
	})
}

// FuzzParseSetCookie: never a panic, and formatting what was parsed parses
// to the same attributes.
func FuzzParseSetCookie(f *testing.F) {
	v := loadVectors(f)
	for _, c := range v.SetCookies {
		f.Add(c.SetCookie)
	}
	f.Add("a=b; Expires=Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add("a=b; max-age=x")
	f.Add("=b")
	f.Fuzz(func(t *testing.T, line string) {
		name, value, attrs, err := ParseSetCookie(line)
		if err != nil {
			if !errors.Is(err, ErrSetCookie) {
				t.Fatalf("ParseSetCookie(%q): %v", line, err)
			}
			return
		}
		out := attrs.Format(name, value, fixedNow)
		n2, v2, a2, err := ParseSetCookie(out)
		if err != nil || n2 != name || v2 != value || a2.Format(n2, v2, fixedNow) != out {
			t.Fatalf("ParseSetCookie(Format(%q)) = %q %q %+v, %v; formatted %q", line, n2, v2, a2, err, out)
		}
	})
}
