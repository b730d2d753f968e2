// Package httpcache is firstrender's HTTP semantics: request key
// normalization, RFC 9111 storability, freshness and validation, RFC 5861
// stale-while-revalidate / stale-if-error, request collapsing,
// invalidation and RFC 9211 Cache-Status, in a caching reverse proxy
// ([Proxy]) built on net/http/httputil.ReverseProxy and storing in a
// [store.Store].
//
// # Keys
//
// [NormalizeKey] is the pure function behind every key: the primary key
// is the normalized absolute URL (scheme://host/path?query), so purging by
// URL prefix works on keys. The proxy normalizes each request once and
// builds both the key and the URL it forwards to the origin from that one
// form, so an ignored query parameter never reaches the origin either.
// Variants (the store's Record.Variant) follow the stored response's Vary:
// "" when there is none, otherwise the normalized values of the named
// request headers. The Vary names are kept in the httpcache.vary
// annotation.
//
// # Requests that bypass
//
// Every decision is taken on the request as it will be forwarded (fields
// named in Connection removed, method-override headers stripped, allowed
// cookies removed, Accept-Encoding normalized to gzip or identity). A
// GET or HEAD with Authorization, or with a cookie that [Config].IgnoreCookies,
// SessionCookies under PublicPrefixes or AllowCookie do not allow, is
// forwarded without lookup or store (detail=authorization, cookie). The
// proxy itself answers oversized headers (431), CONNECT and TRACE (405), a
// raw '#' in the target (400) and hosts outside Hosts (421).
//
// # What is stored
//
// Only complete responses to GET that RFC 9111 §3 lets a shared cache
// store, without hop-by-hop fields, and by default nothing with
// Set-Cookie (see [Config].StripSetCookie), no error status
// ([Config].StoreErrors), no empty HTML 200, nothing that varies on Cookie
// or Authorization, no coding but gzip or identity, at most
// [Config].MaxVariants variants per URL. An error or an empty answer never
// replaces a stored page. Targeted fields (Firstrender-Cache-Control,
// CDN-Cache-Control, RFC 9213; Surrogate-Control) take precedence over
// Cache-Control and are stripped from clients. Range requests are cut from
// stored full responses (range.go); gzip bodies are decoded for clients
// that do not accept them (encoding.go). A HEAD is answered from a
// stored GET response but never fills one. Each stored record carries the
// annotations httpcache.policy (freshness computed at store time, so a
// hit parses no Cache-Control), httpcache.vary, and, from an [Inspector]
// verdict, httpcache.not-after plus the inspector's own.
//
// # Bodies read from the store
//
// A hit the memory tier does not hold reads its record from the store.
// bbolt's values live in its memory map and are valid only inside their
// read transaction, so the store copies the body out before the read
// returns (store.Store.GetBuf, its CRC-32C checked on the copy); the
// record itself is read into the entry made for it (readEntry, one
// allocation for the entry, the record and its prepared values). The
// transaction is never held while a client reads the body, which would
// keep bbolt from re-mapping a growing file. The copy goes into a pooled buffer, not fresh memory, and the
// buffer is reused once provably nothing else refers to the body: after a
// plain fresh hit written in the handler, over HTTP/1. An entry the memory
// tier admits keeps its buffer (the tier charges its capacity); one that
// is spliced, revalidated, served stale while a background revalidation
// runs, or answered over another protocol leaves it to the garbage
// collector (bodypool.go).
//
// # Cache-Status
//
// Every response carries a Cache-Status member for "firstrender"
// (RFC 9211), appended after the members of caches the response passed
// before (RFC 9211 §2 lists them in the order they handled it, so the
// cache nearest the client comes last): "hit" when served from the store without contacting the
// origin; otherwise fwd=uri-miss (nothing stored for the URL), vary-miss
// (nothing for this variant), miss (stored but unusable: detail=disabled
// or not-after), stale (revalidated), request (the request's
// Cache-Control required validation), method (unsafe method) or bypass
// (upgrade, socket path, uncached host), with fwd-status, "stored" when
// the response is being stored, ttl= (remaining freshness in seconds)
// and detail= with the reason a response was not stored ("private",
// "no-store", "set-cookie", "authorization", the inspector's reason...).
// Requests collapsed onto another request's fetch carry "hit; collapsed".
//
// The Cache-Status of the response that fills an entry is exact
// whenever it can be. With an [Inspector] and a Content-Length within
// [Config].InspectBuffer (256 KiB), the proxy reads the whole body,
// inspects a copy, and only then writes the headers: "stored; ttl=" (ttl
// capped by Verdict.NotAfter) or detail=<refusal>. Without an Inspector,
// a known length within MaxObjectSize is stored unless the transfer
// aborts, so "stored; ttl=" stands. Otherwise (a longer or chunked body)
// the response streams and claims neither stored nor ttl=:
// detail=pending-inspection (an Inspector is still to run) or
// detail=pending-size (the length is still open); the outcome shows on
// later requests, in the log and in metrics. The client always gets the
// origin's body unchanged.
//
// # Outcome
//
// What the proxy did with a request is one [Result] (hit, stale,
// collapsed, miss, revalidated, pass, error), the label of its request
// metrics. A caller that needs it per request (an access log) serves the
// request with the context of [WithOutcome] and reads the [Outcome]
// (result, detail, key, stored) once ServeHTTP returned, instead of
// parsing Cache-Status.
//
// # Splicing
//
// With a [Config].Splicer (opt-in; httpcache/liveview's session splice),
// a record the Inspector marked with Verdict.Splice (the [AnnotationSplice]
// annotation) holds one visitor's CSRF token and is only ever served
// personalized: each hit gets the visitor's own copy (written as
// segments, Cache-Control private, no ETag, never 304,
// detail=spliced). On [Config].SplicePaths a fill is forwarded without the
// Splicer's session cookie and answered with that visitor's spliced copy.
// A plain hit pays one nil check for it (splice.go).
//
// # Layout
//
// The request path is in files named by step: serve.go (classify; the
// GET/HEAD loop), lookup.go, hit.go (answer from a stored entry),
// collapse.go, origin.go (forward and the ReverseProxy hooks: the one way
// to the origin, for clients and background revalidations alike),
// revalidate.go, fill.go (the store decision, the MaxBuffered reservation,
// the store write), tee.go, invalidate.go, status.go; beside them edge.go
// (refusals before anything else), privacy.go (per-user requests, method
// overrides), encoding.go, range.go, targeted.go and splice.go. Hop-by-hop and
// forwarding rules are in the leaf package httpcache/hop; test rigs in
// httpcachetest.
package httpcache
