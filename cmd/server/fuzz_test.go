package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/firstrender/firstrender/cmd/internal/cli"
)

// FuzzFlagValue feeds arbitrary text to every flag. Properties: no panic;
// an accepted value prints (as --help and --print-config show it) to text
// that parses back to the same configuration.
func FuzzFlagValue(f *testing.F) {
	var scratch flags
	defs := newFlagSet(&scratch, nil).Flags()
	seeds := []string{"", ":8080", "127.0.0.1:0", "http://127.0.0.1:4000", "ftp://x", "64MiB", "1.5GB", "-1",
		"14d", "90s", "0", "refuse", "strip", "JSON", "debug", "utm_*,fbclid", "*", "Example.COM,[::1]",
		"//*.example.com,https://example.com:8443", "null", "true", "false", "/live/websocket", "1e400", "NaN"}
	for i := range defs {
		for _, s := range seeds {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		d := defs[int(which)%len(defs)]
		if strings.HasSuffix(d.Name, "-file") {
			return // a secret's file: reads a file
		}
		f1, fs1, err := parseFlags([]string{"--" + d.Name + "=" + value}, envFrom(nil), nil)
		if err != nil {
			return
		}
		var printed string
		for _, fl := range fs1.Flags() {
			if fl.Name == d.Name {
				printed = fl.Value
			}
		}
		if printed == cli.Redacted {
			return // a secret: never printed
		}
		f2, _, err := parseFlags([]string{"--" + d.Name + "=" + printed}, envFrom(nil), nil)
		if err != nil {
			t.Fatalf("--%s=%q accepted, but its printed form %q is refused: %v", d.Name, value, printed, err)
		}
		if !reflect.DeepEqual(f1, f2) {
			t.Fatalf("--%s=%q and its printed form %q give different flags:\n%+v\n%+v", d.Name, value, printed, f1, f2)
		}
	})
}
