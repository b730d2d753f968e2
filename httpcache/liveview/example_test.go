package liveview_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/liveview"
)

func ExampleParseToken() {
	// The data-phx-static token quoted in the seed discussion.
	tok, err := liveview.ParseToken("SFMyNTY.g2gDaAJhBXQAAAADZAAKYXNzaWduX25ld2pkAAVmbGFzaHQAAAAAZAACaWRtAAAAFHBoeC1GNVVnT1FLSkpDS19zaGpEbgYATiwqposBYgABUYA.-GKGKKPNQUqxDLw1f39O1osZEL8V5a7XUCYZWk8jhWA")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tok.SignedAt.Format(time.RFC3339))
	fmt.Println(tok.MaxAge)
	fmt.Println(tok.ExpiresAfter(liveview.DefaultLiveViewMaxAge).Format(time.RFC3339))
	fmt.Println(tok.Data)
	// Output:
	// 2023-11-06T19:44:23Z
	// 24h0m0s
	// 2023-11-20T19:44:23Z
	// {5, %{assign_new: [], flash: %{}, id: "phx-F5UgOQKJJCK_shjD"}}
}

func ExampleSigner_Sign() {
	s, err := liveview.NewSigner("a-secret-key-base-of-at-least-64-bytes-in-real-apps-0123456789abcdef", "lv signing salt")
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := s.Sign(liveview.StaticData("phx-demo"), time.UnixMilli(1700000000000), 24*time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}
	parsed, _ := liveview.ParseToken(tok)
	fmt.Println(parsed.Data, parsed.SignedAt.Format(time.RFC3339), s.Verify(tok))
	fmt.Println(s)
	// Output:
	// {5, %{assign_new: [], flash: %{}, id: "phx-demo"}} 2023-11-14T22:13:20Z valid
	// liveview.Signer{key: REDACTED}
}

func ExampleLinter_Inspect() {
	lint, err := liveview.New(liveview.Config{
		Policy: map[liveview.Kind]liveview.Action{liveview.KindCSRFMeta: liveview.Strip},
		Now:    func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, _ := liveview.Sign("secret-key-base-for-the-example-0123456789-0123456789-0123456789", "salt",
		liveview.StaticData("phx-1"), time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC), 24*time.Hour)
	res := &httpcache.Response{
		Status: 200,
		Header: http.Header{"Content-Type": {"text/html"}},
		Body:   []byte(`<meta name="csrf-token" content="abc"><div data-phx-static="` + tok + `"></div>`),
	}
	v := lint.Inspect(nil, res)
	fs, _ := liveview.DecodeFindings(v.Annotations[liveview.AnnotationFindings])
	fmt.Printf("refuse=%q not-after=%s\n", v.Refuse, v.NotAfter.Format(time.RFC3339))
	fmt.Println(fs[0].Kind, fs[0].Action, string(res.Body[:38]))
	// Output:
	// refuse="" not-after=2026-12-09T10:55:00Z
	// csrf-meta strip <meta name="csrf-token" content=""><di
}
