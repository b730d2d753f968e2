package httpcache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/firstrender/firstrender/store"
)

// Key returns the primary cache key the proxy uses for an absolute page
// URL, normalized exactly like requests (with the configured
// IgnoreParams). Errors are *[KeyError].
func (p *Proxy) Key(pageURL string) (string, error) {
	u, err := url.Parse(pageURL)
	if err != nil {
		return "", &KeyError{URL: pageURL, Reason: err.Error()}
	}
	n, err := normalize(u.Scheme, u.Host, u.EscapedPath(), u.RawQuery, p.ignore)
	if err != nil {
		if ke, ok := err.(*KeyError); ok {
			ke.URL = pageURL
		}
		return "", err
	}
	return n.key(), nil
}

// Entries lists the stored variants for an absolute page URL (normalized
// like requests). It returns an empty slice, not an error, when nothing
// is stored; errors are *[KeyError] or the store's.
func (p *Proxy) Entries(ctx context.Context, pageURL string) ([]store.Meta, error) {
	key, err := p.Key(pageURL)
	if err != nil {
		return nil, err
	}
	metas, err := p.st.Variants(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return []store.Meta{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("httpcache: entries %q: %w", key, err)
	}
	return metas, nil
}

// Disable marks a stored entry (key and variant as in [store.Meta]) so
// the proxy never serves it again; the next request for it goes to the
// origin and its response replaces the entry. reason is stored as the
// httpcache.disabled annotation ("" becomes "disabled"). It returns
// store.ErrNotFound (wrapped) when there is no such entry, and returns
// after the change committed.
func (p *Proxy) Disable(ctx context.Context, key, variant, reason string) error {
	if reason == "" {
		reason = "disabled"
	}
	if err := p.st.Annotate(ctx, key, variant, map[string]string{AnnotationDisabled: reason}); err != nil {
		return fmt.Errorf("httpcache: disable %q: %w", key, err)
	}
	p.hot.forgetKey(key)
	p.fig.disabled.Add(1)
	p.event(Event{Type: EventDisable, Key: key, Variant: variant, Reason: reason})
	return nil
}

// RequestKey returns the primary cache key ServeHTTP would use for r, a
// GET as it reaches the public listener: scheme from TLS (or, with
// TrustForwarded, X-Forwarded-Proto), host from Host (or
// X-Forwarded-Host), path and query normalized with IgnoreParams. A
// request whose URL is absolute (http.NewRequest("GET", "https://...")),
// as a client-side request is, is keyed on that URL's scheme and host
// instead. The admin API's PURGE method and URL purges use it. Errors are
// *[KeyError].
func (p *Proxy) RequestKey(r *http.Request) (string, error) {
	scheme, host := p.requestOrigin(r)
	if r.URL.IsAbs() {
		scheme, host = r.URL.Scheme, r.URL.Host
	}
	n, err := normalize(scheme, host, r.URL.EscapedPath(), r.URL.RawQuery, p.ignore)
	if err != nil {
		return "", err
	}
	return n.key(), nil
}
