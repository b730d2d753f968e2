package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
)

// envSecretKeyBase names the environment variable holding the
// application's secret_key_base (never a flag: flags show up in ps).
const envSecretKeyBase = "FIRSTRENDER_SECRET_KEY_BASE"

type decodeCmd struct {
	token          string
	json           bool
	signer         *phxtoken.Signer // nil: signature not checked
	verifierMaxAge time.Duration
}

func parseDecode(args []string, e env) (runner, error) {
	fs := flag.NewFlagSet("decode", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	jsonOut := fs.Bool("json", false, "print JSON instead of text")
	secretFile := fs.String("secret-key-base-file", "", "file holding the app's secret_key_base, to verify the signature (or set "+envSecretKeyBase+")")
	salt := fs.String("salt", "", "signing salt (LiveView: the endpoint's live_view: [signing_salt: ...]); needed with a secret")
	maxAge := fs.Duration("verifier-max-age", phxtoken.DefaultLiveViewMaxAge, "max age the app verifies with (LiveView: 336h); 0 = the token's embedded max age")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: admin decode [flags] [TOKEN]\n\nDecodes a Phoenix token given as argument or on standard input.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, flagHelp
		}
		return nil, &usageError{err.Error()}
	}
	c := &decodeCmd{json: *jsonOut, verifierMaxAge: *maxAge}
	if *maxAge < 0 {
		return nil, usagef("decode: -verifier-max-age %v is negative", *maxAge)
	}
	switch fs.NArg() {
	case 0:
	case 1:
		c.token = fs.Arg(0)
	default:
		return nil, usagef("decode: want one TOKEN argument, got %d", fs.NArg())
	}
	secret := ""
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return nil, fmt.Errorf("decode: -secret-key-base-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
		if secret == "" {
			return nil, fmt.Errorf("decode: -secret-key-base-file %s is empty", *secretFile)
		}
	} else if v := e.getenv(envSecretKeyBase); v != "" {
		secret = v
	}
	if secret != "" {
		if *salt == "" {
			return nil, usagef("decode: a secret_key_base was given but no -salt; LiveView tokens use the endpoint's live_view signing_salt")
		}
		s, err := phxtoken.NewSigner(secret, *salt)
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		c.signer = s
	} else if *salt != "" {
		return nil, usagef("decode: -salt given without a secret_key_base (-secret-key-base-file or %s)", envSecretKeyBase)
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
