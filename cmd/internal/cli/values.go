package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/firstrender/firstrender/httpcache/hop"
)

// The flag.Value constructors below bind a flag to a variable. Each Set
// error says what was wrong (the FlagSet adds the flag's and the
// variable's name); each String prints a value that Set reads back to the
// same value, so --help defaults and --print-config output can be pasted.

// String binds a free-form string.
func String(p *string) Value { return stringValue{p} }

// NonEmpty binds a string that must not be empty or blank.
func NonEmpty(p *string) Value { return nonEmptyValue{p} }

// Bool binds a boolean flag (given alone it means true).
func Bool(p *bool) Value { return boolValue{p} }

// Int binds a whole number that must be at least min.
func Int(p *int, min int) Value { return intValue{p, min} }

// Addr binds a host:port listen address (port 0 picks a free port);
// allowEmpty lets "" through (meaning: this listener is off).
func Addr(p *string, allowEmpty bool) Value { return addrValue{p, allowEmpty} }

// URL binds an absolute http or https URL without credentials, query or
// fragment; "" sets nil.
func URL(p **url.URL) Value { return urlValue{p} }

// Size binds a byte count with an optional unit (B, KiB, MiB, GiB, TiB, K, M, G, KB, MB, GB, TB; fractions allowed); zero is
// refused unless allowZero.
func Size(p *int64, allowZero bool) Value { return sizeValue{p, allowZero} }

// Duration binds a non-negative time.Duration in Go's form or in days
// ("14d"); zero is refused unless allowZero.
func Duration(p *time.Duration, allowZero bool) Value { return durationValue{p, allowZero} }

// Enum binds one of choices (compared case-insensitively, stored as given
// in choices).
func Enum(p *string, choices ...string) Value { return enumValue{p, choices} }

// Level binds a log level: debug, info, warn or error.
func Level(p *slog.Level) Value { return levelValue{p} }

// List binds a comma-separated list. Blank entries are skipped, duplicates
// (after item) dropped, and "" sets an empty non-nil list. item checks and
// may normalize each entry; nil accepts any.
func List(p *[]string, item func(string) (string, error)) Value { return listValue{p, item} }

type stringValue struct{ p *string }

func (v stringValue) String() string     { return deref(v.p) }
func (v stringValue) Set(s string) error { *v.p = s; return nil }

// Token binds an RFC 9110 token (§5.6.2): one or more letters, digits
// or !#$%&'*+-.^_`|~, such as the name a proxy gives itself in Via.
func Token(p *string) Value { return tokenValue{p} }

type tokenValue struct{ p *string }

func (v tokenValue) String() string { return deref(v.p) }
func (v tokenValue) Set(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	for i := 0; i < len(s); i++ {
		if !hop.IsTchar(s[i]) {
			return fmt.Errorf("%q is not a token: %q is not allowed (letters, digits and !#$%%&'*+-.^_`|~ are)", s, s[i])
		}
	}
	*v.p = s
	return nil
}

type nonEmptyValue struct{ p *string }

func (v nonEmptyValue) String() string { return deref(v.p) }
func (v nonEmptyValue) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("must not be empty")
	}
	*v.p = s
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

type boolValue struct{ p *bool }

func (v boolValue) IsBoolFlag() bool { return true }
func (v boolValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatBool(*v.p)
}
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("want true or false, got %q", s)
	}
	*v.p = b
	return nil
}

type intValue struct {
	p   *int
	min int
}

func (v intValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.Itoa(*v.p)
}
func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("want a whole number, got %q", s)
	}
	if n < v.min {
		return fmt.Errorf("must be at least %d, got %d", v.min, n)
	}
	*v.p = n
	return nil
}

type addrValue struct {
	p          *string
	allowEmpty bool
}

func (v addrValue) String() string { return deref(v.p) }
func (v addrValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		if v.allowEmpty {
			*v.p = ""
			return nil
		}
		return errors.New("must not be empty (want host:port, e.g. :8080)")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port (e.g. :8080 or 127.0.0.1:9090): %v", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("host %q is not a host name or IP address", host)
	}
	*v.p = s
	return nil
}

type urlValue struct{ p **url.URL }

func (v urlValue) String() string {
	if v.p == nil || *v.p == nil {
		return ""
	}
	return (*v.p).String()
}
func (v urlValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		*v.p = nil
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https, got %q (want e.g. http://127.0.0.1:4000)", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("missing host (want e.g. http://127.0.0.1:4000)")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
	}
	if u.User != nil {
		return errors.New("must not carry user:password (credentials would be logged)")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return errors.New("must not have a query or fragment")
	}
	*v.p = u
	return nil
}

type sizeValue struct {
	p         *int64
	allowZero bool
}

func (v sizeValue) String() string {
	if v.p == nil {
		return ""
	}
	return formatSize(*v.p)
}
func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	if n == 0 && !v.allowZero {
		return errors.New("must be more than 0")
	}
	*v.p = n
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest first so "MiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	{"B", 1},
}

// parseSize reads a byte count: "1048576", "512KiB", "64MB", "1.5GiB"
// (binary units KiB/MiB/GiB/TiB and K/M/G, decimal KB/MB/GB/TB, B;
// case-insensitive). Negative, non-finite and absurdly large sizes are
// errors.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size (want e.g. 64MiB)")
	}
	mult := int64(1)
	for _, u := range sizeUnits {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f != f {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("size %q is negative", s)
	}
	b := f * float64(mult)
	if b > 1<<62 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(b), nil
}

// formatSize prints n in the largest binary unit that divides it exactly
// ("16MiB"), else in bytes; parseSize reads it back.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

type durationValue struct {
	p         *time.Duration
	allowZero bool
}

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	d := *v.p
	if d != 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
func (v durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	if d == 0 && !v.allowZero {
		return errors.New("must be more than 0")
	}
	*v.p = d
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	if strings.HasSuffix(t, "d") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(t, "d"), 64)
		if err != nil || n != n || n > 100000 || n < -100000 {
			return 0, fmt.Errorf("duration %q: want e.g. 90s, 5m, 2h or 14d", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 90s, 5m, 2h or 14d", s)
	}
	return d, nil
}

type enumValue struct {
	p       *string
	choices []string
}

func (v enumValue) String() string { return deref(v.p) }
func (v enumValue) Set(s string) error {
	t := strings.TrimSpace(s)
	for _, c := range v.choices {
		if strings.EqualFold(t, c) {
			*v.p = c
			return nil
		}
	}
	return fmt.Errorf("want one of %s, got %q", strings.Join(v.choices, ", "), s)
}

type levelValue struct{ p *slog.Level }

func (v levelValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.ToLower(v.p.String())
}
func (v levelValue) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		*v.p = slog.LevelDebug
	case "info":
		*v.p = slog.LevelInfo
	case "warn", "warning":
		*v.p = slog.LevelWarn
	case "error":
		*v.p = slog.LevelError
	default:
		return fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return nil
}

type listValue struct {
	p    *[]string
	item func(string) (string, error)
}

func (v listValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}
func (v listValue) Set(s string) error {
	out := []string{}
	seen := map[string]bool{}
	for _, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		it := raw
		if v.item != nil {
			var err error
			if it, err = v.item(raw); err != nil {
				return fmt.Errorf("entry %q: %v", raw, err)
			}
		}
		if !seen[it] {
			seen[it] = true
			out = append(out, it)
		}
	}
	*v.p = out
	return nil
}
