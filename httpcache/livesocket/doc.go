// Package livesocket brokers LiveView (and other) WebSockets from visitors to
// the origin application, with an Origin check in front and a join guard that
// watches LiveView joins for cached first renders that cannot go live.
//
// # Origin policy
//
// [OriginPolicy] implements Phoenix's check_origin semantics with stricter
// defaults: a request without an Origin header, Origin "null", and malformed
// origins are refused. Like [net/http.CrossOriginProtection] it has two
// layers: [OriginPolicy.Check] says why a request is refused, and
// [OriginPolicy.Handler] turns that into a 403.
//
// # Broker
//
// [Broker] accepts a client WebSocket only after it has dialled the origin's
// socket (same path and query, Cookie, User-Agent, Origin, offered
// subprotocols, X-Forwarded-*) and the origin accepted. Messages are relayed
// unchanged, in order, one message at a time in each direction, so a slow
// reader stops the broker reading from the other side (backpressure) rather
// than growing a buffer. Close codes are relayed both ways, both legs are
// pinged, and [Broker.Shutdown] closes every socket with 1001.
//
// # Join guard
//
// When [Config.Guard] is set the broker parses the first few messages of each
// socket (bounded, never altering them). A LiveView phx_join on an "lv:" topic
// answered with an error reply whose reason is "stale" or "unauthorized" (what
// Phoenix answers for an expired token or a session it cannot trust, the
// seed's "session was misconfigured" case) is mapped to the cached entry that
// served the page (by the sha256 prefix of its session token, recorded by the
// liveview lint in the phxtoken.AnnotationTokens annotation, else by URL), counted,
// annotated, and after a threshold of distinct clients disabled, so the next
// visitor gets a fresh render instead of a reload loop.
package livesocket
