// Package phxtoken reads, signs and verifies Phoenix tokens (Phoenix.Token,
// Plug.Crypto.sign / encrypt) and describes them for operators. It imports
// only the standard library and [erlterm], so decoders such as the TUI and
// `admin decode` use it without linking the cache, bbolt or Prometheus.
//
// # Tokens
//
// [ParseToken] reads "SFMyNTY.<payload>.<signature>" with the payload an
// Erlang term {data, signed_at_ms, max_age_s} (and the two older layouts)
// and reports when it was signed, its embedded max age, its expiry and its
// data. Encrypted tokens (Plug.Crypto.MessageEncryptor, A128GCM / A256GCM)
// are recognised and reported as encrypted. Parsing does not check the
// signature.
//
// A [Signer] derives the key as Plug.Crypto.KeyGenerator does
// (PBKDF2-HMAC-SHA256, 1000 iterations, 32 bytes) to [Signer.Verify]
// signatures and [Signer.Sign] new tokens. [SessionData] and [StaticData]
// build the data LiveView signs into data-phx-session / data-phx-static;
// [UserSession] reads the user session map back out.
//
// # Expiry
//
// A token expires at signed-at plus the max age the application verifies
// it with. Plug.Crypto uses the embedded max age (86400 s by default) unless
// the verifier passes its own; LiveView verifies data-phx-session and
// data-phx-static with its own @max_session_age of 1_209_600 s
// ([DefaultLiveViewMaxAge], lib/phoenix_live_view/static.ex), so for those
// tokens the embedded 86400 does not apply: see [Token.ExpiresAfter].
//
// # Description
//
// [Describe] turns a parsed token into a [Description] (text or JSON), the
// form the admin surface prints.
//
// # Hashes
//
// [TokenHash] is the short form in which the liveview lint records a page's
// tokens ([AnnotationTokens]) and the live-socket join guard matches joins.
package phxtoken
