package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// group writes n with thousands separators: 2418310 -> "2,418,310".
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// bytesShort renders a size in at most 6 columns: 512B, 12.3K, 1.2M, 3.4G.
func bytesShort(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n)
	for _, u := range []string{"K", "M", "G", "T", "P"} {
		v /= unit
		if v < unit {
			if v < 10 {
				return fmt.Sprintf("%.1f%s", v, u)
			}
			return fmt.Sprintf("%.0f%s", v, u)
		}
	}
	return fmt.Sprintf("%.0fE", v/unit)
}

// bytesLong renders a size for the header: 1.2 GiB.
func bytesLong(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= unit
		if v < unit {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return fmt.Sprintf("%.1f EiB", v/unit)
}

// countShort renders a count in at most 5 columns: 999, 1.2k, 34k, 5.6M.
func countShort(n int64) string {
	switch {
	case n < 0:
		return "–"
	case n < 1000:
		return strconv.FormatInt(n, 10)
	case n < 10_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	case n < 1_000_000:
		return fmt.Sprintf("%dk", n/1000)
	case n < 10_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n < 1_000_000_000:
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprintf("%dG", n/1_000_000_000)
}

// durShort renders a duration in its largest unit: 45s, 12m, 3h, 4d.
func durShort(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int64(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int64(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int64(d/time.Hour))
	default:
		s = fmt.Sprintf("%dd", int64(d/(24*time.Hour)))
	}
	if neg {
		return "-" + s
	}
	return s
}

// durLong renders a duration to the second in up to four units:
// "13d 23h 48m 00s", "2m 05s".
func durLong(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	h, s := s/3600, s%3600
	mi, s := s/60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %02dh %02dm %02ds", days, h, mi, s)
	case h > 0:
		return fmt.Sprintf("%dh %02dm %02ds", h, mi, s)
	case mi > 0:
		return fmt.Sprintf("%dm %02ds", mi, s)
	}
	return fmt.Sprintf("%ds", s)
}

// uptime renders whole seconds as "3d 4h", "5h 12m", "42m", "9s".
func uptime(secs int64) string {
	d, h, m := secs/86400, secs%86400/3600, secs%3600/60
	switch {
	case d > 0:
		return fmt.Sprintf("%dd %dh", d, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%ds", secs)
}

// stamp renders t in UTC, so the same data draws the same on every machine.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func pct(r float64) string { return fmt.Sprintf("%.1f%%", r*100) }
