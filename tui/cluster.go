package tui

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// ClusterSource is the optional part of a Source that shows the cluster
// (GET cluster): each node's figures as its heartbeats report them.
// *admin.Client has it. The ":cluster" command and screen exist only when
// the Source has it; a server with clustering off answers *admin.Error
// "not_clustered", which the screen says.
type ClusterSource interface {
	Cluster(ctx context.Context) (admin.ClusterView, error)
}

var _ ClusterSource = (*admin.Client)(nil)

// clusterState is the cluster screen: the last view (kept, dimmed, when a
// poll fails) and the last error.
type clusterState struct {
	view *admin.ClusterView
	at   time.Time
	err  error
	off  bool // the server said clustering is off
}

type clusterMsg struct {
	id   uint64
	view *admin.ClusterView
	err  error
}

func (m *Model) hasCluster() bool {
	_, ok := m.src.(ClusterSource)
	return ok
}

func (m *Model) clusterCmd() tea.Cmd {
	cs, ok := m.src.(ClusterSource)
	if !ok {
		return nil
	}
	return m.start(reqCluster, m.opts.Timeout, func(ctx context.Context, id uint64) tea.Msg {
		v, err := cs.Cluster(ctx)
		if err != nil {
			return clusterMsg{id: id, err: err}
		}
		return clusterMsg{id: id, view: &v}
	})
}

// openCluster shows the cluster screen and asks for the view; the
// heartbeat asks again every second while it is shown.
func (m *Model) openCluster() tea.Cmd {
	if !m.hasCluster() {
		m.setErr(errors.New(":cluster: this source has no cluster view (offline file)"))
		return nil
	}
	if m.clus == nil {
		m.clus = &clusterState{}
	}
	m.push(scrCluster)
	if m.pending[reqCluster].id != 0 {
		return nil
	}
	return m.clusterCmd()
}

func (m *Model) onCluster(msg clusterMsg) tea.Cmd {
	if !m.accept(reqCluster, msg.id) || m.clus == nil {
		return nil
	}
	c := m.clus
	if msg.err != nil || msg.view == nil {
		c.err = msg.err
		if c.err == nil {
			c.err = errors.New("empty reply")
		}
		var ae *admin.Error
		c.off = errors.As(c.err, &ae) && ae.Code == "not_clustered"
		return nil
	}
	c.view, c.at, c.err, c.off = msg.view, m.now(), nil, false
	return nil
}

// nodeState names a node's link to the cluster, with a glyph that reads
// without colour.
func nodeState(n *admin.ClusterNode) string {
	switch {
	case n.Gone:
		return "✗ gone"
	case n.Blind:
		return "⊘ blind"
	case !n.Connected:
		return "○ offline"
	case !n.Serving:
		return "↻ catch-up"
	}
	return "● connected"
}

// clusterCol is one column of the cluster table.
type clusterCol struct {
	head  string
	w     int
	right bool
	val   func(n *admin.ClusterNode) string
}

func (m *Model) viewCluster(h int) string {
	st := m.st
	c := m.clus
	if c == nil {
		return ""
	}
	lines := []string{}
	switch {
	case c.view == nil && c.off:
		return strings.Join([]string{st.Bold.Render("Cluster"), "",
			st.Dim.Render("Clustering is off on this server (it runs with --cluster-nats or --cluster-embedded-nats)."),
			st.Dim.Render("q goes back.")}, "\n")
	case c.view == nil && c.err != nil:
		return strings.Join([]string{st.Bold.Render("Cluster"), "", st.Bad.Render("✗ " + clean(c.err.Error())), st.Dim.Render("r to try again, q to go back")}, "\n")
	case c.view == nil:
		w := "loading the cluster view…"
		if m.pending[reqCluster].slow {
			w = m.spin.View() + " " + w
		}
		return st.Bold.Render("Cluster") + "\n\n" + st.Dim.Render(w)
	}
	v := c.view
	nodes := append([]admin.ClusterNode(nil), v.Nodes...)
	sort.SliceStable(nodes, func(i, j int) bool {
		if nodes[i].Gone != nodes[j].Gone {
			return !nodes[i].Gone
		}
		return nodes[i].ID < nodes[j].ID
	})
	gone, last := 0, uint64(0)
	for i := range nodes {
		if nodes[i].Gone {
			gone++
		}
		last = max(last, nodes[i].Last)
	}
	title := st.Bold.Render("Cluster "+clean(v.Cluster)) + st.Dim.Render(fmt.Sprintf("  seen from %s · %d nodes, %d gone · log at sequence %s",
		clean(v.Node), len(nodes), gone, group(int64(last))))
	lines = append(lines, title)
	if c.err != nil {
		lines = append(lines, st.Bad.Render("✗ "+clean(c.err.Error())+" · the view below is from "+durShort(m.now().Sub(c.at))+" ago"))
	}
	// 120 columns: one line per node; 80: the address and version go to
	// a second line and numbers lose their separators.
	wide := m.width >= 116
	num := func(v uint64) string { return strconv.FormatUint(v, 10) }
	nodeW, upW, appW, lagW, entW, byW, hitW, sockW, apW := 10, 6, 8, 5, 7, 6, 6, 4, 6
	if wide {
		num = func(v uint64) string { return group(int64(v)) }
		nodeW, upW, appW, lagW, entW, byW, hitW, sockW, apW = 12, 7, 9, 6, 7, 6, 6, 5, 8
	}
	cols := []clusterCol{
		{head: "NODE", w: nodeW, val: func(n *admin.ClusterNode) string { return clean(n.ID) }},
	}
	if wide {
		cols = append(cols,
			clusterCol{head: "ADDRESS", w: 18, val: func(n *admin.ClusterNode) string { return clean(n.Address) }},
			clusterCol{head: "VERSION", w: 8, val: func(n *admin.ClusterNode) string { return clean(n.Version) }})
	}
	cols = append(cols,
		clusterCol{head: "UP", w: upW, right: true, val: func(n *admin.ClusterNode) string { return uptime(max(0, n.UptimeS)) }},
		clusterCol{head: "APPLIED", w: appW, right: true, val: func(n *admin.ClusterNode) string { return num(n.Applied) }},
		clusterCol{head: "LAG", w: lagW, right: true, val: func(n *admin.ClusterNode) string { return countShort(int64(min(n.Lag, 1<<62))) }},
		clusterCol{head: "STATE", w: 11, val: nodeState},
		clusterCol{head: "ENTRIES", w: entW, right: true, val: func(n *admin.ClusterNode) string { return countShort(n.Entries) }},
		clusterCol{head: "BYTES", w: byW, right: true, val: func(n *admin.ClusterNode) string { return bytesShort(n.Bytes) }},
		clusterCol{head: "HIT", w: hitW, right: true, val: func(n *admin.ClusterNode) string { return pct(n.HitRatio) }},
		clusterCol{head: "SOCK", w: sockW, right: true, val: func(n *admin.ClusterNode) string { return countShort(n.Sockets) }},
		clusterCol{head: "APPLY", w: apW, right: true, val: func(n *admin.ClusterNode) string { return applyLatency(n.LastApplyLatencyS) }},
	)
	row := func(self bool, cell func(c clusterCol) string) string {
		g := "  "
		if self {
			g = "* "
		}
		var b strings.Builder
		b.WriteString(g)
		for i, col := range cols {
			if i > 0 {
				b.WriteByte(' ')
			}
			s := cell(col)
			if col.right {
				b.WriteString(padLeft(s, col.w))
			} else {
				b.WriteString(pad(s, col.w))
			}
		}
		return b.String()
	}
	lines = append(lines, st.ColHead.Render(row(false, func(c clusterCol) string { return c.head })))
	stale := c.err != nil
	now := m.now()
	for i := range nodes {
		n := &nodes[i]
		line := row(n.Self, func(c clusterCol) string { return c.val(n) })
		extra := []string{}
		if !wide {
			extra = append(extra, clean(n.Address), clean(n.Version))
		}
		if n.Outbox > 0 {
			extra = append(extra, group(n.Outbox)+" in outbox")
		}
		if n.Gone && !n.LastSeen.IsZero() {
			extra = append(extra, "last seen "+durShort(now.Sub(n.LastSeen))+" ago")
		}
		var sub string
		parts := nonEmpty(extra)
		if len(parts) > 0 {
			sub = "    " + strings.Join(parts, " · ")
		}
		switch {
		case n.Gone || stale:
			line = st.HeaderDim.Render(line)
			sub = st.HeaderDim.Render(sub)
		case n.Blind || !n.Connected:
			line = st.Bad.Render(line)
			sub = st.Dim.Render(sub)
		case !n.Serving || n.Lag > 0:
			line = st.Warn.Render(line)
			sub = st.Dim.Render(sub)
		default:
			line = st.Row.Render(line)
			sub = st.Dim.Render(sub)
		}
		lines = append(lines, line)
		if len(parts) > 0 {
			lines = append(lines, sub)
		}
	}
	if len(nodes) == 0 {
		lines = append(lines, "", st.Dim.Render("no node has sent a heartbeat yet"))
	}
	lines = append(lines, "")
	for _, l := range wrapWords("* the node answering · LAG: the log's last sequence minus the applied one · APPLY: from the log storing the last applied message to its commit · refreshed every second", max(20, m.width)) {
		lines = append(lines, st.Dim.Render(l))
	}
	return strings.Join(lines, "\n")
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func applyLatency(s float64) string {
	switch {
	case s <= 0:
		return "–"
	case s < 0.01:
		return fmt.Sprintf("%.1fms", s*1000)
	case s < 1:
		return fmt.Sprintf("%.0fms", s*1000)
	}
	return fmt.Sprintf("%.2fs", s)
}
