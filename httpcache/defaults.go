package httpcache

import (
	"errors"
	"strings"
	"time"

	"github.com/firstrender/firstrender/store"
)

// originReadBuffer is the default Transport's read buffer per origin
// connection (net/http's default is 4 KB).
const originReadBuffer = 32 << 10

// Defaults of [Config] that a zero field takes. They are exported so that
// front ends (flags, help texts) show the library's values instead of
// restating them.
const (
	// DefaultMaxObjectSize is Config.MaxObjectSize's default: the store's
	// own default limit.
	DefaultMaxObjectSize = store.DefaultMaxObjectSize
	// DefaultMaxBuffered is Config.MaxBuffered's default.
	DefaultMaxBuffered = 256 << 20
	// DefaultMaxVariants is Config.MaxVariants's default.
	DefaultMaxVariants = 16
	// DefaultMemoryCacheSize is Config.MemoryCacheSize's default: the
	// memory tier's bytes.
	DefaultMemoryCacheSize = 256 << 20
	// DefaultOriginTimeout is Config.OriginTimeout's default.
	DefaultOriginTimeout = 30 * time.Second
	// LongpollPath is Phoenix's long-poll transport path, which
	// Config.BypassPrefixes bypasses by default beside the WebSocket one.
	LongpollPath = "/live/longpoll"
)

// CheckHost reports whether h is a valid [Config].Hosts entry ("name" or
// "name:port", an IPv6 literal in brackets) and returns it normalized the
// way the proxy compares it (lower case, no trailing dot, no default port
// for http). Front ends call it to refuse a bad entry early, naming their
// flag.
func CheckHost(h string) (string, error) {
	if strings.ContainsAny(h, "/?#") {
		return "", errors.New("want a host name or address, with an optional :port (no scheme or path)")
	}
	n, err := normalizeHost("http", h)
	if err != nil {
		var ke *KeyError
		if errors.As(err, &ke) {
			return "", errors.New(ke.Reason)
		}
		return "", err
	}
	return n, nil
}

// CheckIgnoreParams reports whether every pattern is a valid
// [Config].IgnoreParams entry (a name, or a prefix ending in one '*').
func CheckIgnoreParams(patterns []string) error {
	_, err := newIgnoreList(patterns)
	return err
}
