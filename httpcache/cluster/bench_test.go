package cluster

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/firstrender/firstrender/store"
)

// The benchmarks run three nodes on one embedded NATS server on loopback,
// each with its own bbolt file written with fsync (as in production).

func withSync(_ *Config, o *store.Options) { o.NoSync = os.Getenv("BENCH_NOSYNC") != "" }

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// commitBaseline is the p99 of one fsync'd store commit on this machine,
// measured in the same run: a local-only invalidation of one key, the
// commit a purge makes before it publishes. Figures over it are the
// cluster's own cost.
func commitBaseline(b *testing.B, st *store.Store) time.Duration {
	b.Helper()
	var lat []time.Duration
	for i := range 200 {
		t0 := time.Now()
		if _, err := st.ApplyInvalidation(context.Background(), 0, store.Invalidation{Keys: []string{fmt.Sprintf("https://baseline.test/%d", i)}}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	return quantile(lat, 0.99)
}

// BenchmarkPurgeAck is one key purge through a node until the stream
// acknowledged it (local apply with fsync, publish, ack).
func BenchmarkPurgeAck(b *testing.B) {
	c := newCluster(b, withSync)
	ctx := context.Background()
	base := commitBaseline(b, c.nodes[0].st)
	var lat []time.Duration
	i := 0
	for b.Loop() {
		t0 := time.Now()
		res, err := c.nodes[i%3].n.Purge(ctx, Selector{Keys: []string{fmt.Sprintf("https://a.test/%d", i)}})
		lat = append(lat, time.Since(t0))
		if err != nil || res.Sequence == 0 {
			b.Fatalf("Purge = %+v, %v", res, err)
		}
		i++
	}
	b.ReportMetric(ms(quantile(lat, 0.50)), "ack-p50-ms")
	b.ReportMetric(ms(quantile(lat, 0.99)), "ack-p99-ms")
	b.ReportMetric(ms(base), "commit-p99-ms")
	b.ReportMetric(float64(quantile(lat, 0.99))/float64(base), "ack/commit-p99")
}

// BenchmarkPublishToApplied issues purges at 200/s (through all three
// nodes in turn) for FIRSTRENDER_CLUSTER_BENCH_DURATION (default 3s) and
// measures, for each, the time from the Purge call to its commit on the
// last of the three nodes. One iteration is the whole run:
//
//	FIRSTRENDER_CLUSTER_BENCH_DURATION=60s go test -run '^$' -bench PublishToApplied -benchtime 1x ./httpcache/cluster/
func BenchmarkPublishToApplied(b *testing.B) {
	dur := 3 * time.Second
	if v := os.Getenv("FIRSTRENDER_CLUSTER_BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("FIRSTRENDER_CLUSTER_BENCH_DURATION: %v", err)
		}
		dur = d
	}
	const rate = 200
	c := newCluster(b, withSync)
	ctx := context.Background()
	base := commitBaseline(b, c.nodes[0].st)
	for b.Loop() {
		var (
			mu     sync.Mutex
			sent   = map[string]time.Time{}
			acks   []time.Duration
			wg     sync.WaitGroup
			errs   int
			ticker = time.NewTicker(time.Second / rate)
			stop   = time.After(dur)
			i      int
		)
	loop:
		for {
			select {
			case <-stop:
				break loop
			case <-ticker.C:
			}
			i++
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				t0 := time.Now()
				res, err := c.nodes[i%3].n.Purge(ctx, Selector{Keys: []string{fmt.Sprintf("https://a.test/r/%d", i)}})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs++
					return
				}
				sent[res.ID] = t0
				acks = append(acks, time.Since(t0))
			}(i)
		}
		ticker.Stop()
		wg.Wait()
		if errs > 0 {
			b.Fatalf("%d purges failed", errs)
		}
		var lat []time.Duration
		for id, t0 := range sent {
			var worst time.Duration
			for _, tn := range c.nodes {
				waitApplied(b, tn, id)
				tn.mu.Lock()
				worst = max(worst, tn.appliedAt[id].Sub(t0))
				tn.mu.Unlock()
			}
			lat = append(lat, worst)
		}
		b.ReportMetric(float64(len(lat)), "purges")
		b.ReportMetric(ms(quantile(lat, 0.50)), "all-applied-p50-ms")
		b.ReportMetric(ms(quantile(lat, 0.99)), "all-applied-p99-ms")
		b.ReportMetric(ms(slices.Max(lat)), "all-applied-max-ms")
		b.ReportMetric(ms(quantile(acks, 0.99)), "ack-p99-ms")
		b.ReportMetric(ms(base), "commit-p99-ms")
		b.ReportMetric(float64(quantile(lat, 0.99))/float64(base), "applied/commit-p99")
	}
}

// BenchmarkCatchUp10k restarts a node that missed 10,000 key purges
// (each deleting one of its 10,000 entries) and measures the time from
// Start to Serving (everything applied).
func BenchmarkCatchUp10k(b *testing.B) {
	const missed = 10000
	c := newCluster(b, withSync)
	js := c.js(b)
	down := c.nodes[2]
	var total time.Duration
	round := 0
	for b.Loop() {
		b.StopTimer()
		// Fill the node's store with the entries the purges will delete.
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < missed; i += 8 {
					put(b, down.st, fmt.Sprintf("https://a.test/%d/%d", round, i), "")
				}
			}()
		}
		wg.Wait()
		down.stop()
		var futs []jetstream.PubAckFuture
		for i := range missed {
			m := newMessage("bench", KindKey, Selector{Keys: []string{fmt.Sprintf("https://a.test/%d/%d", round, i)}}, time.Now())
			data, err := m.encode()
			if err != nil {
				b.Fatal(err)
			}
			f, err := js.PublishAsync(c.nodes[0].n.subj, data, jetstream.WithMsgID(m.ID))
			if err != nil {
				b.Fatal(err)
			}
			futs = append(futs, f)
			if i%1000 == 999 || i == missed-1 { // stay under the client's pending limit
				select {
				case <-js.PublishAsyncComplete():
				case <-time.After(testTimeout):
					b.Fatal("async publishes not acknowledged")
				}
			}
		}
		last := futs[len(futs)-1]
		var lastSeq uint64
		select {
		case ack := <-last.Ok():
			lastSeq = ack.Sequence
		case err := <-last.Err():
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		re := startNode(b, down.id, down.path, c.nats.ClientURL(), withSync)
		waitServing(b, re)
		total += time.Since(t0)
		b.StopTimer()
		if got := re.st.AppliedSequence(); got < lastSeq {
			b.Fatalf("serving at applied %d < %d", got, lastSeq)
		}
		if st := re.st.Stats(); st.Records != 0 {
			b.Fatalf("%d records left after catching up on the purges of all of them", st.Records)
		}
		c.nodes[2] = re
		down = re
		round++
		b.StartTimer()
	}
	b.ReportMetric(ms(total/time.Duration(round)), "catchup-ms")
}
