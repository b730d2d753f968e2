package httpcache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// policy is everything the hit path needs to know about a stored
// response, computed once when it is stored (or refreshed by a 304) and
// kept in the record's httpcache.policy annotation, so a hit does not
// re-parse Cache-Control, Date, Expires or Age.
type policy struct {
	lifetime   time.Duration // freshness lifetime (RFC 9111 §4.2.1)
	initialAge time.Duration // corrected_initial_age (RFC 9111 §4.2.3)
	swr, sie   time.Duration // RFC 5861 windows after staleness; 0 = none
	noCache    bool          // must validate before every use
	mustReval  bool          // must-revalidate, proxy-revalidate or s-maxage: never serve stale
	heuristic  bool
}

// AnnotationPolicy is the record annotation holding the proxy's computed
// freshness facts ("lifetime=60 age=0 swr=0 sie=0 flags=").
const AnnotationPolicy = "httpcache.policy"

// AnnotationVary holds the stored response's Vary header names
// (canonical, sorted, comma-separated; empty when there is no Vary).
const AnnotationVary = "httpcache.vary"

// AnnotationNotAfter holds the RFC 3339 instant after which the entry is
// never served, fresh or stale (from [Verdict].NotAfter).
const AnnotationNotAfter = "httpcache.not-after"

// AnnotationDisabled holds the reason an entry was disabled with
// [Proxy.Disable]; the proxy never serves such an entry.
const AnnotationDisabled = "httpcache.disabled"

func (p policy) encode() string {
	var a [96]byte // room for every field at its largest: one allocation, the string
	b := a[:0]
	b = append(b, "lifetime="...)
	b = strconv.AppendInt(b, int64(p.lifetime/time.Second), 10)
	b = append(b, " age="...)
	b = strconv.AppendInt(b, int64(p.initialAge/time.Second), 10)
	b = append(b, " swr="...)
	b = strconv.AppendInt(b, int64(p.swr/time.Second), 10)
	b = append(b, " sie="...)
	b = strconv.AppendInt(b, int64(p.sie/time.Second), 10)
	b = append(b, " flags="...)
	sep := ""
	for _, f := range []struct {
		on   bool
		name string
	}{{p.noCache, "no-cache"}, {p.mustReval, "must-revalidate"}, {p.heuristic, "heuristic"}} {
		if f.on {
			b = append(b, sep...)
			b = append(b, f.name...)
			sep = ","
		}
	}
	return string(b)
}

func decodePolicy(s string) (policy, bool) {
	var p policy
	ok := 0
	for s != "" {
		var f string
		f, s, _ = strings.Cut(s, " ")
		k, v, _ := strings.Cut(f, "=")
		if k == "flags" {
			for fl := range strings.SplitSeq(v, ",") {
				switch fl {
				case "no-cache":
					p.noCache = true
				case "must-revalidate":
					p.mustReval = true
				case "heuristic":
					p.heuristic = true
				}
			}
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return p, false
		}
		d := time.Duration(n) * time.Second
		switch k {
		case "lifetime":
			p.lifetime = d
			ok++
		case "age":
			p.initialAge = d
			ok++
		case "swr":
			p.swr = d
		case "sie":
			p.sie = d
		}
	}
	return p, ok == 2
}

// freshnessConfig holds the configured parts of freshness.
type freshnessConfig struct {
	heuristicFraction float64 // <= 0 disables
	heuristicMax      time.Duration
	defaultSWR        time.Duration
	defaultSIE        time.Duration
}

func secs(n int64) time.Duration {
	const max = int64(1<<63-1) / int64(time.Second)
	if n > max {
		n = max
	}
	return time.Duration(n) * time.Second
}

// computePolicy derives the policy of a response received at respTime for
// a request sent at reqTime (RFC 9111 §4.2).
func computePolicy(status int, h http.Header, d respDirectives, reqTime, respTime time.Time, fc freshnessConfig) policy {
	var p policy
	date, dateOK := parseHTTPDate(h.Get("Date"), respTime)
	if !dateOK {
		// RFC 9110 §6.6.1: a recipient with a clock assigns Date itself.
		date = respTime
	}
	// §4.2.1: s-maxage over max-age over Expires.
	switch {
	case d.sMaxAge >= 0:
		p.lifetime = secs(d.sMaxAge)
	case d.maxAge >= 0:
		p.lifetime = secs(d.maxAge)
	case len(h["Expires"]) > 0 && !d.targeted: // RFC 9213 §2.1: a targeted field overrides Expires
		// §5.3: an invalid Expires (e.g. "0") means already expired.
		if exp, ok := parseHTTPDate(h.Get("Expires"), respTime); ok && exp.After(date) {
			p.lifetime = exp.Sub(date)
		}
	default:
		// §4.2.2: heuristic freshness only without explicit expiration,
		// for heuristically cacheable statuses or public responses.
		if fc.heuristicFraction > 0 && (heuristicallyCacheable(status) || d.public) {
			if lm, ok := parseHTTPDate(h.Get("Last-Modified"), respTime); ok && lm.Before(date) {
				lt := time.Duration(float64(date.Sub(lm)) * fc.heuristicFraction)
				if lt > fc.heuristicMax {
					lt = fc.heuristicMax
				}
				p.lifetime = lt.Truncate(time.Second)
				p.heuristic = true
			}
		}
	}
	// §4.2.3.
	ageValue, _ := ageField(h)
	apparent := respTime.Sub(date)
	if apparent < 0 {
		apparent = 0
	}
	delay := respTime.Sub(reqTime)
	if delay < 0 {
		delay = 0
	}
	corrected := ageValue + delay
	p.initialAge = max(apparent, corrected)
	// Whole seconds, like Age itself (Date has one-second resolution).
	p.initialAge = p.initialAge.Truncate(time.Second)

	p.noCache = d.noCache
	// §5.2.2.2, §5.2.2.8, §5.2.2.10: s-maxage implies proxy-revalidate.
	p.mustReval = d.mustRevalidate || d.proxyRevalidate || d.sMaxAge >= 0
	// RFC 5861 windows: an explicit stale-while-revalidate/stale-if-error
	// from the origin is honoured unless must-revalidate/proxy-revalidate
	// forbid serving stale; server-wide defaults apply only when nothing
	// forbids it (s-maxage included, RFC 9111 §4.2.4).
	if !d.mustRevalidate && !d.proxyRevalidate && !d.noCache {
		if !p.mustReval {
			p.swr, p.sie = fc.defaultSWR, fc.defaultSIE
		}
		if d.swr >= 0 {
			p.swr = secs(d.swr)
		}
		if d.sie >= 0 {
			p.sie = secs(d.sie)
		}
	}
	return p
}

// age returns the current age of a stored response (§4.2.3).
//
// A response received "in the future" means the clock jumped back past
// the moment it arrived (or was wrong then and has been corrected): how
// long it has been stored is unknown. Up to clockSkew ahead counts as age
// 0 (a small step of the wall clock); further ahead, the age is
// unknownAge, older than any lifetime or stale window, so the entry is
// revalidated, never served fresh or stale-while-revalidate /
// stale-if-error: a clock jump never extends an entry's life. (A clock
// jumping forward only makes entries look older, and a token cap,
// not-after, is an absolute time checked against the clock as it is.)
// Entries of this process compare monotonic readings when the clock
// provides them (time.Now), which wall clock steps do not affect.
func (p policy) age(respTime, now time.Time) time.Duration {
	resident := now.Sub(respTime)
	if resident < 0 {
		if resident < -clockSkew {
			return unknownAge
		}
		resident = 0
	}
	return p.initialAge + resident
}

const (
	clockSkew  = time.Second
	unknownAge = time.Duration(1 << 62) // about 146 years; initialAge + unknownAge cannot overflow
)

func hasValidator(h http.Header) bool {
	return h.Get("Etag") != "" || h.Get("Last-Modified") != ""
}

// parseHTTPDate parses an HTTP-date (RFC 9110 §5.6.7) as a cache must
// read one for freshness: IMF-fixdate, rfc850-date or asctime-date, by
// their grammar (two-digit hours, single spaces, the comma after the day
// name, GMT), with names and GMT matched case-insensitively (RFC 9111
// §4.2). A two-digit rfc850 year more than 50 years ahead of now is taken
// in the past century (RFC 9110 §5.6.7); a zero now is time.Now(). ok is false for anything else:
// RFC 9111 §5.3 then makes an Expires already expired. http.ParseTime
// (time.Parse) is laxer: runs of spaces count as one, an hour may have
// one digit, and GMT must be upper case.
func parseHTTPDate(s string, now time.Time) (time.Time, bool) {
	var year, mon, day int
	var clock string
	twoDigit := false // rfc850: year is in now's century
	switch {
	case len(s) == 29 && s[3] == ',' && s[4] == ' ': // Sun, 06 Nov 1994 08:49:37 GMT
		if !httpDayName(s[:3]) || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[25] != ' ' || !strings.EqualFold(s[26:], "GMT") {
			return time.Time{}, false
		}
		day, mon, year = httpDigits(s[5:7]), httpMonth(s[8:11]), httpDigits(s[12:16])
		clock = s[17:25]
	case len(s) == 24 && s[3] == ' ': // Sun Nov  6 08:49:37 1994
		if !httpDayName(s[:3]) || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' {
			return time.Time{}, false
		}
		d := s[8:10]
		if d[0] == ' ' {
			d = d[1:]
		}
		day, mon, year = httpDigits(d), httpMonth(s[4:7]), httpDigits(s[20:24])
		clock = s[11:19]
	default: // Sunday, 06-Nov-94 08:49:37 GMT
		name, rest, ok := strings.Cut(s, ", ")
		if !ok || !httpLongDayName(name) || len(rest) != 22 || rest[2] != '-' || rest[6] != '-' || rest[9] != ' ' || rest[18] != ' ' || !strings.EqualFold(rest[19:], "GMT") {
			return time.Time{}, false
		}
		day, mon, year = httpDigits(rest[:2]), httpMonth(rest[3:6]), httpDigits(rest[7:9])
		if year >= 0 {
			if now.IsZero() {
				now = time.Now()
			}
			year += now.UTC().Year() / 100 * 100
			twoDigit = true
		}
		clock = rest[10:18]
	}
	if len(clock) != 8 || clock[2] != ':' || clock[5] != ':' {
		return time.Time{}, false
	}
	h, m, sec := httpDigits(clock[:2]), httpDigits(clock[3:5]), httpDigits(clock[6:])
	if year < 0 || mon < 1 || day < 1 || day > 31 || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60 {
		return time.Time{}, false
	}
	if time.Date(year, time.Month(mon), day, 0, 0, 0, 0, time.UTC).Day() != day { // 31 Feb and the like
		return time.Time{}, false
	}
	// A leap second (:60) is read as :59, the nearest earlier time
	// (RFC 9111 §4.2 asks that for Expires).
	t := time.Date(year, time.Month(mon), day, h, m, min(sec, 59), 0, time.UTC)
	if twoDigit {
		if t.After(now.AddDate(50, 0, 0)) {
			t = t.AddDate(-100, 0, 0)
		} else if t.Before(now.AddDate(-50, 0, 0)) {
			t = t.AddDate(100, 0, 0)
		}
	}
	return t, true
}

// httpDigits is the value of s, all ASCII digits, or -1.
func httpDigits(s string) int {
	if s == "" {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

var (
	httpDayNames     = [...]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
	httpLongDayNames = [...]string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
	httpMonths       = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

func httpDayName(s string) bool {
	for _, n := range httpDayNames {
		if strings.EqualFold(s, n) {
			return true
		}
	}
	return false
}

func httpLongDayName(s string) bool {
	for _, n := range httpLongDayNames {
		if strings.EqualFold(s, n) {
			return true
		}
	}
	return false
}

// httpMonth is 1-12 for a month name, or -1.
func httpMonth(s string) int {
	for i, n := range httpMonths {
		if strings.EqualFold(s, n) {
			return i + 1
		}
	}
	return -1
}

// ageField returns the Age of a response (RFC 9111 §5.1: delta-seconds)
// and whether it has a usable one. Several values, on one line or on
// several, count by the first ("7200, 0" is 7200 s old: the older
// reading, as cache-tests age-parse-suffix asks); a parameter after ";"
// is dropped (7200;foo=bar is 7200); a value that is not digits
// (negative, a float, text) is ignored. Values past 2^31 count as 2^31
// seconds (RFC 9111 §1.2.2).
func ageField(h http.Header) (time.Duration, bool) {
	v := joinField(h, "Age")
	if v == "" {
		return 0, false
	}
	first, _, _ := strings.Cut(v, ",")
	first, _, _ = strings.Cut(first, ";")
	first = strings.Trim(first, " \t")
	if first == "" {
		return 0, false
	}
	const maxDelta = 1 << 31
	var n int64
	for i := 0; i < len(first); i++ {
		c := first[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return time.Duration(min(n, maxDelta)) * time.Second, true
}
