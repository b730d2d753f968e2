package phxtoken_test

import (
	"fmt"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
)

func ExampleParseToken() {
	// The data-phx-static token quoted in the seed discussion.
	tok, err := phxtoken.ParseToken("SFMyNTY.g2gDaAJhBXQAAAADZAAKYXNzaWduX25ld2pkAAVmbGFzaHQAAAAAZAACaWRtAAAAFHBoeC1GNVVnT1FLSkpDS19zaGpEbgYATiwqposBYgABUYA.-GKGKKPNQUqxDLw1f39O1osZEL8V5a7XUCYZWk8jhWA")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tok.SignedAt.Format(time.RFC3339))
	fmt.Println(tok.MaxAge)
	fmt.Println(tok.ExpiresAfter(phxtoken.DefaultLiveViewMaxAge).Format(time.RFC3339))
	fmt.Println(tok.Data)
	// Output:
	// 2023-11-06T19:44:23Z
	// 24h0m0s
	// 2023-11-20T19:44:23Z
	// {5, %{assign_new: [], flash: %{}, id: "phx-F5UgOQKJJCK_shjD"}}
}

func ExampleSigner_Sign() {
	s, err := phxtoken.NewSigner("a-secret-key-base-of-at-least-64-bytes-in-real-apps-0123456789abcdef", "lv signing salt")
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := s.Sign(phxtoken.StaticData("phx-demo"), time.UnixMilli(1700000000000), 24*time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}
	parsed, _ := phxtoken.ParseToken(tok)
	fmt.Println(parsed.Data, parsed.SignedAt.Format(time.RFC3339), s.Verify(tok))
	fmt.Println(s)
	// Output:
	// {5, %{assign_new: [], flash: %{}, id: "phx-demo"}} 2023-11-14T22:13:20Z valid
	// phxtoken.Signer{key: REDACTED}
}
