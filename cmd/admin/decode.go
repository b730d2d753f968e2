package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
)

type decodeCmd struct {
	token          string
	json           bool
	signer         *phxtoken.Signer // nil: signature not checked
	verifierMaxAge time.Duration
}

const decodeUsage = `usage: admin decode [flags] [TOKEN]

Decodes a Phoenix token (data-phx-session, data-phx-static, Phoenix.Token)
given as argument or on standard input (a pasted data-phx-...="..."
attribute works too): signed-at, max ages, expiry (EXPIRED when past), the
signature when the secret is known, the term. It needs no server.

The secret and salt are the server's own settings, read the same way
(--lv-secret-key-base-file or FIRSTRENDER_LV_SECRET_KEY_BASE(_FILE),
--lv-signing-salt or FIRSTRENDER_LV_SIGNING_SALT), so an exported server
configuration verifies here too. Exit 1 when the signature does not verify.`

// formerDecodeEnv are the variables decode read before it shared the
// server's names; setting one is an error that names the new one, so a
// secret is never silently ignored.
var formerDecodeEnv = map[string]string{
	cli.EnvName("secret-key-base"):      cli.EnvName("lv-secret-key-base"),
	cli.EnvName("secret-key-base-file"): cli.EnvName("lv-secret-key-base-file"),
}

func parseDecode(args []string, e env) (runner, error) {
	c := &decodeCmd{verifierMaxAge: phxtoken.DefaultLiveViewMaxAge}
	var secret, salt string
	fs := newFlagSet("decode", decodeUsage, e)
	fs.Var(cli.Bool(&c.json), "json", "print JSON instead of text")
	fs.Secret(&secret, "lv-secret-key-base", "the app's secret_key_base, to verify the signature (the server's --lv-secret-key-base)")
	fs.Var(cli.String(&salt), "lv-signing-salt", "signing `salt` (LiveView: the endpoint's live_view: [signing_salt: ...]); needed with a secret")
	fs.Alias("salt", "lv-signing-salt")
	fs.Var(cli.Duration(&c.verifierMaxAge, true), "lv-max-age", "max `age` the app verifies with (LiveView: 14d; 90m, 2h, 14d); 0 = the token's embedded max age")
	fs.Alias("verifier-max-age", "lv-max-age")
	err := parseFlags(fs, args, e)
	if err != nil {
		if strings.Contains(err.Error(), "unknown flag --secret-key-base") {
			return nil, usagef("decode: --secret-key-base is now --lv-secret-key-base (--lv-secret-key-base-file), as the server spells it")
		}
		return nil, err
	}
	for old, now := range formerDecodeEnv {
		if _, ok := e.lookupEnv(old); ok {
			return nil, usagef("decode: %s is a former name: set %s (the server's variable)", old, now)
		}
	}
	switch rest := fs.Args(); len(rest) {
	case 0:
	case 1:
		c.token = rest[0]
	default:
		return nil, usagef("decode: want one TOKEN argument, got %d", len(rest))
	}
	switch {
	case secret != "" && salt == "":
		return nil, usagef("decode: a secret_key_base was given but no --lv-signing-salt; LiveView tokens use the endpoint's live_view signing_salt")
	case secret != "":
		s, err := phxtoken.NewSigner(secret, salt)
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		c.signer = s
	case salt != "":
		return nil, usagef("decode: --lv-signing-salt given without a secret_key_base (--lv-secret-key-base-file or %s)", cli.EnvName("lv-secret-key-base"))
	}
	return c, nil
}

// maxStdin bounds a token read from standard input.
const maxStdin = 1 << 20

// decoded is decode's JSON: the token's description plus its state now.
type decoded struct {
	phxtoken.Description
	// EffectiveExpires is when the application stops accepting the token:
	// the verifier's expiry when it has its own max age, else the
	// embedded one; absent for :infinity.
	EffectiveExpires *time.Time `json:"effective_expires,omitempty"`
	Expired          bool       `json:"expired"`
	// State is "not expired", "EXPIRED" or "no expiry" (of the
	// signature it says nothing: see Signature).
	State string `json:"state"`
}

func (c *decodeCmd) run(ctx context.Context, e env) error {
	tok := c.token
	if tok == "" {
		b, err := io.ReadAll(io.LimitReader(e.stdin, maxStdin+1))
		if err != nil {
			return fmt.Errorf("decode: reading standard input: %w", err)
		}
		if len(b) > maxStdin {
			return fmt.Errorf("decode: standard input is larger than %d bytes", maxStdin)
		}
		tok = string(bytes.TrimSpace(b))
		if tok == "" {
			return usagef("decode: no token (give it as an argument or on standard input)")
		}
	}
	// Accept a pasted attribute: data-phx-session="SFMyNTY...".
	if _, v, ok := strings.Cut(tok, "="); ok && strings.HasPrefix(strings.TrimSpace(tok), "data-") {
		tok = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	t, err := phxtoken.ParseToken(tok)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	sig := phxtoken.NotChecked
	if c.signer != nil {
		sig = c.signer.Verify(tok)
	}
	now := e.clock()
	d := decoded{Description: phxtoken.Describe(t, sig, c.verifierMaxAge), State: "no expiry"}
	switch {
	case d.VerifierExpires != nil:
		d.EffectiveExpires = d.VerifierExpires
	case d.Expires != nil:
		d.EffectiveExpires = d.Expires
	}
	if d.EffectiveExpires != nil {
		d.Expired = !d.EffectiveExpires.After(now)
		d.State = "not expired"
		if d.Expired {
			d.State = "EXPIRED"
		}
	}
	if c.json {
		err = writeJSON(e.stdout, d)
	} else {
		_, err = io.WriteString(e.stdout, d.Text()+stateLine(d, now))
	}
	if err != nil {
		return err
	}
	if sig == phxtoken.Invalid {
		return failf("decode: the signature is INVALID: the token was not signed with this secret and salt (or was altered)")
	}
	return nil
}

// stateLine says whether the application still accepts the token, in
// the Text layout ("%-17s %s").
func stateLine(d decoded, now time.Time) string {
	var v string
	switch {
	case d.EffectiveExpires == nil:
		v = "no expiry (max age :infinity)"
	case d.Expired:
		v = "EXPIRED " + humanDuration(now.Sub(*d.EffectiveExpires)) + " ago: the application refuses it (a cached page carrying it cannot go live)"
	default:
		v = "not expired: " + humanDuration(d.EffectiveExpires.Sub(now)) + " left"
	}
	return fmt.Sprintf("%-17s %s\n", "state:", v)
}
