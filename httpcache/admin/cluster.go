package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Cluster is the cluster mode as the admin API drives it (the server
// wires httpcache/cluster's Node through it; the admin package does not
// import it). HandlerConfig.Cluster nil means clustering is off: purges
// are local and GET cluster answers 409 "not_clustered".
//
// Contract:
//   - Purge applies sel on this node (through the same proxy path as a
//     local purge: in-memory state forgotten, fills under way fenced),
//     publishes it to the cluster's log and returns only after the log
//     acknowledged it, with its sequence. When the log did not answer in
//     time it returns an error matching ErrNotDurable, with n the records
//     removed or marked here (the purge stays queued and is published
//     later). An error matching ErrInvalid is a selector the cluster
//     cannot carry (400); anything else is the local apply's error.
//   - WaitApplied waits until every live node reports seq applied, or
//     ctx ends; it returns each node's status either way (those not there
//     yet with Error set) and ctx's error in the second case.
//   - View returns the cluster view.
//
// Its methods are called from concurrent requests.
type Cluster interface {
	Purge(ctx context.Context, sel Selector) (n int, seq uint64, err error)
	WaitApplied(ctx context.Context, seq uint64) ([]NodeStatus, error)
	View() ClusterView
}

// Errors a Cluster returns (matched with errors.Is).
var (
	// ErrNotDurable: applied on this node, not acknowledged by the
	// cluster's log in time. POST purge answers 503 "not_durable" with
	// the local count.
	ErrNotDurable = errors.New("applied locally, not cluster-durable")
	// ErrInvalid: the cluster cannot carry this selector (400).
	ErrInvalid = errors.New("invalid selector")
)

// Default and longest wait of POST purge?wait=applied (wait_timeout=).
const (
	DefaultWaitApplied = 10 * time.Second
	MaxWaitApplied     = 60 * time.Second
)

// scopeOf resolves a purge's scope: "" is "cluster" when clustering is on.
func (h *Handler) scopeOf(sel Selector) (string, error) {
	switch sel.Scope {
	case "":
		if h.cfg.Cluster != nil {
			return "cluster", nil
		}
		return "local", nil
	case "cluster":
		if h.cfg.Cluster == nil {
			return "", &Error{Status: http.StatusConflict, Code: "not_clustered", Message: "scope=cluster: clustering is off on this server (start it with --cluster-nats or --cluster-embedded-nats)"}
		}
	}
	return sel.Scope, nil
}

// waitOf reads ?wait=applied and ?wait_timeout= of POST purge.
func waitOf(q url.Values) (bool, time.Duration, error) {
	bad := func(f string, a ...any) (bool, time.Duration, error) {
		return false, 0, &Error{Status: 400, Code: "bad_request", Message: fmt.Sprintf(f, a...)}
	}
	wait := false
	switch v := q.Get("wait"); v {
	case "":
	case "applied":
		wait = true
	default:
		return bad("wait=%q: the only wait is \"applied\"", v)
	}
	d := DefaultWaitApplied
	if v := q.Get("wait_timeout"); v != "" {
		if !wait {
			return bad("wait_timeout needs wait=applied")
		}
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 || d > MaxWaitApplied {
			return bad("wait_timeout=%q: a duration above 0 and at most %v", v, MaxWaitApplied)
		}
	}
	return wait, d, nil
}

// clusterPurge runs a validated, non-dry purge through the cluster.
func (h *Handler) clusterPurge(ctx context.Context, sel Selector, res *PurgeResult) (int, error) {
	n, seq, err := h.cfg.Cluster.Purge(ctx, sel)
	res.Sequence = seq
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, ErrNotDurable):
		c := n
		return n, &Error{Status: http.StatusServiceUnavailable, Code: "not_durable", ID: res.ID, Count: &c,
			Message: fmt.Sprintf("purge %s applied locally (%d records), not cluster-durable: the cluster's log did not acknowledge it in time; it is queued and published when the log answers (retrying is harmless): %v", res.ID, n, err)}
	case errors.Is(err, ErrInvalid):
		return n, &Error{Status: 400, Code: "bad_request", Message: err.Error()}
	}
	return n, err
}

// waitApplied fills res.Nodes for ?wait=applied. The purge is durable
// already: a wait that ends early is reported per node, not as an error.
func (h *Handler) waitApplied(ctx context.Context, d time.Duration, res *PurgeResult) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	nodes, err := h.cfg.Cluster.WaitApplied(ctx, res.Sequence)
	res.Nodes = nodes
	if err != nil {
		h.log.Warn("admin: purge: not every node applied it in time", "id", res.ID, "sequence", res.Sequence, "wait", d.String(), "err", err)
	}
}

func (h *Handler) cluster(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Cluster == nil {
		writeError(w, &Error{Status: http.StatusConflict, Code: "not_clustered", Message: "clustering is off on this server (start it with --cluster-nats or --cluster-embedded-nats)"})
		return
	}
	v := h.cfg.Cluster.View()
	if v.Nodes == nil {
		v.Nodes = []ClusterNode{}
	}
	writeJSON(w, v)
}

// RecordPurge adds a purge made elsewhere (another cluster node's, applied
// here; Client "cluster:<node>") to the audit log and the event stream,
// and logs it. Safe for concurrent use.
func (h *Handler) RecordPurge(rec PurgeRecord) {
	if rec.ID == "" {
		rec.ID = h.audit.newID()
	}
	if rec.Time.IsZero() {
		rec.Time = h.now().UTC()
	}
	h.audit.add(rec)
	if !rec.Selector.Soft {
		h.purged.Add(int64(rec.Count))
	}
	h.log.Info("admin: purge", "id", rec.ID, "client", rec.Client, "sequence", rec.Sequence, "count", rec.Count, "err", rec.Error)
	h.cfg.Events.Publish(Event{Type: "purge", Time: rec.Time, Key: rec.Selector.Key, Purge: &rec})
}

// Cluster returns the cluster view (GET cluster). A server with
// clustering off answers *Error "not_clustered" (409).
func (c *Client) Cluster(ctx context.Context) (ClusterView, error) {
	var v ClusterView
	err := c.do(ctx, http.MethodGet, "cluster", nil, nil, &v)
	return v, err
}

// PurgeWait is Purge with ?wait=applied: it also waits (at most d, zero
// meaning DefaultWaitApplied) until every live node applied it and
// returns each node's status in PurgeResult.Nodes.
func (c *Client) PurgeWait(ctx context.Context, req PurgeRequest, d time.Duration) (PurgeResult, error) {
	q := url.Values{"wait": {"applied"}}
	if d > 0 {
		q.Set("wait_timeout", d.String())
	}
	var r PurgeResult
	err := c.do(ctx, http.MethodPost, "purge", q, req, &r)
	return r, err
}
