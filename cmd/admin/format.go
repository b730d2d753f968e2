package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// newTable is the kubectl-style column writer of human output: columns
// separated by at least three spaces, upper-case headers, no borders.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
}

// writeJSON prints v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeJSONLine prints v as one line of JSON (JSON lines).
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// clean makes outside text (keys, header values, tags) safe for a
// terminal cell: control characters, tabs (the column separator) and
// bidi overrides become visible escapes, so a stored page can neither
// move the cursor nor break the columns.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if unsafeRune(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return true
	}
	return false
}

// humanDuration prints d compactly: 45s, 12m, 3h4m, 2d3h.
func humanDuration(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		s = fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		s = fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
	if neg {
		return "-" + s
	}
	return s
}

// humanBytes prints n with a binary unit: 512B, 4.9KiB, 16MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	u := "KMGTPE"[exp : exp+1]
	if v >= 10 {
		return fmt.Sprintf("%.0f%siB", v, u)
	}
	return fmt.Sprintf("%.1f%siB", v, u)
}

// timeAndRelative prints an instant with how far it is from now:
// "2026-11-25 12:48:00 UTC (in 45m)".
func timeAndRelative(t, now time.Time) string {
	s := t.UTC().Format("2006-01-02 15:04:05 MST")
	d := t.Sub(now)
	if d >= 0 {
		return s + " (in " + humanDuration(d) + ")"
	}
	return s + " (" + humanDuration(-d) + " ago)"
}

// orDash is s, or "-" when empty (an empty table cell would shift the
// columns' meaning for a reader).
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
