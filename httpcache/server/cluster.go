package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/firstrender/firstrender/httpcache"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/httpcache/cluster"
)

// The cluster mode's wiring (Config.Cluster, docs/cluster.md). Every
// invalidation reaches the store through one method of the proxy,
// httpcache.Proxy.Invalidate, by way of proxyPurger: an admin purge of
// scope local (proxyPurger.Purge → Proxy.Purge), one of scope cluster
// (Node.Purge → proxyPurger.Invalidate), another node's purge applied here
// and the §4.4 invalidation after an unsafe method (Node.Unsafe →
// proxyPurger.Invalidate). So in-memory state is forgotten, fills whose
// fetch started before are not stored, and the join guard forgets, the
// same way for all of them.

// reasonCatchingUp is the Cache-Status detail of a request forwarded
// while the node may have missed invalidations.
const reasonCatchingUp = "cluster-catching-up"

// clusterStartTimeout bounds Node.Start (the embedded NATS server getting
// ready; an unreachable operator-run NATS is not waited for).
const clusterStartTimeout = 30 * time.Second

// hitGate is the proxy's Config.HitGate in cluster mode: one atomic load.
// s.node is written once in New, before anything serves.
func (s *Server) hitGate() string {
	if n := s.node; n != nil && n.Serving() {
		return ""
	}
	return reasonCatchingUp
}

// unsafeInvalidate is the proxy's Config.Unsafe in cluster mode: applied
// here through the proxy, queued in the outbox in the same transaction,
// published in the background.
func (s *Server) unsafeInvalidate(ctx context.Context, keys []string) error {
	if s.node == nil {
		return cluster.ErrClosed
	}
	_, err := s.node.Unsafe(ctx, keys)
	return err
}

// newCluster makes the node (nothing runs yet), after the store and the
// proxy exist and before the admin API, which drives it. It does nothing
// when Config.Cluster is off.
func (s *Server) newCluster() error {
	if !s.cfg.Clustered() {
		return nil
	}
	cc := s.cfg.Cluster
	if cc.NodeID == "" {
		cc.NodeID = cluster.DefaultNodeID(s.publicLn.Addr().String())
	}
	if cc.Address == "" {
		cc.Address = s.publicLn.Addr().String()
	}
	if cc.Version == "" {
		cc.Version = s.cfg.Version
	}
	node, err := cluster.New(cc, cluster.Deps{
		Store:    s.store,
		Purger:   s.purgePath(),
		SoftMark: s.proxy.SoftMark,
		Figures:  s.clusterFigures,
		OnApply:  s.clusterApplied,
		Logger:   s.log.With("component", "cluster"),
	})
	if err != nil {
		f, v := clusterField(cc)
		return &FieldError{f, v, err}
	}
	s.node = node
	s.clusterAPI = &clusterAdmin{node: node, name: nameOr(cc.ClusterName), id: cc.NodeID}
	return nil
}

// purgePath is the proxy's one purge path, made once, after the proxy.
func (s *Server) purgePath() *proxyPurger {
	if s.purger == nil {
		s.purger = &proxyPurger{proxy: s.proxy, broker: s.broker, store: s.store}
	}
	return s.purger
}

// adminCluster is the admin API's Cluster: nil (a single node) when the
// cluster mode is off.
func (s *Server) adminCluster() admin.Cluster {
	if s.clusterAPI == nil {
		return nil
	}
	return s.clusterAPI
}

// clusterField names the Config field an error of the cluster is about.
func clusterField(cc cluster.Config) (string, string) {
	if cc.EmbeddedAddr != "" {
		return "Cluster.EmbeddedAddr", cc.EmbeddedAddr
	}
	return "Cluster.NATSURL", cc.NATSURL
}

// startCluster starts the node: the embedded NATS server if configured,
// the connection (an unreachable NATS is not an error: the node keeps
// trying and serves no hits meanwhile), the consumer and heartbeats.
func (s *Server) startCluster() error {
	if s.node == nil {
		return nil
	}
	cc := s.cfg.Cluster
	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	defer cancel()
	if err := s.node.Start(ctx); err != nil {
		f, v := clusterField(cc)
		return &FieldError{f, v, err}
	}
	nats := cc.NATSURL
	if e := s.node.Embedded(); e != nil {
		nats = e.ClientURL() + " (embedded)"
	}
	s.log.Info("cluster mode: serving no hits until caught up with the stream", "node_id", s.clusterAPI.id,
		"cluster", s.clusterAPI.name, "nats", nats, "blind_after", cc.Blind.String())
	return nil
}

// closeCluster stops the node (before the store closes).
func (s *Server) closeCluster() error {
	if s.node == nil {
		return nil
	}
	return s.node.Close()
}

func nameOr(n string) string {
	if n == "" {
		return cluster.DefaultClusterName
	}
	return n
}

// clusterFigures are the heartbeat's figures.
func (s *Server) clusterFigures() cluster.Figures {
	f := s.proxy.Figures()
	hits := f.Hits + f.Collapsed
	var ratio float64
	if d := hits + f.Misses; d > 0 {
		ratio = float64(hits) / float64(d)
	}
	return cluster.Figures{HitRatio: ratio, OpenSockets: int64(s.broker.Open())}
}

// clusterApplied records other nodes' purges in the admin API's audit log
// and event stream (this node's own are recorded by the handler; §4.4
// invalidations are not purges).
func (s *Server) clusterApplied(a cluster.Applied) {
	if a.Self || s.admin == nil || a.Message.Kind == cluster.KindUnsafe {
		return
	}
	m := a.Message
	req := admin.PurgeRequest{Prefix: m.Prefix, Tag: m.Tag, All: m.All, Soft: m.Soft, Scope: "cluster"}
	switch {
	case len(m.Keys) == 1:
		req.Key = m.Keys[0]
	case len(m.Keys) > 20:
		req.Keys = append(m.Keys[:20:20], fmt.Sprintf("... %d more", len(m.Keys)-20))
	default:
		req.Keys = m.Keys
	}
	s.admin.RecordPurge(admin.PurgeRecord{Time: m.Time.UTC(), Client: "cluster:" + m.Node, Selector: req, Count: a.Count, Sequence: a.Seq})
}

// Invalidate implements cluster.Purger with the proxy's one purge path,
// then makes the join guard forget what was invalidated (as Purge does).
func (pp *proxyPurger) Invalidate(ctx context.Context, sels []cluster.Selector, commit func(context.Context) error) error {
	hs := make([]httpcache.Selection, len(sels))
	for i, sel := range sels {
		hs[i] = httpcache.Selection{Keys: sel.Keys, Prefix: sel.Prefix, Tag: sel.Tag, All: sel.All, Soft: sel.Soft}
	}
	err := pp.proxy.Invalidate(ctx, hs, commit)
	for _, h := range hs {
		if ferr := pp.broker.ForgetJoins(ctx, joinMatcher(h)); err == nil && ferr != nil {
			err = fmt.Errorf("join guard: %w", ferr)
		}
	}
	return err
}

var _ cluster.Purger = (*proxyPurger)(nil)

// clusterAdmin is the admin API's Cluster over the node.
type clusterAdmin struct {
	node     *cluster.Node
	name, id string
}

var _ admin.Cluster = (*clusterAdmin)(nil)

func (c *clusterAdmin) Purge(ctx context.Context, sel admin.Selector) (int, uint64, error) {
	hs := Selection(sel)
	res, err := c.node.Purge(ctx, cluster.Selector{Keys: hs.Keys, Prefix: hs.Prefix, Tag: hs.Tag, All: hs.All, Soft: hs.Soft})
	switch {
	case err == nil:
	case errors.Is(err, cluster.ErrNotDurable):
		err = fmt.Errorf("%w: %w", admin.ErrNotDurable, err)
	case errors.Is(err, cluster.ErrInvalid):
		err = fmt.Errorf("%w: %w", admin.ErrInvalid, err)
	case errors.Is(err, cluster.ErrClosed):
		err = &admin.Error{Status: 503, Code: "unavailable", Message: "the cluster node is not running (shutting down)"}
	}
	return res.Count, res.Sequence, err
}

func (c *clusterAdmin) WaitApplied(ctx context.Context, seq uint64) ([]admin.NodeStatus, error) {
	got, err := c.node.WaitApplied(ctx, seq)
	out := make([]admin.NodeStatus, len(got))
	for i, g := range got {
		out[i] = admin.NodeStatus{Node: g.Node, Applied: g.Applied, Error: g.Error, Sequence: g.Sequence}
	}
	return out, err
}

func (c *clusterAdmin) View() admin.ClusterView {
	ns := c.node.Nodes()
	v := admin.ClusterView{Cluster: c.name, Node: c.id, Nodes: make([]admin.ClusterNode, len(ns))}
	for i, n := range ns {
		v.Nodes[i] = n.ClusterNode
	}
	return v
}

// Node is the cluster node, nil when Config.Cluster is off.
func (s *Server) Node() *cluster.Node { return s.node }
