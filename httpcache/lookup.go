package httpcache

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/firstrender/firstrender/store"
)

// entry is a stored response as the hit path uses it.
type entry struct {
	rec      *store.Record
	pol      policy
	vary     []string
	notAfter time.Time
	clen     []string   // Content-Length value, shared read-only (hot entries)
	splice   SplicePage // non-nil: served only through it (splice.go)
}

// lookup finds the stored entry for the request's variant of key. On a
// miss it returns the Cache-Status forward reason and detail.
func (p *Proxy) lookup(ctx context.Context, key string, reqH http.Header) (*entry, string, string) {
	names, known := p.vary.get(key)
	if !known {
		metas, err := p.st.Variants(ctx, key)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				p.log.Warn("httpcache: store variants", "key", key, "err", err)
			}
			return nil, fwdURIMiss, ""
		}
		var newest *store.Meta
		for i := range metas {
			if metas[i].Corrupt {
				continue
			}
			if newest == nil || metas[i].StoredTime.After(newest.StoredTime) {
				newest = &metas[i]
			}
		}
		if newest == nil {
			return nil, fwdURIMiss, ""
		}
		names = splitVaryAnnotation(newest.Annotations[AnnotationVary])
		p.vary.set(key, names)
	}
	variant := variantKey(names, reqH)
	hk := hotK{key, variant}
	gen, wall := p.st.Generation(), time.Now()
	if e := p.hot.get(hk, gen, wall); e != nil {
		if !e.notAfter.IsZero() && !p.now().Before(e.notAfter) {
			return nil, fwdMiss, "not-after"
		}
		return e, "", ""
	}
	rec, err := p.st.Get(ctx, key, variant)
	if err != nil {
		var ce *store.CorruptError
		switch {
		case errors.Is(err, store.ErrNotFound):
		case errors.As(err, &ce):
			p.log.Warn("httpcache: corrupt record removed", "key", key, "variant", variant, "err", err)
			p.goBackground(func() { _ = p.st.Delete(context.Background(), key, variant) })
		default:
			p.log.Warn("httpcache: store get", "key", key, "err", err)
		}
		if len(names) > 0 {
			return nil, fwdVary, ""
		}
		return nil, fwdURIMiss, ""
	}
	if _, ok := rec.Annotations[AnnotationDisabled]; ok {
		return nil, fwdMiss, "disabled" // the reason is in the annotation
	}
	e := &entry{rec: rec, vary: names}
	if na := rec.Annotations[AnnotationNotAfter]; na != "" {
		t, err := time.Parse(time.RFC3339Nano, na)
		if err != nil {
			return nil, fwdMiss, "bad-not-after"
		}
		e.notAfter = t
		if !p.now().Before(t) {
			return nil, fwdMiss, "not-after"
		}
	}
	if data, ok := rec.Annotations[AnnotationSplice]; ok {
		// Stored for splicing: its body holds a token of the visitor it
		// was rendered for, never to be served as it is.
		if p.cfg.Splicer == nil {
			return nil, fwdMiss, "splice-unconfigured"
		}
		page, err := p.cfg.Splicer.Load(rec.Body, data)
		if err != nil {
			p.log.Warn("httpcache: stored splice data unusable", "key", key, "variant", variant, "err", err)
			return nil, fwdMiss, "splice-invalid"
		}
		e.splice = page
	}
	pol, ok := decodePolicy(rec.Annotations[AnnotationPolicy])
	if !ok {
		h := http.Header(rec.Header)
		pol = computePolicy(rec.Status, h, p.parser.response(h), rec.RequestTime, rec.ResponseTime, p.fc)
	}
	e.pol = pol
	e.clen = []string{strconv.Itoa(len(rec.Body))}
	p.hot.put(hk, e, gen, wall)
	return e, "", ""
}

func splitVaryAnnotation(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// maxMemoryEntries bounds the proxy's small in-memory maps (Vary names,
// hit-for-pass); when one fills up it is cleared, which only costs a
// store lookup or one collapsed fetch.
const maxMemoryEntries = 100_000

// varyMemory remembers, per primary key, the Vary header names of the
// stored response, so a hit computes its variant without listing variants.
type varyMemory struct {
	mu sync.RWMutex
	m  map[string][]string
}

func (v *varyMemory) get(key string) ([]string, bool) {
	v.mu.RLock()
	names, ok := v.m[key]
	v.mu.RUnlock()
	return names, ok
}

func (v *varyMemory) set(key string, names []string) {
	if names == nil {
		names = []string{}
	}
	v.mu.Lock()
	if v.m == nil || len(v.m) >= maxMemoryEntries {
		v.m = make(map[string][]string)
	}
	v.m[key] = names
	v.mu.Unlock()
}

func (v *varyMemory) forget(key string) {
	v.mu.Lock()
	delete(v.m, key)
	v.mu.Unlock()
}
