package livesocket

import (
	"path"
	"testing"
)

// TestCleanPath checks that cleanPath is path.Clean("/" + p), the
// routing Plug does, and that an already clean path costs no allocation
// (Wrap runs it on every request of the public listener).
func TestCleanPath(t *testing.T) {
	for _, p := range []string{"", "/", "//", "/live", "live", "/live/", "//live//websocket", "/a/../live/./websocket",
		"/..", "..", "./live", "/live/websocket/..", "/p/1", "/%2e%2e/live", "/a//"} {
		if got, want := cleanPath(p), path.Clean("/"+p); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", p, got, want)
		}
	}
	p := "/p/some/page"
	if n := testing.AllocsPerRun(100, func() { _ = cleanPath(p) }); n != 0 {
		t.Errorf("cleanPath(%q): %v allocations, want 0", p, n)
	}
}
