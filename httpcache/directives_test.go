package httpcache

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestStorable(t *testing.T) {
	tests := []struct {
		name   string
		method string
		reqH   http.Header
		rcc    string
		status int
		respH  http.Header
		want   string
	}{
		{"plain 200 is storable", "GET", nil, "", 200, nil, ""},
		{"308 is heuristically cacheable", "GET", nil, "", 308, nil, ""},
		{"302 without freshness is not", "GET", nil, "", 302, nil, reasonStatus},
		{"302 with max-age is", "GET", nil, "", 302, http.Header{"Cache-Control": {"max-age=5"}}, ""},
		{"500 with Expires is", "GET", nil, "", 500, http.Header{"Expires": {"Thu, 01 Jan 2099 00:00:00 GMT"}}, ""},
		{"POST is not", "POST", nil, "", 200, http.Header{"Cache-Control": {"max-age=5"}}, reasonMethod},
		{"HEAD never fills", "HEAD", nil, "", 200, nil, reasonMethod},
		{"no-store", "GET", nil, "", 200, http.Header{"Cache-Control": {"no-store"}}, reasonNoStore},
		{"no-store in a second field line", "GET", nil, "", 200, http.Header{"Cache-Control": {"max-age=5", "no-store"}}, reasonNoStore},
		{"private", "GET", nil, "", 200, http.Header{"Cache-Control": {"private, max-age=60"}}, reasonPrivate},
		{"qualified private", "GET", nil, "", 200, http.Header{"Cache-Control": {`private="Set-Cookie", max-age=60`}}, reasonPrivate},
		{"request no-store", "GET", nil, "no-store", 200, nil, reasonRequestNoStore},
		{"authorization without public", "GET", http.Header{"Authorization": {"Bearer x"}}, "", 200, http.Header{"Cache-Control": {"max-age=60"}}, reasonAuthorization},
		{"authorization with public (stricter than §3.5)", "GET", http.Header{"Authorization": {"Bearer x"}}, "", 200, http.Header{"Cache-Control": {"public, max-age=60"}}, reasonAuthorization},
		{"authorization with s-maxage (stricter than §3.5)", "GET", http.Header{"Authorization": {"Bearer x"}}, "", 200, http.Header{"Cache-Control": {"s-maxage=60"}}, reasonAuthorization},
		{"authorization with must-revalidate (stricter than §3.5)", "GET", http.Header{"Authorization": {"Bearer x"}}, "", 200, http.Header{"Cache-Control": {"must-revalidate, max-age=60"}}, reasonAuthorization},
		{"must-understand with known status ignores no-store", "GET", nil, "", 200, http.Header{"Cache-Control": {"must-understand, no-store, max-age=60"}}, ""},
		{"must-understand with unknown status", "GET", nil, "", 299, http.Header{"Cache-Control": {"must-understand, no-store, max-age=60"}}, reasonMustUnderstand},
		{"vary star", "GET", nil, "", 200, http.Header{"Vary": {"*"}}, reasonVaryStar},
		{"206 is partial", "GET", nil, "", 206, http.Header{"Cache-Control": {"max-age=60"}}, reasonPartial},
		{"200 with Content-Range is complete (RFC 9110 §14.4)", "GET", nil, "", 200, http.Header{"Cache-Control": {"max-age=60"}, "Content-Range": {"bytes 0-4/10"}}, ""},
		{"invalid cache-control", "GET", nil, "", 200, http.Header{"Cache-Control": {"max-age=abc"}}, "invalid-cache-control"},
		{"304 is never stored", "GET", nil, "", 304, http.Header{"Cache-Control": {"max-age=60"}}, reasonStatus},
	}
	var ps cacheobjectParser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqH := tt.reqH
			if reqH == nil {
				reqH = http.Header{}
			}
			if tt.rcc != "" {
				reqH.Set("Cache-Control", tt.rcc)
			}
			respH := tt.respH
			if respH == nil {
				respH = http.Header{}
			}
			got := storable(tt.method, reqH, ps.request(reqH), tt.status, respH, ps.response(respH))
			if got != tt.want {
				t.Errorf("storable(%s, %v, %d, %v) = %q, want %q", tt.method, reqH, tt.status, respH, got, tt.want)
			}
		})
	}
}

func TestComputePolicy(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	date := t0.Format(http.TimeFormat)
	fc := freshnessConfig{heuristicFraction: 0.1, heuristicMax: 24 * time.Hour, defaultSWR: 7 * time.Second}
	tests := []struct {
		name         string
		status       int
		h            http.Header
		reqT, respT  time.Time
		wantLifetime time.Duration
		wantAge      time.Duration
		wantSWR      time.Duration
		wantHeur     bool
	}{
		{"s-maxage over max-age", 200, http.Header{"Date": {date}, "Cache-Control": {"max-age=10, s-maxage=20"}}, t0, t0, 20 * time.Second, 0, 0, false},
		{"max-age over Expires", 200, http.Header{"Date": {date}, "Cache-Control": {"max-age=10"}, "Expires": {t0.Add(time.Hour).Format(http.TimeFormat)}}, t0, t0, 10 * time.Second, 0, 7 * time.Second, false},
		{"Expires minus Date", 200, http.Header{"Date": {date}, "Expires": {t0.Add(time.Hour).Format(http.TimeFormat)}}, t0, t0, time.Hour, 0, 7 * time.Second, false},
		{"invalid Expires is already expired", 200, http.Header{"Date": {date}, "Expires": {"0"}}, t0, t0, 0, 0, 7 * time.Second, false},
		{"heuristic is 10% of Last-Modified age", 200, http.Header{"Date": {date}, "Last-Modified": {t0.Add(-100 * time.Hour).Format(http.TimeFormat)}}, t0, t0, 10 * time.Hour, 0, 7 * time.Second, true},
		{"heuristic is capped", 200, http.Header{"Date": {date}, "Last-Modified": {t0.Add(-1000 * time.Hour).Format(http.TimeFormat)}}, t0, t0, 24 * time.Hour, 0, 7 * time.Second, true},
		{"no heuristic for 302", 302, http.Header{"Date": {date}, "Last-Modified": {t0.Add(-100 * time.Hour).Format(http.TimeFormat)}}, t0, t0, 0, 0, 7 * time.Second, false},
		{"origin Age plus response delay", 200, http.Header{"Date": {date}, "Age": {"30"}, "Cache-Control": {"max-age=100"}}, t0, t0.Add(2 * time.Second), 100 * time.Second, 32 * time.Second, 7 * time.Second, false},
		{"apparent age from Date", 200, http.Header{"Date": {t0.Add(-50 * time.Second).Format(http.TimeFormat)}, "Cache-Control": {"max-age=100"}}, t0, t0, 100 * time.Second, 50 * time.Second, 7 * time.Second, false},
		{"explicit swr wins over default", 200, http.Header{"Date": {date}, "Cache-Control": {"max-age=1, stale-while-revalidate=30"}}, t0, t0, time.Second, 0, 30 * time.Second, false},
		{"must-revalidate forbids swr", 200, http.Header{"Date": {date}, "Cache-Control": {"max-age=1, must-revalidate, stale-while-revalidate=30"}}, t0, t0, time.Second, 0, 0, false},
		{"s-maxage forbids the default swr", 200, http.Header{"Date": {date}, "Cache-Control": {"s-maxage=1"}}, t0, t0, time.Second, 0, 0, false},
	}
	var ps cacheobjectParser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := computePolicy(tt.status, tt.h, ps.response(tt.h), tt.reqT, tt.respT, fc)
			if p.lifetime != tt.wantLifetime || p.initialAge != tt.wantAge || p.swr != tt.wantSWR || p.heuristic != tt.wantHeur {
				t.Errorf("computePolicy(%v) = lifetime %v age %v swr %v heuristic %v, want %v %v %v %v",
					tt.h, p.lifetime, p.initialAge, p.swr, p.heuristic, tt.wantLifetime, tt.wantAge, tt.wantSWR, tt.wantHeur)
			}
			back, ok := decodePolicy(p.encode())
			if !ok || back != p {
				t.Errorf("decodePolicy(encode(%+v)) = %+v, %v", p, back, ok)
			}
		})
	}
}

func TestRequestDirectives(t *testing.T) {
	var ps cacheobjectParser
	tests := []struct {
		name string
		h    http.Header
		want reqDirectives
	}{
		{"none", http.Header{}, reqDirectives{maxAge: -1, maxStale: -1, minFresh: -1}},
		{"max-age=0", http.Header{"Cache-Control": {"max-age=0"}}, reqDirectives{maxAge: 0, maxStale: -1, minFresh: -1}},
		{"pragma no-cache without cache-control", http.Header{"Pragma": {"no-cache"}}, reqDirectives{maxAge: -1, maxStale: -1, minFresh: -1, noCache: true}},
		{"pragma ignored with cache-control", http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"max-stale"}}, reqDirectives{maxAge: -1, maxStale: -1, minFresh: -1, maxStaleAny: true}},
		{"only-if-cached", http.Header{"Cache-Control": {"only-if-cached"}}, reqDirectives{maxAge: -1, maxStale: -1, minFresh: -1, onlyIfCached: true}},
		{"garbage means validate", http.Header{"Cache-Control": {"max-age=zz"}}, reqDirectives{maxAge: -1, maxStale: -1, minFresh: -1, noCache: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ps.request(tt.h); got != tt.want {
				t.Errorf("request(%v) = %+v, want %+v", tt.h, got, tt.want)
			}
		})
	}
}

func FuzzCacheControl(f *testing.F) {
	for _, s := range []string{
		"public, max-age=60", "private, no-cache=\"Set-Cookie\"", "s-maxage=10, stale-while-revalidate=5",
		"max-age=abc", "no-store, must-understand", "max-age=99999999999999999999", `no-cache="a,b", private`,
		"max-stale, min-fresh=5, only-if-cached", ",,, ,", `x="unterminated`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := parseResponseCC(v)
		for _, n := range []int64{d.maxAge, d.sMaxAge, d.swr, d.sie} {
			if n < -1 {
				t.Fatalf("parseResponseCC(%q) gave negative seconds %d", v, n)
			}
		}
		if d.invalid && (d.maxAge != -1 || d.public) {
			t.Fatalf("parseResponseCC(%q) invalid but set fields: %+v", v, d)
		}
		rq := parseRequestCC(v)
		if rq.maxAge < -1 || rq.minFresh < -1 || rq.maxStale < -1 {
			t.Fatalf("parseRequestCC(%q) = %+v", v, rq)
		}
		// Parsing is deterministic and a policy round-trips.
		if !reflect.DeepEqual(parseResponseCC(v), d) {
			t.Fatalf("parseResponseCC(%q) not deterministic", v)
		}
		h := http.Header{"Cache-Control": {v}}
		now := time.Unix(1700000000, 0)
		p := computePolicy(200, h, d, now, now, freshnessConfig{heuristicFraction: 0.1, heuristicMax: time.Hour})
		if back, ok := decodePolicy(p.encode()); !ok || back != p {
			t.Fatalf("policy round trip for %q: %+v -> %+v", v, p, back)
		}
	})
}
