package httpcache

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/firstrender/firstrender/store"
)

// invalidate removes the stored responses for the target URL of an
// unsafe request and for same-origin Location / Content-Location
// (RFC 9111 §4.4). It returns after the deletes committed.
func (p *Proxy) invalidate(ctx context.Context, ex *exchange, resp *http.Response) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	keys := []string{ex.n.key()}
	base := &url.URL{Scheme: ex.n.scheme, Host: ex.n.host, Path: "/"}
	if bp, err := url.Parse(ex.n.scheme + "://" + ex.n.host + ex.n.path); err == nil {
		base = bp
	}
	for _, name := range []string{"Location", "Content-Location"} {
		v := resp.Header.Get(name)
		if v == "" {
			continue
		}
		u, err := base.Parse(v)
		if err != nil {
			continue
		}
		nu, err := normalize(u.Scheme, u.Host, u.EscapedPath(), u.RawQuery, p.ignore)
		if err != nil || nu.scheme != ex.n.scheme || nu.host != ex.n.host {
			continue // RFC 9111 §4.4: only same-origin URIs
		}
		keys = append(keys, nu.key())
	}
	if p.cfg.Unsafe != nil {
		err := p.cfg.Unsafe(ctx, keys)
		if err == nil {
			if p.met != nil {
				p.met.invalidations.Add(float64(len(keys)))
			}
			return
		}
		p.log.Warn("httpcache: invalidate through Config.Unsafe failed; deleting here", "keys", len(keys), "err", err)
	}
	// The proxy's one purge path: memory forgotten, fills under way fenced.
	_ = p.Invalidate(ctx, []Selection{{Keys: keys}}, func(ctx context.Context) error {
		for _, k := range keys {
			if _, err := p.st.DeleteKey(ctx, k); err != nil && !errors.Is(err, store.ErrNotFound) {
				p.log.Warn("httpcache: invalidate", "key", k, "err", err)
			}
		}
		return nil
	})
	if p.met != nil {
		p.met.invalidations.Add(float64(len(keys)))
	}
}
