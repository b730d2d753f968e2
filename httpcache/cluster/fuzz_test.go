package cluster

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/admin"
)

func messageSeeds(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, sel := range []Selector{
		{Keys: []string{"https://a.test/", "https://a.test/b?x=1"}},
		{Prefix: "https://a.test/blog/"},
		{Tag: "product-42"},
		{Tag: "t", Soft: true},
		{All: true},
	} {
		m := newMessage("node-1", kindOf(sel), sel, now)
		b, err := m.encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	m := newMessage("node-1", KindUnsafe, Selector{Keys: []string{"https://a.test/form"}}, now)
	b, _ := m.encode()
	f.Add(b)
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"v":2,"id":"x","kind":"all","all":true}`,
		`{"v":1,"id":"x","kind":"key","prefix":"p"}`,
		`{"v":1,"id":"x","kind":"all","all":true,"soft":true}`,
		`{"v":1,"id":"x","kind":"key","keys":["a\u0000b"]}`,
		`{"v":1,"id":"x","kind":"unsafe","keys":["k"],"soft":true}`,
		`{"v":1,"id":"","kind":"all","all":true}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzDecodeMessage: whatever arrives on the stream, decoding never
// panics; what it accepts is a valid selector of its kind that survives a
// round trip, and what it refuses wraps ErrInvalid (so the node drops its
// cache instead of skipping a purge).
func FuzzDecodeMessage(f *testing.F) {
	messageSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeMessage error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := m.Selector.Validate(); err != nil {
			t.Fatalf("accepted message with invalid selector: %v", err)
		}
		if m.Kind != kindOf(m.Selector) && m.Kind != KindUnsafe {
			t.Fatalf("accepted kind %q for selector %+v", m.Kind, m.Selector)
		}
		enc, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("re-decoding an accepted message: %v", err)
		}
		if !reflect.DeepEqual(normalize(m), normalize(m2)) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
	})
}

func normalize(m Message) Message {
	m.Time = m.Time.UTC()
	return m
}

// FuzzDecodeHeartbeat: heartbeats come from the network; decoding never
// panics and never accepts an invalid node id or receiver-side fields.
func FuzzDecodeHeartbeat(f *testing.F) {
	b, _ := json.Marshal(NodeInfo{ClusterNode: admin.ClusterNode{ID: "web-1-8080", Applied: 7, Serving: true}, Time: time.Unix(1, 0).UTC()})
	f.Add(b)
	f.Add([]byte(`{"id":"a b"}`))
	f.Add([]byte(`{"id":"x","gone":true,"self":true}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		hb, err := DecodeHeartbeat(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if !nodeIDRE.MatchString(hb.ID) || hb.Gone || hb.Self || !hb.LastSeen.IsZero() {
			t.Fatalf("accepted %+v", hb)
		}
	})
}

func TestSelector_Validate(t *testing.T) {
	long := make([]string, MaxKeys+1)
	for i := range long {
		long[i] = "k"
	}
	tests := []struct {
		name string
		sel  Selector
		ok   bool
	}{
		{"one key", Selector{Keys: []string{"k"}}, true},
		{"soft prefix", Selector{Prefix: "p", Soft: true}, true},
		{"nothing", Selector{}, false},
		{"two selectors", Selector{Prefix: "p", Tag: "t"}, false},
		{"soft all", Selector{All: true, Soft: true}, false},
		{"empty key", Selector{Keys: []string{""}}, false},
		{"NUL in tag", Selector{Tag: "a\x00"}, false},
		{"too many keys", Selector{Keys: long}, false},
		{"prefix too long", Selector{Prefix: strings.Repeat("a", MaxPrefix+1)}, false},
	}
	for _, tt := range tests {
		err := tt.sel.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
