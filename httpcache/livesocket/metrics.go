package livesocket

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Directions used as the "direction" label of message and byte counters.
const (
	dirToOrigin = "to_origin" // client → origin
	dirToClient = "to_client" // origin → client
)

// metrics are always created (so the code paths need no nil checks) and
// registered only when a Registerer is given.
type metrics struct {
	open         prometheus.Gauge
	accepted     prometheus.Counter
	refused      *prometheus.CounterVec
	messages     *prometheus.CounterVec
	bytes        *prometheus.CounterVec
	dial         prometheus.Histogram
	joinFailures prometheus.Counter
	disabled     prometheus.Counter
	guardDropped prometheus.Counter

	msgTo, msgFrom, bytesTo, bytesFrom prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "firstrender_livesocket_open", Help: "Brokered live sockets currently open."}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstrender_livesocket_upgrades_accepted_total", Help: "WebSocket upgrades brokered to the origin."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstrender_livesocket_upgrades_refused_total", Help: "WebSocket upgrades refused, by reason."}, []string{"reason"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstrender_livesocket_messages_total", Help: "Messages relayed, by direction."}, []string{"direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstrender_livesocket_bytes_total", Help: "Message payload bytes relayed, by direction."}, []string{"direction"}),
		dial: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "firstrender_livesocket_origin_dial_seconds", Help: "Time to complete the WebSocket handshake with the origin.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		joinFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstrender_livesocket_join_failures_total", Help: "LiveView joins refused by the origin (stale/unauthorized) seen by the join guard."}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstrender_livesocket_entries_disabled_total", Help: "Cached entries disabled by the join guard."}),
		guardDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstrender_livesocket_guard_dropped_total", Help: "Join failures not processed because the guard queue was full."}),
	}
	m.msgTo = m.messages.WithLabelValues(dirToOrigin)
	m.msgFrom = m.messages.WithLabelValues(dirToClient)
	m.bytesTo = m.bytes.WithLabelValues(dirToOrigin)
	m.bytesFrom = m.bytes.WithLabelValues(dirToClient)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.open, m.accepted, m.refused, m.messages, m.bytes, m.dial, m.joinFailures, m.disabled, m.guardDropped} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("livesocket: metrics already registered (one Broker per Registerer)")
			}
			return nil, err
		}
	}
	return m, nil
}
