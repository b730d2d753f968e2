package main

import (
	"reflect"
	"testing"
)

// FuzzFlagValue feeds arbitrary text to every flag. Properties: no panic;
// an accepted value prints (as --help shows defaults) to text that parses
// back to the same config.
func FuzzFlagValue(f *testing.F) {
	var cfg config
	_, defs := newFlagSet(&cfg)
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
		c1, err := parseConfig([]string{"--" + d.name + "=" + value}, envFrom(nil), nil)
		if err != nil {
			return
		}
		printed := valueOf(c1, d.name)
		c2, err := parseConfig([]string{"--" + d.name + "=" + printed}, envFrom(nil), nil)
		if err != nil {
			t.Fatalf("--%s=%q accepted, but its printed form %q is refused: %v", d.name, value, printed, err)
		}
		if !reflect.DeepEqual(c1, c2) {
			t.Fatalf("--%s=%q and its printed form %q give different configs:\n%+v\n%+v", d.name, value, printed, c1, c2)
		}
	})
}

// valueOf prints flag name's value in cfg the way --help does.
func valueOf(cfg config, name string) string {
	// newFlagSet resets its target to the defaults, so bind the flags to
	// scratch first and copy cfg in afterwards.
	var scratch config
	_, defs := newFlagSet(&scratch)
	scratch = cfg
	for _, d := range defs {
		if d.name == name {
			return d.value.String()
		}
	}
	return ""
}
