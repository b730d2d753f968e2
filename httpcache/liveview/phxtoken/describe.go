package phxtoken

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
)

// Description is a decoded token as the admin surface shows it: the
// `admin decode` command prints its [Description.Text] or its JSON.
type Description struct {
	Protected string     `json:"protected"`
	Encrypted bool       `json:"encrypted"`
	SignedAt  *time.Time `json:"signed_at,omitempty"`
	MaxAge    *int64     `json:"max_age_seconds,omitempty"` // embedded; nil for :infinity
	Expires   *time.Time `json:"expires,omitempty"`         // signed_at + embedded max age
	// VerifierMaxAge / VerifierExpires are set when the verifier uses its
	// own max age (LiveView: 14 days), which then decides the expiry.
	VerifierMaxAge  *int64          `json:"verifier_max_age_seconds,omitempty"`
	VerifierExpires *time.Time      `json:"verifier_expires,omitempty"`
	Signature       SignatureStatus `json:"signature"`
	Data            json.RawMessage `json:"data,omitempty"`   // erlterm JSON form
	Elixir          string          `json:"elixir,omitempty"` // erlterm Elixir form
}

// Describe builds the [Description] of t. verifierMaxAge is the max age
// the application verifies with (0: the embedded one applies); sig is the
// outcome of [Signer.Verify], or [NotChecked].
func Describe(t *Token, sig SignatureStatus, verifierMaxAge time.Duration) Description {
	d := Description{Protected: t.Protected, Encrypted: t.Encrypted, Signature: sig}
	if t.Encrypted {
		return d
	}
	at := t.SignedAt
	d.SignedAt = &at
	if !t.NoExpiry {
		s := int64(t.MaxAge / time.Second)
		exp := t.Expires()
		d.MaxAge, d.Expires = &s, &exp
	}
	if verifierMaxAge > 0 {
		s := int64(verifierMaxAge / time.Second)
		exp := t.ExpiresAfter(verifierMaxAge)
		d.VerifierMaxAge, d.VerifierExpires = &s, &exp
	}
	d.Data = erlterm.JSON(t.Data)
	d.Elixir = erlterm.Format(t.Data)
	return d
}

// Text renders d for a terminal, one "name: value" per line.
func (d Description) Text() string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "%-17s %s\n", k+":", v) }
	kind := "signed"
	if d.Encrypted {
		kind = "encrypted (payload unreadable without the secret)"
	}
	row("token", kind+", "+d.Protected)
	if d.SignedAt != nil {
		row("signed at", d.SignedAt.Format(time.RFC3339Nano))
	}
	if d.MaxAge != nil {
		row("max age", fmt.Sprintf("%ds (%s), embedded", *d.MaxAge, human(time.Duration(*d.MaxAge)*time.Second)))
		row("expires", d.Expires.Format(time.RFC3339Nano)+" (signed at + embedded max age)")
	} else if !d.Encrypted {
		row("max age", "infinity, embedded")
	}
	if d.VerifierMaxAge != nil {
		row("verifier max age", fmt.Sprintf("%ds (%s), overrides the embedded one", *d.VerifierMaxAge, human(time.Duration(*d.VerifierMaxAge)*time.Second)))
		row("verifier expires", d.VerifierExpires.Format(time.RFC3339Nano))
	}
	row("signature", d.Signature.String())
	if d.Elixir != "" {
		row("data", d.Elixir)
	}
	return b.String()
}

// human prints a duration in days/hours/minutes: "1d", "14d", "2h30m".
func human(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var parts []string
	if days := d / (24 * time.Hour); days > 0 {
		parts = append(parts, fmt.Sprintf("%dd", days))
		d -= days * 24 * time.Hour
	}
	if h := d / time.Hour; h > 0 {
		parts = append(parts, fmt.Sprintf("%dh", h))
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		parts = append(parts, fmt.Sprintf("%dm", m))
		d -= m * time.Minute
	}
	if s := d / time.Second; s > 0 {
		parts = append(parts, fmt.Sprintf("%ds", s))
	}
	if len(parts) == 0 {
		return d.String()
	}
	return strings.Join(parts, "")
}
