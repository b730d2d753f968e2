package httpcache

import (
	"strconv"
	"time"

	"github.com/firstrender/firstrender/store"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus collectors (see Config.Registerer).
type metrics struct {
	requests      *prometheus.CounterVec   // by cache result
	duration      *prometheus.HistogramVec // by cache result
	originReqs    *prometheus.CounterVec   // by status code ("error" for none)
	originLatency prometheus.Histogram
	bytes         prometheus.Counter // body bytes from the store
	originBytes   prometheus.Counter // body bytes relayed from the origin
	servedBytes   *prometheus.CounterVec
	refused       *prometheus.CounterVec // responses not stored, by reason
	hitForPass    prometheus.Counter
	aborted       prometheus.Counter
	invalidations prometheus.Counter
	spliced       prometheus.Counter // responses personalized by the Splicer
	spliceFailed  prometheus.Counter

	// pre-resolved children for the hot path, indexed like Results
	// (resultIndex): no label lookup per request
	byResult [len(resultsArray)]prometheus.Counter
	durBy    [len(resultsArray)]prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, st *store.Store, hot *hotCache) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstrender_requests_total",
			Help: "Requests served by the caching proxy, by cache result (hit, stale, collapsed, miss, revalidated, pass, error).",
		}, []string{"cache"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "firstrender_request_duration_seconds",
			Help:    "Time to serve a request (until the handler returns), by cache result.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"cache"}),
		originReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstrender_origin_requests_total",
			Help: "Requests sent to the origin, by response status code (\"error\" when none arrived).",
		}, []string{"code"}),
		originLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "firstrender_origin_duration_seconds",
			Help:    "Time from sending a request to the origin until its response headers arrived.",
			Buckets: prometheus.DefBuckets,
		}),
		servedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstrender_served_bytes_total",
			Help: "Response body bytes served to clients, by source (cache: from the store; origin: relayed from the origin).",
		}, []string{"source"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstrender_refused_total",
			Help: "Origin responses not stored, by reason: the Cache-Status detail= (private, no-store, set-cookie, status, no-freshness, too-large, max-buffered, ...; an Inspector's, e.g. liveview-csrf-meta).",
		}, []string{"reason"}),
		hitForPass: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstrender_hit_for_pass_total",
			Help: "Requests sent straight to the origin (not collapsed) because the key's last response was not storable (hit-for-pass, HitForPassTTL).",
		}),
		aborted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstrender_store_aborted_total",
			Help: "Storable responses not stored because the transfer did not complete or the body was too large.",
		}),
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstrender_invalidations_total",
			Help: "Primary keys invalidated by unsafe requests (RFC 9111 §4.4).",
		}),
		spliced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstrender_spliced_total",
			Help: "Responses served with the visitor's own session splice (Config.Splicer).",
		}),
		spliceFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstrender_splice_failed_total",
			Help: "Stored pages that could not be spliced for a visitor (forwarded uncached instead).",
		}),
	}
	m.bytes = m.servedBytes.WithLabelValues("cache")
	m.originBytes = m.servedBytes.WithLabelValues("origin")
	for i, l := range Results {
		m.byResult[i] = m.requests.WithLabelValues(string(l))
		m.durBy[i] = m.duration.WithLabelValues(string(l))
	}
	cs := []prometheus.Collector{m.requests, m.duration, m.originReqs, m.originLatency, m.servedBytes, m.refused, m.hitForPass, m.aborted, m.invalidations, m.spliced, m.spliceFailed,
		hotCollector{hot},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "firstrender_store_entries",
			Help: "Records in the page store.",
		}, func() float64 { return float64(st.Stats().Records) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "firstrender_store_bytes",
			Help: "Bytes of records in the page store.",
		}, func() float64 { return float64(st.Stats().Bytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "firstrender_store_evictions_total",
			Help: "Records evicted to keep the store under its size bound.",
		}, func() float64 { return float64(st.Stats().Evictions) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "firstrender_store_expired_total",
			Help: "Expired records removed from the store (the background sweep, or eviction taking expired records first).",
		}, func() float64 { return float64(st.Stats().Expired) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "firstrender_store_commits_total",
			Help: "Write transactions the page store committed (each one fsync): concurrent fills, purges and access-time flushes share them.",
		}, func() float64 { return float64(st.Stats().Commits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "firstrender_store_writes_total",
			Help: "Write operations (a stored fill, a purge, an annotation, ...) in those transactions; writes / commits is how many share one fsync.",
		}, func() float64 { return float64(st.Stats().Writes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "firstrender_store_writes_failing",
			Help: "1 while the page store's writes fail (full or read-only disk, damaged file: see firstrender_store_write_failures_total), else 0. Hits are served meanwhile; nothing new is stored.",
		}, func() float64 {
			if st.WritesFailing() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "firstrender_store_set_aside_total",
			Help: "Damaged database files moved aside (<db>.corrupt-<time>) since start, at open or while serving; the store continued on a fresh file.",
		}, func() float64 { return float64(st.Health().SetAside) }),
	}
	for _, c := range store.Causes {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "firstrender_store_write_failures_total",
			Help:        "Store write operations that failed because the disk or the file did, by cause (no-space, read-only, io, damaged, other).",
			ConstLabels: prometheus.Labels{"cause": string(c)},
		}, func() float64 { return float64(st.Health().FailedWrites[c]) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe counts a served request whose result has index i in Results
// (resultIndex; -1: none) and its duration d.
func (m *metrics) observe(i int, d time.Duration) {
	if i >= 0 && i < len(m.byResult) {
		m.byResult[i].Inc()
		m.durBy[i].Observe(d.Seconds())
	}
}

// refuse counts a response not stored for reason.
func (m *metrics) refuse(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

func (m *metrics) origin(code int, d time.Duration) {
	label := "error"
	if code > 0 {
		label = strconv.Itoa(code)
	}
	m.originReqs.WithLabelValues(label).Inc()
	if code > 0 {
		m.originLatency.Observe(d.Seconds())
	}
}

// hotCollector reports the memory tier's size and admission counts
// (hotCache.counters, read once per scrape: nothing is counted on the
// hit path for it). With the tier disabled, every series reads 0.
type hotCollector struct{ h *hotCache }

var (
	hotEntriesDesc = prometheus.NewDesc("firstrender_memory_entries",
		"Entries in the memory tier (Config.MemoryCacheSize).", nil, nil)
	hotBytesDesc = prometheus.NewDesc("firstrender_memory_bytes",
		"Bytes charged to the memory tier's entries (body, key and header bytes plus 512 each).", nil, nil)
	hotAdmittedDesc = prometheus.NewDesc("firstrender_memory_admissions_total",
		"Entries read from the store and admitted to the memory tier.", nil, nil)
	hotRejectedDesc = prometheus.NewDesc("firstrender_memory_rejections_total",
		"Entries read from the store and not admitted to the memory tier, by reason (first_seen: the key's first read in the window; frequency: the tier was full and the entry it would replace was read as often; stale: changed while it was read; too_large).",
		[]string{"reason"}, nil)
	hotEvictedDesc = prometheus.NewDesc("firstrender_memory_evictions_total",
		"Entries evicted from the memory tier to make room for admitted ones (invalidations not counted).", nil, nil)
)

func (c hotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hotEntriesDesc, hotBytesDesc, hotAdmittedDesc, hotRejectedDesc, hotEvictedDesc} {
		ch <- d
	}
}

func (c hotCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.counters()
	ch <- prometheus.MustNewConstMetric(hotEntriesDesc, prometheus.GaugeValue, float64(st.entries))
	ch <- prometheus.MustNewConstMetric(hotBytesDesc, prometheus.GaugeValue, float64(st.bytes))
	ch <- prometheus.MustNewConstMetric(hotAdmittedDesc, prometheus.CounterValue, float64(st.admitted))
	ch <- prometheus.MustNewConstMetric(hotEvictedDesc, prometheus.CounterValue, float64(st.evicted))
	for _, r := range []struct {
		reason string
		n      uint64
	}{{"first_seen", st.firstSeen}, {"frequency", st.frequency}, {"stale", st.stale}, {"too_large", st.tooLarge}} {
		ch <- prometheus.MustNewConstMetric(hotRejectedDesc, prometheus.CounterValue, float64(r.n), r.reason)
	}
}
