// Package plugsession speaks the formats of a Phoenix application's session
// cookie and CSRF token, so that a cached first render can carry each
// visitor's own token and session exactly as Phoenix would have made them
// (issue 14). It has no proxy in it: the lint and the hit path use it.
//
// # Formats
//
// Everything here follows Plug's code (plug 1.x main: lib/plug/csrf_protection.ex,
// lib/plug/session/cookie.ex, lib/plug/conn/cookies.ex; plug_crypto 2.x; the
// known answers in testdata/vectors.json come from that code run on
// Elixir/OTP by testdata/plugvectors.exs):
//
//   - Key derivation (Plug.Crypto.KeyGenerator): PBKDF2-HMAC, 1000
//     iterations, 32 bytes, SHA-256 by default, of secret_key_base with a
//     salt: [DeriveKey], [KeyOptions].
//   - Signed tokens (Plug.Crypto.MessageVerifier): "SFMyNTY." (base64url
//     "HS256") base64url(payload) "." base64url(HMAC-SHA256) without
//     padding: [Sign], [Verify].
//   - Encrypted tokens (Plug.Crypto.MessageEncryptor): since plug_crypto
//     2.0 "XCP." base64url(nonce24 ‖ tag16 ‖ ciphertext), XChaCha20-Poly1305
//     with AAD "A128GCM" under the encryption key; plug_crypto 1.x wrote a
//     five-part "A128GCM" token (AES-128-GCM content, its key wrapped with
//     AES-GCM under the encryption key and the signing key as AAD, RFC 7518
//     §4.7), which 2.x still reads: [Encrypt], [EncryptA128GCM], [Decrypt].
//   - The session cookie (Plug.Session.COOKIE, serializer
//     :external_term_format): :erlang.term_to_binary of the session map
//     (binary keys such as "_csrf_token"), signed with the key derived from
//     :signing_salt, or encrypted with the key from :encryption_salt (the
//     signing key is then only used by the 1.x format). No timestamp: a
//     session cookie never expires by itself. A cookie that fails to verify
//     or decode is an empty session for Plug: [Codec], [Config].
//   - The Set-Cookie line (Plug.Conn.Cookies.encode/2): name=value; path;
//     domain; expires and max-age; secure; HttpOnly; SameSite; Partitioned;
//     extra, in that order: [ParseSetCookie], [CookieAttrs.Format]. Request
//     cookies are read as Plug.Conn.fetch_cookies/2 reads them (the last of
//     a name wins): [RequestCookie].
//   - CSRF tokens (Plug.CSRFProtection): the session holds "_csrf_token",
//     base64url of 18 random bytes (24 characters); every response shows it
//     masked, base64url(token XOR mask) ‖ mask with a fresh 24-character
//     mask, 56 characters whatever the token, so a spliced page keeps its
//     length; protect_from_forgery accepts any masking of the session's
//     token: [GenerateToken], [Mask], [MaskNew], [Unmask], [ValidMasked].
//     get_csrf_token_for/1 with a URL that has a host signs a per-host token
//     instead ([HostToken], [HostTokenHost]); pages holding one are not
//     spliced.
//
// # Splicing
//
// When a first render is stored, [Splicer.Prepare] checks the response the
// origin made for a visitor without a session (one Set-Cookie, the session,
// verifying with the configured secret and holding only a token) and
// [FindTokens] records every place the token is (meta csrf-token, data-csrf,
// _csrf_token inputs), refusing pages where it also appears elsewhere or in
// another form. On a hit, [Splicer.Splice] reads the visitor's cookie and
// returns a [Result]: the visitor's own token masked afresh, plus a
// Set-Cookie when the visitor had no usable session (a new one holding only
// a token) or one without a token (the token added). [Result.WriteTo]
// writes the stored page and the token without copying the page, and
// [Result.Len] is its Content-Length.
//
// # Secrets
//
// A [Codec] holds keys derived from the application's secret_key_base: it
// can forge any session of that application. Errors never include secrets
// or keys.
package plugsession
