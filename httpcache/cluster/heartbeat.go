package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/nats-io/nats.go"
)

// NodeInfo is one node's heartbeat (JSON on firstrender.<cluster>.hb):
// the cluster view's node as GET /admin/v1/cluster serves it
// (admin.ClusterNode, whose receiver-side fields LastSeen, Gone and Self
// are cleared on the wire), plus when it was sent and whether the node is
// leaving. The embedded fields are flattened in the JSON.
type NodeInfo struct {
	admin.ClusterNode
	Time    time.Time `json:"time"` // when the heartbeat was sent
	Leaving bool      `json:"leaving,omitempty"`
}

// maxPeers bounds the cluster view (heartbeats come from the network).
const maxPeers = 1024

// DecodeHeartbeat parses and checks a heartbeat. The receiver-side fields
// are cleared.
func DecodeHeartbeat(b []byte) (NodeInfo, error) {
	var hb NodeInfo
	if len(b) > 64<<10 {
		return NodeInfo{}, fmt.Errorf("%w: heartbeat of %d bytes", ErrInvalid, len(b))
	}
	if err := json.Unmarshal(b, &hb); err != nil {
		return NodeInfo{}, fmt.Errorf("%w: heartbeat: %v", ErrInvalid, err)
	}
	if !nodeIDRE.MatchString(hb.ID) {
		return NodeInfo{}, fmt.Errorf("%w: heartbeat node id %.80q", ErrInvalid, hb.ID)
	}
	hb.LastSeen, hb.Gone, hb.Self = time.Time{}, false, false
	return hb, nil
}

// self is this node's current NodeInfo.
func (n *Node) self() NodeInfo {
	st := n.st.Stats()
	applied := n.st.AppliedSequence()
	n.mu.Lock()
	last, blind, consuming := max(n.lastSeq, applied), n.blind, n.consuming
	n.mu.Unlock()
	now := time.Now()
	info := NodeInfo{Time: now.UTC()}
	info.ClusterNode = admin.ClusterNode{
		ID:                n.cfg.NodeID,
		Address:           n.cfg.Address,
		Version:           n.cfg.Version,
		StartedAt:         n.startedAt.UTC(),
		UptimeS:           int64(now.Sub(n.startedAt) / time.Second),
		Stream:            n.st.ClusterStream(),
		Applied:           applied,
		Last:              last,
		Lag:               last - applied,
		Connected:         n.nc != nil && n.nc.IsConnected() && consuming,
		Blind:             blind,
		Serving:           n.Serving(),
		Entries:           st.Records,
		Bytes:             st.Bytes,
		LastApplyLatencyS: time.Duration(n.applyLatency.Load()).Seconds(),
		Outbox:            n.outboxN.Load(),
		LastSeen:          now.UTC(),
		Self:              true,
	}
	if n.deps.Figures != nil {
		f := n.deps.Figures()
		info.HitRatio, info.Sockets = f.HitRatio, f.OpenSockets
	}
	return info
}

func (n *Node) sendHeartbeat(leaving bool) {
	if n.nc == nil {
		return
	}
	hb := n.self()
	hb.Leaving = leaving
	hb.LastSeen, hb.Self = time.Time{}, false
	b, err := json.Marshal(hb)
	if err != nil {
		return
	}
	_ = n.nc.Publish(n.hbSubj, b) // buffered; lost while disconnected, like any heartbeat
}

func (n *Node) onHeartbeat(m *nats.Msg) {
	hb, err := DecodeHeartbeat(m.Data)
	if err != nil {
		n.log.Debug("cluster: bad heartbeat", "err", err)
		return
	}
	if hb.ID == n.cfg.NodeID {
		if !hb.StartedAt.Equal(n.startedAt.UTC()) {
			n.log.Warn("cluster: another node uses this node's id", "id", hb.ID, "address", hb.Address)
		}
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.peers[hb.ID]; !ok && len(n.peers) >= maxPeers {
		return
	}
	n.peers[hb.ID] = &peer{info: hb, seen: time.Now()} // Leaving: gone at once
	n.notifyLocked()
}

// prunePeers forgets nodes gone for a day.
func (n *Node) prunePeers() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, p := range n.peers {
		if time.Since(p.seen) > 24*time.Hour {
			delete(n.peers, id)
		}
	}
}

// Nodes returns the cluster view: this node (Self) and every node heard
// from, sorted by id; nodes silent for longer than Config.GoneAfter (or
// that said they are leaving) are marked Gone.
func (n *Node) Nodes() []NodeInfo {
	out := []NodeInfo{n.self()}
	now := time.Now()
	n.mu.Lock()
	for _, p := range n.peers {
		info := p.info
		info.LastSeen = p.seen.UTC()
		info.Gone = p.gone(now, n.cfg.GoneAfter)
		out = append(out, info)
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// NodeApplied is one node's answer in WaitApplied (admin's NodeStatus,
// with the node's applied sequence).
type NodeApplied struct {
	Node     string `json:"node"`
	Applied  bool   `json:"applied"`
	Sequence uint64 `json:"sequence"` // the node's applied sequence when last heard
	Error    string `json:"error,omitempty"`
}

// WaitApplied waits until every node live when it is called (this one
// included; see Nodes) reports an applied sequence of at least seq in the
// stream this node follows, and returns each one's status. A node that
// goes silent meanwhile is reported with Error "gone" and not waited for.
// If ctx ends first, it returns the statuses so far and ctx's error; the
// nodes not there yet have Error set.
func (n *Node) WaitApplied(ctx context.Context, seq uint64) ([]NodeApplied, error) {
	if !n.running.Load() {
		return nil, ErrClosed
	}
	var ids []string
	for _, info := range n.Nodes() {
		if !info.Gone {
			ids = append(ids, info.ID)
		}
	}
	for {
		ch := n.Changed()
		out, all := n.appliedStatus(ids, seq, false)
		if all {
			return out, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			out, _ := n.appliedStatus(ids, seq, true)
			return out, ctx.Err()
		}
	}
}

func (n *Node) appliedStatus(ids []string, seq uint64, final bool) ([]NodeApplied, bool) {
	stream := n.st.ClusterStream()
	now := time.Now()
	all := true
	out := make([]NodeApplied, 0, len(ids))
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range ids {
		s := NodeApplied{Node: id}
		if id == n.cfg.NodeID {
			s.Sequence = n.st.AppliedSequence()
			s.Applied = s.Sequence >= seq
		} else if p := n.peers[id]; p == nil || p.gone(now, n.cfg.GoneAfter) {
			s.Error = "gone"
			if p != nil {
				s.Sequence = p.info.Applied
			}
		} else {
			s.Sequence = p.info.Applied
			s.Applied = p.info.Stream == stream && s.Sequence >= seq
			if p.info.Stream != stream && final {
				s.Error = "follows another stream incarnation"
			}
		}
		if !s.Applied && s.Error == "" {
			all = false
			if final {
				s.Error = fmt.Sprintf("not applied yet (at %d)", s.Sequence)
			}
		}
		out = append(out, s)
	}
	return out, all
}
