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
			// The seed tokens were signed in 2023: past their expiry, which
			// the line after the description says.
			if code != 0 || !strings.HasPrefix(out, string(want)) || !strings.Contains(out[len(want):], "state:            EXPIRED ") {
				t.Errorf("admin decode = %d\n%s%s\nwant 0\n%s", code, out, errOut, want)
			}
			// Same through standard input.
			code, out, _ = runAdmin(t, seed(t, name)+"\n", nil, "decode")
			if code != 0 || !strings.HasPrefix(out, string(want)) {
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
		Expired         bool            `json:"expired"`
		State           string          `json:"state"`
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
		!d.VerifierExpires.Equal(d.SignedAt.Add(14*24*time.Hour)) || !strings.Contains(string(d.Data), `"session":{}`) || !d.Expired || d.State != "EXPIRED" {
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
		code int
	}{
		{"secret from file", nil, []string{"decode", "--lv-secret-key-base-file", file, "--lv-signing-salt", "salt", tok}, "signature:        valid", 0},
		{"secret from the server's variable", map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": secret, "FIRSTRENDER_LV_SIGNING_SALT": "salt"}, []string{"decode", tok}, "signature:        valid", 0},
		{"secret file from the server's variable", map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE_FILE": file}, []string{"decode", "--salt", "salt", tok}, "signature:        valid", 0},
		{"wrong salt exits 1", map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": secret}, []string{"decode", "--lv-signing-salt", "other", tok}, "signature:        invalid", 1},
		{"wrong secret exits 1", map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": secret + "x"}, []string{"decode", "--json", "--lv-signing-salt", "salt", tok}, `"signature": "invalid"`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runAdmin(t, "", tt.vars, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) || tt.code == 1 && !strings.Contains(errOut, "INVALID") {
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
		{"unknown subcommand", "", nil, []string{"prune"}, 2, `unknown subcommand "prune"`},
		{"empty stdin", "", nil, []string{"decode"}, 2, "no token"},
		{"two tokens", "", nil, []string{"decode", "a", "b"}, 2, "want one TOKEN"},
		{"unknown flag", "", nil, []string{"decode", "-x"}, 2, "unknown flag --x"},
		{"bad base64", "", nil, []string{"decode", "SFMyNTY.g2g*.abc"}, 1, "bad base64url at byte 3"},
		{"not a token", "", nil, []string{"decode", "hello"}, 1, "not a Phoenix token"},
		{"missing secret file", "", nil, []string{"decode", "--lv-secret-key-base-file", "/nonexistent/skb", "--lv-signing-salt", "s", "x"}, 1, "-secret-key-base-file"},
		{"secret without salt", "", map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": "s3cr3t-value"}, []string{"decode", "x"}, 2, "no --lv-signing-salt"},
		{"salt without secret", "", nil, []string{"decode", "--salt", "s", "x"}, 2, "without a secret_key_base"},
		{"former secret variable", "", map[string]string{"FIRSTRENDER_SECRET_KEY_BASE": "s3cr3t-value"}, []string{"decode", "x"}, 2, "set FIRSTRENDER_LV_SECRET_KEY_BASE"},
		{"former secret flag", "", nil, []string{"decode", "--secret-key-base-file", "/x", "x"}, 2, "now --lv-secret-key-base"},
		{"bad duration", "", nil, []string{"decode", "--lv-max-age", "14x", "x"}, 2, "--lv-max-age"},
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

func TestDecode_HelpGoesToStdout(t *testing.T) {
	code, out, errOut := runAdmin(t, "", nil, "decode", "--help")
	if code != 0 || !strings.Contains(out, "usage: admin decode") || !strings.Contains(out, "FIRSTRENDER_LV_SECRET_KEY_BASE") || errOut != "" {
		t.Errorf("decode --help = %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestDecode_ExpiryAndDays: a token's state follows the verifier max age
// given in days like the server's --lv-max-age.
func TestDecode_ExpiryAndDays(t *testing.T) {
	signed := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { return signed.Add(72 * time.Hour) }
	decode := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, lookupEnv: func(string) (string, bool) { return "", false }, now: now}
		return mainE(append([]string{"decode"}, args...), e), out.String(), errb.String()
	}
	tok, err := phxtoken.Sign("admin-test-secret-key-base-0123456789abcdef0123456789abcdef012345", "s", phxtoken.StaticData("phx-2"), signed, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		maxAge string
		want   string
	}{
		{"14d", "state:            not expired: 11d0h left"},
		{"2d", "state:            EXPIRED 1d0h ago"},
		{"0", "state:            not expired: 27d0h left"}, // the embedded 30 days
		{"72h30m", "state:            not expired: 30m left"},
	} {
		code, out, errOut := decode("--lv-max-age", tt.maxAge, tok)
		if code != 0 || !strings.Contains(out, tt.want) {
			t.Errorf("decode --lv-max-age %s = %d\n%s%s\nwant %q", tt.maxAge, code, out, errOut, tt.want)
		}
	}
	// The former flag name still works, with a warning.
	code, out, errOut := decode("--verifier-max-age", "14d", tok)
	if code != 0 || !strings.Contains(out, "not expired: 11d0h left") || !strings.Contains(errOut, "former name") {
		t.Errorf("--verifier-max-age: %d %q %q", code, out, errOut)
	}
}
