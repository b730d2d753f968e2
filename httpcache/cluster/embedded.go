package cluster

import (
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream running in this process, for
// one-box setups and tests (Config.EmbeddedAddr starts one for a Node).
type Embedded struct {
	srv *server.Server
	dir string
}

// EmbeddedOptions configure StartEmbedded.
type EmbeddedOptions struct {
	// Addr is host:port to listen on; port 0 picks a free port. Required.
	Addr string
	// Dir holds JetStream's files (created 0700 if missing). Required.
	Dir string
	// Name is the server's name (JetStream needs a stable one to find its
	// data again). If empty, "firstrender".
	Name string
	// MaxStore bounds JetStream's file storage. If zero, 4 GiB.
	MaxStore int64
	// ReadyTimeout bounds the wait for the server to accept connections.
	// If zero, 10s.
	ReadyTimeout time.Duration
}

// StartEmbedded starts a NATS server with JetStream and returns once it
// accepts connections. Close stops it.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	host, port, err := splitAddr(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded NATS address %q: %w", o.Addr, err)
	}
	if o.Dir == "" {
		return nil, fmt.Errorf("%w: embedded NATS needs a directory", ErrConfig)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: embedded NATS directory: %w", err)
	}
	if o.Name == "" {
		o.Name = "firstrender"
	}
	if o.MaxStore == 0 {
		o.MaxStore = 4 << 30
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	srv, err := server.NewServer(&server.Options{
		ServerName:            o.Name,
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              o.Dir,
		JetStreamMaxMemory:    64 << 20,
		JetStreamMaxStore:     o.MaxStore,
		NoSigs:                true,
		NoLog:                 true,
		NoSystemAccount:       true,
		DisableShortFirstPing: true,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(o.ReadyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("cluster: embedded NATS on %s not ready after %v", o.Addr, o.ReadyTimeout)
	}
	return &Embedded{srv: srv, dir: o.Dir}, nil
}

// ClientURL is the URL nodes connect to ("nats://127.0.0.1:4222").
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Addr is the address the server listens on (host:port).
func (e *Embedded) Addr() string { return e.srv.Addr().String() }

// Close shuts the server down and waits for it to stop. Safe to call twice.
func (e *Embedded) Close() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
