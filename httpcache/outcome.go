package httpcache

import "context"

// Result is the proxy's one vocabulary for what it did with a request.
// The proxy's metrics label requests with it (firstrender_requests_total
// {cache="..."}), and an access log reads it from an [Outcome] instead of
// re-parsing Cache-Status.
type Result string

// The results of a request, in the order the proxy considers them.
const (
	// ResultHit: served from the store, fresh, without contacting the origin.
	ResultHit Result = "hit"
	// ResultStale: served from the store while stale (max-stale,
	// stale-while-revalidate, stale-if-error).
	ResultStale Result = "stale"
	// ResultCollapsed: answered from another request's fetch of the same
	// key (request collapsing).
	ResultCollapsed Result = "collapsed"
	// ResultMiss: a cacheable request sent to the origin (nothing usable
	// stored) whose response was storable; it may still fail to be
	// stored (see Outcome.Stored: too large for MaxBuffered, an aborted
	// transfer, or an Inspector that refuses it after the body streamed).
	// A response found not storable before the request ends makes it a
	// ResultPass instead, so hits / (hits + misses) is the hit ratio of
	// what could be cached.
	ResultMiss Result = "miss"
	// ResultRevalidated: a stored entry was validated with the origin
	// (a conditional request), whatever the origin answered.
	ResultRevalidated Result = "revalidated"
	// ResultPass: forwarded without storing: without looking in the
	// cache (unsafe method, upgrade, socket path, uncached host, request
	// body, preconditions), or a miss whose response was not storable
	// (Outcome.Detail says why: private, set-cookie, liveview-csrf-meta...).
	ResultPass Result = "pass"
	// ResultError: answered with an error of the proxy's own (bad request
	// target, refused host, only-if-cached, origin unreachable or timed
	// out), or the client went away before it was answered.
	ResultError Result = "error"
)

// Results lists every [Result] value, for callers that pre-create metric
// series.
var Results = resultsArray[:]

// resultsArray is Results' array: its length sizes the per-result
// counters (figures, metrics).
var resultsArray = [...]Result{ResultHit, ResultStale, ResultCollapsed, ResultMiss, ResultRevalidated, ResultPass, ResultError}

// Outcome is what the proxy did with one request. [Proxy.ServeHTTP] fills
// it in, just before it returns, when the request's context carries one
// (see [WithOutcome]); other handlers (the live socket broker, say) may
// fill one in the same way. The zero value means nothing was recorded.
//
// An Outcome belongs to one request: it is written by the goroutine
// serving it and may be read once ServeHTTP has returned.
type Outcome struct {
	// Result is the request's result.
	Result Result
	// Detail is the proxy's reason, as in Cache-Status detail=
	// ("private", "set-cookie", "stale-while-revalidate", "origin-timeout"...);
	// empty when there is none.
	Detail string
	// Key is the request's primary cache key (its normalized URL); empty
	// when the target could not be normalized.
	Key string
	// Stored reports that the response is being stored: Cache-Status
	// said "stored", or a fill whose outcome was pending when the headers
	// went out received its whole body and its store write started (an
	// Inspector running on that body may still refuse it).
	Stored bool
	// CacheStatus is the Cache-Status field value the response was sent
	// with when the proxy wrote it outside the handler's header map (a
	// plain hit on a corked connection: its fields go out as one encoded
	// block); empty when the header map holds it, as for every other
	// response.
	CacheStatus string
}

type outcomeKey struct{}

// WithOutcome returns a copy of ctx carrying a new, empty [Outcome] and
// that Outcome. Serve the request with the returned context
// (r.WithContext) and read the Outcome once the handler returned.
func WithOutcome(ctx context.Context) (context.Context, *Outcome) {
	o := new(Outcome)
	return context.WithValue(ctx, outcomeKey{}, o), o
}

// OutcomeFrom returns the [Outcome] ctx carries, or nil when it carries
// none.
func OutcomeFrom(ctx context.Context) *Outcome {
	o, _ := ctx.Value(outcomeKey{}).(*Outcome)
	return o
}
