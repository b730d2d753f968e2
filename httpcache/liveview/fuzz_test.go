package liveview

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache"
)

// TestLint_HostileTokensInPage puts every hostile token in a page: each is
// a bad-token finding, and the page is refused.
func TestLint_HostileTokensInPage(t *testing.T) {
	t.Parallel()
	l := newLinter(t, Config{})
	var page strings.Builder
	files, err := filepath.Glob(filepath.Join(fixtures, "hostile", "*.token"))
	if err != nil || len(files) < 10 {
		t.Fatalf("hostile fixtures: %d files, %v", len(files), err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		page.WriteString(`<div data-phx-session="` + strings.TrimSpace(string(b)) + `"></div>`)
	}
	v := l.Inspect(nil, &httpcache.Response{Status: 200, Header: htmlHeader(), Body: []byte(page.String())})
	if v.Refuse != "liveview-bad-token" {
		t.Errorf("Refuse = %q, want liveview-bad-token", v.Refuse)
	}
	rep := l.Lint(htmlHeader(), []byte(page.String()))
	if len(rep.Tokens) != len(files) {
		t.Errorf("found %d tokens, want %d", len(rep.Tokens), len(files))
	}
}

// FuzzLint: the linter never panics on any body, and blanking keeps the
// body well-formed around the meta tag.
func FuzzLint(f *testing.F) {
	f.Add(readPage(f))
	f.Add(`<meta name="csrf-token" content='x'><div data-phx-session='SFMyNTY.g2gDYQFuBgAAaOXPiwFiAAFRgA.x'>`)
	f.Add(`<meta content="a" name=csrf-token><meta name="csrf-token">`)
	l := newLinter(f, Config{Policy: map[Kind]Action{KindCSRFMeta: Strip}})
	f.Fuzz(func(t *testing.T, body string) {
		defer watchdog(body)()
		res := &httpcache.Response{Status: 200, Header: htmlHeader(), Body: []byte(body)}
		v := l.Inspect(nil, res)
		if v.Refuse == "" && len(res.Body) > len(body) {
			t.Fatalf("stored body grew from %d to %d bytes", len(body), len(res.Body))
		}
	})
}

// watchdog crashes the fuzz worker, with every goroutine's stack, when one
// input runs for more than 10 s (a hang never reaches a deferred check);
// the fuzzer then saves the input as a crasher.
func watchdog(in string) (stop func()) {
	t := time.AfterFunc(10*time.Second, func() {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		os.Stderr.Write(buf[:n])
		panic(fmt.Sprintf("input of %d bytes runs for more than 10s", len(in)))
	})
	return func() { t.Stop() }
}
