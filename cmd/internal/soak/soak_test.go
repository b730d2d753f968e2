package soak

import (
	"testing"
	"time"
)

func TestReport_Flat(t *testing.T) {
	mk := func(rss ...int64) *Report {
		r := &Report{}
		for i, v := range rss {
			r.Samples = append(r.Samples, Sample{At: time.Duration(i) * 30 * time.Second, RSS: v << 20, RSSAnon: v << 20, Goroutines: 120, OpenFDs: 85})
		}
		return r
	}
	for _, tt := range []struct {
		name string
		r    *Report
		want bool
	}{
		{"oscillating with the load is flat", mk(13, 290, 380, 400, 230, 300, 260, 280, 240, 390, 330, 300), true},
		{"a steady climb is growth", mk(13, 100, 120, 140, 160, 180, 200, 220, 240, 260, 280, 300), false},
		{"a late jump is growth", mk(13, 200, 210, 205, 200, 210, 205, 200, 210, 205, 200, 320), false},
		{"too few samples", mk(13, 200, 210), false},
	} {
		if got, why := tt.r.Flat(); got != tt.want {
			t.Errorf("%s: Flat() = %v (%s), want %v", tt.name, got, why, tt.want)
		}
	}
	r := mk(13, 200, 200, 200, 200, 200, 200, 200, 200)
	r.Samples[len(r.Samples)-1].Goroutines = 400
	if ok, _ := r.Flat(); ok {
		t.Error("goroutines from 120 to 400 at the end: Flat() = true")
	}
}

func TestHist(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := h.quantile(tt.q)
		if d := float64(got-tt.want) / float64(tt.want); d < -0.03 || d > 0.03 {
			t.Errorf("quantile(%v) = %v, want %v ± 3%%", tt.q, got, tt.want)
		}
	}
	if h.max() != time.Second {
		t.Errorf("max = %v", h.max())
	}
}
