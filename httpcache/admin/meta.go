package admin

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/firstrender/firstrender/store"
)

// Annotation keys this package reads. They are declared by their owners
// (httpcache, httpcache/liveview, httpcache/liveview/phxtoken; the namespace
// is listed in docs/annotations.md) and repeated here so that the admin
// package does not link the caching proxy; a test checks they still match.
const (
	annPolicy   = "httpcache.policy"    // httpcache.AnnotationPolicy: "lifetime=60 age=0 swr=0 sie=0 flags=..."
	annVary     = "httpcache.vary"      // httpcache.AnnotationVary
	annNotAfter = "httpcache.not-after" // httpcache.AnnotationNotAfter (RFC 3339)
	annDisabled = "httpcache.disabled"  // httpcache.AnnotationDisabled (the reason)
	annFindings = "liveview.findings"   // liveview.AnnotationFindings (JSON array)
	annLVExpiry = "liveview.expires"    // liveview.AnnotationExpires (RFC 3339)
)

// AnnotationSoftPurged marks a record soft-purged: its value is the RFC
// 3339 instant of the purge. A server honouring soft purges treats such a
// record as stale (its age at least its freshness lifetime): the next
// request revalidates it with the origin, while stale-while-revalidate and
// stale-if-error may still serve the stored copy; a refill or a successful
// revalidation (304) must remove the mark. StorePurger sets it; this
// package reports such records with Entry.Stale.
const AnnotationSoftPurged = "admin.soft-purged"

// policy is the part of the proxy's httpcache.policy annotation the
// admin surface shows.
type policy struct {
	lifetime, initialAge time.Duration
	swr, sie             time.Duration
	heuristic, noCache   bool
	mustRevalidate       bool
}

// parsePolicy reads "lifetime=60 age=0 swr=0 sie=0 flags=a,b"; ok is false
// when lifetime or age is missing or malformed.
func parsePolicy(s string) (p policy, ok bool) {
	have := 0
	for f := range strings.FieldsSeq(s) {
		k, v, _ := strings.Cut(f, "=")
		if k == "flags" {
			for fl := range strings.SplitSeq(v, ",") {
				switch fl {
				case "heuristic":
					p.heuristic = true
				case "no-cache":
					p.noCache = true
				case "must-revalidate":
					p.mustRevalidate = true
				}
			}
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > int64(1<<62)/int64(time.Second) {
			return policy{}, false
		}
		d := time.Duration(n) * time.Second
		switch k {
		case "lifetime":
			p.lifetime, have = d, have+1
		case "age":
			p.initialAge, have = d, have+1
		case "swr":
			p.swr = d
		case "sie":
			p.sie = d
		}
	}
	return p, have == 2
}

func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// lintFinding is liveview's Finding as stored in liveview.findings.
type lintFinding struct {
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	Action   string `json:"action"`
	Message  string `json:"message"`
}

func parseFindings(s string) []lintFinding {
	if s == "" || s == "[]" {
		return nil
	}
	var fs []lintFinding
	if err := json.Unmarshal([]byte(s), &fs); err != nil {
		return []lintFinding{{Kind: "unreadable-findings", Message: "the liveview.findings annotation is not valid JSON: " + err.Error()}}
	}
	return fs
}

// hasFindings is the cheap test the list filter uses.
func hasFindings(ann map[string]string) bool {
	s := ann[annFindings]
	return s != "" && s != "[]" && s != "null"
}

// entryOf builds the list item of m at now; hits (nil: unknown) supplies
// the per-entry hit count.
func entryOf(m *store.Meta, now time.Time, hits func(key, variant string) (int64, bool)) Entry {
	e := Entry{Key: m.Key, Variant: m.Variant, Size: m.Size, Hits: -1}
	if !utf8.ValidString(m.Key) {
		e.KeyBase64 = base64.StdEncoding.EncodeToString([]byte(m.Key))
	}
	if !utf8.ValidString(m.Variant) {
		e.VariantBase64 = base64.StdEncoding.EncodeToString([]byte(m.Variant))
	}
	if m.Corrupt {
		e.Corrupt = true
		return e
	}
	e.Status = m.Status
	e.BodySize = m.BodySize
	e.StoredAt = m.StoredTime
	if hits != nil {
		if n, ok := hits(m.Key, m.Variant); ok {
			e.Hits = n
		}
	}
	if len(m.Tags) > 0 {
		e.Tags = m.Tags
	}
	ann := m.Annotations
	respTime := m.ResponseTime
	if respTime.IsZero() {
		respTime = m.StoredTime
	}
	resident := max(now.Sub(respTime), 0)
	if p, ok := parsePolicy(ann[annPolicy]); ok {
		age := p.initialAge + resident
		e.AgeS = int64(age / time.Second)
		exp := respTime.Add(p.lifetime - p.initialAge)
		e.Expires = &exp
		e.Stale = age >= p.lifetime || p.noCache
	} else {
		e.AgeS = int64(resident / time.Second)
		if !m.Expires.IsZero() {
			exp := m.Expires
			e.Expires = &exp
			e.Stale = !now.Before(exp)
		}
	}
	if t, ok := parseTime(ann[annNotAfter]); ok {
		e.NotAfter = &t
		if !now.Before(t) {
			e.Stale = true
		}
	}
	if _, ok := ann[AnnotationSoftPurged]; ok {
		e.Stale = true
	}
	if v := ann[annVary]; v != "" {
		e.Vary = strings.Split(v, ",")
	}
	for _, f := range parseFindings(ann[annFindings]) {
		e.Findings = append(e.Findings, f.Kind)
	}
	if r, ok := ann[annDisabled]; ok {
		e.Disabled = r
		if r == "" {
			e.Disabled = "disabled"
		}
	}
	return e
}
