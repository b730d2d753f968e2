package server

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/store"
)

// TestAdmin_CompactOnline: POST compact on a running server compacts the
// store in place: the file on disk shrinks to what the reply says, the
// pages that stayed still hit (from the memory tier and from the file),
// new pages are stored on the compacted file, and a restart finds them.
func TestAdmin_CompactOnline(t *testing.T) {
	t.Parallel()
	origin, counts := countingOrigin(t)
	db := filepath.Join(t.TempDir(), "fr.db")
	s := startServer(t, Config{Upstream: mustURL(t, origin.URL), DB: db, AdminToken: testToken})
	c := adminClient(t, s.admin, testToken)
	isHit := func(p string) bool {
		res, _ := fetch(t, "GET", s.public+p)
		return strings.Contains(res.Header.Get("Cache-Status"), "firstrender; hit")
	}
	for i := range 40 {
		fetch(t, "GET", s.public+fmt.Sprintf("/gone/%d", i))
	}
	for _, p := range []string{"/keep/1", "/keep/2"} {
		fetch(t, "GET", s.public+p)
	}
	s.stored(t)
	key, err := s.srv.Proxy().Key(s.public + "/gone/0")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.Purge(tctx(t), admin.PurgeRequest{Prefix: strings.TrimSuffix(key, "0")}); err != nil || res.Count != 40 {
		t.Fatalf("purge /gone/ = %+v, %v; want 40", res, err)
	}
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}

	res, err := c.Compact(tctx(t))
	if err != nil {
		t.Fatalf("POST compact = %v", err)
	}
	t.Logf("POST compact = %+v", res)
	after, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if res.BeforeBytes != fi.Size() || res.AfterBytes != after.Size() || res.AfterBytes >= res.BeforeBytes {
		t.Errorf("POST compact = %+v; file was %d bytes, is %d: want the reply to match and the file to shrink", res, fi.Size(), after.Size())
	}
	if _, err := os.Stat(db + store.CompactSuffix); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	for _, p := range []string{"/keep/1", "/keep/2"} {
		if !isHit(p) || hits(counts, p) != 1 {
			t.Errorf("after compaction %s is not a hit (origin asked %d times)", p, hits(counts, p))
		}
	}
	if isHit("/gone/3") {
		t.Error("a purged page hits after compaction")
	}
	fetch(t, "GET", s.public+"/new")
	s.stored(t)
	if !isHit("/new") {
		t.Error("a page fetched after compaction is not stored")
	}
	var keys []string
	for _, p := range []string{"/keep/1", "/keep/2", "/new"} {
		k, err := s.srv.Proxy().Key(s.public + p)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}

	// The file the server left is the compacted one and holds every page.
	st, err := store.Open(db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n := st.Stats().Records; n != 4 { // with /gone/3, fetched again above
		t.Errorf("reopened store: %d records, want 4", n)
	}
	for _, k := range keys {
		if _, err := st.Get(tctx(t), k, ""); err != nil {
			t.Errorf("reopened store: Get(%q) = %v", k, err)
		}
	}
}
