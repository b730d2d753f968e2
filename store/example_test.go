package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/firstrender/firstrender/store"
)

func tempPath() string {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		log.Fatal(err)
	}
	return filepath.Join(dir, "firstrender.db")
}

func Example() {
	ctx := context.Background()
	path := tempPath()
	defer os.RemoveAll(filepath.Dir(path))

	s, err := store.Open(path, store.Options{MaxSize: 1 << 30})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	err = s.Put(ctx, &store.Record{
		Key:    "https://example.com/",
		Status: 200,
		Header: map[string][]string{"Content-Type": {"text/html"}},
		Body:   []byte("<main data-phx-main>hello</main>"),
		Tags:   []string{"home"},
	})
	if err != nil {
		log.Fatal(err)
	}
	r, err := s.Get(ctx, "https://example.com/", "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Status, string(r.Body))

	_, err = s.Get(ctx, "https://example.com/missing", "")
	fmt.Println(errors.Is(err, store.ErrNotFound))
	// Output:
	// 200 <main data-phx-main>hello</main>
	// true
}

func ExampleOpen_locked() {
	path := tempPath()
	defer os.RemoveAll(filepath.Dir(path))
	s, err := store.Open(path, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// A second open (here read-only, as an offline admin tool would) fails
	// after the timeout instead of hanging.
	_, err = store.Open(path, store.Options{ReadOnly: true, Timeout: 50 * time.Millisecond})
	var oe *store.OpenError
	fmt.Println(errors.Is(err, store.ErrLocked), errors.As(err, &oe) && oe.Path == path)
	// Output: true true
}

func ExampleStore_Scan() {
	ctx := context.Background()
	path := tempPath()
	defer os.RemoveAll(filepath.Dir(path))
	s, err := store.Open(path, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"/a", "/b", "/c", "/d", "/e"} {
		if err := s.Put(ctx, &store.Record{Key: "https://example.com" + k}); err != nil {
			log.Fatal(err)
		}
	}

	o := store.ScanOptions{Prefix: "https://example.com/", Limit: 2}
	for {
		page, err := s.Scan(ctx, o)
		if err != nil {
			log.Fatal(err)
		}
		var keys []string
		for _, m := range page.Entries {
			keys = append(keys, m.Key)
		}
		fmt.Println(strings.Join(keys, " "))
		if page.Next == "" {
			break
		}
		o.After = page.Next
	}
	// Output:
	// https://example.com/a https://example.com/b
	// https://example.com/c https://example.com/d
	// https://example.com/e
}

func ExampleStore_DeleteTag() {
	ctx := context.Background()
	path := tempPath()
	defer os.RemoveAll(filepath.Dir(path))
	s, err := store.Open(path, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	s.Put(ctx, &store.Record{Key: "https://example.com/blog/1", Tags: []string{"blog"}})
	s.Put(ctx, &store.Record{Key: "https://example.com/blog/2", Tags: []string{"blog"}})
	s.Put(ctx, &store.Record{Key: "https://example.com/", Tags: []string{"home"}})

	n, err := s.DeleteTag(ctx, "blog") // returns after the purge is committed
	fmt.Println(n, err, s.Stats().Records)
	// Output: 2 <nil> 1
}

func ExampleStore_Annotate() {
	ctx := context.Background()
	path := tempPath()
	defer os.RemoveAll(filepath.Dir(path))
	s, err := store.Open(path, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	s.Put(ctx, &store.Record{Key: "https://example.com/"})

	// Keys are namespaced by the package that writes them (docs/annotations.md).
	s.Annotate(ctx, "https://example.com/", "", map[string]string{"example.note": "join refused"})
	vs, _ := s.Variants(ctx, "https://example.com/")
	fmt.Println(vs[0].Annotations["example.note"])
	// Output: join refused
}
