// Package liveview teaches firstrender about Phoenix LiveView first renders.
//
// # Tokens
//
// [ParseToken] reads a Phoenix token (Phoenix.Token, Plug.Crypto.sign) —
// "SFMyNTY.<payload>.<signature>" with the payload an Erlang term
// {data, signed_at_ms, max_age_s} — and reports when it was signed, its
// embedded max age, its expiry and its data (decoded with package
// [erlterm]). Encrypted tokens (Plug.Crypto.MessageEncryptor, A128GCM /
// A256GCM) are recognised and reported as encrypted. A [Signer] derives the
// key as Plug.Crypto.KeyGenerator does (PBKDF2-HMAC-SHA256, 1000
// iterations, 32 bytes) to verify signatures and to [Sign] new tokens, for
// instance in a demo origin.
//
// # Expiry
//
// A token expires at signed-at plus the max age the application verifies
// it with. Plug.Crypto uses the embedded max age (86400 s by default) unless
// the verifier passes its own; LiveView verifies data-phx-session and
// data-phx-static with its own @max_session_age of 1_209_600 s (14 days,
// lib/phoenix_live_view/static.ex), so for those tokens the embedded 86400
// does not apply. [Config.VerifierMaxAge] chooses which one firstrender uses.
//
// # Lint
//
// [Linter] implements httpcache.Inspector: before a first render is stored it
// finds every Phoenix token, the CSRF meta tag, Set-Cookie, Vary: Cookie and
// per-user session data, applies the per-kind [Policy], records the findings
// as annotations, and caps the entry's life at the earliest token expiry
// minus a margin, so a page is never served after its tokens stop working.
package liveview
