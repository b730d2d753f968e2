package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache/admin"
)

type clusterCmd struct {
	conn connFlags
	json bool
}

const clusterUsage = `usage: admin cluster [flags]

Prints the cluster view of the node it talks to: every node it has heard
from, with its address, version, uptime, applied stream sequence and lag,
whether it is connected to NATS, blind (cut off longer than the bound) or
serving hits, its entries, bytes, hit ratio, open sockets and last apply
latency; nodes that stopped answering are shown as gone. It needs a running
server started with --cluster-nats or --cluster-embedded-nats.`

func parseCluster(args []string, e env) (runner, error) {
	c := &clusterCmd{conn: defaultConn()}
	fs := newFlagSet("cluster", clusterUsage, e)
	fs.Var(cli.Bool(&c.json), "json", "print the view as one JSON document")
	c.conn.add(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return nil, err
	}
	if len(fs.Args()) > 0 {
		return nil, usagef("cluster: unexpected argument %q", fs.Args()[0])
	}
	return c, nil
}

func (c *clusterCmd) run(ctx context.Context, e env) error {
	s, err := c.conn.connect(ctx, e, onlineOnly)
	if err != nil {
		return err
	}
	defer s.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	v, err := s.client.Cluster(cctx)
	cancel()
	if err != nil {
		return err
	}
	if c.json {
		return writeJSON(e.stdout, v)
	}
	return writeCluster(e.stdout, v)
}

// writeCluster prints the view as aligned columns, one node a line; the
// node that answered is marked with '*'.
func writeCluster(w io.Writer, v admin.ClusterView) error {
	fmt.Fprintf(w, "cluster %s, answered by %s\n", clean(v.Cluster), clean(v.Node))
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tADDRESS\tVERSION\tUPTIME\tAPPLIED\tLAG\tSTATE\tENTRIES\tBYTES\tHIT RATIO\tSOCKETS\tAPPLY LATENCY\tOUTBOX")
	for _, n := range v.Nodes {
		id := clean(n.ID)
		if n.Self {
			id += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t%.1f%%\t%d\t%s\t%d\n",
			id, clean(n.Address), clean(n.Version), humanDuration(time.Duration(n.UptimeS)*time.Second),
			n.Applied, n.Lag, nodeState(n), n.Entries, humanBytes(n.Bytes), 100*n.HitRatio, n.Sockets,
			time.Duration(n.LastApplyLatencyS*float64(time.Second)).Round(time.Microsecond), n.Outbox)
	}
	return tw.Flush()
}

// nodeState is one word for a node: gone, blind, catching-up (connected,
// not serving hits yet), disconnected (within the bound) or serving.
func nodeState(n admin.ClusterNode) string {
	switch {
	case n.Gone:
		return "gone"
	case n.Blind:
		return "blind"
	case !n.Connected:
		return "disconnected"
	case !n.Serving:
		return "catching-up"
	}
	return "serving"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
