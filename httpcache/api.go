package httpcache

import (
	"context"
	"errors"
	"fmt"
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
	return nil
}
