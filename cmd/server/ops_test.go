package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firstrender/firstrender/httpcache/liveview"
)

// TestRealMain_CheckConfig: --check-config exits 0 for a valid
// configuration and 2 for one that is not, like nginx -t, printing the
// effective configuration with secrets redacted either way.
func TestRealMain_CheckConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const secret = "check-config-secret-key-base-0123456789abcdef0123456789abcdef"
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		stdout   []string
		stderr   []string
		noStdout bool
	}{
		{"valid, with a secret", []string{"--check-config", "--db", filepath.Join(dir, "ok.db"), "--upstream", "http://127.0.0.1:4000", "--lv-signing-salt", "s"},
			map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": secret}, 0,
			[]string{`--db="` + filepath.Join(dir, "ok.db") + `"`, `--upstream="http://127.0.0.1:4000"`, `--lv-secret-key-base="[redacted]"	# env FIRSTRENDER_LV_SECRET_KEY_BASE`},
			[]string{"configuration is valid", "http://127.0.0.1:4000 (form checked, not contacted)"}, false},
		{"missing database directory", []string{"--check-config", "--db", filepath.Join(dir, "nope", "x.db")}, nil, 2,
			[]string{"--db="}, []string{"--db " + filepath.Join(dir, "nope", "x.db") + ": directory " + filepath.Join(dir, "nope") + " does not exist: create it or choose another path", "configuration is NOT valid"}, false},
		{"database path is a directory", []string{"--check-config", "--db", dir}, nil, 2,
			nil, []string{"is a directory, not a database file"}, false},
		{"bad upstream form", []string{"--check-config", "--upstream", "ftp://x"}, nil, 2,
			nil, []string{"--upstream"}, true},
		{"unknown variable is warned about, still valid", []string{"--check-config", "--db", filepath.Join(dir, "w.db")}, map[string]string{"FIRSTRENDER_UPSTREM": "http://127.0.0.1:4000"}, 0,
			nil, []string{"warning: FIRSTRENDER_UPSTREM is set but no flag of firstrender reads it: ignored (did you mean FIRSTRENDER_UPSTREAM, i.e. --upstream?)"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			code := realMain(tt.args, envList(tt.env), &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut.String())
			}
			for _, w := range tt.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
			if tt.noStdout && out.Len() > 0 {
				t.Errorf("a flag error printed a configuration:\n%s", out.String())
			}
			if strings.Contains(out.String()+errOut.String(), secret) {
				t.Error("--check-config printed the secret")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "ok.db")); err == nil {
		t.Error("--check-config created the database")
	}
}

// TestRealMain_Version prints one line naming the module and Go.
func TestRealMain_Version(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := realMain([]string{"--version"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("--version exit %d: %s", code, errOut.String())
	}
	line := out.String()
	if !strings.HasPrefix(line, "firstrender ") || !strings.Contains(line, " go1.") || strings.Count(line, "\n") != 1 {
		t.Errorf("--version = %q, want one line starting firstrender and naming the Go version", line)
	}
}

// TestParseConfig_LintFlags: every lint kind has --lv-<kind>, strip is
// offered only where the lint can strip, and the former names work with
// a warning.
func TestParseConfig_LintFlags(t *testing.T) {
	t.Parallel()
	if len(lintKinds()) < 9 {
		t.Fatalf("lintKinds() = %v: want every configurable kind", lintKinds())
	}
	for _, k := range lintKinds() {
		_, cfg, err := parseConfig([]string{"--lv-" + string(k) + "=allow"}, nil)
		if err != nil || cfg.LiveView.Policy[k] != liveview.Allow {
			t.Errorf("--lv-%s=allow: policy %v, err %v; want allow", k, cfg.LiveView.Policy[k], err)
		}
		_, _, err = parseConfig([]string{"--lv-" + string(k) + "=strip"}, nil)
		if got, want := err == nil, strippable(k); got != want {
			t.Errorf("--lv-%s=strip accepted %v, want %v", k, got, want)
		}
	}
	_, cfg, err := parseConfig(nil, map[string]string{"FIRSTRENDER_LV_ENCRYPTED_TOKEN": "allow", "FIRSTRENDER_LV_ENCODED_BODY": "allow", "FIRSTRENDER_LV_VARY_COOKIE": "strip"})
	if err != nil || cfg.LiveView.Policy[liveview.KindEncryptedToken] != liveview.Allow || cfg.LiveView.Policy[liveview.KindEncodedBody] != liveview.Allow || cfg.LiveView.Policy[liveview.KindVaryCookie] != liveview.Strip {
		t.Errorf("lint variables: %v, %v", cfg.LiveView.Policy, err)
	}
	f, fs, err := parseFlags([]string{"--lv-csrf=strip", "--lv-session=allow"}, envFrom(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if *f.lvPolicy[liveview.KindCSRFMeta] != "strip" || *f.lvPolicy[liveview.KindUserSession] != "allow" {
		t.Errorf("former names: csrf-meta %s, user-session %s; want strip, allow", *f.lvPolicy[liveview.KindCSRFMeta], *f.lvPolicy[liveview.KindUserSession])
	}
	if w := strings.Join(fs.Warnings(), "\n"); !strings.Contains(w, "--lv-csrf is a former name: use --lv-csrf-meta") {
		t.Errorf("no warning about the former name: %q", w)
	}
	if _, _, err := parseFlags([]string{"--lv-csrf=strip", "--lv-csrf-meta=allow"}, envFrom(nil), nil); err == nil {
		t.Error("both --lv-csrf and --lv-csrf-meta: no error")
	}
}
