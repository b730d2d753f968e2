package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/firstrender/firstrender/store"
)

// Defaults of Config.
const (
	DefaultClusterName       = "firstrender"
	DefaultMaxAge            = 30 * 24 * time.Hour
	DefaultMaxBytes          = 1 << 30
	DefaultDedupeWindow      = 10 * time.Minute
	DefaultBlind             = 5 * time.Second
	DefaultPublishTimeout    = 2 * time.Second
	DefaultHeartbeatInterval = time.Second
	DefaultReconnectWait     = 500 * time.Millisecond
)

// Config configures a Node. Exactly one of NATSURL and EmbeddedAddr is set.
type Config struct {
	// NATSURL joins an operator-run NATS (a comma-separated list of
	// servers, e.g. "nats://10.0.0.1:4222,nats://10.0.0.2:4222").
	NATSURL string
	// EmbeddedAddr runs a NATS server with JetStream inside this process,
	// listening on host:port (port 0: any free port), and joins it. Other
	// nodes join it with NATSURL "nats://EmbeddedAddr".
	EmbeddedAddr string
	// EmbeddedDir is the embedded server's JetStream directory. If empty,
	// it is the store's path with ".nats" appended (beside the database).
	EmbeddedDir string

	// ClusterName names the stream (FIRSTRENDER_<name>) and the subjects
	// (firstrender.<name>.inv, firstrender.<name>.hb); letters, digits,
	// '-' and '_' only, at most 64. If empty, DefaultClusterName.
	ClusterName string
	// NodeID names this node in heartbeats and message ids; required
	// (see DefaultNodeID). Letters, digits, '-', '_', '.', ':' only.
	NodeID string
	// Address is what other nodes' operators see for this node (its
	// admin or public listener); informational.
	Address string
	// Version is the binary's version, shown in the cluster view.
	Version string

	// Stream limits, used when this node creates the stream (an existing
	// stream keeps its own). MaxAge: if zero, DefaultMaxAge; keep it well
	// beyond the longest cache lifetime. MaxBytes: if zero,
	// DefaultMaxBytes. MaxMsgs: if zero, unlimited. A node that missed
	// messages the limits removed drops its cache.
	MaxAge   time.Duration
	MaxBytes int64
	MaxMsgs  int64
	// Replicas of the stream (1, 3 or 5 in a NATS cluster). If zero, 1.
	Replicas int
	// DedupeWindow is the stream's duplicate window (Nats-Msg-Id). If
	// zero, DefaultDedupeWindow (capped at MaxAge).
	DedupeWindow time.Duration

	// Blind is how long the node may be without contact with the stream
	// before it stops serving hits until it has caught up. If zero,
	// DefaultBlind.
	Blind time.Duration
	// PublishTimeout bounds the wait for the stream's acknowledgement of a
	// purge. If zero, DefaultPublishTimeout.
	PublishTimeout time.Duration
	// HeartbeatInterval is how often the node publishes its heartbeat and
	// checks the stream. If zero, DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// GoneAfter is how long a node may stay silent before the cluster view
	// shows it as gone. If zero, 3 heartbeat intervals plus 2s.
	GoneAfter time.Duration
	// ReconnectWait is the pause between attempts to reach NATS, and the
	// first pause before recreating a failed consumer. If zero,
	// DefaultReconnectWait.
	ReconnectWait time.Duration
	// NATSOptions are extra options for the connection (credentials, TLS).
	NATSOptions []nats.Option
}

var (
	clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	nodeIDRE      = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
)

// ErrConfig is wrapped by New's errors for a bad Config or Deps.
var ErrConfig = errors.New("cluster: bad configuration")

func (c *Config) setDefaults(st *store.Store) error {
	switch {
	case c.NATSURL == "" && c.EmbeddedAddr == "":
		return fmt.Errorf("%w: set NATSURL or EmbeddedAddr", ErrConfig)
	case c.NATSURL != "" && c.EmbeddedAddr != "":
		return fmt.Errorf("%w: NATSURL and EmbeddedAddr are exclusive", ErrConfig)
	case c.EmbeddedDir != "" && c.EmbeddedAddr == "":
		return fmt.Errorf("%w: EmbeddedDir without EmbeddedAddr", ErrConfig)
	}
	if c.EmbeddedAddr != "" {
		if _, _, err := splitAddr(c.EmbeddedAddr); err != nil {
			return fmt.Errorf("%w: EmbeddedAddr %q: %v", ErrConfig, c.EmbeddedAddr, err)
		}
		if c.EmbeddedDir == "" {
			c.EmbeddedDir = st.Path() + ".nats"
		}
	}
	if c.ClusterName == "" {
		c.ClusterName = DefaultClusterName
	}
	if !clusterNameRE.MatchString(c.ClusterName) {
		return fmt.Errorf("%w: ClusterName %q: letters, digits, '-' and '_' only, 1 to 64", ErrConfig, c.ClusterName)
	}
	if !nodeIDRE.MatchString(c.NodeID) {
		return fmt.Errorf("%w: NodeID %q: required; letters, digits, '-', '_', '.', ':' only, 1 to 128", ErrConfig, c.NodeID)
	}
	if c.MaxAge < 0 || c.MaxBytes < 0 || c.MaxMsgs < 0 || c.Replicas < 0 || c.DedupeWindow < 0 || c.Blind < 0 ||
		c.PublishTimeout < 0 || c.HeartbeatInterval < 0 || c.GoneAfter < 0 || c.ReconnectWait < 0 {
		return fmt.Errorf("%w: negative limit or duration", ErrConfig)
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DedupeWindow == 0 {
		c.DedupeWindow = DefaultDedupeWindow
	}
	c.DedupeWindow = min(c.DedupeWindow, c.MaxAge)
	if c.Blind == 0 {
		c.Blind = DefaultBlind
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.GoneAfter == 0 {
		c.GoneAfter = 3*c.HeartbeatInterval + 2*time.Second
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	return nil
}

// splitAddr parses host:port; port 0 means any free port (-1 for the
// NATS server).
func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if port == 0 {
		port = -1
	}
	return host, port, nil
}

// DefaultNodeID is a node id from the host name and the public listener's
// port ("web-1-8080"); listen is host:port or :port.
func DefaultNodeID(listen string) string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "node"
	}
	id := h
	if _, port, err := net.SplitHostPort(listen); err == nil && port != "" {
		id += "-" + port
	}
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}

// Deps are what a Node works with. Store is required; the rest optional.
type Deps struct {
	// Store is the node's page store; the Node does not close it, and it
	// must outlive the Node (Close the Node first).
	Store *store.Store
	// Purger is the node's proxy; see Purger. Nil means invalidations are
	// applied to the store only (in-memory state of a proxy is not told).
	Purger Purger
	// SoftMark returns the annotations a soft purge merges into each entry
	// it covers (httpcache's stale mark). Nil: soft purges delete, which
	// never serves anything a soft purge would not.
	SoftMark func() map[string]string
	// Figures returns the proxy's figures for the heartbeat. Nil: zeros.
	Figures func() Figures
	// OnApply, if set, is called after each message from the stream has
	// been applied (the node's own included), in stream order, from the
	// consumer's goroutine: for the audit log and events. It must not
	// block for long.
	OnApply func(Applied)
	// Logger receives the node's log lines. Nil: slog.Default().
	Logger *slog.Logger
}

// Figures are the proxy's figures a heartbeat carries.
type Figures struct {
	HitRatio    float64 // hits / (hits + misses) since start
	OpenSockets int64
}

// Purger is the node's proxy as the cluster applies invalidations through
// it (httpcache's proxy implements it, as it implements httpcache/admin's
// purges): every invalidation, this node's own and those from other
// nodes, reaches the store through Invalidate, so that the proxy forgets
// what it keeps in memory about what sels cover.
//
// Invalidate must, for every selector in sels: drop in-memory state
// (variant lists, hit-for-pass marks, hot copies, join-guard counts);
// make any fill whose origin fetch started before the call not store its
// response; call commit exactly once (it makes the change in the store and
// records the cluster's progress in the same transaction); and return
// commit's error. It is called from several goroutines.
type Purger interface {
	Invalidate(ctx context.Context, sels []Selector, commit func(context.Context) error) error
}

// Applied describes one message from the stream after it was applied.
type Applied struct {
	Seq     uint64
	Message Message
	Count   int  // records deleted or marked (for all: hidden by the epoch)
	Self    bool // published by this node
	// Local: this node's own message, applied in full when it was made;
	// only its sequence was recorded now (Count is 0).
	Local bool
	// Latency is from the stream storing the message to its commit here.
	Latency time.Duration
}
