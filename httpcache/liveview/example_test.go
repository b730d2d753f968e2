package liveview_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/liveview"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
)

func ExampleLinter_Inspect() {
	lint, err := liveview.New(liveview.Config{
		Policy: map[liveview.Kind]liveview.Action{liveview.KindCSRFMeta: liveview.Strip},
		Now:    func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, _ := phxtoken.Sign("secret-key-base-for-the-example-0123456789-0123456789-0123456789", "salt",
		phxtoken.StaticData("phx-1"), time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC), 24*time.Hour)
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
