package admin

import (
	"encoding/json"
	"time"
)

// The JSON types of the admin API, version 1. They are this package's own,
// not the store's structs: a field is added, never renamed or retyped, within
// /admin/v1/. Times are RFC 3339 with nanoseconds (time.Time's JSON form);
// durations are whole seconds in fields whose name ends in _s. An absent
// time is omitted, never the zero time.

// Version is the API version served under /admin/<Version>/.
const Version = "v1"

// Entry is one stored response (one variant of a key) as the list shows it.
type Entry struct {
	Key     string `json:"key"`
	Variant string `json:"variant"` // "" for the default variant
	Status  int    `json:"status"`
	// Size is what the record takes in the store; BodySize is len(body).
	Size     int64     `json:"size"`
	BodySize int64     `json:"body_size"`
	StoredAt time.Time `json:"stored_at"`
	// AgeS is the current age (RFC 9111 §4.2.3) in seconds.
	AgeS    int64      `json:"age_s"`
	Expires *time.Time `json:"expires,omitempty"` // end of freshness
	// NotAfter is the LiveView token cap: the entry is never served after it.
	NotAfter *time.Time `json:"not_after,omitempty"`
	// Hits served since the server started, when the server knows it (-1: unknown).
	Hits int64    `json:"hits"`
	Vary []string `json:"vary,omitempty"`
	Tags []string `json:"tags,omitempty"`
	// Findings are the lint findings' kinds (see EntryDetail for details).
	Findings []string `json:"findings,omitempty"`
	// Disabled is the reason the entry is no longer served ("" when served).
	Disabled string `json:"disabled,omitempty"`
	// Stale is true when the entry is past its freshness lifetime (and may
	// still be served under stale-while-revalidate / stale-if-error).
	Stale bool `json:"stale,omitempty"`
	// Corrupt is true when the record failed its checksum; only Key, Variant
	// and Size are then meaningful. Purge it.
	Corrupt bool `json:"corrupt,omitempty"`
	// KeyBase64 and VariantBase64 carry the exact bytes (standard base64)
	// of a key or variant that is not valid UTF-8, which a JSON string
	// cannot hold (Key and Variant then show U+FFFD in place of the bad
	// bytes). Empty when Key / Variant are exact.
	KeyBase64     string `json:"key_base64,omitempty"`
	VariantBase64 string `json:"variant_base64,omitempty"`
}

// StatusClass filter values for ListQuery.Status: "2xx", "3xx", "4xx", "5xx".

// ListQuery selects a page of entries in key order. Every filter is applied
// on the server. After and Before are cursors from a previous Page (opaque
// strings; keys may hold any byte); at most one of them is set. Limit is at
// most MaxLimit; zero means DefaultLimit.
type ListQuery struct {
	After    string `json:"after,omitempty"`
	Before   string `json:"before,omitempty"`
	Limit    int    `json:"limit,omitempty"`
	Prefix   string `json:"prefix,omitempty"`   // key prefix
	Contains string `json:"contains,omitempty"` // substring of the key
	Tag      string `json:"tag,omitempty"`
	Status   string `json:"status,omitempty"` // "2xx".."5xx" or an exact code "404"
	Findings bool   `json:"findings,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
	// Last asks for the last page (G in the TUI) without paging through.
	Last bool `json:"last,omitempty"`
}

// Paging limits of GET entries.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Page is one reply of GET entries. A filtered call stops at Limit matches
// or at the server's scan budget, whichever comes first; Scanned says how
// many records it examined, and Done is true when no further record in the
// direction of travel can match. Next and Prev are cursors ("" at an end).
type Page struct {
	Items       []Entry `json:"items"`
	Next        string  `json:"next,omitempty"`
	Prev        string  `json:"prev,omitempty"`
	Scanned     int     `json:"scanned"`
	ApproxTotal int64   `json:"approx_total"` // records in the store (O(1) counter)
	Done        bool    `json:"done"`
}

// Finding is one lint finding on a stored first render.
type Finding struct {
	Kind        string `json:"kind"`             // e.g. "csrf-meta", "set-cookie", "liveview-user-session"
	Policy      string `json:"policy,omitempty"` // refuse, strip, allow
	Detail      string `json:"detail,omitempty"`
	Explanation string `json:"explanation"` // what it means for a shared cache
	Action      string `json:"action"`      // what the operator should do
}

// Expiry says when an entry stops being fresh and why.
type Expiry struct {
	At *time.Time `json:"at,omitempty"`
	// Reason is one of "s-maxage", "max-age", "expires", "heuristic",
	// "token-cap", "default-ttl", "none".
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Token is a decoded Phoenix token (data-phx-session, data-phx-static, or
// one posted to POST decode).
type Token struct {
	Where string `json:"where,omitempty"` // "data-phx-session", "data-phx-static", "csrf-meta", "posted"
	Raw   string `json:"raw,omitempty"`
	// Kind is "signed" or "encrypted"; encrypted tokens carry no readable term.
	Kind      string     `json:"kind"`
	Algorithm string     `json:"algorithm,omitempty"`
	SignedAt  *time.Time `json:"signed_at,omitempty"`
	// MaxAgeS is the max age embedded in the token; VerifierMaxAgeS the one
	// the application verifies with (LiveView: 14 days), which wins.
	MaxAgeS         int64      `json:"max_age_s,omitempty"`
	VerifierMaxAgeS int64      `json:"verifier_max_age_s,omitempty"`
	Expires         *time.Time `json:"expires,omitempty"`
	Expired         bool       `json:"expired"`
	// Signature is "verified", "invalid" or "not-checked" (no secret configured).
	// Never "verified" unless the server checked it with the secret.
	Signature string `json:"signature"`
	// Elixir is the term in Elixir syntax (depth-capped); JSON its JSON form.
	Elixir string          `json:"elixir,omitempty"`
	JSON   json.RawMessage `json:"json,omitempty"`
	Error  string          `json:"error,omitempty"` // why it could not be decoded
	// Offset is the token's byte offset in the (decoded) body; 0 for a
	// posted token.
	Offset int `json:"offset"`
}

// EntryDetail is GET entry: one variant with everything stored about it.
type EntryDetail struct {
	Entry
	Variants []string            `json:"variants"` // every variant of the key, this one included
	Headers  map[string][]string `json:"headers"`  // stored response headers
	// Body is the stored body as text when it is valid UTF-8, else base64
	// (BodyBase64 true); capped at MaxBody bytes with Truncated set.
	Body       string `json:"body"`
	BodyBase64 bool   `json:"body_base64,omitempty"`
	Decoded    string `json:"decoded,omitempty"` // the Content-Encoding removed ("gzip"), when asked
	Truncated  bool   `json:"truncated,omitempty"`
	// DecodeError says why the body's Content-Encoding could not be
	// removed (br, zstd, damaged data); Body is then the stored bytes and
	// Tokens is empty.
	DecodeError string    `json:"decode_error,omitempty"`
	Findings    []Finding `json:"findings,omitempty"` // shadows Entry.Findings' kinds with details
	Expiry      Expiry    `json:"expiry"`
	Tokens      []Token   `json:"tokens,omitempty"`
	// Annotations are the raw annotations (namespace in docs/annotations.md).
	Annotations map[string]string `json:"annotations,omitempty"`
}

// MaxBody caps EntryDetail.Body.
const MaxBody = 256 << 10

// DecodeRequest is POST decode's body.
type DecodeRequest struct {
	Token string `json:"token"`
}

// PurgeRequest is POST purge's body. Exactly one selector is set: Key (all
// variants of one normalized key), Keys, Prefix, Tag, or All (which also
// needs Confirm == "all"). URL is a page URL normalized exactly like a
// request (the PURGE method uses it). DryRun counts without deleting; Soft
// marks entries stale instead of deleting them, so the next request
// revalidates while others get the stale copy.
type PurgeRequest struct {
	Key     string   `json:"key,omitempty"`
	Keys    []string `json:"keys,omitempty"`
	URL     string   `json:"url,omitempty"`
	Prefix  string   `json:"prefix,omitempty"`
	Tag     string   `json:"tag,omitempty"`
	All     bool     `json:"all,omitempty"`
	Confirm string   `json:"confirm,omitempty"`
	DryRun  bool     `json:"dry_run,omitempty"`
	Soft    bool     `json:"soft,omitempty"`
	// Scope is "cluster" (default when clustering is on) or "local".
	Scope string `json:"scope,omitempty"`
}

// MaxPrefix bounds PurgeRequest.Prefix and ListQuery.Prefix.
const MaxPrefix = 1024

// PurgeResult is POST purge's reply, sent only after the deletion committed.
type PurgeResult struct {
	ID     string `json:"id"`
	Count  int    `json:"count"`
	DryRun bool   `json:"dry_run,omitempty"`
	Soft   bool   `json:"soft,omitempty"`
	// Cluster fields, set when clustering is on: the stream sequence the
	// purge was acknowledged at, and (with ?wait=applied) each node's status.
	Sequence uint64       `json:"sequence,omitempty"`
	Nodes    []NodeStatus `json:"nodes,omitempty"`
}

// NodeStatus is one cluster node's answer to a purge waited on with ?wait=applied.
type NodeStatus struct {
	Node    string `json:"node"`
	Applied bool   `json:"applied"`
	Error   string `json:"error,omitempty"`
	// Sequence is the node's applied stream sequence when last heard.
	Sequence uint64 `json:"sequence,omitempty"`
}

// ClusterNode is one node of GET cluster (the cluster view): what its
// last heartbeat said, and what this node adds (LastSeen, Gone, Self).
type ClusterNode struct {
	ID        string    `json:"id"`
	Address   string    `json:"address,omitempty"`
	Version   string    `json:"version,omitempty"`
	StartedAt time.Time `json:"started_at"`
	UptimeS   int64     `json:"uptime_s"`
	// Stream is the stream incarnation Applied counts in.
	Stream string `json:"stream,omitempty"`
	// Applied is the node's applied stream sequence; Last the stream's
	// last sequence as the node knows it; Lag is Last - Applied.
	Applied uint64 `json:"applied"`
	Last    uint64 `json:"last"`
	Lag     uint64 `json:"lag"`
	// Connected: to NATS, with its consumer running. Blind: no contact
	// with the stream for longer than the bound. Serving: hits are served
	// (caught up); a node that is not serving forwards every request.
	Connected bool    `json:"connected"`
	Blind     bool    `json:"blind"`
	Serving   bool    `json:"serving"`
	Entries   int64   `json:"entries"`
	Bytes     int64   `json:"bytes"`
	HitRatio  float64 `json:"hit_ratio"`
	Sockets   int64   `json:"open_sockets"`
	// LastApplyLatencyS is from the stream storing the last message the
	// node applied to its commit there.
	LastApplyLatencyS float64 `json:"last_apply_latency_s"`
	// Outbox is how many of the node's invalidations wait to be published.
	Outbox   int64     `json:"outbox"`
	LastSeen time.Time `json:"last_seen"`
	// Gone: not heard from for longer than the bound, or it said it was
	// leaving.
	Gone bool `json:"gone"`
	// Self marks the node that answered.
	Self bool `json:"self,omitempty"`
}

// ClusterView is GET cluster's reply: the cluster's name, the node that
// answered and every node it knows of, sorted by id.
type ClusterView struct {
	Cluster string        `json:"cluster"`
	Node    string        `json:"node"`
	Nodes   []ClusterNode `json:"nodes"`
}

// PurgeRecord is one line of the purge audit log (GET purges).
type PurgeRecord struct {
	ID       string       `json:"id"`
	Time     time.Time    `json:"time"`
	Client   string       `json:"client"` // remote address, or "unix", or "cluster:<node>"
	Selector PurgeRequest `json:"selector"`
	Count    int          `json:"count"`
	Error    string       `json:"error,omitempty"`
	// Sequence is the stream sequence of a cluster purge (0: local, or
	// not acknowledged).
	Sequence uint64 `json:"sequence,omitempty"`
}

// EnableRequest is POST enable's body: undo a join-guard or manual disable.
type EnableRequest struct {
	Key     string `json:"key"`
	Variant string `json:"variant"`
}

// Stats is GET stats: counters since start and O(1) store figures.
type Stats struct {
	Instance  string    `json:"instance"` // host:port of the public listener
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	UptimeS   int64     `json:"uptime_s"`
	StorePath string    `json:"store_path"`
	ReadOnly  bool      `json:"read_only"` // true when read offline from the file

	Entries  int64 `json:"entries"`
	Bytes    int64 `json:"bytes"`
	FileSize int64 `json:"file_size"`
	MaxSize  int64 `json:"max_size"`

	Requests    int64   `json:"requests"`
	Hits        int64   `json:"hits"`
	Misses      int64   `json:"misses"`
	Stale       int64   `json:"stale"`
	Revalidated int64   `json:"revalidated"`
	Pass        int64   `json:"pass"`
	Errors      int64   `json:"errors"`
	HitRatio    float64 `json:"hit_ratio"` // hits / (hits + misses) since start; 0 when none

	OriginRequests int64   `json:"origin_requests"`
	OriginLatencyS float64 `json:"origin_latency_s"` // mean since start

	Evictions   int64 `json:"evictions"`
	Expired     int64 `json:"expired"`
	Purged      int64 `json:"purged"`
	Disabled    int64 `json:"disabled"` // entries disabled by the join guard or by hand
	OpenSockets int64 `json:"open_sockets"`
	StoreErrors int64 `json:"store_errors"`
}

// Event is one server-sent event of GET events (the SSE "event:" field is
// Type, "data:" is this struct as JSON). Type is one of "store", "purge",
// "evict", "disable", "enable", "stats" (a figures sample once a second,
// with Stats set), and "dropped" (sent to a reader that fell behind before
// it is disconnected).
type Event struct {
	Type    string       `json:"type"`
	Time    time.Time    `json:"time"`
	Key     string       `json:"key,omitempty"`
	Variant string       `json:"variant,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	Purge   *PurgeRecord `json:"purge,omitempty"`
	Stats   *Stats       `json:"stats,omitempty"`
}

// CheckResult is POST check: the store's integrity check.
type CheckResult struct {
	Records int      `json:"records"`
	Corrupt int      `json:"corrupt"`
	Errors  []string `json:"errors,omitempty"`
	OK      bool     `json:"ok"`
}

// CompactResult is POST compact.
type CompactResult struct {
	BeforeBytes int64 `json:"before_bytes"`
	AfterBytes  int64 `json:"after_bytes"`
}

// Error is every error reply: {"error": "...", "code": "..."} with a
// meaningful HTTP status. Code is stable and machine-readable
// ("unauthorized", "rate_limited", "bad_request", "not_found",
// "confirm_required", "read_only", "unavailable", "internal").
type Error struct {
	Message string `json:"error"`
	Code    string `json:"code"`
	Status  int    `json:"-"`
	// ID and Count are set on a purge's "not_durable" error (503): the
	// purge was applied on this node (Count records) and queued for the
	// cluster, but the stream did not acknowledge it in time.
	ID    string `json:"id,omitempty"`
	Count *int   `json:"count,omitempty"`
}

func (e *Error) Error() string { return "admin: " + e.Code + ": " + e.Message }
