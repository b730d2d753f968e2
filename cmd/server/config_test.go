package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/liveview"
	"github.com/firstrender/firstrender/httpcache/server"
	"github.com/firstrender/firstrender/store"
)

func envFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// envList is m as os.Environ would list it.
func envList(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// parseConfig is what realMain does before running: flags, then Config.
func parseConfig(args []string, env map[string]string) (flags, server.Config, error) {
	f, _, err := parseFlags(args, envFrom(env), nil)
	if err != nil {
		return f, server.Config{}, err
	}
	cfg, err := f.config()
	return f, cfg, err
}

func TestParseConfig_Defaults(t *testing.T) {
	t.Parallel()
	f, cfg, err := parseConfig(nil, nil)
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
		{"admin on", cfg.NoAdmin, false},
		{"max object size", cfg.Cache.MaxObjectSize, int64(16 << 20)},
		{"store max object size", cfg.Store.MaxObjectSize, int64(16 << 20)},
		{"max db size", cfg.Store.MaxSize, int64(1 << 30)},
		{"ignored params", cfg.Cache.IgnoreParams, []string{"utm_*", "fbclid", "gclid"}},
		{"hosts: the server's default", cfg.Cache.Hosts == nil, true},
		{"set-cookie refused", cfg.Cache.StripSetCookie == nil, true},
		{"csrf refused", cfg.LiveView.Policy[liveview.KindCSRFMeta], liveview.Refuse},
		{"lv max age 14d", cfg.LiveView.LiveViewMaxAge, 14 * 24 * time.Hour},
		{"lv margin 5m", cfg.LiveView.Margin, 5 * time.Minute},
		{"no-origin refused", cfg.Origins.AllowMissing, false},
		{"check origin true", cfg.Origins.Allowed == nil && !cfg.Origins.CheckOff, true},
		{"socket paths", cfg.Sockets.Paths, []string{"/live/websocket"}},
		{"idle timeout", cfg.Sockets.IdleTimeout, 5 * time.Minute},
		{"max sockets", cfg.Sockets.MaxSockets, 10000},
		{"read limit", cfg.Sockets.ReadLimit, int64(1 << 20)},
		{"log level", f.logLevel, slog.LevelInfo},
		{"uncached hosts refused", cfg.Cache.OtherHosts, httpcache.RefuseHost},
		{"via names the cache", cfg.Cache.Via, httpcache.CacheName},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseConfig_Values(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(f flags, c server.Config) (got, want any)
	}{
		{"flag sets listen", []string{"--listen", "127.0.0.1:0"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Listen, "127.0.0.1:0" }},
		{"env sets listen", nil, map[string]string{"FIRSTRENDER_LISTEN": ":9999"},
			func(f flags, c server.Config) (any, any) { return c.Listen, ":9999" }},
		{"flag wins over env", []string{"-listen=:7000"}, map[string]string{"FIRSTRENDER_LISTEN": ":9999"},
			func(f flags, c server.Config) (any, any) { return c.Listen, ":7000" }},
		{"upstream parsed", []string{"--upstream", "http://127.0.0.1:4000"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Upstream.String(), "http://127.0.0.1:4000" }},
		{"size with unit", []string{"--max-db-size", "512MiB"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Store.MaxSize, int64(512 << 20) }},
		{"decimal size", []string{"--max-object-size", "1.5MB"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Cache.MaxObjectSize, int64(1500000) }},
		{"zero db size is unbounded", []string{"--max-db-size", "0"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Store.MaxSize, int64(0) }},
		{"hosts are lowercased and deduplicated", []string{"--hosts", "Example.COM, example.com,[::1],::1"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Cache.Hosts, []string{"example.com", "[::1]"} }},
		{"empty hosts is the default", []string{"--hosts="}, nil,
			func(f flags, c server.Config) (any, any) { return c.Cache.Hosts == nil, true }},
		{"empty ignore list ignores none", []string{"--ignore-params="}, nil,
			func(f flags, c server.Config) (any, any) {
				return c.Cache.IgnoreParams != nil && len(c.Cache.IgnoreParams) == 0, true
			}},
		{"via pseudonym", []string{"--via", "edge-1"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Cache.Via, "edge-1" }},
		{"no via", nil, map[string]string{"FIRSTRENDER_VIA": "-"},
			func(f flags, c server.Config) (any, any) { return c.Cache.Via, "-" }},
		{"days in durations", []string{"--lv-max-age", "7d"}, nil,
			func(f flags, c server.Config) (any, any) { return c.LiveView.LiveViewMaxAge, 7 * 24 * time.Hour }},
		{"zero margin is none", []string{"--lv-margin", "0"}, nil,
			func(f flags, c server.Config) (any, any) { return c.LiveView.Margin < 0, true }},
		{"zero idle timeout is never", []string{"--socket-idle-timeout", "0"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Sockets.IdleTimeout < 0, true }},
		{"stale defaults", []string{"--stale-while-revalidate", "30s", "--stale-if-error", "1h"}, nil,
			func(f flags, c server.Config) (any, any) {
				return c.Cache.StaleIfError + c.Cache.StaleWhileRevalidate, time.Hour + 30*time.Second
			}},
		{"json logs at debug from env", nil, map[string]string{"FIRSTRENDER_LOG_FORMAT": "JSON", "FIRSTRENDER_LOG_LEVEL": "debug"},
			func(f flags, c server.Config) (any, any) {
				return f.logFormat + "/" + f.logLevel.String(), "json/DEBUG"
			}},
		{"bool env", nil, map[string]string{"FIRSTRENDER_ALLOW_NO_ORIGIN": "true"},
			func(f flags, c server.Config) (any, any) { return c.Origins.AllowMissing, true }},
		{"origins in Phoenix forms", []string{"--check-origin", "//example.com,https://*.example.com,https://example.com:8443"}, nil,
			func(f flags, c server.Config) (any, any) { return len(c.Origins.Allowed), 3 }},
		{"check-origin false with the opt-in", []string{"--check-origin", "false", "--allow-any-origin"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Origins.CheckOff, true }},
		{"admin listener can be disabled", []string{"--admin-listen="}, nil,
			func(f flags, c server.Config) (any, any) { return c.NoAdmin, true }},
		{"uncached hosts refused", []string{"--uncached-hosts", "refuse"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Cache.OtherHosts, httpcache.RefuseHost }},
		{"set-cookie strip everywhere", []string{"--set-cookie", "strip", "--strip-set-cookie", "/a"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Cache.StripSetCookie, []string{"/"} }},
		{"strip-set-cookie prefixes", []string{"--strip-set-cookie", "/a,/b"}, nil,
			func(f flags, c server.Config) (any, any) { return c.Cache.StripSetCookie, []string{"/a", "/b"} }},
		{"trust forwarded", []string{"--trust-forwarded"}, nil,
			func(f flags, c server.Config) (any, any) { return c.TrustForwarded, true }},
		{"secret and salt together build a signer", []string{"--lv-secret-key-base", "s3cret", "--lv-signing-salt", "salt"}, nil,
			func(f flags, c server.Config) (any, any) { return c.LiveView.Signer != nil, true }},
		{"secret from the environment", []string{"--lv-signing-salt", "salt"}, map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": "s3cret"},
			func(f flags, c server.Config) (any, any) { return f.lvSecret, "s3cret" }},
		{"session splice from the environment", []string{"--lv-session-cookie", "_my_app_key"},
			map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": spliceSKB, "FIRSTRENDER_LV_SESSION_SIGNING_SALT": "ss"},
			func(f flags, c server.Config) (any, any) {
				return [3]any{c.LiveView.Splice != nil && c.LiveView.Splice.CookieName() == "_my_app_key", c.Cache.SplicePaths == nil, c.LiveView.Signer == nil}, [3]any{true, true, true}
			}},
		{"session splice encrypted, on paths", []string{"--lv-session-cookie", "_k", "--lv-splice-paths", "/shop,/blog"},
			map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": spliceSKB, "FIRSTRENDER_LV_SESSION_SIGNING_SALT": "ss", "FIRSTRENDER_LV_SESSION_ENCRYPTION_SALT": "es"},
			func(f flags, c server.Config) (any, any) {
				return [2]any{c.LiveView.Splice.Encrypted(), c.Cache.SplicePaths}, [2]any{true, []string{"/shop", "/blog"}}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, cfg, err := parseConfig(tt.args, tt.env)
			if err != nil {
				t.Fatalf("parseConfig(%q, env %v) error: %v", tt.args, tt.env, err)
			}
			got, want := tt.check(f, cfg)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseConfig(%q, env %v): got %v, want %v", tt.args, tt.env, got, want)
			}
		})
	}
}

// TestParseConfig_LiveViewPolicy: the --lv-* policy flags become the lint's
// policy.
func TestParseConfig_LiveViewPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		kind liveview.Kind
		want liveview.Action
	}{
		{nil, liveview.KindCSRFMeta, liveview.Refuse},
		{nil, liveview.KindSetCookie, liveview.Refuse},
		{nil, liveview.KindUserSession, liveview.Refuse},
		{[]string{"--lv-csrf", "strip"}, liveview.KindCSRFMeta, liveview.Strip},
		{[]string{"--lv-set-cookie", "allow"}, liveview.KindSetCookie, liveview.Allow},
		{[]string{"--lv-session", "allow"}, liveview.KindUserSession, liveview.Allow},
	}
	for _, tt := range tests {
		_, cfg, err := parseConfig(tt.args, nil)
		if err != nil {
			t.Fatal(err)
		}
		l, err := liveview.New(cfg.LiveView)
		if err != nil {
			t.Fatalf("liveview.New(config of %q): %v", tt.args, err)
		}
		if got := l.Policy(tt.kind); got != tt.want {
			t.Errorf("config of %q: Policy(%s) = %v, want %v", tt.args, tt.kind, got, tt.want)
		}
	}
}

func TestParseConfig_Errors(t *testing.T) {
	t.Parallel()
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
		{"host with scheme", []string{"--hosts", "https://example.com"}, nil, []string{"--hosts", "no scheme"}},
		{"host with port", []string{"--hosts", "example.com:80"}, nil, []string{"--hosts", "no port"}},
		{"host with a bad character", []string{"--hosts", "exa mple.com"}, nil, []string{"--hosts", "invalid byte"}},
		{"lone star param", []string{"--ignore-params", "*"}, nil, []string{"--ignore-params", "every parameter"}},
		{"star inside a param", []string{"--ignore-params", "ut*m"}, nil, []string{"--ignore-params", "only allowed at the end"}},
		{"via not a token", []string{"--via", "cache.example.com:8080"}, nil, []string{"--via", "not a token", "':'"}},
		{"empty via", []string{"--via", ""}, nil, []string{"--via", "must not be empty"}},
		{"path without slash", []string{"--socket-paths", "live/websocket"}, nil, []string{"--socket-paths", "starting with /"}},
		{"no socket paths", []string{"--socket-paths", ""}, nil, []string{"--socket-paths", "at least one"}},
		{"null origin", []string{"--check-origin", "null"}, nil, []string{"--check-origin", `"null"`}},
		{"origin with path", []string{"--check-origin", "https://example.com/app"}, nil, []string{"--check-origin", "example.com/app"}},
		{"origin without scheme or //", []string{"--check-origin", "example.com"}, nil, []string{"--check-origin", "//"}},
		{"true mixed with origins", []string{"--check-origin", "true,//example.com"}, nil, []string{"--check-origin", "cannot be mixed"}},
		{"false without the opt-in", []string{"--check-origin", "false"}, nil, []string{"--check-origin", "allow-any-origin"}},
		{"max sockets zero", []string{"--max-sockets", "0"}, nil, []string{"--max-sockets", "at least 1"}},
		{"max sockets not a number", []string{"--max-sockets", "many"}, nil, []string{"--max-sockets", "whole number"}},
		{"bad bool", []string{"--allow-no-origin=perhaps"}, nil, []string{"allow-no-origin"}},
		{"secret without salt", []string{"--lv-secret-key-base", "s"}, nil, []string{"--lv-signing-salt"}},
		{"salt without secret", []string{"--lv-signing-salt", "s"}, nil, []string{"--lv-signing-salt", "--lv-secret-key-base"}},
		{"session cookie without salt", []string{"--lv-session-cookie", "_k"}, map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": spliceSKB},
			[]string{"--lv-session-signing-salt"}},
		{"session salt without cookie or secret", nil, map[string]string{"FIRSTRENDER_LV_SESSION_SIGNING_SALT": "ss"},
			[]string{"--lv-secret-key-base", "--lv-session-cookie"}},
		{"splice paths alone", []string{"--lv-splice-paths", "/shop"}, nil, []string{"--lv-session-cookie", "--lv-session-signing-salt", "--lv-secret-key-base"}},
		{"splice path without slash", []string{"--lv-splice-paths", "shop"}, nil, []string{"--lv-splice-paths", "starting with /"}},
		{"short secret for the session", []string{"--lv-session-cookie", "_k"}, map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": "short-s3cret", "FIRSTRENDER_LV_SESSION_SIGNING_SALT": "ss"},
			[]string{"--lv-secret-key-base", "at least 64"}},
		{"bad session cookie name", []string{"--lv-session-cookie", "a b"}, map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": spliceSKB, "FIRSTRENDER_LV_SESSION_SIGNING_SALT": "ss"},
			[]string{"session cookie name"}},
		{"secret twice", []string{"--lv-secret-key-base", "s", "--lv-secret-key-base-file", "/x", "--lv-signing-salt", "x"}, nil, []string{"--lv-secret-key-base", "give one"}},
		{"missing secret file", []string{"--lv-secret-key-base-file", "/nonexistent/skb", "--lv-signing-salt", "x"}, nil, []string{"--lv-secret-key-base-file", "/nonexistent/skb"}},
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
			t.Parallel()
			_, _, err := parseConfig(tt.args, tt.env)
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
	t.Parallel()
	var buf bytes.Buffer
	_, fs, err := parseFlags([]string{"--help"}, envFrom(nil), &buf)
	if !errors.Is(err, errHelp) {
		t.Fatalf("parseFlags(--help) error = %v, want errHelp", err)
	}
	help := buf.String()
	for _, fl := range fs.Flags() {
		if !strings.Contains(help, "["+fl.Env+"]") {
			t.Errorf("--help does not mention %s", fl.Env)
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
		"--lv-secret-key-base-file file  [FIRSTRENDER_LV_SECRET_KEY_BASE_FILE]",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("--help output lacks %q:\n%s", want, help)
		}
	}
}

// TestRealMain_SecretPolicy: the secret works from a file, the environment
// or (with a warning) the command line, and is never printed.
func TestRealMain_SecretPolicy(t *testing.T) {
	t.Parallel()
	const secret = "cmd-server-test-secret-key-base-0123456789abcdef0123456789abcdef"
	file := filepath.Join(t.TempDir(), "skb")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		warn bool
		src  string
	}{
		{"file", []string{"--lv-secret-key-base-file", file}, nil, false, "file " + file},
		{"file from the environment", nil, map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE_FILE": file}, false, "env FIRSTRENDER_LV_SECRET_KEY_BASE_FILE"},
		{"environment", nil, map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": secret}, false, "env FIRSTRENDER_LV_SECRET_KEY_BASE"},
		{"command line", []string{"--lv-secret-key-base", secret}, nil, true, "flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--lv-signing-salt", "salt", "--print-config"}, tt.args...)
			f, fs, err := parseFlags(args, envFrom(tt.env), nil)
			if err != nil {
				t.Fatal(err)
			}
			if f.lvSecret != secret {
				t.Errorf("secret = %q, want the one given", f.lvSecret)
			}
			if got := len(fs.Warnings()) > 0; got != tt.warn {
				t.Errorf("warnings %q, want a warning: %v", fs.Warnings(), tt.warn)
			}
			var out, errOut bytes.Buffer
			if code := realMain(args, envList(tt.env), &out, &errOut); code != 0 {
				t.Fatalf("--print-config exit %d: %s", code, errOut.String())
			}
			if strings.Contains(out.String()+errOut.String(), secret) {
				t.Errorf("--print-config prints the secret:\n%s", out.String())
			}
			if !strings.Contains(out.String(), `--lv-signing-salt="salt"`) || !strings.Contains(out.String(), "# "+tt.src) {
				t.Errorf("--print-config lacks the salt or the secret's source %q:\n%s", tt.src, out.String())
			}
			if tt.src == "flag" || strings.HasPrefix(tt.src, "env FIRSTRENDER_LV_SECRET_KEY_BASE") && !strings.HasSuffix(tt.src, "_FILE") {
				if !strings.Contains(out.String(), `--lv-secret-key-base="`+cli.Redacted+`"`) {
					t.Errorf("--print-config does not show the secret as %s:\n%s", cli.Redacted, out.String())
				}
			}
		})
	}
}

// TestRun_ErrorsNameTheFlag: what server.New attributes to a field is
// reported with the flag's name.
func TestRun_ErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	held := filepath.Join(t.TempDir(), "held.db")
	holder, err := store.Open(held, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"address in use", []string{"--listen", taken.Addr().String(), "--admin-listen="}, []string{"--listen " + taken.Addr().String() + ": ", "address already in use"}},
		{"locked database", []string{"--listen", "127.0.0.1:0", "--admin-listen=", "--db", held, "--db-lock-wait", "100ms"}, []string{"--db " + held + ": ", "locked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cfg, err := parseConfig(append([]string{"--upstream", "http://127.0.0.1:1"}, tt.args...), nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Logger = slog.New(slog.DiscardHandler)
			err = run(context.Background(), cfg)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("run: got %v, want an error containing %q", err, w)
				}
			}
			var opErr *net.OpError
			if tt.name == "address in use" && !errors.As(err, &opErr) {
				t.Errorf("run error %v does not wrap the *net.OpError", err)
			}
		})
	}
}

// TestREADMEListsEveryFlag keeps the README's flags table in step with the
// flags and their defaults.
func TestREADMEListsEveryFlag(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("reading README.md: %v", err)
	}
	readme := string(b)
	var f flags
	for _, fl := range newFlagSet(&f, nil).Flags() {
		row := "| `--" + fl.Name + "` | `" + fl.Env + "` | "
		if fl.Value != "" {
			row += "`" + fl.Value + "` |"
		} else {
			row += "— |"
		}
		if !strings.Contains(readme, row) {
			t.Errorf("README.md flags table lacks the row starting %q", row)
		}
	}
}

// spliceSKB is a secret_key_base long enough for Plug.Session (64 bytes).
const spliceSKB = "splice-flag-test-secret-key-base-0123456789abcdef0123456789abcdef"

// TestSpliceSecretsNeverPrinted: the salts and the secret of the session
// splice are redacted by --print-config and absent from errors.
func TestSpliceSecretsNeverPrinted(t *testing.T) {
	env := map[string]string{"FIRSTRENDER_LV_SECRET_KEY_BASE": spliceSKB, "FIRSTRENDER_LV_SESSION_SIGNING_SALT": "sign-salt-XYZ", "FIRSTRENDER_LV_SESSION_ENCRYPTION_SALT": "enc-salt-XYZ"}
	var out strings.Builder
	_, fs, err := parseFlags([]string{"--lv-session-cookie", "_k"}, envFrom(env), &out)
	if err != nil {
		t.Fatal(err)
	}
	fs.WriteConfig(&out)
	for _, secret := range []string{spliceSKB, "sign-salt-XYZ", "enc-salt-XYZ"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("--print-config shows a secret:\n%s", out.String())
		}
	}
	for _, name := range []string{"lv-session-signing-salt", "lv-session-encryption-salt"} {
		if !strings.Contains(out.String(), "--"+name+`="`+cli.Redacted+`"`) {
			t.Errorf("--print-config does not redact --%s:\n%s", name, out.String())
		}
	}
	env["FIRSTRENDER_LV_SECRET_KEY_BASE"] = "short-but-secret-value"
	_, _, err = parseConfig([]string{"--lv-session-cookie", "_k"}, env)
	if err == nil || strings.Contains(err.Error(), "short-but-secret-value") || strings.Contains(err.Error(), "sign-salt-XYZ") {
		t.Errorf("error %v: want one, without the secrets", err)
	}
}
