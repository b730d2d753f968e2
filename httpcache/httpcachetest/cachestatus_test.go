package httpcachetest

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestParseCacheStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []Member
	}{
		{"empty is no members", "", nil},
		{"one member with bare and valued params", "firstrender; hit; ttl=60",
			[]Member{{"firstrender", []Param{{"hit", "?1"}, {"ttl", "60"}}}}},
		{"members keep their order", `origin; fwd=uri-miss, firstrender; fwd=stale; fwd-status=304; stored`,
			[]Member{{"origin", []Param{{"fwd", "uri-miss"}}}, {"firstrender", []Param{{"fwd", "stale"}, {"fwd-status", "304"}, {"stored", "?1"}}}}},
		{"commas and semicolons in strings do not split", `"my cache"; detail="a, b; c \"d\""`,
			[]Member{{"my cache", []Param{{"detail", `a, b; c "d"`}}}}},
		{"negative integers", "firstrender; hit; ttl=-10",
			[]Member{{"firstrender", []Param{{"hit", "?1"}, {"ttl", "-10"}}}}},
	}
	for _, tt := range tests {
		got, err := ParseCacheStatus(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ParseCacheStatus(%q) = %+v, %v; want %+v", tt.name, tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`x; detail="open`, "a,,b", "a,", "a; =1", "a; Hit", "a b", `a; detail="\x"`, "a; k=?2"} {
		if got, err := ParseCacheStatus(bad); err == nil {
			t.Errorf("ParseCacheStatus(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestMember_MatchLacks(t *testing.T) {
	t.Parallel()
	h := http.Header{"Cache-Status": {"origin; hit; ttl=5", `firstrender; fwd=uri-miss; stored; ttl=600; detail="csrf meta token"`}}
	m, err := Find(h, "firstrender")
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"stored", "ttl=600", `fwd=uri-miss; detail="csrf meta token"`, ""} {
		if err := m.Match(spec); err != nil {
			t.Errorf("Match(%q) = %v, want nil", spec, err)
		}
	}
	for _, spec := range []string{"ttl=60", "hit", "fwd=miss", "detail=csrf"} {
		if err := m.Match(spec); err == nil {
			t.Errorf("Match(%q) on `%s` = nil, want an error", spec, m)
		}
	}
	if err := m.Lacks("hit; ttl=60; detail=other"); err != nil {
		t.Errorf("Lacks = %v, want nil", err)
	}
	for _, spec := range []string{"stored", "ttl", "ttl=600"} {
		if err := m.Lacks(spec); err == nil {
			t.Errorf("Lacks(%q) = nil, want an error", spec)
		}
	}
	if _, err := Find(h, "nginx"); err == nil {
		t.Errorf("Find(nginx) found a member, want an error")
	}
}

// FuzzParseCacheStatus: no panic, and what parses renders back to a value
// that parses to the same members.
func FuzzParseCacheStatus(f *testing.F) {
	for _, s := range []string{"firstrender; hit; ttl=60", `a; detail="x, y", b; fwd=stale; fwd-status=304`, `"q"; k=?1`, "a,,b", `x; detail="\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseCacheStatus(s)
		if err != nil {
			return
		}
		parts := make([]string, len(ms))
		for i, m := range ms {
			parts[i] = m.String()
		}
		back, err := ParseCacheStatus(strings.Join(parts, ", "))
		if err != nil || !reflect.DeepEqual(back, ms) {
			t.Fatalf("ParseCacheStatus(%q) = %+v; rendered %q parses as %+v, %v", s, ms, strings.Join(parts, ", "), back, err)
		}
	})
}
