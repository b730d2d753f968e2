package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// pageRec is a record whose body (size bytes) is kept apart when size is
// above inlineBodyMax.
func pageRec(key, variant string, size int, tags ...string) *Record {
	r := pageRecord(key, size)
	r.Variant, r.Tags = variant, tags
	r.Body[0] = key[len(key)-1] // bodies differ between keys
	return r
}

func mustGet(t *testing.T, s *Store, want *Record) {
	t.Helper()
	got, err := s.Get(ctx, want.Key, want.Variant)
	if err != nil {
		t.Fatalf("Get(%q, %q) = %v", want.Key, want.Variant, err)
	}
	if !bytes.Equal(got.Body, want.Body) || got.Header["Etag"][0] != want.Header["Etag"][0] {
		t.Fatalf("Get(%q, %q): body or header differ from what was stored", want.Key, want.Variant)
	}
}

// bodyCount is the number of bodies kept apart.
func bodyCount(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBody).ForEach(func([]byte, []byte) error { n++; return nil })
	})
	return n
}

// TestStore_LargeBodies: records whose bodies are kept apart behave as
// every other record through each write and delete path; sizes count the
// body; no body outlives its record (checked at cleanup with the counters).
func TestStore_LargeBodies(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now})
	var all []*Record
	for i := range 12 {
		r := pageRec(fmt.Sprintf("https://example.com/p/%d", i), "v", 20<<10, fmt.Sprintf("t%d", i%3))
		if i%4 == 3 {
			r.Body = r.Body[:100] // inline
		}
		if i == 5 {
			r.Expires = clock.Now().Add(time.Minute)
		}
		all = append(all, r)
		mustPut(t, s, r)
	}
	for _, r := range all {
		mustGet(t, s, r)
	}
	if n := bodyCount(t, s); n != 9 {
		t.Fatalf("%d bodies apart, want 9", n)
	}
	var sum int64
	p, err := s.Scan(ctx, ScanOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Entries {
		if m.BodySize > inlineBodyMax && m.Size <= m.BodySize {
			t.Errorf("%q: Size %d does not count its %d-byte body", m.Key, m.Size, m.BodySize)
		}
		sum += m.Size
	}
	if st := s.Stats(); st.Bytes != sum {
		t.Errorf("Stats.Bytes = %d, sum of Meta.Size = %d", st.Bytes, sum)
	}

	// Annotate keeps the body where it is; so does a cluster mark.
	if err := s.Annotate(ctx, all[0].Key, "v", map[string]string{"x": "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyInvalidation(ctx, 1, Invalidation{Keys: []string{all[1].Key}, Mark: map[string]string{"soft": "1"}}); err != nil {
		t.Fatal(err)
	}
	for i, ann := range map[int]string{0: "x", 1: "soft"} {
		got, err := s.Get(ctx, all[i].Key, "v")
		if err != nil || got.Annotations[ann] != "1" || !bytes.Equal(got.Body, all[i].Body) {
			t.Fatalf("after marking %q: Get = %v, %v", all[i].Key, got, err)
		}
	}
	// Replacing a large body with a small one and back.
	small := pageRec(all[2].Key, "v", 10)
	mustPut(t, s, small)
	mustGet(t, s, small)
	mustPut(t, s, all[2])
	mustGet(t, s, all[2])
	small = pageRec(all[3].Key, "v", 10)
	big := pageRec(all[3].Key, "v", 30<<10)
	mustPut(t, s, big)
	mustGet(t, s, big)

	// Every delete path.
	if err := s.Delete(ctx, all[0].Key, "v"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteKey(ctx, all[1].Key); err != nil || n != 1 {
		t.Fatalf("DeleteKey = %d, %v", n, err)
	}
	if n, err := s.DeleteTag(ctx, "t2"); err != nil || n != 4 {
		t.Fatalf("DeleteTag = %d, %v", n, err)
	}
	clock.Advance(time.Hour)
	if n, err := s.RemoveExpired(ctx, clock.Now()); err != nil || n != 0 { // p/5 has tag t2: gone
		t.Fatalf("RemoveExpired = %d, %v", n, err)
	}
	if n, err := s.DeletePrefix(ctx, "https://example.com/p/1"); err != nil || n != 1 { // p/10 (p/1 and p/11 are gone)
		t.Fatalf("DeletePrefix = %d, %v", n, err)
	}
	if n, err := s.DeleteAll(ctx); err != nil || n != 5 {
		t.Fatalf("DeleteAll = %d, %v", n, err)
	}
	if n := bodyCount(t, s); n != 0 {
		t.Errorf("%d bodies left after DeleteAll", n)
	}
	if st := s.Stats(); st.Bytes != 0 || st.Records != 0 {
		t.Errorf("Stats after DeleteAll = %+v", st)
	}
	mustPut(t, s, all[4])
	mustGet(t, s, all[4])
}

// TestStore_LargeBodies_Evict: eviction counts and removes bodies kept
// apart.
func TestStore_LargeBodies_Evict(t *testing.T) {
	t.Parallel()
	done := make(chan int, 16)
	one := int64(len(encodeRecord(pageRec("https://example.com/p/00", "", 20<<10))) + 20<<10 + 25)
	s := newTestStore(t, Options{MaxSize: 10 * one, evictDone: done})
	for i := range 12 {
		mustPut(t, s, pageRec(fmt.Sprintf("https://example.com/p/%02d", i), "", 20<<10))
	}
	for s.Stats().Bytes > 10*one {
		<-done
	}
	st := s.Stats()
	if st.Evictions == 0 || st.Bytes > 10*one {
		t.Fatalf("Stats = %+v; want evictions and Bytes under %d", st, 10*one)
	}
	if n := bodyCount(t, s); int64(n) != st.Records {
		t.Errorf("%d bodies for %d records", n, st.Records)
	}
}

// damageBody changes the stored body of ck with fn (nil: removes it).
func damageBody(t *testing.T, s *Store, key, variant string, fn func([]byte) []byte) {
	t.Helper()
	ck := recKey(key, variant)
	err := s.db.Load().Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBody)
		if fn == nil {
			return b.DeleteBucket(ck)
		}
		sub := b.Bucket(ck)
		return sub.Put(bodyKey, fn(bytes.Clone(sub.Get(bodyKey))))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStore_LargeBodies_Damage: a flipped or missing body is a
// *CorruptError for Get and Lookup, a damaged record for Check, and
// Delete removes the record and whatever body is left.
func TestStore_LargeBodies_Damage(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "d.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := pageRec("https://example.com/a", "", 20<<10), pageRec("https://example.com/b", "", 20<<10)
	mustPut(t, s, a, b)
	damageBody(t, s, a.Key, "", func(v []byte) []byte { v[100] ^= 1; return v })
	damageBody(t, s, b.Key, "", nil)
	for _, r := range []*Record{a, b} {
		if _, err := s.Get(ctx, r.Key, ""); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Get(%q) = %v, want ErrCorrupt", r.Key, err)
		}
		_, err := s.Lookup(ctx, r.Key, func(ms []Meta) (string, bool) { return ms[0].Variant, true })
		if _, ok := errors.AsType[*CorruptError](err); !ok {
			t.Errorf("Lookup(%q) = %v, want a *CorruptError", r.Key, err)
		}
	}
	res, err := s.Check(ctx)
	if err != nil || len(res.Damaged) != 2 || len(res.Problems) != 0 {
		t.Fatalf("Check = %+v, %v; want the two damaged records", res, err)
	}
	for _, r := range []*Record{a, b} {
		if err := s.Delete(ctx, r.Key, ""); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Bytes != 0 || st.Records != 0 {
		t.Errorf("Stats after deleting the damaged records = %+v", st)
	}
	// A body left without its record is a problem for Check, and a Put of
	// that record replaces it.
	mustPut(t, s, a)
	if err := s.db.Load().Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRec).Delete(recKey(a.Key, "")) }); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Check(ctx); err != nil || len(res.Problems) != 1 {
		t.Errorf("Check with an orphan body = %+v, %v; want one problem", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeFormat1 writes a store file as a format-1 binary did: no body
// bucket, version-1 records, counters.
func writeFormat1(t *testing.T, path string, recs []*Record) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		mb, _ := tx.CreateBucket(bucketMeta)
		mb.Put(metaFormat, binary.BigEndian.AppendUint32(nil, 1))
		for _, name := range dataBuckets {
			if string(name) != string(bucketBody) {
				tx.CreateBucket(name)
			}
		}
		var c counters
		for _, r := range recs {
			ck, v := recKey(r.Key, r.Variant), encodeRecordV1(r)
			if err := tx.Bucket(bucketRec).Put(ck, v); err != nil {
				return err
			}
			a := binary.BigEndian.AppendUint64(nil, 1)
			tx.Bucket(bucketAtime).Put(ck, a)
			tx.Bucket(bucketLRU).Put(appendTsKey(nil, 1, ck), nil)
			for _, tag := range r.Tags {
				tx.Bucket(bucketTag).Put(appendTagKey(nil, tag, ck), nil)
			}
			c.Records++
			c.Bytes += int64(len(ck) + len(v))
		}
		return mb.Put(metaCounters, c.encode())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func fileFormat(t *testing.T, path string) uint32 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v uint32
	db.View(func(tx *bolt.Tx) error {
		v = binary.BigEndian.Uint32(tx.Bucket(bucketMeta).Get(metaFormat))
		return nil
	})
	return v
}

// recordVersions counts the stored records by encoding version.
func recordVersions(t *testing.T, s *Store) map[byte]int {
	t.Helper()
	n := map[byte]int{}
	s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRec).ForEach(func(k, v []byte) error { n[v[0]]++; return nil })
	})
	return n
}

// TestStore_Format1: a format-1 file opens read-only as it is, and
// read-write it is upgraded to format 2 (so a format-1 binary refuses it
// from then on) with its records read as they were; writes rewrite them
// as version 2, and CompactInPlace rewrites the rest, counters kept true.
func TestStore_Format1(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f1.db")
	recs := []*Record{
		pageRec("https://example.com/a", "", 20<<10, "t"),
		pageRec("https://example.com/b", "gzip", 20<<10),
		pageRec("https://example.com/c", "", 50),
		pageRec("https://example.com/d", "", 20<<10),
	}
	writeFormat1(t, path, recs)

	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("Open(format 1, read-only) = %v", err)
	}
	for _, r := range recs {
		mustGet(t, ro, r)
	}
	ro.Close()
	if v := fileFormat(t, path); v != 1 {
		t.Fatalf("a read-only Open changed the format to %d", v)
	}

	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatalf("Open(format 1) = %v", err)
	}
	t.Cleanup(func() { s.Close(); checkIntegrity(t, path) })
	for _, r := range recs {
		mustGet(t, s, r)
		got, err := s.Lookup(ctx, r.Key, func(ms []Meta) (string, bool) { return ms[0].Variant, true })
		if err != nil || !bytes.Equal(got.Body, r.Body) {
			t.Fatalf("Lookup(%q) = %v", r.Key, err)
		}
	}
	var format uint32
	s.view(func(tx *bolt.Tx) error {
		format = binary.BigEndian.Uint32(tx.Bucket(bucketMeta).Get(metaFormat))
		return nil
	})
	if format != FormatVersion {
		t.Fatalf("format after a read-write Open = %d, want %d", format, FormatVersion)
	}
	if err := s.Annotate(ctx, recs[0].Key, "", map[string]string{"x": "y"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteTag(ctx, "t"); err != nil || n != 1 {
		t.Fatalf("DeleteTag = %d, %v", n, err)
	}
	if got := recordVersions(t, s); got[recordV1] != 3 {
		t.Fatalf("record versions %v, want 3 of version 1", got)
	}
	mustPut(t, s, pageRec(recs[0].Key, "", 20<<10)) // written anew: version 2
	if _, _, err := s.CompactInPlace(ctx); err != nil {
		t.Fatal(err)
	}
	if got := recordVersions(t, s); got[recordV1] != 0 || got[recordVersion] != 4 {
		t.Fatalf("record versions after CompactInPlace %v, want 4 of version %d", got, recordVersion)
	}
	if n := bodyCount(t, s); n != 3 {
		t.Errorf("%d bodies apart after CompactInPlace, want 3", n)
	}
	for _, r := range recs[1:] {
		mustGet(t, s, r)
	}
	// Compact to a new file converts too, from a store opened read-only.
	writeFormat1(t, filepath.Join(dir, "f1b.db"), recs)
	ro, err = Open(filepath.Join(dir, "f1b.db"), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "compacted.db")
	if err := ro.Compact(ctx, dst); err != nil {
		t.Fatal(err)
	}
	ro.Close()
	if v := fileFormat(t, dst); v != FormatVersion {
		t.Errorf("Compact of a format-1 file wrote format %d", v)
	}
	checkIntegrity(t, dst)
	c, err := Open(dst, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		mustGet(t, c, r)
	}
	if got := recordVersions(t, c); got[recordV1] != 0 {
		t.Errorf("record versions after Compact %v", got)
	}
	c.Close()
	_ = os.Remove(dst)
}

// TestStore_Lookup: one read lists the variants and returns the chosen
// one, with Get's errors, access recording and epoch.
func TestStore_Lookup(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestStore(t, Options{Now: clock.Now})
	key := "https://example.com/l"
	called := false
	_, err := s.Lookup(ctx, key, func([]Meta) (string, bool) { called = true; return "", true })
	if !errors.Is(err, ErrNotFound) || called {
		t.Fatalf("Lookup of a missing key = %v (choose called: %v), want ErrNotFound without a call", err, called)
	}
	recs := []*Record{pageRec(key, "b", 20<<10), pageRec(key, "a", 30), pageRec(key, "c", 20<<10)}
	mustPut(t, s, recs...)
	mustPut(t, s, pageRec(key+"x", "", 30)) // a longer key: not a variant of key
	var seen []string
	// Past AccessGranularity after the Puts, so that the access is one a
	// flush would write, and recorded.
	clock.Advance(time.Minute)
	pending := s.Stats().PendingAccess
	got, err := s.Lookup(ctx, key, func(ms []Meta) (string, bool) {
		for _, m := range ms {
			seen = append(seen, m.Variant)
			if m.Corrupt || m.Annotations["httpcache.vary"] != "Accept-Encoding" || m.BodySize == 0 {
				t.Errorf("variant %q: Meta = %+v", m.Variant, m)
			}
		}
		return "c", true
	})
	if err != nil || !bytes.Equal(got.Body, recs[2].Body) || got.Variant != "c" {
		t.Fatalf("Lookup(choose c) = %v, %v", got, err)
	}
	if fmt.Sprint(seen) != "[a b c]" {
		t.Errorf("choose saw variants %v, want [a b c]", seen)
	}
	if s.Stats().PendingAccess != pending+1 {
		t.Errorf("Lookup recorded no access")
	}
	for name, choose := range map[string]func([]Meta) (string, bool){
		"declined": func([]Meta) (string, bool) { return "a", false },
		"unknown":  func([]Meta) (string, bool) { return "zz", true },
	} {
		if _, err := s.Lookup(ctx, key, choose); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup, %s = %v, want ErrNotFound", name, err)
		}
	}
	// A variant whose metadata is damaged is listed as such.
	err = s.db.Load().Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRec)
		v := bytes.Clone(b.Get(recKey(key, "a")))
		v[recHdrLen+2] ^= 0xff
		return b.Put(recKey(key, "a"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Lookup(ctx, key, func(ms []Meta) (string, bool) {
		if !ms[0].Corrupt || ms[0].Variant != "a" {
			t.Errorf("damaged variant listed as %+v", ms[0])
		}
		return "a", true
	})
	if _, ok := errors.AsType[*CorruptError](err); !ok {
		t.Errorf("Lookup of the damaged variant = %v, want a *CorruptError", err)
	}
	if err := s.Delete(ctx, key, "a"); err != nil {
		t.Fatal(err)
	}
	// The cluster's purge-all epoch hides what was stored before it.
	clock.Advance(time.Second)
	if _, err := s.ApplyInvalidation(ctx, 1, Invalidation{All: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, key, func(ms []Meta) (string, bool) { return "b", true }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup after a purge-all epoch = %v, want ErrNotFound", err)
	}
	if _, err := s.Lookup(ctx, "", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Lookup of an empty key = %v, want ErrInvalid", err)
	}
	s.Close()
	if _, err := s.Lookup(ctx, key, func(ms []Meta) (string, bool) { return "b", true }); !errors.Is(err, ErrClosed) {
		t.Errorf("Lookup after Close = %v, want ErrClosed", err)
	}
}
