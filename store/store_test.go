package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var ctx = context.Background()

func mkrec(key, variant string, tags ...string) *Record {
	return &Record{
		Key: key, Variant: variant, Status: 200,
		Header: map[string][]string{"Content-Type": {"text/html"}},
		Body:   []byte("<p>" + key + " " + variant + "</p>"),
		Tags:   tags,
	}
}

func mustPut(t testing.TB, s *Store, rs ...*Record) {
	t.Helper()
	for _, r := range rs {
		if err := s.Put(ctx, r); err != nil {
			t.Fatalf("Put(%q, %q) = %v", r.Key, r.Variant, err)
		}
	}
}

// keys lists "key|variant" of every record, via Scan pages of 3 (so the
// paging path is exercised too).
func keys(t testing.TB, s *Store) []string {
	t.Helper()
	var out []string
	after := ""
	for {
		p, err := s.Scan(ctx, ScanOptions{After: after, Limit: 3})
		if err != nil {
			t.Fatalf("Scan(after %q) = %v", after, err)
		}
		for _, m := range p.Entries {
			out = append(out, m.Key+"|"+m.Variant)
		}
		if p.Next == "" {
			return out
		}
		after = p.Next
	}
}

func TestOpen_Errors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	boltFile := func(name string, fn func(tx *bolt.Tx) error) string {
		p := filepath.Join(dir, name)
		db, err := bolt.Open(p, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
		db.Close()
		return p
	}
	newer := func() string {
		p := filepath.Join(dir, "newer.db")
		s, err := Open(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		db, _ := bolt.Open(p, 0o600, &bolt.Options{Timeout: time.Second})
		db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(metaFormat, binary.BigEndian.AppendUint32(nil, FormatVersion+1))
		})
		db.Close()
		return p
	}
	truncated := func() string {
		p := filepath.Join(dir, "truncated.db")
		s, err := Open(p, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			r := mkrec(fmt.Sprintf("k%d", i), "")
			r.Body = make([]byte, 3000)
			mustPut(t, s, r)
		}
		data := s.Stats().FileSize // bbolt preallocates the file beyond its data
		s.Close()
		os.Truncate(p, data/2)
		return p
	}
	held := filepath.Join(dir, "held.db")
	holder, err := Open(held, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	tests := []struct {
		name string
		path string
		opts Options
		want error
	}{
		{"directory does not exist", filepath.Join(dir, "nope", "x.db"), Options{}, fs.ErrNotExist},
		{"read-only file does not exist", filepath.Join(dir, "missing.db"), Options{ReadOnly: true}, fs.ErrNotExist},
		{"a directory is not a database file", dir, Options{}, syscall.EISDIR},
		{"read-only open of a directory", dir, Options{ReadOnly: true}, syscall.EISDIR},
		{"text file is not a database", write("text.db", bytes.Repeat([]byte("not a bbolt file\n"), 1000)), Options{}, ErrCorrupt},
		{"short garbage is not a database", write("short.db", []byte("xx")), Options{}, ErrCorrupt},
		{"garbage between one and two pages is not a database", write("onepage.db", bytes.Repeat([]byte("x"), 7500)), Options{}, ErrCorrupt},
		{"garbage between one and two pages read-only", filepath.Join(dir, "onepage.db"), Options{ReadOnly: true}, ErrCorrupt},
		{"bbolt file of another application", boltFile("other.db", func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("widgets"))
			return err
		}), Options{}, ErrCorrupt},
		{"empty bbolt file read-only", boltFile("emptybolt.db", func(*bolt.Tx) error { return nil }), Options{ReadOnly: true}, ErrCorrupt},
		{"truncated store", truncated(), Options{}, ErrCorrupt},
		{"truncated store read-only", filepath.Join(dir, "truncated.db"), Options{ReadOnly: true}, ErrCorrupt},
		{"newer format version", newer(), Options{}, ErrVersion},
		{"newer format version read-only", filepath.Join(dir, "newer.db"), Options{ReadOnly: true}, ErrVersion},
		{"locked by another open", held, Options{Timeout: 50 * time.Millisecond}, ErrLocked},
		{"read-only open of a locked file", held, Options{ReadOnly: true, Timeout: 50 * time.Millisecond}, ErrLocked},
		{"negative timeout", filepath.Join(dir, "a.db"), Options{Timeout: -1}, ErrInvalid},
		{"object bound above size bound", filepath.Join(dir, "b.db"), Options{MaxSize: 100, MaxObjectSize: 200}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.path, tt.opts)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) = nil error, want %v", tt.path, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Open(%q) = %v, want errors.Is %v", tt.path, err, tt.want)
			}
			var oe *OpenError
			if !errors.As(err, &oe) || oe.Path != tt.path || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("Open(%q) = %v, want an *OpenError naming the path", tt.path, err)
			}
		})
	}
}

func TestOpen_LockedByOtherProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "locked.db")
	cmd := childCommand(t, "lock", path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line := make([]byte, 64)
	n, _ := stdout.Read(line)
	if got := strings.TrimSpace(string(line[:n])); got != "locked" {
		t.Fatalf("child said %q, want %q", got, "locked")
	}

	for _, ro := range []bool{false, true} {
		start := time.Now()
		s, err := Open(path, Options{ReadOnly: ro, Timeout: 200 * time.Millisecond})
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(ReadOnly=%v) while another process holds it = %v, want ErrLocked naming %s", ro, err, path)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Open(ReadOnly=%v) took %v, want about the 200ms timeout", ro, d)
		}
	}

	stdin.Close() // child closes its store and exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	s, err := Open(path, Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("Open after the other process exited = %v, want nil", err)
	}
	s.Close()
}

func TestStore_ReadOnly(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ro.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, mkrec("k", "", "t"))
	s.Close()

	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("Open(ReadOnly) = %v", err)
	}
	defer ro.Close()
	if r, err := ro.Get(ctx, "k", ""); err != nil || string(r.Body) != "<p>k </p>" {
		t.Errorf("read-only Get = %v, %v; want the record", r, err)
	}
	if got := ro.Stats().Records; got != 1 {
		t.Errorf("read-only Stats().Records = %d, want 1", got)
	}
	writes := map[string]func() error{
		"Put":           func() error { return ro.Put(ctx, mkrec("x", "")) },
		"Delete":        func() error { return ro.Delete(ctx, "k", "") },
		"DeleteKey":     func() error { _, err := ro.DeleteKey(ctx, "k"); return err },
		"DeletePrefix":  func() error { _, err := ro.DeletePrefix(ctx, "k"); return err },
		"DeleteTag":     func() error { _, err := ro.DeleteTag(ctx, "t"); return err },
		"DeleteAll":     func() error { _, err := ro.DeleteAll(ctx); return err },
		"Annotate":      func() error { return ro.Annotate(ctx, "k", "", map[string]string{"a": "b"}) },
		"RemoveExpired": func() error { _, err := ro.RemoveExpired(ctx, time.Now()); return err },
	}
	for name, fn := range writes {
		if err := fn(); !errors.Is(err, ErrReadOnly) {
			t.Errorf("read-only %s = %v, want ErrReadOnly", name, err)
		}
	}
	// A second reader may share the file.
	ro2, err := Open(path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Errorf("second read-only Open = %v, want nil", err)
	} else {
		ro2.Close()
	}
}

func TestStore_Closed(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	mustPut(t, s, mkrec("k", ""))
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	calls := map[string]func() error{
		"Close":    s.Close,
		"Get":      func() error { _, err := s.Get(ctx, "k", ""); return err },
		"Put":      func() error { return s.Put(ctx, mkrec("x", "")) },
		"Delete":   func() error { return s.Delete(ctx, "k", "") },
		"Scan":     func() error { _, err := s.Scan(ctx, ScanOptions{}); return err },
		"Variants": func() error { _, err := s.Variants(ctx, "k"); return err },
		"Compact":  func() error { return s.Compact(ctx, filepath.Join(t.TempDir(), "c.db")) },
	}
	for name, fn := range calls {
		if err := fn(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestStore_GetPut_RoundTrip(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now})
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		name string
		rec  *Record
	}{
		{"full record", &Record{
			Key: "https://example.com/a?b=1", Variant: "accept-encoding=gzip", Status: 203,
			Header:      map[string][]string{"Content-Type": {"text/html"}, "Set-Cookie": {"a=1", "b=2"}, "X-Empty": {}},
			Body:        []byte("<html>\x00binary\xff</html>"),
			RequestTime: at, ResponseTime: at.Add(time.Millisecond), StoredTime: at.Add(time.Second), Expires: at.Add(time.Hour),
			Tags:        []string{"a", "b"},
			Annotations: map[string]string{"test.json": `[{"kind":"csrf"}]`},
		}},
		{"minimal record gets a stored time", &Record{Key: "k"}},
		{"empty body and negative status", &Record{Key: "k2", Status: -1, Body: []byte{}}},
		{"variant with NUL byte", &Record{Key: "k3", Variant: "a\x00b", Body: []byte("x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Put(ctx, tt.rec); err != nil {
				t.Fatalf("Put = %v", err)
			}
			got, err := s.Get(ctx, tt.rec.Key, tt.rec.Variant)
			if err != nil {
				t.Fatalf("Get = %v", err)
			}
			want := *tt.rec
			if want.StoredTime.IsZero() {
				want.StoredTime = clock.Now()
			}
			if !recordsEqual(got, &want) {
				t.Errorf("Get = %+v, want %+v", got, want)
			}
			// The returned record is a copy: changing it changes nothing stored.
			if len(got.Body) > 0 {
				got.Body[0] ^= 0xff
				again, _ := s.Get(ctx, tt.rec.Key, tt.rec.Variant)
				if bytes.Equal(again.Body, got.Body) {
					t.Errorf("Get returned memory shared with the store")
				}
			}
		})
	}
}

// recordsEqual compares records treating nil and empty as equal and times
// by instant.
func recordsEqual(a, b *Record) bool {
	norm := func(r *Record) Record {
		c := *r
		if len(c.Body) == 0 {
			c.Body = nil
		}
		if len(c.Header) == 0 {
			c.Header = nil
		}
		for k, v := range c.Header {
			if len(v) == 0 {
				c.Header[k] = nil
			}
		}
		if len(c.Tags) == 0 {
			c.Tags = nil
		}
		if len(c.Annotations) == 0 {
			c.Annotations = nil
		}
		for _, tp := range []*time.Time{&c.RequestTime, &c.ResponseTime, &c.StoredTime, &c.Expires} {
			if !tp.IsZero() {
				*tp = tp.UTC()
			}
		}
		return c
	}
	x, y := norm(a), norm(b)
	return reflect.DeepEqual(x, y)
}

func TestStore_Put_Errors(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{MaxObjectSize: 1000})
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		rec  *Record
		want error
	}{
		{"nil record", ctx, nil, ErrInvalid},
		{"empty key", ctx, &Record{}, ErrInvalid},
		{"NUL in key", ctx, &Record{Key: "a\x00b"}, ErrInvalid},
		{"NUL in tag", ctx, &Record{Key: "a", Tags: []string{"x\x00"}}, ErrInvalid},
		{"empty tag", ctx, &Record{Key: "a", Tags: []string{""}}, ErrInvalid},
		{"key too long", ctx, &Record{Key: strings.Repeat("k", MaxKeyLen+1)}, ErrInvalid},
		{"body over MaxObjectSize", ctx, &Record{Key: "a", Body: make([]byte, 1000)}, ErrTooLarge},
		{"canceled context", canceled, &Record{Key: "a"}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Put(tt.ctx, tt.rec); !errors.Is(err, tt.want) {
				t.Errorf("Put = %v, want %v", err, tt.want)
			}
		})
	}
	if got := s.Stats().Records; got != 0 {
		t.Errorf("after failed Puts Stats().Records = %d, want 0", got)
	}
	if err := s.Put(ctx, &Record{Key: "a", Body: make([]byte, 900)}); err != nil {
		t.Errorf("Put of a record under MaxObjectSize = %v, want nil", err)
	}
}

func TestStore_Get_Errors(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	mustPut(t, s, mkrec("k", "v"))
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name         string
		ctx          context.Context
		key, variant string
		want         error
	}{
		{"missing key", ctx, "nope", "", ErrNotFound},
		{"missing variant", ctx, "k", "", ErrNotFound},
		{"empty key", ctx, "", "", ErrInvalid},
		{"canceled context", canceled, "k", "v", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Get(tt.ctx, tt.key, tt.variant); !errors.Is(err, tt.want) {
				t.Errorf("Get(%q, %q) = %v, want %v", tt.key, tt.variant, err, tt.want)
			}
		})
	}
}

func TestStore_Deletes(t *testing.T) {
	t.Parallel()
	fixture := []*Record{
		mkrec("https://a.example/", "", "home", "all"),
		mkrec("https://a.example/blog/1", "en", "blog", "all"),
		mkrec("https://a.example/blog/1", "de", "blog", "all"),
		mkrec("https://a.example/blog/2", "", "blog", "all"),
		mkrec("https://a.example/blogroll", "", "all"),
		mkrec("https://b.example/", "", "home", "all"),
	}
	tests := []struct {
		name    string
		op      func(s *Store) (int, error)
		wantN   int
		wantErr error
		left    []string
	}{
		{"Delete one variant", func(s *Store) (int, error) { return 1, s.Delete(ctx, "https://a.example/blog/1", "de") }, 1, nil,
			[]string{"https://a.example/|", "https://a.example/blog/1|en", "https://a.example/blog/2|", "https://a.example/blogroll|", "https://b.example/|"}},
		{"Delete missing", func(s *Store) (int, error) { return 0, s.Delete(ctx, "https://a.example/blog/1", "fr") }, 0, ErrNotFound, nil},
		{"DeleteKey removes all variants only of that key", func(s *Store) (int, error) { return s.DeleteKey(ctx, "https://a.example/blog/1") }, 2, nil,
			[]string{"https://a.example/|", "https://a.example/blog/2|", "https://a.example/blogroll|", "https://b.example/|"}},
		{"DeleteKey missing is zero", func(s *Store) (int, error) { return s.DeleteKey(ctx, "https://c.example/") }, 0, nil, nil},
		{"DeletePrefix is by primary key prefix", func(s *Store) (int, error) { return s.DeletePrefix(ctx, "https://a.example/blog") }, 4, nil,
			[]string{"https://a.example/|", "https://b.example/|"}},
		{"DeletePrefix with trailing slash", func(s *Store) (int, error) { return s.DeletePrefix(ctx, "https://a.example/blog/") }, 3, nil,
			[]string{"https://a.example/|", "https://a.example/blogroll|", "https://b.example/|"}},
		{"DeletePrefix empty is refused", func(s *Store) (int, error) { return s.DeletePrefix(ctx, "") }, 0, ErrInvalid, nil},
		{"DeleteTag", func(s *Store) (int, error) { return s.DeleteTag(ctx, "home") }, 2, nil,
			[]string{"https://a.example/blog/1|de", "https://a.example/blog/1|en", "https://a.example/blog/2|", "https://a.example/blogroll|"}},
		{"DeleteTag unknown is zero", func(s *Store) (int, error) { return s.DeleteTag(ctx, "nope") }, 0, nil, nil},
		{"DeleteTag empty is refused", func(s *Store) (int, error) { return s.DeleteTag(ctx, "") }, 0, ErrInvalid, nil},
		{"DeleteAll", func(s *Store) (int, error) { return s.DeleteAll(ctx) }, 6, nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t, Options{})
			mustPut(t, s, fixture...)
			n, err := tt.op(s)
			if !errors.Is(err, tt.wantErr) || n != tt.wantN {
				t.Fatalf("got %d, %v; want %d, %v", n, err, tt.wantN, tt.wantErr)
			}
			left := tt.left
			if left == nil { // unchanged, in key order
				sorted := slices.Clone(fixture)
				slices.SortFunc(sorted, func(a, b *Record) int {
					return bytes.Compare(recKey(a.Key, a.Variant), recKey(b.Key, b.Variant))
				})
				for _, r := range sorted {
					left = append(left, r.Key+"|"+r.Variant)
				}
			}
			if got := keys(t, s); !slices.Equal(got, left) && (len(got) != 0 || len(left) != 0) {
				t.Errorf("left %q, want %q", got, left)
			}
			if got := s.Stats().Records; got != int64(len(left)) {
				t.Errorf("Stats().Records = %d, want %d", got, len(left))
			}
			// Tag index entries of deleted records are gone too.
			if n, err := s.DeleteTag(ctx, "all"); n != len(left) || err != nil {
				t.Errorf("DeleteTag(all) afterwards = %d, %v; want %d, nil", n, err, len(left))
			}
		})
	}
}

func TestStore_Put_ReplacesAndReindexes(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	exp := time.Now().Add(-time.Hour)
	r := mkrec("k", "", "old")
	r.Expires = exp
	mustPut(t, s, r)
	r2 := mkrec("k", "", "new")
	r2.Body = []byte("replacement")
	mustPut(t, s, r2)
	if got := s.Stats().Records; got != 1 {
		t.Errorf("Records = %d, want 1", got)
	}
	if n, _ := s.DeleteTag(ctx, "old"); n != 0 {
		t.Errorf("DeleteTag(old tag of a replaced record) = %d, want 0", n)
	}
	if n, _ := s.RemoveExpired(ctx, time.Now()); n != 0 {
		t.Errorf("RemoveExpired after replacing with a non-expiring record = %d, want 0", n)
	}
	if n, _ := s.DeleteTag(ctx, "new"); n != 1 {
		t.Errorf("DeleteTag(new) = %d, want 1", n)
	}
}

func TestStore_Scan(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	var all []string
	for i := range 250 {
		key := fmt.Sprintf("https://example.com/p/%03d", i)
		variant := ""
		if i%10 == 0 {
			variant = "v"
			mustPut(t, s, mkrec(key, ""))
			all = append(all, key+"|")
		}
		mustPut(t, s, mkrec(key, variant))
		all = append(all, key+"|"+variant)
	}
	if got := keys(t, s); !slices.Equal(got, all) {
		t.Fatalf("paging through everything gave %d entries, want %d in order", len(got), len(all))
	}
	tests := []struct {
		name      string
		o         ScanOptions
		wantFirst string
		wantN     int
		wantNext  bool
		wantErr   error
	}{
		{"default limit is 100", ScanOptions{}, "https://example.com/p/000|", 100, true, nil},
		{"limit", ScanOptions{Limit: 5}, "https://example.com/p/000|", 5, true, nil},
		{"prefix", ScanOptions{Prefix: "https://example.com/p/01"}, "https://example.com/p/010|", 11, false, nil},
		{"after plain key skips its variants", ScanOptions{After: "https://example.com/p/010", Limit: 1}, "https://example.com/p/011|", 1, true, nil},
		{"after cursor of a variant", ScanOptions{After: "https://example.com/p/010\x00", Limit: 1}, "https://example.com/p/010|v", 1, true, nil},
		{"after with prefix", ScanOptions{Prefix: "https://example.com/p/02", After: "https://example.com/p/025"}, "https://example.com/p/026|", 4, false, nil},
		{"after before prefix", ScanOptions{Prefix: "https://example.com/p/02", After: "https://a"}, "https://example.com/p/020|", 11, false, nil},
		{"after the end", ScanOptions{After: "z"}, "", 0, false, nil},
		{"prefix exactly fills the page has no next", ScanOptions{Prefix: "https://example.com/p/01", Limit: 11}, "https://example.com/p/010|", 11, false, nil},
		{"negative limit", ScanOptions{Limit: -1}, "", 0, false, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.Scan(ctx, tt.o)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Scan(%+v) error = %v, want %v", tt.o, err, tt.wantErr)
			}
			first := ""
			if len(p.Entries) > 0 {
				first = p.Entries[0].Key + "|" + p.Entries[0].Variant
			}
			if first != tt.wantFirst || len(p.Entries) != tt.wantN || (p.Next != "") != tt.wantNext {
				t.Errorf("Scan(%+v) = first %q, %d entries, next %q; want %q, %d, next %v", tt.o, first, len(p.Entries), p.Next, tt.wantFirst, tt.wantN, tt.wantNext)
			}
		})
	}
}

func TestStore_VariantsAndMeta(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now})
	r := mkrec("k", "b", "t1")
	r.Annotations = map[string]string{"x": "y"}
	mustPut(t, s, mkrec("k", "a"), r, mkrec("k2", ""), mkrec("j", ""))
	ms, err := s.Variants(ctx, "k")
	if err != nil || len(ms) != 2 || ms[0].Variant != "a" || ms[1].Variant != "b" {
		t.Fatalf("Variants(k) = %+v, %v; want variants a, b", ms, err)
	}
	m := ms[1]
	if m.Status != 200 || m.BodySize != int64(len(r.Body)) || !slices.Equal(m.Tags, []string{"t1"}) || m.Annotations["x"] != "y" ||
		!m.StoredTime.Equal(clock.Now()) || !m.LastAccess.Equal(clock.Now()) || m.Corrupt {
		t.Errorf("Variants(k)[1] = %+v, want status 200, body size %d, tag t1, annotation x=y, stored and accessed now", m, len(r.Body))
	}
	var sum int64
	p, _ := s.Scan(ctx, ScanOptions{})
	for _, m := range p.Entries {
		sum += m.Size
	}
	if st := s.Stats(); st.Bytes != sum || st.Records != 4 {
		t.Errorf("Stats() = %d records, %d bytes; want 4, %d (sum of Meta.Size)", st.Records, st.Bytes, sum)
	}
	if ms, err := s.Variants(ctx, "nope"); err != nil || len(ms) != 0 {
		t.Errorf("Variants(nope) = %v, %v; want empty, nil", ms, err)
	}

	// A Get moves LastAccess, first in memory, then (after a flush) on disk.
	clock.Advance(time.Minute)
	if _, err := s.Get(ctx, "k", "a"); err != nil {
		t.Fatal(err)
	}
	ms, _ = s.Variants(ctx, "k")
	if !ms[0].LastAccess.Equal(clock.Now()) {
		t.Errorf("LastAccess after Get = %v, want %v", ms[0].LastAccess, clock.Now())
	}
	if got := s.Stats().PendingAccess; got != 1 {
		t.Errorf("PendingAccess = %d, want 1", got)
	}
	path := s.Path()
	s.Close()
	s2, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ms, _ = s2.Variants(ctx, "k")
	if !ms[0].LastAccess.Equal(clock.Now()) || !ms[1].LastAccess.Equal(clock.Now().Add(-time.Minute)) {
		t.Errorf("after Close and reopen LastAccess = %v, %v; want %v, %v", ms[0].LastAccess, ms[1].LastAccess, clock.Now(), clock.Now().Add(-time.Minute))
	}
}

func TestStore_Annotate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		initial map[string]string
		set     map[string]string
		want    map[string]string
		wantErr error
		key     string
	}{
		{"add to none", nil, map[string]string{"a": "1"}, map[string]string{"a": "1"}, nil, "k"},
		{"merge", map[string]string{"a": "1", "b": "2"}, map[string]string{"b": "3", "c": "4"}, map[string]string{"a": "1", "b": "3", "c": "4"}, nil, "k"},
		{"empty value deletes", map[string]string{"a": "1", "b": "2"}, map[string]string{"a": ""}, map[string]string{"b": "2"}, nil, "k"},
		{"delete the last", map[string]string{"a": "1"}, map[string]string{"a": ""}, nil, nil, "k"},
		{"missing record", nil, map[string]string{"a": "1"}, nil, ErrNotFound, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t, Options{})
			r := mkrec("k", "", "tag")
			r.Annotations = tt.initial
			mustPut(t, s, r)
			err := s.Annotate(ctx, tt.key, "", tt.set)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Annotate = %v, want %v", err, tt.wantErr)
			}
			got, err := s.Get(ctx, "k", "")
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Annotations) != len(tt.want) || (len(tt.want) > 0 && !reflect.DeepEqual(got.Annotations, tt.want)) {
				t.Errorf("annotations = %v, want %v", got.Annotations, tt.want)
			}
			if !bytes.Equal(got.Body, r.Body) || !slices.Equal(got.Tags, r.Tags) {
				t.Errorf("Annotate changed the body or tags: %q %q", got.Body, got.Tags)
			}
			if n, _ := s.DeleteTag(ctx, "tag"); n != 1 {
				t.Errorf("DeleteTag after Annotate = %d, want 1", n)
			}
		})
	}
}

func TestStore_RemoveExpired(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	put := func(key string, exp time.Time) {
		r := mkrec(key, "")
		r.Expires = exp
		mustPut(t, s, r)
	}
	put("never", time.Time{})
	put("past", now.Add(-time.Hour))
	put("exactly-now", now)
	put("future", now.Add(time.Hour))
	put("long-ago", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))
	put("re-put", now.Add(-time.Minute))
	put("re-put", now.Add(time.Minute)) // replaced: no longer expired

	n, err := s.RemoveExpired(ctx, now)
	if err != nil || n != 3 {
		t.Fatalf("RemoveExpired(now) = %d, %v; want 3, nil", n, err)
	}
	want := []string{"future|", "never|", "re-put|"}
	if got := keys(t, s); !slices.Equal(got, want) {
		t.Errorf("left %q, want %q", got, want)
	}
	if got := s.Stats().Expired; got != 3 {
		t.Errorf("Stats().Expired = %d, want 3", got)
	}
	if n, _ := s.RemoveExpired(ctx, now.Add(2*time.Minute)); n != 1 {
		t.Errorf("RemoveExpired(now+2m) = %d, want 1 (re-put)", n)
	}
}

// TestStore_TimesBeyondNanoseconds: a time outside what int64 Unix
// nanoseconds hold (before 1678, after 2262; httpcache's Expires is
// ResponseTime plus a freshness of up to ~292 years) is saturated to that
// range, never wrapped into another time: a page meant to live long must
// not read back as expired in 1715 and be removed at once.
func TestStore_TimesBeyondNanoseconds(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	maxT, minT := time.Unix(0, math.MaxInt64).UTC(), time.Unix(0, math.MinInt64).UTC()
	tests := []struct {
		name       string
		in, want   time.Time
		expiredNow bool // removed by RemoveExpired(2026)
	}{
		{"year 2300 saturates to 2262", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), maxT, false},
		{"max-age of 292 years", time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Add(math.MaxInt64), maxT, false},
		{"year 9999 saturates to 2262", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), maxT, false},
		{"year 1500 saturates to 1677", time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), minT, true},
		{"in range is kept exactly", time.Date(2200, 1, 2, 3, 4, 5, 6, time.UTC), time.Date(2200, 1, 2, 3, 4, 5, 6, time.UTC), false},
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("far-%d", i)
			r := mkrec(key, "")
			r.Expires, r.RequestTime, r.ResponseTime = tt.in, tt.in, tt.in
			mustPut(t, s, r)
			got, err := s.Get(ctx, key, "")
			if err != nil {
				t.Fatalf("Get = %v", err)
			}
			for _, f := range []struct {
				field string
				got   time.Time
			}{{"Expires", got.Expires}, {"RequestTime", got.RequestTime}, {"ResponseTime", got.ResponseTime}} {
				if !f.got.Equal(tt.want) {
					t.Errorf("Put %s %v, Get = %v, want %v", f.field, tt.in, f.got, tt.want)
				}
			}
			n, err := s.RemoveExpired(ctx, now)
			if err != nil {
				t.Fatalf("RemoveExpired = %v", err)
			}
			if got, want := n == 1, tt.expiredNow; got != want {
				t.Errorf("RemoveExpired(%v) removed %d records, want expired=%v", now, n, want)
			}
			if !tt.expiredNow {
				if err := s.Delete(ctx, key, ""); err != nil {
					t.Errorf("Delete = %v", err)
				}
			}
		})
	}
	if st := s.Stats(); st.Records != 0 || st.Bytes != 0 {
		t.Errorf("after removing every record Stats = %d records, %d bytes, want 0, 0", st.Records, st.Bytes)
	}
}

// TestStore_Eviction checks the documented order: expired first, then least
// TestStore_AccessGranularity: a flush writes a record's access time only
// when it moves it by at least Options.AccessGranularity (default 30s), so
// a record read again and again costs the file nothing in between.
func TestStore_AccessGranularity(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now})
	put := clock.Now()
	mustPut(t, s, mkrec("k", ""))
	lastAccess := func() time.Time {
		t.Helper()
		if err := s.flushAccess(ctx); err != nil {
			t.Fatal(err)
		}
		ms, err := s.Variants(ctx, "k")
		if err != nil || len(ms) != 1 {
			t.Fatalf("Variants = %v, %v", ms, err)
		}
		return ms[0].LastAccess
	}
	clock.Advance(29 * time.Second)
	if _, err := s.Get(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if got := lastAccess(); !got.Equal(put) {
		t.Errorf("a read 29s after the Put: LastAccess %v, want the Put's %v (within the granularity, not written)", got, put)
	}
	clock.Advance(time.Second)
	read := clock.Now()
	if _, err := s.Get(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if got := lastAccess(); !got.Equal(read) {
		t.Errorf("a read 30s after the Put: LastAccess %v, want %v", got, read)
	}
}

// recently used, with accesses made by Get (in memory) counted.
func TestStore_Eviction(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	done := make(chan int, 16)
	body := make([]byte, 1000)
	probe := mkrec("k00", "")
	probe.Body = body
	one := int64(len(recKey("k00", "")) + len(encodeRecord(probe)))
	// Room for 10 records (with slack for k07's expiry time), not 11.
	// Exact access times (AccessGranularity -1): the reads are a second
	// apart; TestStore_AccessGranularity covers the default.
	s := newTestStore(t, Options{MaxSize: 10*one + 200, Now: clock.Now, evictDone: done, AccessGranularity: -1})

	for i := range 10 {
		r := mkrec(fmt.Sprintf("k%02d", i), "")
		r.Body = body
		if i == 7 {
			r.Expires = clock.Now().Add(time.Second) // will have expired
		}
		mustPut(t, s, r)
		clock.Advance(time.Second)
	}
	if st := s.Stats(); st.Records != 10 || st.Evictions != 0 {
		t.Fatalf("Stats() = %d records, %d evictions; want 10, 0 (under MaxSize)", st.Records, st.Evictions)
	}
	// Read the two oldest: they become the most recently used.
	for _, k := range []string{"k00", "k01"} {
		if _, err := s.Get(ctx, k, ""); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	r := mkrec("k10", "")
	r.Body = body
	mustPut(t, s, r) // over MaxSize: evict to 90% = 9 records
	n := <-done
	// Expired k07 goes first, then LRU: k02 (k00, k01 were read).
	if n != 2 {
		t.Errorf("evicted %d records, want 2", n)
	}
	want := []string{"k00|", "k01|", "k03|", "k04|", "k05|", "k06|", "k08|", "k09|", "k10|"}
	if got := keys(t, s); !slices.Equal(got, want) {
		t.Errorf("after eviction left %q, want %q", got, want)
	}
	st := s.Stats()
	if st.Bytes > s.opts.MaxSize/10*9 || st.Evictions != 1 || st.Expired != 1 {
		t.Errorf("Stats() = %d bytes, %d evictions, %d expired; want <= %d, 1, 1", st.Bytes, st.Evictions, st.Expired, s.opts.MaxSize/10*9)
	}
}

// TestStore_Eviction_ReadsNotBlocked keeps reading while eviction and
// writes run; with -race it also checks the locking.
func TestStore_Eviction_Concurrent(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{MaxSize: 200 << 10})
	body := make([]byte, 2000)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				r := mkrec(fmt.Sprintf("w%d/%03d", w, i), "", fmt.Sprintf("t%d", i%3))
				r.Body = body
				if err := s.Put(ctx, r); err != nil {
					t.Errorf("Put = %v", err)
					return
				}
				if _, err := s.Get(ctx, r.Key, ""); err != nil && !errors.Is(err, ErrNotFound) {
					t.Errorf("Get = %v", err)
				}
				if i%20 == 0 {
					if _, err := s.Scan(ctx, ScanOptions{Prefix: fmt.Sprintf("w%d/", w)}); err != nil {
						t.Errorf("Scan = %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if _, err := s.evict(ctx); err != nil {
		t.Fatalf("evict = %v", err)
	}
	st := s.Stats()
	if st.Bytes > 200<<10 || st.Evictions == 0 {
		t.Errorf("after 800 puts of 2 KB with MaxSize 200 KB: %d bytes, %d evictions", st.Bytes, st.Evictions)
	}
	if st.Commits >= st.Writes {
		t.Errorf("Commits = %d, Writes = %d: concurrent writes were not coalesced", st.Commits, st.Writes)
	}
}

func TestStore_DamagedRecord(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "damaged.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, mkrec("good", "", "t"), mkrec("meta-damaged", "", "t"), mkrec("body-damaged", "", "t"), mkrec("future-version", "", "t"))
	s.Close()

	// Damage values behind the store's back.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	damage := func(tx *bolt.Tx, key string, f func(v []byte)) {
		b := tx.Bucket(bucketRec)
		ck := recKey(key, "")
		v := bytes.Clone(b.Get(ck))
		f(v)
		b.Put(ck, v)
	}
	db.Update(func(tx *bolt.Tx) error {
		damage(tx, "meta-damaged", func(v []byte) { v[recHdrLen+2] ^= 0x20 })
		damage(tx, "body-damaged", func(v []byte) { v[len(v)-1] ^= 0x01 })
		damage(tx, "future-version", func(v []byte) { v[0] = 9 })
		return nil
	})
	db.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		key         string
		wantVersion bool
		listed      bool // Meta.Corrupt in listings (only metadata damage shows there)
	}{
		{"meta-damaged", false, true},
		{"body-damaged", false, false},
		{"future-version", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			r, err := s.Get(ctx, tt.key, "")
			var ce *CorruptError
			if r != nil || !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Key != tt.key {
				t.Fatalf("Get(%q) = %v, %v; want nil, *CorruptError for the key", tt.key, r, err)
			}
			if got := errors.Is(err, ErrVersion); got != tt.wantVersion {
				t.Errorf("errors.Is(%v, ErrVersion) = %v, want %v", err, got, tt.wantVersion)
			}
			ms, _ := s.Variants(ctx, tt.key)
			if len(ms) != 1 || ms[0].Corrupt != tt.listed {
				t.Errorf("Variants(%q) = %+v, want one entry with Corrupt %v", tt.key, ms, tt.listed)
			}
			if err := s.Annotate(ctx, tt.key, "", map[string]string{"a": "b"}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Annotate(%q) = %v, want ErrCorrupt", tt.key, err)
			}
		})
	}
	res, err := s.Check(ctx)
	var damaged []string
	for _, m := range res.Damaged {
		damaged = append(damaged, m.Key)
	}
	if err != nil || res.Records != 4 || len(res.Problems) != 0 || !slices.Equal(damaged, []string{"body-damaged", "future-version", "meta-damaged"}) {
		t.Errorf("Check() = %d records, damaged %q, problems %q, %v; want 4, [body-damaged future-version meta-damaged], none, nil",
			res.Records, damaged, res.Problems, err)
	}
	if got := s.Stats().Corrupt; got < 3 {
		t.Errorf("Stats().Corrupt = %d, want >= 3", got)
	}
	// Damaged records can be deleted, by key or by tag, and the counters stay right.
	if err := s.Delete(ctx, "meta-damaged", ""); err != nil {
		t.Errorf("Delete(meta-damaged) = %v, want nil", err)
	}
	if n, err := s.DeleteTag(ctx, "t"); n != 3 || err != nil {
		t.Errorf("DeleteTag(t) = %d, %v; want 3 (good, body-damaged, future-version), nil", n, err)
	}
	if st := s.Stats(); st.Records != 0 || st.Bytes != 0 {
		t.Errorf("after deleting everything Stats() = %d records, %d bytes; want 0, 0", st.Records, st.Bytes)
	}
}

func TestStore_Compact(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	for i := range 500 {
		r := mkrec(fmt.Sprintf("k%04d", i), "", "t")
		r.Body = make([]byte, 4000)
		mustPut(t, s, r)
	}
	if _, err := s.DeletePrefix(ctx, "k00"); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "compact.db")
	if err := s.Compact(ctx, dst); err != nil {
		t.Fatalf("Compact = %v", err)
	}
	if err := s.Compact(ctx, dst); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Compact onto an existing file = %v, want fs.ErrExist", err)
	}
	before := s.Stats()
	fi, _ := os.Stat(dst)
	if fi.Size() >= before.FileSize {
		t.Errorf("compacted file is %d bytes, original %d: want smaller", fi.Size(), before.FileSize)
	}
	c, err := Open(dst, Options{})
	if err != nil {
		t.Fatalf("Open(compacted) = %v", err)
	}
	defer c.Close()
	if got := c.Stats(); got.Records != before.Records || got.Bytes != before.Bytes {
		t.Errorf("compacted Stats() = %d records, %d bytes; want %d, %d", got.Records, got.Bytes, before.Records, before.Bytes)
	}
	if res, err := c.Check(ctx); err != nil || res.Records != before.Records || len(res.Damaged)+len(res.Problems) != 0 {
		t.Errorf("compacted Check() = %+v, %v; want %d records, nothing damaged", res, err, before.Records)
	}
	if _, err := c.Get(ctx, "k0499", ""); err != nil {
		t.Errorf("compacted Get(k0499) = %v", err)
	}
	if n, _ := c.DeleteTag(ctx, "t"); int64(n) != before.Records {
		t.Errorf("compacted DeleteTag(t) = %d, want %d", n, before.Records)
	}
}

func TestStore_StatsPersist(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stats.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		r := mkrec(fmt.Sprintf("k%d", i), "")
		if i < 5 {
			r.Expires = time.Unix(1, 0)
		}
		mustPut(t, s, r)
	}
	s.RemoveExpired(ctx, time.Now())
	want := s.Stats()
	s.Close()
	s, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := s.Stats()
	if got.Records != 15 || got.Records != want.Records || got.Bytes != want.Bytes || got.Expired != 5 || got.FileSize == 0 {
		t.Errorf("after reopen Stats() = %+v, want records 15, bytes %d, expired 5, file size > 0", got, want.Bytes)
	}
}

func TestStore_ConcurrentWritersCoalesce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "batch.db")
	s, err := Open(path, Options{}) // with fsync: a commit takes long enough for writers to queue
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if err := s.Put(ctx, mkrec(fmt.Sprintf("w%02d/%d", w, i), "")); err != nil {
					t.Errorf("Put = %v", err)
				}
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Records != 640 || st.Writes != 640 || st.Commits*4 > st.Writes {
		t.Errorf("64 writers x 10 puts: %d records, %d writes in %d commits; want 640, 640, at least 4 writes per commit", st.Records, st.Writes, st.Commits)
	}
}

// TestStore_ReadsNotBlockedByWriter holds a write transaction open (as a
// long eviction or purge step would) and checks that Get, Scan, Variants
// and Stats still answer meanwhile.
func TestStore_ReadsNotBlockedByWriter(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	mustPut(t, s, mkrec("k", ""))
	inTx, release := make(chan struct{}), make(chan struct{})
	writeDone := make(chan error, 1)
	go func() {
		writeDone <- s.do(ctx, 0, func(w *wtx) error {
			close(inTx)
			<-release
			return nil
		})
	}()
	<-inTx
	if _, err := s.Get(ctx, "k", ""); err != nil {
		t.Errorf("Get during a write transaction = %v", err)
	}
	if p, err := s.Scan(ctx, ScanOptions{}); err != nil || len(p.Entries) != 1 {
		t.Errorf("Scan during a write transaction = %d entries, %v", len(p.Entries), err)
	}
	if ms, err := s.Variants(ctx, "k"); err != nil || len(ms) != 1 {
		t.Errorf("Variants during a write transaction = %d, %v", len(ms), err)
	}
	if got := s.Stats().Records; got != 1 {
		t.Errorf("Stats().Records during a write transaction = %d, want 1", got)
	}
	close(release)
	if err := <-writeDone; err != nil {
		t.Fatal(err)
	}
}

func TestStore_ExpireInterval(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	done := make(chan int, 4)
	s := newTestStore(t, Options{ExpireInterval: time.Millisecond, Now: clock.Now, expireDone: done})
	r := mkrec("soon", "")
	r.Expires = clock.Now().Add(time.Minute)
	mustPut(t, s, r, mkrec("never", ""))
	for n := range done { // sweeps before the clock moves remove nothing
		if n != 0 {
			t.Fatalf("sweep before expiry removed %d, want 0", n)
		}
		break
	}
	clock.Advance(time.Hour)
	for n := range done {
		if n == 1 {
			break
		}
	}
	if got := keys(t, s); !slices.Equal(got, []string{"never|"}) {
		t.Errorf("after the background sweep left %q, want [never|]", got)
	}
}

// TestStore_Eviction_ManySteps shrinks a store over several eviction
// transactions: it is reopened with a MaxSize far below its size, more than
// one step's worth (1,000) of records expired.
func TestStore_Eviction_ManySteps(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "many.db")
	s, err := Open(path, Options{NoSync: true, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	const total, expired = 3000, 1200
	for i := range total {
		r := mkrec(fmt.Sprintf("k%05d", i), "")
		if i%5 < 2 { // 2 in 5 expire
			r.Expires = clock.Now().Add(time.Minute)
		}
		mustPut(t, s, r)
		clock.Advance(time.Millisecond) // put order is access order
	}
	full := s.Stats().Bytes
	s.Close()

	clock.Advance(time.Hour)
	done := make(chan int, 4)
	maxSize := full / 4
	s, err = Open(path, Options{NoSync: true, Now: clock.Now, MaxSize: maxSize, evictDone: done})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := <-done // Open found the store over MaxSize and started eviction
	st := s.Stats()
	if st.Bytes > maxSize/10*9 || st.Expired != expired || st.Evictions == 0 || int64(n) != st.Expired+st.Evictions || st.Records != total-int64(n) {
		t.Errorf("after eviction: %d bytes (want <= %d), %d expired (want %d), %d evicted, %d records, run reported %d",
			st.Bytes, maxSize/10*9, st.Expired, expired, st.Evictions, st.Records, n)
	}
	// LRU removed the oldest puts: the survivors are all the unexpired
	// records from the first survivor on.
	p, _ := s.Scan(ctx, ScanOptions{Limit: 1})
	if len(p.Entries) == 0 {
		t.Fatal("nothing survived")
	}
	var first, want int
	fmt.Sscanf(p.Entries[0].Key, "k%d", &first)
	for i := first; i < total; i++ {
		if i%5 >= 2 {
			want++
		}
	}
	if st.Records != int64(want) {
		t.Errorf("first survivor %s, %d records; want the %d unexpired records from it on", p.Entries[0].Key, st.Records, want)
	}
}

// TestStore_CloseWhileBusy closes the store under concurrent readers and
// writers: every call returns normally or ErrClosed, nothing panics, and
// every Put that returned nil is in the file afterwards.
func TestStore_CloseWhileBusy(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "busy.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stored []string
	started := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d/%d", w, i)
				err := s.Put(ctx, mkrec(key, ""))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Put = %v, want nil or ErrClosed", err)
					return
				}
				mu.Lock()
				stored = append(stored, key)
				mu.Unlock()
				if _, err := s.Get(ctx, key, ""); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("Get = %v, want nil or ErrClosed", err)
					return
				}
				if i == 10 {
					started <- struct{}{}
				}
			}
		}()
	}
	for range 8 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close under load = %v", err)
	}
	wg.Wait()
	s, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, key := range stored {
		if _, err := s.Get(ctx, key, ""); err != nil {
			t.Errorf("acknowledged Put(%q) missing after Close: %v", key, err)
		}
	}
	checkIntegrity(t, path)
}

// TestStore_BulkDeletesInSteps runs every bulk delete over more records than
// one step (transaction) takes, so counts, stale index entries and counters
// are checked across step boundaries (the cleanup checks the file).
func TestStore_BulkDeletesInSteps(t *testing.T) {
	t.Parallel()
	const chunk = 7
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		del      func(s *Store) (int, error)
		want     int
		wantLeft int // of 53 records
	}{
		{"DeletePrefix", func(s *Store) (int, error) { return s.DeletePrefix(ctx, "p/") }, 50, 3},
		{"DeleteKey of a key with many variants", func(s *Store) (int, error) { return s.DeleteKey(ctx, "p/00") }, 17, 36},
		{"DeleteTag", func(s *Store) (int, error) { return s.DeleteTag(ctx, "t") }, 50, 3},
		{"RemoveExpired", func(s *Store) (int, error) { return s.RemoveExpired(ctx, now) }, 50, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestStore(t, Options{chunk: chunk})
			for i := range 50 {
				r := mkrec(fmt.Sprintf("p/%02d", i%3), fmt.Sprintf("v%02d", i), "t")
				r.Expires = now.Add(-time.Duration(i) * time.Second)
				mustPut(t, s, r)
			}
			mustPut(t, s, mkrec("q/1", ""), mkrec("q/2", "", "u"), mkrec("q/3", ""))
			commits := s.Stats().Commits
			n, err := tt.del(s)
			if err != nil || n != tt.want {
				t.Fatalf("%s = %d, %v; want %d, nil", tt.name, n, err, tt.want)
			}
			st := s.Stats()
			if got := len(keys(t, s)); got != tt.wantLeft || st.Records != int64(tt.wantLeft) {
				t.Errorf("after %s: %d records listed, Stats.Records %d; want %d", tt.name, got, st.Records, tt.wantLeft)
			}
			if steps, min := st.Commits-commits, int64(tt.want/chunk); steps < min {
				t.Errorf("%s of %d records took %d transactions, want at least %d (steps of %d)", tt.name, tt.want, steps, min, chunk)
			}
		})
	}
}
