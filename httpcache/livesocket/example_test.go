package livesocket_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/firstrender/firstrender/httpcache/livesocket"
)

func ExampleOriginPolicy_Check() {
	p, err := livesocket.NewOriginPolicy(livesocket.OriginConfig{
		Allowed: []string{"https://example.com", "//*.example.net"},
	})
	if err != nil {
		panic(err)
	}
	for _, origin := range []string{
		"https://example.com",
		"https://example.com:8443",
		"https://shop.example.net",
		"https://evilexample.net",
		"null",
	} {
		r := httptest.NewRequest("GET", "/live/websocket", nil)
		r.Header.Set("Origin", origin)
		fmt.Printf("%-26s %v\n", origin, p.Check(r))
	}
	// Output:
	// https://example.com        <nil>
	// https://example.com:8443   livesocket: Origin "https://example.com:8443" is not allowed
	// https://shop.example.net   <nil>
	// https://evilexample.net    livesocket: Origin "https://evilexample.net" is not allowed
	// null                       livesocket: Origin "null" is refused
}
