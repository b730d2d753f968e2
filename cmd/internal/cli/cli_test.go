package cli

import (
	"bytes"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func envFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

type testFlags struct {
	listen string
	size   int64
	dur    time.Duration
	on     bool
	secret string
	fs     *FlagSet
}

func newTestFlags() *testFlags {
	t := &testFlags{listen: ":8080", size: 16 << 20}
	t.fs = NewFlagSet("test", "usage: test [flags]", &bytes.Buffer{})
	t.fs.Var(Addr(&t.listen, false), "listen", "`address` to listen on")
	t.fs.Var(Size(&t.size, false), "max-size", "largest `bytes`")
	t.fs.Var(Duration(&t.dur, true), "wait", "`duration` to wait")
	t.fs.Var(Bool(&t.on), "on", "switch it on")
	t.fs.Secret(&t.secret, "admin-token", "bearer `token`")
	return t
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"listen": "FIRSTRENDER_LISTEN", "max-db-size": "FIRSTRENDER_MAX_DB_SIZE", "lv-secret-key-base-file": "FIRSTRENDER_LV_SECRET_KEY_BASE_FILE"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParse_FlagWinsOverEnvWinsOverDefault(t *testing.T) {
	t.Parallel()
	f := newTestFlags()
	err := f.fs.Parse([]string{"--listen", "127.0.0.1:1", "-on"}, envFrom(map[string]string{
		"FIRSTRENDER_LISTEN": ":9", "FIRSTRENDER_MAX_SIZE": "1KiB",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if f.listen != "127.0.0.1:1" || f.size != 1024 || f.dur != 0 || !f.on {
		t.Errorf("got listen %q size %d wait %v on %v; want the flag, the variable, the default and true", f.listen, f.size, f.dur, f.on)
	}
	src := map[string]string{}
	for _, fl := range f.fs.Flags() {
		src[fl.Name] = fl.Source
	}
	if src["listen"] != "flag" || src["max-size"] != "env FIRSTRENDER_MAX_SIZE" || src["wait"] != "default" {
		t.Errorf("sources = %v", src)
	}
}

func TestParse_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"bad flag value", []string{"--max-size", "lots"}, nil, []string{"--max-size", `"lots"`}},
		{"bad variable names both", nil, map[string]string{"FIRSTRENDER_WAIT": "soon"}, []string{"FIRSTRENDER_WAIT", "--wait", `"soon"`}},
		{"unknown flag", []string{"-nope"}, nil, []string{"unknown flag --nope"}},
		{"missing value", []string{"--listen"}, nil, []string{"flag needs a value: --listen"}},
		{"secret twice on the command line", []string{"--admin-token", "x", "--admin-token-file", "/f"}, nil, []string{"--admin-token", "give one"}},
		{"secret twice in the environment", nil, map[string]string{"FIRSTRENDER_ADMIN_TOKEN": "x", "FIRSTRENDER_ADMIN_TOKEN_FILE": "/f"}, []string{"FIRSTRENDER_ADMIN_TOKEN", "FIRSTRENDER_ADMIN_TOKEN_FILE"}},
		{"empty secret variable", nil, map[string]string{"FIRSTRENDER_ADMIN_TOKEN": " "}, []string{"FIRSTRENDER_ADMIN_TOKEN", "empty"}},
		{"missing secret file", []string{"--admin-token-file", "/nonexistent/token"}, nil, []string{"--admin-token-file", "/nonexistent/token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := newTestFlags().fs.Parse(tt.args, envFrom(tt.env))
			if err == nil {
				t.Fatalf("Parse(%q, %v) = nil, want an error", tt.args, tt.env)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q, %v) = %q, want it to contain %q", tt.args, tt.env, err, w)
				}
			}
		})
	}
	err := newTestFlags().fs.Parse([]string{"--admin-token-file", "/nonexistent/token"}, envFrom(nil))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing secret file: %v does not wrap fs.ErrNotExist", err)
	}
}

func TestSecret_SourcesAndRedaction(t *testing.T) {
	t.Parallel()
	const tok = "s3cr3t-token-value"
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("\n"+tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		warn bool
	}{
		{"file flag", []string{"--admin-token-file", file}, nil, false},
		{"file variable", nil, map[string]string{"FIRSTRENDER_ADMIN_TOKEN_FILE": file}, false},
		{"variable", nil, map[string]string{"FIRSTRENDER_ADMIN_TOKEN": tok}, false},
		{"command line wins over the environment, with a warning", []string{"--admin-token", tok}, map[string]string{"FIRSTRENDER_ADMIN_TOKEN": "other"}, true},
		{"file flag wins over the variable", []string{"--admin-token-file", file}, map[string]string{"FIRSTRENDER_ADMIN_TOKEN": "other"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newTestFlags()
			if err := f.fs.Parse(tt.args, envFrom(tt.env)); err != nil {
				t.Fatal(err)
			}
			if f.secret != tok {
				t.Errorf("secret = %q, want %q", f.secret, tok)
			}
			if got := len(f.fs.Warnings()) == 1; got != tt.warn {
				t.Errorf("warnings %q, want one: %v", f.fs.Warnings(), tt.warn)
			}
			for _, w := range f.fs.Warnings() {
				if strings.Contains(w, tok) || !strings.Contains(w, "--admin-token-file") {
					t.Errorf("warning %q leaks the secret or names no alternative", w)
				}
			}
			var cfg, usage bytes.Buffer
			f.fs.WriteConfig(&cfg)
			f.fs.WriteUsage(&usage)
			if strings.Contains(cfg.String()+usage.String(), tok) {
				t.Errorf("printed config or usage shows the secret:\n%s\n%s", cfg.String(), usage.String())
			}
		})
	}
	f := newTestFlags()
	if err := f.fs.Parse([]string{"--admin-token-file", empty}, envFrom(nil)); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty secret file: %v, want an error saying it is empty", err)
	}
	f = newTestFlags()
	if err := f.fs.Parse(nil, envFrom(map[string]string{"FIRSTRENDER_ADMIN_TOKEN": tok})); err != nil {
		t.Fatal(err)
	}
	var cfg bytes.Buffer
	f.fs.WriteConfig(&cfg)
	if !strings.Contains(cfg.String(), `--admin-token="`+Redacted+`"`) {
		t.Errorf("WriteConfig does not show the set secret as %s:\n%s", Redacted, cfg.String())
	}
}

func TestParse_Help(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	fs := NewFlagSet("test", "usage: test [flags]", &out)
	var n int
	fs.Var(Int(&n, 0), "count", "how `many`")
	if err := fs.Parse([]string{"-h"}, envFrom(nil)); !errors.Is(err, ErrHelp) {
		t.Fatalf("Parse(-h) = %v, want ErrHelp", err)
	}
	for _, want := range []string{"usage: test [flags]", "--count many  [FIRSTRENDER_COUNT]", `(default "0")`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1024", 1024}, {"1KiB", 1024}, {"1 kib", 1024}, {"2MiB", 2 << 20},
		{"1GiB", 1 << 30}, {"1GB", 1e9}, {"3M", 3 << 20}, {"10B", 10}, {"0.5KiB", 512},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "B", "KiB", "1e30", "NaN", "-1", "1XB", "one"} {
		if got, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d, nil; want an error", bad, got)
		}
	}
}

// FuzzValues: every value type refuses or accepts arbitrary text without
// panicking, and what it accepted prints to text it reads back to the
// same value.
func FuzzValues(f *testing.F) {
	for _, s := range []string{"", "0", "-1", "1.5GiB", "14d", "90s", "1e400", "NaN", ":8080", "[::1]:0", "http://127.0.0.1:4000",
		"http://u@x", "true", "a,b,,a", "debug", "JSON", "9223372036854775807d", "0x10"} {
		for k := range 10 {
			f.Add(uint8(k), s)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, s string) {
		mk := []func() Value{
			func() Value { var v string; return NonEmpty(&v) },
			func() Value { var v bool; return Bool(&v) },
			func() Value { var v int; return Int(&v, -1) },
			func() Value { var v string; return Addr(&v, true) },
			func() Value { var u *url.URL; return URL(&u) },
			func() Value { var v int64; return Size(&v, true) },
			func() Value { var v time.Duration; return Duration(&v, true) },
			func() Value { var v string; return Enum(&v, "text", "json") },
			func() Value { var v []string; return List(&v, nil) },
			func() Value { var v string; return Token(&v) },
		}[int(kind)%10]
		v1 := mk()
		if v1.Set(s) != nil {
			return
		}
		printed := v1.String()
		v2 := mk()
		if err := v2.Set(printed); err != nil {
			t.Fatalf("%T accepted %q, but refuses its printed form %q: %v", v1, s, printed, err)
		}
		if v2.String() != printed {
			t.Fatalf("%T: %q prints %q, which prints %q", v1, s, printed, v2.String())
		}
	})
}

func TestUnknownEnv(t *testing.T) {
	t.Parallel()
	f := newTestFlags()
	got := f.fs.UnknownEnv([]string{
		"FIRSTRENDER_LISTEN=:1",           // a flag
		"FIRSTRENDER_ADMIN_TOKEN_FILE=/x", // a secret's file variant
		"FIRSTRENDER_LISTN=:2",            // typo
		"FIRSTRENDER_ADMIN_TOKN=hunter2",  // typo of a secret: the value is not shown
		"FIRSTRENDER_ZZZZZZZZZZ=1",        // nothing near
		"FIRSTRENDER_DEMO=1",              // known to the caller
		"HOME=/root",
	}, "FIRSTRENDER_DEMO")
	want := []string{
		"FIRSTRENDER_ADMIN_TOKN is set but no flag of test reads it: ignored (did you mean FIRSTRENDER_ADMIN_TOKEN, i.e. --admin-token?)",
		"FIRSTRENDER_LISTN is set but no flag of test reads it: ignored (did you mean FIRSTRENDER_LISTEN, i.e. --listen?)",
		"FIRSTRENDER_ZZZZZZZZZZ is set but no flag of test reads it: ignored",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("UnknownEnv =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(strings.Join(got, ""), "hunter2") {
		t.Error("a value was printed")
	}
}

func TestFormatVersion(t *testing.T) {
	t.Parallel()
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "m", Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-11-25T20:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	if got, want := formatVersion("fr", bi), "fr v1.2.3 (rev 0123456789ab, 2026-11-25T20:00:00Z, modified) go1.26.0"; got != want {
		t.Errorf("formatVersion = %q, want %q", got, want)
	}
}
