package httpcache

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firstrender/firstrender/store"
)

// Proxy is a caching reverse proxy: an RFC 9111 shared cache in front of
// one origin, storing in a [store.Store]. It is an http.Handler and safe
// for concurrent use. Create it with [New]; call [Proxy.Close] before
// closing the store.
//
// The request path is spread over files named by step: serve.go
// (ServeHTTP: classify, then the GET/HEAD loop), lookup.go (find the
// stored variant), hit.go (answer from a stored entry), collapse.go
// (wait on another request's fetch), origin.go (the ReverseProxy hooks
// and error handler: the only way to the origin), revalidate.go (304,
// stale-if-error, background revalidation), fill.go (the store decision,
// the MaxBuffered reservation and the store write), tee.go (the body copy),
// invalidate.go (unsafe methods).
type Proxy struct {
	cfg         Config
	st          *store.Store
	rp          *httputil.ReverseProxy
	parser      directiveParser
	ignore      *ignoreList
	cookies     cookieRules
	hosts       []hostMatch
	fc          freshnessConfig
	log         *slog.Logger
	now         func() time.Time
	wallClock   bool // now is time.Now (Config.Now was nil): a request's arrival time serves as its "now"
	met         *metrics
	flights     flightGroup
	pass        passMemory
	vary        varyMemory
	hot         hotCache
	unwatch     func() // stops the memory tier's store.Watch
	unwatchOnce sync.Once
	purges      purgeLog // orders purges against fills (purge.go)
	fig         figures  // Figures' counters

	buffered atomic.Int64 // bytes held by streaming copies (Config.MaxBuffered)

	// onWait, when set (tests only, before serving), is called each time
	// a request starts waiting on another request's fetch.
	onWait func()

	bgMu   sync.Mutex
	bgN    int           // background goroutines running
	bgIdle chan struct{} // closed whenever bgN is 0
	closed bool
}

var _ http.Handler = (*Proxy)(nil)

type hostMatch struct {
	name    string // normalized host name, no port
	anyPort bool
	http    string // normalized "name[:port]" for http
	https   string
}

// New validates cfg, fills its defaults and returns a Proxy. Errors name
// the offending field.
func New(cfg Config) (*Proxy, error) {
	wallClock := cfg.Now == nil
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg:       cfg,
		st:        cfg.Store,
		parser:    cacheobjectParser{},
		log:       cfg.Logger,
		now:       cfg.Now,
		wallClock: wallClock,
		fc: freshnessConfig{
			heuristicFraction: cfg.HeuristicFraction,
			heuristicMax:      cfg.HeuristicMax,
			defaultSWR:        cfg.StaleWhileRevalidate,
			defaultSIE:        cfg.StaleIfError,
		},
	}
	p.ignore, _ = newIgnoreList(cfg.IgnoreParams)
	p.cookies.ignore, _ = newIgnoreList(cfg.IgnoreCookies)
	if len(cfg.SessionCookies) > 0 {
		p.cookies.session, _ = newIgnoreList(cfg.SessionCookies)
	}
	p.cookies.public, p.cookies.allowFun = cfg.PublicPrefixes, cfg.AllowCookie
	p.hot.init(cfg.MemoryCacheSize, cfg.Store)
	if p.hot.max > 0 {
		p.unwatch = cfg.Store.Watch(p.hot.changed)
	}
	for _, h := range cfg.Hosts {
		hm := hostMatch{}
		hn, _ := normalizeHost("http", h)
		hm.name = hostname(hn)
		hm.anyPort = hostname(strings.ToLower(h)) == strings.ToLower(h)
		hm.http = hn
		hm.https, _ = normalizeHost("https", h)
		p.hosts = append(p.hosts, hm)
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      cfg.Transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		// Flush every write: bodies stream to the client as they arrive
		// (the copy kept for storing does not delay them).
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		// Without a pool ReverseProxy allocates a 32 KB copy buffer per
		// response (a quarter of the miss path's allocated bytes).
		BufferPool: copyBuffers{},
	}
	if cfg.Registerer != nil {
		m, err := newMetrics(cfg.Registerer, cfg.Store, &p.hot)
		if err != nil {
			return nil, fmt.Errorf("httpcache: metrics: %w", err)
		}
		p.met = m
	}
	return p, nil
}

// Close waits for background work (store writes, revalidations) to
// finish or ctx to end, and stops new background work: responses served
// after Close are not stored (their Cache-Status says detail=closing).
// It does not close the store. It returns ctx's error if ctx ends first.
func (p *Proxy) Close(ctx context.Context) error {
	p.bgMu.Lock()
	p.closed = true
	p.bgMu.Unlock()
	if err := p.Wait(ctx); err != nil {
		return fmt.Errorf("httpcache: close: %w", err)
	}
	p.unwatchOnce.Do(func() {
		p.hot.off.Store(true)
		if p.unwatch != nil {
			p.unwatch()
		}
		p.hot.invalidateAll()
	})
	return nil
}

// Wait returns once no background work (store writes beside responses,
// background revalidations) is running, or with ctx's error when ctx ends
// first. Under steady load there may be no such moment, so bound ctx.
// Tests use it to make "stored" observable: a response's store write
// starts before its handler returns.
func (p *Proxy) Wait(ctx context.Context) error {
	p.bgMu.Lock()
	if p.bgN == 0 {
		p.bgMu.Unlock()
		return nil
	}
	idle := p.bgIdle
	p.bgMu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// goBackground runs f in a goroutine that Wait and Close wait for. It
// reports false (and does not run f) after Close.
func (p *Proxy) goBackground(f func()) bool {
	if !p.reserve() {
		return false
	}
	p.runReserved(f)
	return true
}

// reserve counts one piece of background work that will start later
// (a response being stored once its body is complete), so Wait and Close
// wait for it from the moment its headers go out. Every successful
// reserve is followed by runReserved or unreserve. It reports false after
// Close.
func (p *Proxy) reserve() bool {
	p.bgMu.Lock()
	defer p.bgMu.Unlock()
	if p.closed {
		return false
	}
	if p.bgN == 0 {
		p.bgIdle = make(chan struct{})
	}
	p.bgN++
	return true
}

func (p *Proxy) unreserve() {
	p.bgMu.Lock()
	if p.bgN--; p.bgN == 0 {
		close(p.bgIdle)
	}
	p.bgMu.Unlock()
}

// runReserved runs f in a goroutine under an earlier reservation.
func (p *Proxy) runReserved(f func()) {
	go func() {
		defer p.unreserve()
		defer p.recoverBackground()
		f()
	}()
}

// recoverBackground, deferred by work under a reservation, keeps a panic
// there (an Inspector's, say) from taking the server down; the response
// simply is not stored.
func (p *Proxy) recoverBackground() {
	if v := recover(); v != nil {
		p.log.Error("httpcache: background work panicked", "panic", v)
	}
}

func (p *Proxy) isClosed() bool {
	p.bgMu.Lock()
	defer p.bgMu.Unlock()
	return p.closed
}

func (p *Proxy) hostCached(n *nurl) bool {
	name := hostname(n.host)
	for i := range p.hosts {
		h := &p.hosts[i]
		if h.name != name {
			continue
		}
		if h.anyPort {
			return true
		}
		if (n.scheme == "http" && h.http == n.host) || (n.scheme == "https" && h.https == n.host) {
			return true
		}
	}
	return false
}

// copyBuffers is the ReverseProxy's httputil.BufferPool: 32 KB body copy
// buffers shared by every proxy (ReverseProxy returns a buffer once the
// copy is done and keeps no reference to it).
type copyBuffers struct{}

const copyBufferSize = 32 << 10

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

func (copyBuffers) Get() []byte { return *copyBufferPool.Get().(*[]byte) }

func (copyBuffers) Put(b []byte) {
	if cap(b) == copyBufferSize {
		b = b[:copyBufferSize]
		copyBufferPool.Put(&b)
	}
}
