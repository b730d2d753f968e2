package livesocket

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// benchPair returns a direct and a brokered connection to the same echo
// origin.
func benchPair(b *testing.B) (direct, brokered *websocket.Conn) {
	b.Helper()
	origin := newTestOrigin(b, echo)
	tb := newTestBroker(b, origin.url(), func(c *Config) { c.Registerer = nil })
	hdr := http.Header{}
	hdr.Set("Origin", allowedOrigin)
	d, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(origin.srv.URL, "http")+"/live/websocket", hdr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d, tb.mustDial(b, "/live/websocket", hdr)
}

func rtt(b *testing.B, c *websocket.Conn, msg []byte) time.Duration {
	start := time.Now()
	if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
		b.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func pct(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkRoundTrip measures message round trips (client → origin echo →
// client), direct and through the broker, interleaved in the same run, and
// reports p50/p99 of each and the p99 ratio (target <= 2).
func BenchmarkRoundTrip(b *testing.B) {
	direct, brokered := benchPair(b)
	msg := []byte(`["4","12","lv:phx-F5UgOQKJJCK_shjD","event",{"type":"click","event":"inc","value":{}}]`)
	for range 200 { // warm up both paths
		rtt(b, direct, msg)
		rtt(b, brokered, msg)
	}
	var ds, bs []time.Duration
	b.ResetTimer()
	for b.Loop() {
		ds = append(ds, rtt(b, direct, msg))
		bs = append(bs, rtt(b, brokered, msg))
	}
	b.StopTimer()
	b.ReportMetric(float64(pct(ds, 0.5).Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(pct(ds, 0.99).Microseconds()), "direct-p99-µs")
	b.ReportMetric(float64(pct(bs, 0.5).Microseconds()), "broker-p50-µs")
	b.ReportMetric(float64(pct(bs, 0.99).Microseconds()), "broker-p99-µs")
	b.ReportMetric(float64(pct(bs, 0.99))/float64(pct(ds, 0.99)), "p99-ratio")
}

// throughput pipes n messages of size bytes through c (writer and reader
// concurrently; the origin echoes) and returns bytes per second one way.
func throughput(b *testing.B, c *websocket.Conn, n, size int) float64 {
	msg := make([]byte, size)
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		for range n {
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for range n {
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return float64(n*size) / time.Since(start).Seconds()
}

// BenchmarkThroughput streams messages through an echo origin, direct and
// brokered alternately, and reports MB/s of each and the ratio (target
// >= 0.6).
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{128, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			direct, brokered := benchPair(b)
			n := max(200, (8<<20)/size) // ~8 MiB per round
			var dsum, bsum float64
			rounds := 0
			for b.Loop() {
				dsum += throughput(b, direct, n, size)
				bsum += throughput(b, brokered, n, size)
				rounds++
			}
			b.ReportMetric(dsum/float64(rounds)/1e6, "direct-MB/s")
			b.ReportMetric(bsum/float64(rounds)/1e6, "broker-MB/s")
			b.ReportMetric(bsum/dsum, "ratio")
		})
	}
}

// BenchmarkIdleSocketMemory opens 5,000 idle sockets through the broker
// and reports the broker process's memory per socket (both legs: the
// client-facing and the origin-facing connection, buffers, goroutines).
// The clients and the echo origin run in a child process (this test binary
// re-executed), so only the broker is measured here.
func BenchmarkIdleSocketMemory(b *testing.B) {
	if testing.Short() {
		b.Skip("5,000 sockets: skipped in -short")
	}
	const n = 5000
	raiseNoFile(b, 2*n+1000) // each process holds two fds per socket
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPeers$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FIRSTRENDER_HELPER_PEERS="+strconv.Itoa(n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	expect := func(prefix string) string {
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				return rest
			}
		}
		b.Fatalf("helper ended before %q", prefix)
		return ""
	}
	originAddr := expect("ORIGIN ")
	u, _ := url.Parse("http://" + originAddr)
	policy := mustPolicy(b, OriginConfig{Allowed: []string{"//app.test"}})
	running := make(chan struct{}, n)
	br, err := New(Config{Origin: u, Policy: policy, Logger: quietLogger(), MaxSockets: -1, onRun: func() { running <- struct{}{} }})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(br)
	defer srv.Close()

	before := memNow()
	fmt.Fprintln(stdin, strings.TrimPrefix(srv.URL, "http://"))
	if got := expect("READY "); got != strconv.Itoa(n) {
		b.Fatalf("helper opened %s sockets, want %d", got, n)
	}
	timeout := time.After(60 * time.Second)
	for i := range n { // the last handshakes finish server-side
		select {
		case <-running:
		case <-timeout:
			b.Fatalf("%d of %d sessions running after 60s", i, n)
		}
	}
	if br.Open() != n {
		b.Fatalf("broker has %d open sockets, want %d", br.Open(), n)
	}
	after := memNow()
	for b.Loop() {
		// The measurement is the state above; nothing to repeat.
	}
	b.ReportMetric(float64(after.heapStack-before.heapStack)/n/1024, "KiB/socket(heap+stack)")
	b.ReportMetric(float64(after.rss-before.rss)/n/1024, "KiB/socket(RSS)")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/n, "goroutines/socket")
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	br.Shutdown(ctx)
}

type memSample struct {
	heapStack, rss int64
	goroutines     int
}

func memNow() memSample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{heapStack: int64(ms.HeapInuse + ms.StackInuse), goroutines: runtime.NumGoroutine()}
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				s.rss = kb * 1024
			}
		}
	}
	return s
}

func raiseNoFile(tb testing.TB, want uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	if lim.Cur >= want {
		return
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < want {
		tb.Skipf("RLIMIT_NOFILE %d (max %d) is below the %d this benchmark needs", lim.Cur, lim.Max, want)
	}
}

// TestHelperPeers is the child process of BenchmarkIdleSocketMemory: an echo
// origin plus n idle clients. It does nothing in a normal test run.
func TestHelperPeers(t *testing.T) {
	t.Parallel()
	nStr := os.Getenv("FIRSTRENDER_HELPER_PEERS")
	if nStr == "" {
		t.Skip("helper process for BenchmarkIdleSocketMemory")
	}
	n, _ := strconv.Atoi(nStr)
	raiseNoFile(t, uint64(2*n+1000))
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		echo(c, r)
		c.Close()
	}))
	fmt.Println("ORIGIN", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		t.Fatal("no broker address")
	}
	target := "ws://" + in.Text() + "/live/websocket"
	hdr := http.Header{}
	hdr.Set("Origin", allowedOrigin)
	conns := make([]*websocket.Conn, 0, n)
	for range n {
		c, _, err := websocket.DefaultDialer.Dial(target, hdr)
		if err != nil {
			fmt.Println("ERROR", err)
			break
		}
		conns = append(conns, c)
		go func() { // read, so pings are answered
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	fmt.Println("READY", len(conns))
	in.Scan() // until the parent kills us or closes stdin
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// cpuNow is the process's user and system CPU time so far.
func cpuNow() (user, sys time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// BenchmarkEcho is the loadtest's live scenario in one process: conns
// connections each send a 256-byte LiveView-like message and wait for its
// echo, direct to the echo origin and through the broker (with the join
// guard on, as the server runs it). One op is one echoed message. Besides
// ns/op and allocs/op (the whole process: clients and origin included) it
// reports the process's CPU per message (cpu-µs/msg, and its user and
// system parts); the broker's own cost per message is the broker row minus
// the direct row of the same run. The system part (loopback TCP, wake-ups)
// is most of it and the noisiest on a shared machine; the user part is
// what the broker's own code and the Go runtime spend.
func BenchmarkEcho(b *testing.B) {
	msg := []byte(`["4","12","lv:phx-F1","event",{"type":"click","event":"inc","value":{"pad":"` +
		strings.Repeat("x", 256-80) + `"}}]`)
	for _, conns := range []int{32, 1} {
		for _, target := range []string{"direct", "broker"} {
			b.Run(fmt.Sprintf("conns=%d/%s", conns, target), func(b *testing.B) {
				origin := newTestOrigin(b, echo)
				hdr := http.Header{}
				hdr.Set("Origin", allowedOrigin)
				cs := make([]*websocket.Conn, conns)
				if target == "direct" {
					for i := range cs {
						c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(origin.srv.URL, "http")+"/live/websocket", hdr)
						if err != nil {
							b.Fatal(err)
						}
						b.Cleanup(func() { c.Close() })
						cs[i] = c
					}
				} else {
					tb := newTestBroker(b, origin.url(), func(c *Config) {
						c.Registerer = nil
						c.Guard = &GuardConfig{Cache: &fakeCache{}}
					})
					for i := range cs {
						cs[i] = tb.mustDial(b, "/live/websocket", hdr)
					}
				}
				echoAll := func(n int) {
					var wg sync.WaitGroup
					for i, c := range cs {
						k := n / conns
						if i < n%conns {
							k++
						}
						wg.Add(1)
						go func() {
							defer wg.Done()
							for range k {
								if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
									b.Error(err)
									return
								}
								if _, _, err := c.ReadMessage(); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
				}
				echoAll(100 * conns) // warm up (and past the join guard's window)
				b.ReportAllocs()
				b.ResetTimer()
				u0, s0 := cpuNow()
				echoAll(b.N)
				u1, s1 := cpuNow()
				b.StopTimer()
				perMsg := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(b.N) }
				b.ReportMetric(perMsg(u1-u0+s1-s0), "cpu-µs/msg")
				b.ReportMetric(perMsg(u1-u0), "user-µs/msg")
				b.ReportMetric(perMsg(s1-s0), "sys-µs/msg")
			})
		}
	}
}
