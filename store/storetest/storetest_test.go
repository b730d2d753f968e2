package storetest_test

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/firstrender/firstrender/store"
	"github.com/firstrender/firstrender/store/storetest"
)

func TestOpen_PutGetAndCleanCheck(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t, store.Options{})
	ctx := context.Background()
	if err := s.Put(ctx, &store.Record{Key: "https://a.test/", Status: 200, Body: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(ctx, "https://a.test/", "")
	if err != nil || string(r.Body) != "hi" {
		t.Fatalf("Get = %v, %v; want the stored record", r, err)
	}
}

// TestCheck_ReportsDamage: Check must fail the test on a damaged file
// (run against a fake testing.TB that records failures).
func TestCheck_ReportsDamage(t *testing.T) {
	t.Parallel()
	ft := &fakeTB{TB: t}
	path := t.TempDir() + "/damaged.db"
	s, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("0123456789abcdef-a-body-whose-bytes-we-flip-on-disk")
	if err := s.Put(context.Background(), &store.Record{Key: "k", Status: 200, Body: body}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, body)
	if i < 0 {
		t.Fatal("record body not found in the file")
	}
	b[i+3] ^= 0xff // the record checksum no longer matches
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	storetest.Check(ft, path)
	if ft.errors() == 0 {
		t.Error("Check on a file with a flipped record byte reported nothing")
	}
	ft2 := &fakeTB{TB: t}
	clean := t.TempDir() + "/clean.db"
	s, _ = store.Open(clean, store.Options{NoSync: true})
	s.Close()
	if storetest.Check(ft2, clean); ft2.errors() != 0 {
		t.Errorf("Check on a clean file reported %d errors", ft2.errors())
	}
}

type fakeTB struct {
	testing.TB
	mu sync.Mutex
	n  int
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(string, ...any) {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}
func (f *fakeTB) errors() int { f.mu.Lock(); defer f.mu.Unlock(); return f.n }

func TestClock(t *testing.T) {
	t.Parallel()
	c := storetest.NewClock(time.Time{})
	if got := c.Now(); !got.Equal(storetest.Start) {
		t.Fatalf("NewClock(zero).Now() = %v, want %v", got, storetest.Start)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Second)
				c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), storetest.Start.Add(800*time.Second); !got.Equal(want) {
		t.Errorf("after 800 concurrent one-second steps: %v, want %v", got, want)
	}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if c.Set(at); !c.Now().Equal(at) {
		t.Errorf("after Set(%v): %v", at, c.Now())
	}
}
