package httpcachetest

import (
	"net/http"
	"strings"
	"testing"
)

// PoisonCase is one row of [Poison]: an attacker's request A for Path,
// then a clean request B for the same Path.
type PoisonCase struct {
	// Name is the subtest's name, a short sentence.
	Name string
	// Path is the request target of both requests (relative to Front).
	Path string
	// Method is A's method; "" means GET. B is always a GET.
	Method string
	// A lists A's header pairs ("Name", "value", ...); ModA, when set,
	// changes A further (its Host, say).
	A    []string
	ModA func(*http.Request)
	// B lists the clean request's header pairs; nil is a plain GET.
	B []string
	// Repeat sends A this many times before B (0 means once), to fill
	// every variant or outlast a hit-for-pass window.
	Repeat int
	// Compare lists the response header fields B must get exactly as it
	// gets them from a cache A never reached. If nil, Content-Type,
	// Content-Encoding, Content-Range and Set-Cookie.
	Compare []string
	// Check, when set, checks more: a is A's response, b is B's after A,
	// base is B's from a cache A never reached.
	Check func(t *testing.T, a, b, base Result)
}

// PoisonHost is the Host of [Poison]'s requests (unless ModA changes A's):
// the same for both rigs, whose ports differ. A handler under test must
// serve it (an httpcache.Proxy does by default).
const PoisonHost = "localhost"

var defaultCompare = []string{"Content-Type", "Content-Encoding", "Content-Range", "Set-Cookie"}

// Poison runs the table "poison with request A, then send the clean
// request B and compare what B gets": for each case it starts a rig with
// build in front of the [Echo] origin, sends A (Repeat times) and then B,
// and fails unless B's status, body and Compare fields equal those B gets
// from a second, fresh rig that A never reached. Because Echo reflects
// the headers a cache must key on, strip or refuse (DefaultReflect), any
// of A's inputs that reached a stored response B is served shows up as a
// difference.
func Poison[H Handler](t *testing.T, build func(Env) (H, error), cases []PoisonCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			send := func(r *Rig[H], method string, hdr []string, mod func(*http.Request), attack bool) Result {
				res, err := r.TryWith(method, c.Path, func(req *http.Request) {
					// One Host for both rigs (their ports differ), so what
					// the origin is told about the host is the same.
					req.Host = PoisonHost
					for i := 0; i+1 < len(hdr); i += 2 {
						req.Header.Add(hdr[i], hdr[i+1])
					}
					if mod != nil {
						mod(req)
					}
				})
				if err != nil && attack {
					// The attack may end in a response cut short: what
					// matters is what B gets next.
					t.Logf("A: %v", err)
				} else if err != nil {
					t.Fatalf("B: %v", err)
				}
				return res
			}
			method := c.Method
			if method == "" {
				method = http.MethodGet
			}
			poisoned := New(t, Echo, build)
			var a Result
			for i := 0; i < max(c.Repeat, 1); i++ {
				a = send(poisoned, method, c.A, c.ModA, true)
			}
			b := send(poisoned, http.MethodGet, c.B, nil, false)
			base := send(New(t, Echo, build), http.MethodGet, c.B, nil, false)
			if b.Status != base.Status {
				t.Errorf("after A, B got status %d, want %d (as without A)\nA: %d %q\nB's Cache-Status: %q", b.Status, base.Status, a.Status, a.Header.Get("Cache-Status"), b.Header.Get("Cache-Status"))
			}
			if b.Body != base.Body {
				t.Errorf("after A, B got body\n%s\nwant (as without A)\n%s\nB's Cache-Status: %q", indent(b.Body), indent(base.Body), b.Header.Get("Cache-Status"))
			}
			compare := c.Compare
			if compare == nil {
				compare = defaultCompare
			}
			for _, k := range compare {
				if got, want := strings.Join(b.Header.Values(k), ", "), strings.Join(base.Header.Values(k), ", "); got != want {
					t.Errorf("after A, B got %s %q, want %q (as without A)", k, got, want)
				}
			}
			if c.Check != nil {
				c.Check(t, a, b, base)
			}
		})
	}
}

func indent(s string) string {
	return "\t" + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n\t")
}
