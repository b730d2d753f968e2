package main

import (
	"bytes"
	"context"
	"encoding/json"
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

Decodes a Phoenix token given as argument or on standard input.`

func parseDecode(args []string, e env) (runner, error) {
	c := &decodeCmd{verifierMaxAge: phxtoken.DefaultLiveViewMaxAge}
	var secret, salt string
	fs := cli.NewFlagSet("decode", decodeUsage, e.stderr)
	fs.Var(cli.Bool(&c.json), "json", "print JSON instead of text")
	fs.Secret(&secret, "secret-key-base", "the app's secret_key_base, to verify the signature")
	fs.Var(cli.String(&salt), "salt", "signing `salt` (LiveView: the endpoint's live_view: [signing_salt: ...]); needed with a secret")
	fs.Var(cli.Duration(&c.verifierMaxAge, true), "verifier-max-age", "max `age` the app verifies with (LiveView: 14d); 0 = the token's embedded max age")
	if err := parseFlags(fs, args, e); err != nil {
		return nil, err
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
		return nil, usagef("decode: a secret_key_base was given but no --salt; LiveView tokens use the endpoint's live_view signing_salt")
	case secret != "":
		s, err := phxtoken.NewSigner(secret, salt)
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		c.signer = s
	case salt != "":
		return nil, usagef("decode: --salt given without a secret_key_base (--secret-key-base-file or %s)", cli.EnvName("secret-key-base"))
	}
	return c, nil
}

// maxStdin bounds a token read from standard input.
const maxStdin = 1 << 20

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
	d := phxtoken.Describe(t, sig, c.verifierMaxAge)
	if c.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	_, err = io.WriteString(e.stdout, d.Text())
	return err
}
