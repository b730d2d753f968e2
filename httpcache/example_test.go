package httpcache_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/store"
)

func ExampleNormalizeKey() {
	for _, u := range []string{
		"HTTP://Example.COM:80/a/./b/../c?utm_source=news&b=2&a=1",
		"https://example.com/%7euser/a%2fb?q=%e2%82%ac",
	} {
		k, err := httpcache.NormalizeKey(u, httpcache.DefaultIgnoreParams)
		fmt.Println(k, err)
	}
	// Output:
	// http://example.com/a/c?a=1&b=2 <nil>
	// https://example.com/~user/a%2Fb?q=%E2%82%AC <nil>
}

func ExampleNew() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		io.WriteString(w, "<h1>hello</h1>")
	}))
	defer origin.Close()

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	st, err := store.Open(filepath.Join(dir, "cache.db"), store.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	up, _ := url.Parse(origin.URL)
	p, err := httpcache.New(httpcache.Config{Upstream: up, Store: st})
	if err != nil {
		fmt.Println(err)
		return
	}
	front := httptest.NewServer(p)
	defer front.Close()

	get := func() {
		resp, err := http.Get(front.URL + "/")
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(body), resp.Header.Get("Cache-Status"))
	}
	get()
	// Stores happen beside the response; Wait (and Close) wait for them.
	p.Wait(context.Background())
	get()
	// Output:
	// <h1>hello</h1> firstrender; fwd=uri-miss; fwd-status=200; stored; ttl=60
	// <h1>hello</h1> firstrender; hit; ttl=60
}

func ExampleInspectorFunc() {
	// An Inspector that refuses pages carrying a CSRF meta tag and marks
	// the others.
	ins := httpcache.InspectorFunc(func(r *http.Request, res *httpcache.Response) httpcache.Verdict {
		if strings.Contains(string(res.Body), `name="csrf-token"`) {
			return httpcache.Verdict{Refuse: "csrf-token"}
		}
		return httpcache.Verdict{Annotations: map[string]string{"example.checked": "yes"}}
	})
	v := ins.Inspect(nil, &httpcache.Response{Status: 200, Body: []byte(`<meta name="csrf-token" content="x">`)})
	fmt.Printf("%q\n", v.Refuse)
	// Output: "csrf-token"
}

func ExampleProxy_Disable() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		io.WriteString(w, "page")
	}))
	defer origin.Close()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	st, err := store.Open(filepath.Join(dir, "cache.db"), store.Options{NoSync: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	up, _ := url.Parse(origin.URL)
	p, _ := httpcache.New(httpcache.Config{Upstream: up, Store: st})
	front := httptest.NewServer(p)
	defer front.Close()
	get := func() string {
		resp, err := http.Get(front.URL + "/page")
		if err != nil {
			return err.Error()
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("Cache-Status")
	}

	get()
	ctx := context.Background()
	p.Wait(ctx)                                                     // let the background store write finish
	entries, _ := p.Entries(ctx, front.URL+"/page?utm_source=mail") // normalized like requests
	for _, m := range entries {
		fmt.Printf("variant %q stored\n", m.Variant)
		// The live-socket join guard does this when a cached page cannot join.
		if err := p.Disable(ctx, m.Key, m.Variant, "join refused"); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(get())
	// Output:
	// variant "" stored
	// firstrender; fwd=miss; fwd-status=200; stored; ttl=60; detail=disabled
}
