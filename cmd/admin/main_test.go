package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/httpcache/liveview/phxtoken"
)

const fixtures = "../../fixtures/liveview"

func seed(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, "seed", name+".token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func runAdmin(t *testing.T, stdin string, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, lookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	code = mainE(args, e)
	return code, out.String(), errb.String()
}

func TestDecode_SeedGolden(t *testing.T) {
	for _, name := range []string{"static_small_atom_utf8", "session_atom_ext", "static_atom_ext"} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(fixtures, "seed", name+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runAdmin(t, "", nil, "decode", seed(t, name))
			if code != 0 || out != string(want) {
				t.Errorf("admin decode = %d\n%s%s\nwant 0\n%s", code, out, errOut, want)
			}
			// Same through standard input.
			code, out, _ = runAdmin(t, seed(t, name)+"\n", nil, "decode")
			if code != 0 || out != string(want) {
				t.Errorf("admin decode < token = %d\n%s\nwant 0\n%s", code, out, want)
			}
		})
	}
}

func TestDecode_JSON(t *testing.T) {
	code, out, errOut := runAdmin(t, "", nil, "decode", "--json", seed(t, "session_atom_ext"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var d struct {
		SignedAt        time.Time       `json:"signed_at"`
		MaxAge          int64           `json:"max_age_seconds"`
		Expires         time.Time       `json:"expires"`
		VerifierExpires time.Time       `json:"verifier_expires"`
		Signature       string          `json:"signature"`
		Data            json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, d.Data); err != nil {
		t.Fatal(err)
	}
	d.Data = compact.Bytes()
	if d.MaxAge != 86400 || d.Signature != "not checked" || d.SignedAt.UnixMilli() != 1699299863630 ||
		!d.VerifierExpires.Equal(d.SignedAt.Add(14*24*time.Hour)) || !strings.Contains(string(d.Data), `"session":{}`) {
		t.Errorf("decoded JSON = %+v, data %s", d, d.Data)
	}
}

func TestDecode_Signature(t *testing.T) {
	const secret = "admin-test-secret-key-base-0123456789abcdef0123456789abcdef012345"
	tok, err := phxtoken.Sign(secret, "salt", phxtoken.StaticData("phx-1"), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "skb")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"secret from file", nil, []string{"decode", "-secret-key-base-file", file, "-salt", "salt", tok}, "signature:        valid"},
		{"secret from environment", map[string]string{"FIRSTRENDER_SECRET_KEY_BASE": secret}, []string{"decode", "-salt", "salt", tok}, "signature:        valid"},
		{"wrong salt", map[string]string{"FIRSTRENDER_SECRET_KEY_BASE": secret}, []string{"decode", "-salt", "other", tok}, "signature:        invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runAdmin(t, "", tt.vars, tt.args...)
			if code != 0 || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, output\n%s%s\nwant it to contain %q", code, out, errOut, tt.want)
			}
			if strings.Contains(out+errOut, secret) {
				t.Errorf("output leaks the secret")
			}
		})
	}
}

func TestAdmin_Errors(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		vars  map[string]string
		args  []string
		code  int
		msg   string
	}{
		{"no subcommand", "", nil, nil, 2, "missing subcommand"},
		{"unknown subcommand", "", nil, []string{"purge"}, 2, `unknown subcommand "purge"`},
		{"empty stdin", "", nil, []string{"decode"}, 2, "no token"},
		{"two tokens", "", nil, []string{"decode", "a", "b"}, 2, "want one TOKEN"},
		{"unknown flag", "", nil, []string{"decode", "-x"}, 2, "unknown flag --x"},
		{"bad base64", "", nil, []string{"decode", "SFMyNTY.g2g*.abc"}, 1, "bad base64url at byte 3"},
		{"not a token", "", nil, []string{"decode", "hello"}, 1, "not a Phoenix token"},
		{"missing secret file", "", nil, []string{"decode", "-secret-key-base-file", "/nonexistent/skb", "-salt", "s", "x"}, 1, "-secret-key-base-file"},
		{"secret without salt", "", map[string]string{"FIRSTRENDER_SECRET_KEY_BASE": "s3cr3t-value"}, []string{"decode", "x"}, 2, "no --salt"},
		{"salt without secret", "", nil, []string{"decode", "-salt", "s", "x"}, 2, "without a secret_key_base"},
		{"help", "", nil, []string{"decode", "-h"}, 0, "usage: admin decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runAdmin(t, tt.stdin, tt.vars, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Errorf("admin %q = exit %d, stderr %q; want exit %d containing %q", tt.args, code, errOut, tt.code, tt.msg)
			}
			if strings.Contains(errOut, "s3cr3t-value") {
				t.Errorf("stderr leaks the secret: %q", errOut)
			}
		})
	}
}

func TestDecode_PastedAttribute(t *testing.T) {
	code, out, errOut := runAdmin(t, `data-phx-static="`+seed(t, "static_atom_ext")+`"`, nil, "decode")
	if code != 0 || !strings.Contains(out, `id: "phx-F5UgOQKJJCK_shjD"`) {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}
