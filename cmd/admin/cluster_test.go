package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/firstrender/firstrender/httpcache/admin"
)

func TestWriteCluster(t *testing.T) {
	v := admin.ClusterView{Cluster: "shop", Node: "web-1", Nodes: []admin.ClusterNode{
		{ID: "web-1", Address: "10.0.0.1:8080", Version: "v1", UptimeS: 3700, Applied: 42, Last: 42, Connected: true, Serving: true,
			Entries: 1000, Bytes: 5 << 20, HitRatio: 0.925, Sockets: 3, LastApplyLatencyS: 0.0021, Self: true},
		{ID: "web-2", Address: "10.0.0.2:8080", Applied: 40, Last: 42, Lag: 2, Connected: true},
		{ID: "web-3\x1b[2J", Applied: 12, Blind: true},
		{ID: "web-4", Gone: true},
	}}
	var b bytes.Buffer
	if err := writeCluster(&b, v); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 6 || lines[0] != "cluster shop, answered by web-1" {
		t.Fatalf("output:\n%s", out)
	}
	head := lines[1]
	for _, col := range []string{"NODE", "ADDRESS", "APPLIED", "LAG", "STATE", "ENTRIES", "HIT RATIO", "SOCKETS", "APPLY LATENCY"} {
		if !strings.Contains(head, col) {
			t.Errorf("header %q lacks %q", head, col)
		}
	}
	// Aligned columns: STATE starts at the same offset on every line.
	at := strings.Index(head, "STATE")
	for i, want := range []string{"serving", "catching-up", "blind", "gone"} {
		if got := lines[2+i][at:]; !strings.HasPrefix(got, want) {
			t.Errorf("line %d state column = %q, want %q\n%s", i, got, want, out)
		}
	}
	if !strings.HasPrefix(lines[2], "web-1 *") || !strings.Contains(lines[2], "92.5%") || !strings.Contains(lines[2], "5.0MiB") || !strings.Contains(lines[2], "1h1m") {
		t.Errorf("self line = %q", lines[2])
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("a control character reached the terminal:\n%q", out)
	}
}
