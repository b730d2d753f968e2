package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/prometheus/client_golang/prometheus"
)

type wireParams struct {
	cfg       config
	logger    *slog.Logger
	reg       prometheus.Registerer
	upstream  *url.URL
	publicURL *url.URL
}

// wired is what run serves and shuts down.
type wired struct {
	public       http.Handler
	closeSockets func(context.Context) error // close brokered sockets with 1001
	closeProxy   func(context.Context) error // wait for background stores
	closeStore   func() error                // idempotent
}

// wire builds the store, proxy and socket broker. TEMPORARY: until those
// packages land this forwards to the origin without caching.
func wire(ctx context.Context, p wireParams) (*wired, error) {
	_ = ctx
	nop := func(context.Context) error { return nil }
	return &wired{
		public:       httputil.NewSingleHostReverseProxy(p.upstream),
		closeSockets: nop,
		closeProxy:   nop,
		closeStore:   func() error { return nil },
	}, nil
}
