package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfig_Defaults(t *testing.T) {
	cfg, err := parseConfig(nil, envFrom(nil), nil)
	if err != nil {
		t.Fatalf("parseConfig(nil) error: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, ":8080"},
		{"upstream is the demo", cfg.Upstream == nil, true},
		{"db", cfg.DB, "firstrender.db"},
		{"admin on loopback", cfg.AdminListen, "127.0.0.1:9090"},
		{"max object size", cfg.MaxObjectSize, int64(16 << 20)},
		{"max db size", cfg.MaxDBSize, int64(1 << 30)},
		{"ignored params", cfg.IgnoreParams, []string{"utm_*", "fbclid", "gclid"}},
		{"set-cookie refused", cfg.SetCookie, "refuse"},
		{"csrf refused", cfg.LVCSRF, "refuse"},
		{"lv max age 14d", cfg.LVMaxAge, 14 * 24 * time.Hour},
		{"no-origin refused", cfg.AllowNoOrigin, false},
		{"check origin", cfg.CheckOrigin, []string{"true"}},
		{"socket paths", cfg.SocketPaths, []string{"/live/websocket"}},
		{"log level", cfg.LogLevel, slog.LevelInfo},
		{"uncached hosts pass", cfg.UncachedHosts, "pass"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseConfig_Values(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(c config) (got, want any)
	}{
		{"flag sets listen", []string{"--listen", "127.0.0.1:0"}, nil,
			func(c config) (any, any) { return c.Listen, "127.0.0.1:0" }},
		{"env sets listen", nil, map[string]string{"FIRSTRENDER_LISTEN": ":9999"},
			func(c config) (any, any) { return c.Listen, ":9999" }},
		{"flag wins over env", []string{"-listen=:7000"}, map[string]string{"FIRSTRENDER_LISTEN": ":9999"},
			func(c config) (any, any) { return c.Listen, ":7000" }},
		{"upstream parsed", []string{"--upstream", "http://127.0.0.1:4000"}, nil,
			func(c config) (any, any) { return c.Upstream.String(), "http://127.0.0.1:4000" }},
		{"size with unit", []string{"--max-db-size", "512MiB"}, nil,
			func(c config) (any, any) { return c.MaxDBSize, int64(512 << 20) }},
		{"decimal size", []string{"--max-object-size", "1.5MB"}, nil,
			func(c config) (any, any) { return c.MaxObjectSize, int64(1500000) }},
		{"zero db size is unbounded", []string{"--max-db-size", "0"}, nil,
			func(c config) (any, any) { return c.MaxDBSize, int64(0) }},
		{"hosts are lowercased and deduplicated", []string{"--hosts", "Example.COM, example.com,[::1]"}, nil,
			func(c config) (any, any) { return c.Hosts, []string{"example.com", "::1"} }},
		{"empty ignore list ignores none", []string{"--ignore-params="}, nil,
			func(c config) (any, any) { return len(c.IgnoreParams), 0 }},
		{"days in durations", []string{"--lv-max-age", "7d"}, nil,
			func(c config) (any, any) { return c.LVMaxAge, 7 * 24 * time.Hour }},
		{"stale defaults", []string{"--stale-while-revalidate", "30s", "--stale-if-error", "1h"}, nil,
			func(c config) (any, any) { return c.StaleIfError + c.StaleWhileRevalidate, time.Hour + 30*time.Second }},
		{"json logs at debug from env", nil, map[string]string{"FIRSTRENDER_LOG_FORMAT": "JSON", "FIRSTRENDER_LOG_LEVEL": "debug"},
			func(c config) (any, any) { return c.LogFormat + "/" + c.LogLevel.String(), "json/DEBUG" }},
		{"bool env", nil, map[string]string{"FIRSTRENDER_ALLOW_NO_ORIGIN": "true"},
			func(c config) (any, any) { return c.AllowNoOrigin, true }},
		{"origins in Phoenix forms", []string{"--check-origin", "//example.com,https://*.example.com,https://example.com:8443"}, nil,
			func(c config) (any, any) { return len(c.CheckOrigin), 3 }},
		{"admin listener can be disabled", []string{"--admin-listen="}, nil,
			func(c config) (any, any) { return c.AdminListen, "" }},
		{"secret and salt together", []string{"--lv-secret-key-base", "s3cret", "--lv-signing-salt", "salt"}, nil,
			func(c config) (any, any) { return c.LVSecretKey, "s3cret" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, envFrom(tt.env), nil)
			if err != nil {
				t.Fatalf("parseConfig(%q, env %v) error: %v", tt.args, tt.env, err)
			}
			got, want := tt.check(cfg)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseConfig(%q, env %v): got %v, want %v", tt.args, tt.env, got, want)
			}
		})
	}
}

func TestParseConfig_Errors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // all must appear in the error
	}{
		{"listen without port", []string{"--listen", "localhost"}, nil, []string{"--listen", "host:port"}},
		{"listen port out of range", []string{"--listen", ":70000"}, nil, []string{"--listen", "65535"}},
		{"empty listen", []string{"--listen", ""}, nil, []string{"--listen", "must not be empty"}},
		{"upstream bad scheme", []string{"--upstream", "ftp://example.com"}, nil, []string{"--upstream", "http or https"}},
		{"upstream without host", []string{"--upstream", "http://"}, nil, []string{"--upstream", "missing host"}},
		{"upstream with credentials", []string{"--upstream", "http://u:p@example.com"}, nil, []string{"--upstream", "user:password"}},
		{"upstream relative", []string{"--upstream", "example.com:4000"}, nil, []string{"--upstream", "scheme"}},
		{"size not a number", []string{"--max-db-size", "lots"}, nil, []string{"--max-db-size", `"lots"`}},
		{"negative size", []string{"--max-object-size", "-1"}, nil, []string{"--max-object-size", "negative"}},
		{"zero object size", []string{"--max-object-size", "0"}, nil, []string{"--max-object-size", "more than 0"}},
		{"object bigger than db", []string{"--max-db-size", "1MiB", "--max-object-size", "2MiB"}, nil, []string{"--max-object-size", "--max-db-size"}},
		{"buffer below object size", []string{"--max-object-size", "512MiB", "--max-db-size", "0"}, nil, []string{"--max-buffered", "--max-object-size"}},
		{"bad duration", []string{"--stale-if-error", "soon"}, nil, []string{"--stale-if-error", "90s"}},
		{"negative duration", []string{"--lv-margin", "-5m"}, nil, []string{"--lv-margin", "negative"}},
		{"zero shutdown timeout", []string{"--shutdown-timeout", "0"}, nil, []string{"--shutdown-timeout", "more than 0"}},
		{"unknown log format", []string{"--log-format", "xml"}, nil, []string{"--log-format", "text, json", `"xml"`}},
		{"unknown log level", []string{"--log-level", "loud"}, nil, []string{"--log-level", "debug, info"}},
		{"bad policy", []string{"--lv-csrf", "maybe"}, nil, []string{"--lv-csrf", "refuse, strip, allow"}},
		{"strip is not a session policy", []string{"--lv-session", "strip"}, nil, []string{"--lv-session", "refuse, allow"}},
		{"host with scheme", []string{"--hosts", "https://example.com"}, nil, []string{"--hosts", "bare host"}},
		{"host with port", []string{"--hosts", "example.com:80"}, nil, []string{"--hosts", "no port"}},
		{"lone star param", []string{"--ignore-params", "*"}, nil, []string{"--ignore-params", "every parameter"}},
		{"path without slash", []string{"--socket-paths", "live/websocket"}, nil, []string{"--socket-paths", "starting with /"}},
		{"no socket paths", []string{"--socket-paths", ""}, nil, []string{"--socket-paths", "at least one"}},
		{"null origin", []string{"--check-origin", "null"}, nil, []string{"--check-origin", `"null"`}},
		{"origin with path", []string{"--check-origin", "https://example.com/app"}, nil, []string{"--check-origin", "no path"}},
		{"origin without scheme or //", []string{"--check-origin", "example.com"}, nil, []string{"--check-origin", "//host"}},
		{"true mixed with origins", []string{"--check-origin", "true,//example.com"}, nil, []string{"--check-origin", "cannot be combined"}},
		{"max sockets zero", []string{"--max-sockets", "0"}, nil, []string{"--max-sockets", "at least 1"}},
		{"max sockets not a number", []string{"--max-sockets", "many"}, nil, []string{"--max-sockets", "whole number"}},
		{"bad bool", []string{"--allow-no-origin=perhaps"}, nil, []string{"allow-no-origin"}},
		{"secret without salt", []string{"--lv-secret-key-base", "s"}, nil, []string{"--lv-signing-salt"}},
		{"admin on the public address", []string{"--listen", ":8080", "--admin-listen", ":8080"}, nil, []string{"--admin-listen", "public listener"}},
		{"proxy to itself", []string{"--upstream", "http://example.com", "--public-url", "http://EXAMPLE.com:80"}, nil, []string{"--upstream", "--public-url", "itself"}},
		{"unknown flag", []string{"--cache-everything"}, nil, []string{"unknown flag --cache-everything"}},
		{"positional argument", []string{"serve"}, nil, []string{`"serve"`, "--help"}},
		{"bad env names variable and flag", nil, map[string]string{"FIRSTRENDER_MAX_DB_SIZE": "huge"},
			[]string{"FIRSTRENDER_MAX_DB_SIZE", "--max-db-size", `"huge"`}},
		{"bad env upstream", nil, map[string]string{"FIRSTRENDER_UPSTREAM": "localhost:4000"},
			[]string{"FIRSTRENDER_UPSTREAM", "--upstream"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, envFrom(tt.env), nil)
			if err == nil {
				t.Fatalf("parseConfig(%q, env %v): got nil error, want one mentioning %q", tt.args, tt.env, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("parseConfig(%q, env %v) error %q: want it to contain %q", tt.args, tt.env, err, w)
				}
			}
		})
	}
}

func TestParseConfig_Help(t *testing.T) {
	var buf bytes.Buffer
	_, err := parseConfig([]string{"--help"}, envFrom(nil), &buf)
	if !errors.Is(err, errHelp) {
		t.Fatalf("parseConfig(--help) error = %v, want errHelp", err)
	}
	help := buf.String()
	for _, env := range envNames() {
		if !strings.Contains(help, "["+env+"]") {
			t.Errorf("--help does not mention %s", env)
		}
	}
	for _, want := range []string{
		`--listen address  [FIRSTRENDER_LISTEN]`,
		`(default ":8080")`,
		`(default "127.0.0.1:9090")`,
		`(default "firstrender.db")`,
		`(default "utm_*,fbclid,gclid")`,
		`(default "16MiB")`,
		`(default "14d")`,
		"--allow-no-origin  [FIRSTRENDER_ALLOW_NO_ORIGIN]",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("--help output lacks %q:\n%s", want, help)
		}
	}
}

func TestParseSize(t *testing.T) {
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

func TestCacheOutcome(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "none"},
		{"firstrender; hit; ttl=42", "hit"},
		{"firstrender; fwd=miss; stored", "miss"},
		{`firstrender; fwd=uri-miss; detail="set-cookie"`, "uri-miss"},
		{"firstrender; fwd=stale; fwd-status=304", "stale"},
		{"origin-cdn; hit, firstrender; fwd=miss", "miss"},
		{"firstrender; detail=host-not-cached", "pass"},
	}
	for _, tt := range tests {
		if got := cacheOutcome(tt.in); got != tt.want {
			t.Errorf("cacheOutcome(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestREADMEListsEveryFlag keeps the README's flags table in step with the
// flags and their defaults.
func TestREADMEListsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("reading README.md: %v", err)
	}
	readme := string(b)
	var cfg config
	_, defs := newFlagSet(&cfg)
	for _, d := range defs {
		row := "| `--" + d.name + "` | `" + envName(d.name) + "` | "
		if def := d.value.String(); def != "" {
			row += "`" + def + "` |"
		} else {
			row += "— |"
		}
		if !strings.Contains(readme, row) {
			t.Errorf("README.md flags table lacks the row starting %q", row)
		}
	}
}
