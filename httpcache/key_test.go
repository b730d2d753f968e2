package httpcache

import (
	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestNormalizeKey(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", 2000)
	tests := []struct {
		name, in, want string
	}{
		{"scheme and host are lowercased", "HTTP://Example.COM/a", "http://example.com/a"},
		{"default http port is removed", "http://example.com:80/a", "http://example.com/a"},
		{"default https port is removed", "https://example.com:443/a", "https://example.com/a"},
		{"other ports are kept", "http://example.com:8080/a", "http://example.com:8080/a"},
		{"port 443 on http is kept", "http://example.com:443/", "http://example.com:443/"},
		{"empty port is the default", "http://example.com:/", "http://example.com/"},
		{"trailing dot of host is removed", "http://example.com./", "http://example.com/"},
		{"empty path becomes slash", "http://example.com", "http://example.com/"},
		{"fragment is dropped", "http://example.com/a#frag", "http://example.com/a"},
		{"unreserved escapes are decoded", "http://h/%7Euser/%41%2d%5F", "http://h/~user/A-_"},
		{"hex is uppercased", "http://h/a%3bb%c3%a9", "http://h/a%3Bb%C3%A9"},
		{"encoded slash stays encoded", "http://h/a%2fb/c", "http://h/a%2Fb/c"},
		{"raw unsafe bytes are encoded", "http://h/a b\"<>", "http://h/a%20b%22%3C%3E"},
		{"sub-delims stay raw", "http://h/a;b=c,d!$'()*+", "http://h/a;b=c,d!$'()*+"},
		{"dot segments are removed", "http://h/a/./b/../c", "http://h/a/c"},
		{"dot segments above root are dropped", "http://h/../../a", "http://h/a"},
		{"trailing dot dot keeps the slash", "http://h/a/b/..", "http://h/a/"},
		{"encoded dots are dot segments", "http://h/a/%2E%2E/b", "http://h/b"},
		{"query is sorted by name", "http://h/?b=2&a=1&c=3", "http://h/?a=1&b=2&c=3"},
		{"query sort is stable", "http://h/?b=2&a=z&a=y", "http://h/?a=z&a=y&b=2"},
		{"utm params are ignored", "http://h/?utm_source=x&a=1&utm_medium=y", "http://h/?a=1"},
		{"fbclid and gclid are ignored", "http://h/p?fbclid=1&gclid=2", "http://h/p"},
		{"encoded ignored name is ignored", "http://h/p?utm%5Fsource=1", "http://h/p"},
		{"empty query parts are dropped", "http://h/?&a=1&&", "http://h/?a=1"},
		{"lone question mark is dropped", "http://h/p?", "http://h/p"},
		{"name without value differs from empty value", "http://h/?a&b=", "http://h/?a&b="},
		{"encoded ampersand stays encoded", "http://h/?a=1%262", "http://h/?a=1%262"},
		{"query escapes are normalized", "http://h/?q=%7e%2f", "http://h/?q=~%2F"},
		{"plus stays literal", "http://h/?q=a+b", "http://h/?q=a+b"},
		{"ipv6 literal", "http://[::1]:80/", "http://[::1]/"},
		{"long keys are hashed", long, long[:MaxKeyLen/2] + "#sha256="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeKey(tt.in, DefaultIgnoreParams)
			if err != nil {
				t.Fatalf("NormalizeKey(%q) error %v", tt.in, err)
			}
			if strings.HasSuffix(tt.want, "#sha256=") {
				if !strings.HasPrefix(got, tt.want) || len(got) != len(tt.want)+64 {
					t.Errorf("NormalizeKey(long) = %q, want prefix %q and a 64-hex hash", got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Errorf("NormalizeKey(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeKey_Errors(t *testing.T) {
	for _, in := range []string{
		"example.com/a", "ftp://h/", "http:///a", "http://h/%zz", "http://h/%4", "http://user@h/",
		"http://h:port/", "http://h:99999999/", "http://[::1/", "http://h h/", "http://h/?a=%",
	} {
		if got, err := NormalizeKey(in, nil); err == nil {
			t.Errorf("NormalizeKey(%q) = %q, want an error", in, got)
		}
	}
	if _, err := NormalizeKey("http://h/", []string{"a*b"}); err == nil {
		t.Errorf("NormalizeKey with ignore pattern %q: want an error", "a*b")
	}
}

func TestNormalizeKey_LongKeysDiffer(t *testing.T) {
	base := "https://example.com/" + strings.Repeat("x", 3000)
	a, _ := NormalizeKey(base+"a", nil)
	b, _ := NormalizeKey(base+"b", nil)
	if a == b {
		t.Errorf("two long URLs that differ at the end got the same key %q", a)
	}
	if len(a) > MaxKeyLen {
		t.Errorf("len(key) = %d, want <= %d", len(a), MaxKeyLen)
	}
}

func TestVariantKey(t *testing.T) {
	names := []string{"Accept-Encoding", "X-Theme"}
	tests := []struct {
		name string
		h    http.Header
		want string
	}{
		{"missing headers are empty", http.Header{}, "Accept-Encoding=&X-Theme="},
		{"case folded where allowed", http.Header{"Accept-Encoding": {"GZIP, br"}}, "Accept-Encoding=gzip,br&X-Theme="},
		{"whitespace normalized", http.Header{"Accept-Encoding": {" gzip ,  br "}}, "Accept-Encoding=gzip,br&X-Theme="},
		{"field lines joined", http.Header{"Accept-Encoding": {"gzip", "br"}}, "Accept-Encoding=gzip,br&X-Theme="},
		{"case kept elsewhere", http.Header{"X-Theme": {"Dark"}}, "Accept-Encoding=&X-Theme=Dark"},
		{"separators are escaped", http.Header{"X-Theme": {"a&X-Theme=b"}}, "Accept-Encoding=&X-Theme=a%26X-Theme%3Db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := variantKey(names, tt.h); got != tt.want {
				t.Errorf("variantKey(%v, %v) = %q, want %q", names, tt.h, got, tt.want)
			}
		})
	}
	if got := variantKey(nil, http.Header{"Accept": {"x"}}); got != "" {
		t.Errorf("variantKey(nil) = %q, want empty", got)
	}
}

// varyStar says what parseVary's star says, without the names.
func TestVaryStar(t *testing.T) {
	for _, lines := range [][]string{nil, {""}, {"*"}, {" * "}, {"Accept-Encoding, *"}, {"Accept-Encoding", "*"}, {"**"}, {"Accept-Encoding,,Cookie"}, {"x*"}} {
		h := http.Header{"Vary": lines}
		if _, star := parseVary(h); varyStar(h) != star {
			t.Errorf("Vary %q: varyStar %v, parseVary's star %v", lines, varyStar(h), star)
		}
		if n := testing.AllocsPerRun(10, func() { varyStar(h) }); n != 0 {
			t.Errorf("Vary %q: varyStar made %v allocations", lines, n)
		}
	}
}

func TestParseVary(t *testing.T) {
	names, star := parseVary(http.Header{"Vary": {"accept-encoding, X-Theme", "Accept-Encoding"}})
	if star || strings.Join(names, ",") != "Accept-Encoding,X-Theme" {
		t.Errorf("parseVary = %v, %v; want [Accept-Encoding X-Theme], false", names, star)
	}
	if _, star := parseVary(http.Header{"Vary": {"Accept, *"}}); !star {
		t.Errorf("parseVary(Accept, *) star = false, want true")
	}
}

func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{
		"http://example.com/a/./b/../c?b=2&a=1", "HTTPS://EXAMPLE.com:443/%7e/%2f?utm_x=1&z&y=",
		"http://[::1]:8080/a%20b", "http://h/..%2F..", "http://h/?a=%26&a=%3d", "http://h./a#f",
		"http://h/" + strings.Repeat("%41", 600),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		k, err := NormalizeKey(in, DefaultIgnoreParams)
		if err != nil {
			return
		}
		if strings.Contains(k, "#") {
			if len(k) > MaxKeyLen || !strings.Contains(k, "#sha256=") {
				t.Fatalf("NormalizeKey(%q) = %q: bad hashed key", in, k)
			}
			return
		}
		if !strings.HasPrefix(k, "http://") && !strings.HasPrefix(k, "https://") {
			t.Fatalf("NormalizeKey(%q) = %q: no scheme prefix", in, k)
		}
		k2, err := NormalizeKey(k, DefaultIgnoreParams)
		if err != nil {
			t.Fatalf("NormalizeKey(NormalizeKey(%q) = %q) error %v", in, k, err)
		}
		if k2 != k {
			t.Fatalf("not idempotent: NormalizeKey(%q) = %q, again = %q", in, k, k2)
		}
		for i := 0; i < len(k); i++ {
			if k[i] <= ' ' || k[i] >= 0x7f {
				t.Fatalf("NormalizeKey(%q) = %q: raw byte %#x", in, k, k[i])
			}
		}
	})
}

func BenchmarkNormalizeKey(b *testing.B) {
	il, _ := newIgnoreList(DefaultIgnoreParams)
	cases := []struct{ name, path, query string }{
		{"clean", "/products/shoes/running", "color=red&size=42"},
		{"messy", "/a/./b/../%7euser/%2f", "utm_source=x&b=2&a=1&fbclid=9"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n, err := normalize("https", "Example.com:443", c.path, c.query, il)
				if err != nil {
					b.Fatal(err)
				}
				_ = n.key()
			}
		})
	}
}

func TestHostCached(t *testing.T) {
	st := storetest.Open(t, store.Options{})
	t.Cleanup(func() { st.Close() })
	up, _ := url.Parse("http://origin.internal:4000")
	p, err := New(Config{Upstream: up, Store: st, Hosts: []string{"Example.com", "shop.example:8443", "plain.example:80"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		scheme, host string
		want         bool
	}{
		{"http", "example.com", true},
		{"https", "EXAMPLE.com:9999", true},
		{"https", "shop.example:8443", true},
		{"https", "shop.example", false},
		{"http", "plain.example", true},
		{"http", "plain.example:80", true},
		{"https", "plain.example", false},
		{"http", "evil.example", false},
		{"http", "example.com.evil", false},
	}
	for _, tt := range tests {
		n, err := normalize(tt.scheme, tt.host, "/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.hostCached(&n); got != tt.want {
			t.Errorf("hostCached(%s://%s) = %v, want %v", tt.scheme, tt.host, got, tt.want)
		}
	}
}
