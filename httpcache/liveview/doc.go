// Package liveview lints Phoenix LiveView first renders before the caching
// proxy stores them. Token parsing, signing and description live in the leaf
// package [phxtoken] (importable without the cache); the Erlang term codec
// in [erlterm].
//
// # Lint
//
// [Linter] implements httpcache.Inspector: before a first render is stored it
// finds every Phoenix token, the CSRF meta tag, Set-Cookie, Vary: Cookie and
// per-user session data, applies the per-kind [Config.Policy], records the findings
// as annotations ([AnnotationFindings], [AnnotationExpires],
// [phxtoken.AnnotationTokens]; docs/annotations.md), and caps the entry's
// life at the earliest token expiry minus a margin, so a page is never
// served after its tokens stop working.
//
// # Session splice
//
// With [Config].Splice (a [Splicer], also the proxy's
// httpcache.Config.Splicer), a first render whose only per-visitor parts
// are the CSRF token and a fresh Plug.Session cookie is stored once, with
// its token spans (the httpcache.splice annotation), and every hit gets the
// visitor's own masked token and, when needed, session cookie
// (package [plugsession]); see docs/liveview.md, "Session splice".
//
// # Expiry
//
// LiveView verifies data-phx-session and data-phx-static with its own
// @max_session_age of 14 days ([phxtoken.DefaultLiveViewMaxAge]), not the
// 86400 s embedded in them; [Config.LiveViewMaxAge] chooses which one the
// lint uses, [Config.TokenMaxAge] the one for other Phoenix tokens.
package liveview
