package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfig_Cluster(t *testing.T) {
	t.Parallel()
	t.Run("off by default: no cluster configuration at all", func(t *testing.T) {
		_, c, err := parseConfig(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Clustered() || c.Cluster.ClusterName != "" || c.Cluster.MaxAge != 0 || c.Cluster.Version != "" {
			t.Fatalf("cluster config without a NATS flag = %+v, want zero", c.Cluster)
		}
	})
	t.Run("embedded NATS with defaults", func(t *testing.T) {
		_, c, err := parseConfig([]string{"--cluster-embedded-nats", "127.0.0.1:4222"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cl := c.Cluster
		if !c.Clustered() || cl.EmbeddedAddr != "127.0.0.1:4222" || cl.ClusterName != "firstrender" || cl.MaxAge != 30*24*time.Hour ||
			cl.MaxBytes != 1<<30 || cl.Replicas != 1 || cl.Blind != 5*time.Second || cl.PublishTimeout != 2*time.Second || cl.Version == "" || cl.NodeID != "" {
			t.Fatalf("cluster config = %+v", cl)
		}
	})
	t.Run("joining through the environment", func(t *testing.T) {
		_, c, err := parseConfig(nil, map[string]string{
			"FIRSTRENDER_CLUSTER_NATS": "nats://10.0.0.1:4222,nats://10.0.0.2:4222", "FIRSTRENDER_CLUSTER_NAME": "shop",
			"FIRSTRENDER_NODE_ID": "web-1", "FIRSTRENDER_CLUSTER_MAX_AGE": "7d", "FIRSTRENDER_CLUSTER_REPLICAS": "3",
			"FIRSTRENDER_CLUSTER_BLIND": "2s", "FIRSTRENDER_CLUSTER_PUBLISH_TIMEOUT": "500ms", "FIRSTRENDER_CLUSTER_MAX_BYTES": "64MiB",
		})
		if err != nil {
			t.Fatal(err)
		}
		cl := c.Cluster
		if cl.NATSURL != "nats://10.0.0.1:4222,nats://10.0.0.2:4222" || cl.ClusterName != "shop" || cl.NodeID != "web-1" || cl.MaxAge != 7*24*time.Hour ||
			cl.Replicas != 3 || cl.Blind != 2*time.Second || cl.PublishTimeout != 500*time.Millisecond || cl.MaxBytes != 64<<20 {
			t.Fatalf("cluster config = %+v", cl)
		}
	})
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"both NATS flags", []string{"--cluster-nats", "nats://127.0.0.1:4222", "--cluster-embedded-nats", "127.0.0.1:4223"}, []string{"--cluster-nats", "--cluster-embedded-nats", "not both"}},
		{"a cluster flag without NATS", []string{"--node-id", "web-1"}, []string{"--node-id", "needs --cluster-nats or --cluster-embedded-nats"}},
		{"stream limits without NATS", []string{"--cluster-max-age", "1d"}, []string{"--cluster-max-age", "needs"}},
		{"a NATS URL without scheme", []string{"--cluster-nats", "127.0.0.1:4222"}, []string{"--cluster-nats", "nats://host:port"}},
		{"an empty server in the list", []string{"--cluster-nats", "nats://a:4222,"}, []string{"--cluster-nats", "nats://host:port"}},
		{"two replicas", []string{"--cluster-nats", "nats://a:4222", "--cluster-replicas", "2"}, []string{"--cluster-replicas", "1, 3 or 5"}},
		{"embedded address without port", []string{"--cluster-embedded-nats", "localhost"}, []string{"--cluster-embedded-nats", "host:port"}},
		{"zero blind bound", []string{"--cluster-nats", "nats://a:4222", "--cluster-blind", "0"}, []string{"--cluster-blind"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseConfig(tt.args, nil)
			if err == nil {
				t.Fatalf("parse %q: no error", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("parse %q: error %q lacks %q", tt.args, err, w)
				}
			}
		})
	}
}
