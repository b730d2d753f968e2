package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache/admin"
)

type getCmd struct {
	conn    connFlags
	key     string
	variant string
	body    bool
	decode  bool
	json    bool
}

const getUsage = `usage: admin get [flags] KEY

Shows one stored variant of KEY (the normalized URL, as ls prints it): its
state, the effective expiry and why, the stored headers, the lint findings
with what to do about them, and every Phoenix token in the body, decoded.
--body prints only the body (as stored; --decode removes its
Content-Encoding), for piping.`

func parseGet(args []string, e env) (runner, error) {
	c := &getCmd{conn: defaultConn()}
	fs := newFlagSet("get", getUsage, e)
	fs.Var(cli.String(&c.variant), "variant", "the `variant` (as ls prints it; default: the key's default variant)")
	fs.Var(cli.Bool(&c.body), "body", "print only the body (capped at 256 KiB by the API)")
	fs.Var(cli.Bool(&c.decode), "decode", "remove the body's Content-Encoding (gzip, deflate) first, so its tokens are found too")
	fs.Var(cli.Bool(&c.json), "json", "print the entry as one JSON document")
	c.conn.add(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return nil, err
	}
	switch rest := fs.Args(); len(rest) {
	case 1:
		c.key = rest[0]
	case 0:
		return nil, usagef("get: want a KEY (a normalized URL, as admin ls prints it)")
	default:
		return nil, usagef("get: want one KEY, got %d arguments (flags go before the key: get --variant V KEY)", len(rest))
	}
	if c.body && c.json {
		return nil, usagef("get: --body and --json: choose one (the JSON has the body)")
	}
	return c, nil
}

func (c *getCmd) run(ctx context.Context, e env) error {
	s, err := c.conn.connect(ctx, e, readFile)
	if err != nil {
		return err
	}
	defer s.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	d, err := s.client.Entry(cctx, c.key, c.variant, c.decode)
	cancel()
	if err != nil {
		return notFound(err, c.key, c.variant)
	}
	switch {
	case c.json:
		return writeJSON(e.stdout, d)
	case c.body:
		return writeBody(e, d)
	}
	return writeDetail(e.stdout, d, e.clock(), c.decode)
}

// notFound rewords the API's not_found for a key (exit 4).
func notFound(err error, key, variant string) error {
	var ae *admin.Error
	if errors.As(err, &ae) && ae.Code == "not_found" {
		v := ""
		if variant != "" {
			v = fmt.Sprintf(" variant %q", variant)
		}
		return &exitError{code: exitNotFound, err: fmt.Errorf("no entry for key %q%s (keys are normalized URLs, as admin ls prints them: admin ls --contains ...)", key, v)}
	}
	return err
}

func writeBody(e env, d admin.EntryDetail) error {
	b := []byte(d.Body)
	if d.BodyBase64 {
		var err error
		if b, err = base64.StdEncoding.DecodeString(d.Body); err != nil {
			return fmt.Errorf("get: the API sent a body that is not base64: %v", err)
		}
	}
	if _, err := e.stdout.Write(b); err != nil {
		return err
	}
	if d.DecodeError != "" {
		fmt.Fprintf(e.stderr, "admin: the body is printed as stored: its Content-Encoding could not be removed: %s\n", d.DecodeError)
	}
	if d.Truncated {
		fmt.Fprintf(e.stderr, "admin: body truncated at %d of %d bytes\n", len(b), d.BodySize)
	}
	return nil
}

func writeDetail(w io.Writer, d admin.EntryDetail, now time.Time, decoded bool) error {
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("KEY", clean(d.Key))
	variants := make([]string, len(d.Variants))
	for i, v := range d.Variants {
		variants[i] = orDefault(clean(v))
	}
	row("VARIANT", fmt.Sprintf("%s (%d of the key's variants: %s)", orDefault(clean(d.Variant)), len(d.Variants), strings.Join(variants, ", ")))
	row("STATUS", strconv.Itoa(d.Status))
	st := state(d.Entry)
	if d.Disabled != "" {
		st += ": " + clean(d.Disabled) + " (admin enable to serve it again)"
	}
	row("STATE", st)
	row("STORED AT", timeAndRelative(d.StoredAt, now))
	row("AGE", humanDuration(time.Duration(d.AgeS)*time.Second))
	if d.Expiry.At != nil {
		row("EXPIRES", timeAndRelative(*d.Expiry.At, now))
	} else {
		row("EXPIRES", "-")
	}
	why := d.Expiry.Reason
	if d.Expiry.Detail != "" {
		why += ": " + clean(d.Expiry.Detail)
	}
	row("WHY", why)
	if d.NotAfter != nil {
		row("NOT AFTER", timeAndRelative(*d.NotAfter, now)+", the earliest Phoenix token's expiry: never served after it")
	}
	row("SIZE", fmt.Sprintf("%s stored, %d bytes of body", humanBytes(d.Size), d.BodySize))
	if d.Hits >= 0 {
		row("HITS", strconv.FormatInt(d.Hits, 10))
	}
	row("VARY", orDash(clean(strings.Join(d.Vary, ", "))))
	row("TAGS", orDash(clean(strings.Join(d.Tags, ", "))))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nHEADERS (%d)\n", len(d.Headers))
	names := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range d.Headers[k] {
			fmt.Fprintf(w, "  %s: %s\n", clean(k), clean(v))
		}
	}

	fmt.Fprintf(w, "\nFINDINGS (%d)\n", len(d.Findings))
	for _, f := range d.Findings {
		head := "  " + clean(f.Kind)
		if f.Policy != "" {
			head += " [policy " + clean(f.Policy) + "]"
		}
		if f.Detail != "" {
			head += ": " + clean(f.Detail)
		}
		fmt.Fprintln(w, head)
		if f.Explanation != "" {
			fmt.Fprintf(w, "    why:    %s\n", clean(f.Explanation))
		}
		if f.Action != "" {
			fmt.Fprintf(w, "    action: %s\n", clean(f.Action))
		}
	}

	fmt.Fprintf(w, "\nTOKENS (%d)\n", len(d.Tokens))
	if len(d.Tokens) == 0 && !decoded && len(d.Headers["Content-Encoding"]) > 0 {
		fmt.Fprintf(w, "  the body is %s-encoded: --decode to look for tokens inside it\n", clean(strings.Join(d.Headers["Content-Encoding"], ",")))
	}
	if d.DecodeError != "" {
		fmt.Fprintf(w, "  the body's Content-Encoding could not be removed: %s\n", clean(d.DecodeError))
	}
	for _, t := range d.Tokens {
		writeToken(w, t, now, "  ")
	}

	body := fmt.Sprintf("\nBODY %d bytes", d.BodySize)
	if d.Decoded != "" {
		body += ", " + d.Decoded + " removed"
	}
	if d.Truncated {
		body += fmt.Sprintf(", the API sent the first %d", admin.MaxBody)
	}
	fmt.Fprintln(w, body+": admin get --body"+map[bool]string{true: " --decode", false: ""}[decoded]+" to print it")
	return nil
}

func orDefault(v string) string {
	if v == "" {
		return "(default)"
	}
	return v
}

// writeToken prints one decoded token of an entry or of POST decode.
func writeToken(w io.Writer, t admin.Token, now time.Time, indent string) {
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s%s\t%s\n", indent, k, v) }
	where := t.Where
	if t.Offset > 0 {
		where += fmt.Sprintf(" at byte %d", t.Offset)
	}
	kind := t.Kind
	if t.Algorithm != "" {
		kind += " (" + t.Algorithm + ")"
	}
	row("token", clean(where)+" · "+kind)
	if t.Error != "" {
		row("error", clean(t.Error))
	}
	if t.SignedAt != nil {
		row("signed at", timeAndRelative(*t.SignedAt, now))
	}
	if t.MaxAgeS > 0 {
		row("max age", fmt.Sprintf("%ds (%s), embedded", t.MaxAgeS, humanDuration(time.Duration(t.MaxAgeS)*time.Second)))
	}
	if t.VerifierMaxAgeS > 0 {
		row("verifier", fmt.Sprintf("%ds (%s), what the application verifies with; it wins", t.VerifierMaxAgeS, humanDuration(time.Duration(t.VerifierMaxAgeS)*time.Second)))
	}
	if t.Expires != nil {
		exp := timeAndRelative(*t.Expires, now)
		if t.Expired || !t.Expires.After(now) {
			exp = "EXPIRED " + exp
		}
		row("expires", exp)
	}
	row("signature", signatureText(t.Signature))
	tw.Flush()
	if t.Elixir != "" {
		fmt.Fprintf(w, "%sterm:\n", indent)
		for _, l := range strings.Split(strings.TrimRight(t.Elixir, "\n"), "\n") {
			fmt.Fprintf(w, "%s  %s\n", indent, clean(l))
		}
	}
}

func signatureText(s string) string {
	switch s {
	case "verified":
		return "verified with the server's secret"
	case "invalid":
		return "INVALID: does not verify with the server's secret (another secret or salt, or tampering)"
	}
	return "not checked (no secret configured): do not trust the content"
}
