package tui

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// firstDraw is a terminal that reports when a needle first appears in
// what the program wrote.
type firstDraw struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	needle []byte
	done   chan struct{}
	once   sync.Once
}

func (w *firstDraw) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), w.needle) {
		w.once.Do(func() { close(w.done) })
	}
	if w.buf.Len() > 1<<16 {
		w.buf.Next(w.buf.Len() - len(w.needle))
	}
	return len(p), nil
}

// benchFirstPage runs the real program (tea.Program, its renderer, the
// commands on their goroutines) until the first row is on the terminal.
func benchFirstPage(b *testing.B, src Source, needle string) {
	b.ReportAllocs()
	var total time.Duration
	for b.Loop() {
		out := &firstDraw{needle: []byte(needle), done: make(chan struct{})}
		in, inw := io.Pipe()
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		m := New(src, Options{Renderer: asciiRenderer()})
		m.ctx = ctx // the event stream ends with the run
		p := tea.NewProgram(m, tea.WithInput(in), tea.WithOutput(out), tea.WithContext(ctx))
		errc := make(chan error, 1)
		go func() { _, err := p.Run(); errc <- err }()
		p.Send(tea.WindowSizeMsg{Width: 120, Height: 40})
		select {
		case <-out.done:
		case <-time.After(10 * time.Second):
			b.Fatal("no first page within 10 s")
		}
		total += time.Since(start)
		p.Kill()
		<-errc
		cancel()
		inw.Close()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/first-page")
}

// BenchmarkFirstPage: time from start to the first page drawn, against a
// source holding 1,000,000 entries (in memory, and through the admin API
// over loopback HTTP with the real handler and client).
func BenchmarkFirstPage(b *testing.B) {
	b.Run("fake-1M", func(b *testing.B) {
		benchFirstPage(b, bigSource(1_000_000), "https://app.test/p/00000000")
	})
	b.Run("admin-api-1M", func(b *testing.B) {
		a := newAPI(b, &genReader{n: 1_000_000}, nil)
		benchFirstPage(b, a.client, "https://app.test/p/00000000")
	})
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkScroll100k scrolls one row at a time through 100,000 rows of a
// 1,000,000-entry source, drawing every 50 rows, and reports the heap
// after 10,000 and after 100,000 rows: flat means the ratio stays near 1.
func BenchmarkScroll100k(b *testing.B) {
	b.ReportAllocs()
	var at10k, at100k uint64
	var resident int
	for b.Loop() {
		h := newHarness(b, bigSource(1_000_000), Options{}, 120, 40)
		down := keyMsg("j")
		for i := 1; i <= 100_000; i++ {
			h.send(down)
			if i%50 == 0 {
				_ = h.view()
			}
			if i == 10_000 {
				at10k = heapInuse()
			}
		}
		at100k = heapInuse()
		resident = h.m.list.win.len()
		if got := h.m.list.win.base + int64(h.m.list.cur); got != 100_000 {
			b.Fatalf("cursor at row %d, want 100000", got)
		}
	}
	b.ReportMetric(float64(at10k)/(1<<20), "heapMB@10k")
	b.ReportMetric(float64(at100k)/(1<<20), "heapMB@100k")
	b.ReportMetric(float64(at100k)/float64(at10k), "heap-ratio")
	b.ReportMetric(float64(resident), "rows-resident")
}
