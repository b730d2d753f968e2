// Command loadtest measures firstrender against a plain net/http server in
// one run, over loopback only, bounded in time and in requests:
//
//	go run ./cmd/server/loadtest                       # every scenario
//	go run ./cmd/server/loadtest -scenarios hot,working-set -duration 5s
//	go run ./cmd/server/loadtest -list                 # the scenario registry
//
// It starts its peers as child processes of itself (see child.go): the
// origin, the baseline (a plain net/http handler writing the same 20 KB
// body and header fields a cache hit carries, from memory) and the real
// server (package httpcache/server, which cmd/server runs, on a temporary
// database in -dir, with the admin API mounted). The hit scenarios (hot,
// working-set, large) also measure nginx proxy_cache and Varnish in front
// of the same origin, and live measures nginx as a WebSocket proxy, when
// they are installed (peers.go: -nginx, -varnishd; a row "skipped: why"
// otherwise). With taskset and at least two CPUs, the measured server
// (baseline, firstrender, nginx or Varnish) is pinned to CPU 0 and the
// load generator (this process) and the origin to CPU 1 (live places the
// origin per group of rows: see runLive). The
// load generator drives -conns keep-alive connections (default 32) with a
// minimal HTTP/1.1 client, for -duration after a warm-up, and prints one
// table: requests/s, p50, p99, server CPU per request (utime+stime of the
// server process from /proc/<pid>/stat), allocations per request and GC
// share of the server's CPU (runtime/metrics, read over the child's
// control listener), hit ratio, and ratios against the scenario's
// reference measured in the same run.
//
// Scenarios live in a registry ([Register]); each file may add its own
// (a soak scenario, say) in an init function.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scenario is one entry of the registry: Run measures and returns rows
// for the table. Run must stop by itself (bounded by Options.Duration
// and Options.MaxRequests per measurement) and stop every process it
// started (Proc.Stop, or let Env's cleanup do it).
type Scenario struct {
	Name string
	Doc  string
	// Default scenarios run when -scenarios is not given.
	Default bool
	Run     func(ctx context.Context, env *Env) ([]Row, error)
}

var (
	registryMu sync.Mutex
	registry   []Scenario
)

// Register adds a scenario; call it from an init function. Names must be
// unique.
func Register(s Scenario) {
	registryMu.Lock()
	defer registryMu.Unlock()
	for _, o := range registry {
		if o.Name == s.Name {
			panic("loadtest: scenario " + s.Name + " registered twice")
		}
	}
	registry = append(registry, s)
}

// Options are the command's flags, shared by every scenario.
type Options struct {
	Conns       int
	Duration    time.Duration
	Warmup      time.Duration
	MaxRequests int64
	PageSize    int
	Pages       int   // working set
	LargePages  int   // larger than memory
	Memory      int64 // the server's memory tier (httpcache.Config.MemoryCacheSize); 0 = its default
	Growth      []int
	GrowthBody  int // body bytes of the growth filler records
	Dir         string
	Pin         bool
	Profile     string // directory: CPU/alloc/block/mutex profiles of the server under each scenario
	WSMessage   int
	Rounds      int // baseline/firstrender alternations per pair
	// BaselineOneBody: the baseline serves one shared body for every path
	// instead of each page from its own memory.
	BaselineOneBody bool
	Nginx           string // nginx binary ("" look it up, "off" not run); see peers.go
	Varnishd        string // varnishd binary (same)
}

// Row is one line of the table. Ref, when set, is the measurement the
// ratios are taken against (from the same run).
type Row struct {
	Scenario, Target string
	M                Measurement
	Ref              *Measurement
	Note             string
	// Skipped rows (a peer not installed or not hitting) print no
	// figures, only Note.
	Skipped bool
}

// Measurement is what one load run measured.
type Measurement struct {
	Requests  int64
	RPS       float64
	P50, P99  time.Duration
	CPUPerReq time.Duration // server process utime+stime / requests
	Allocs    float64       // server allocations per request; -1 unknown
	GCShare   float64       // GC CPU / total CPU of the server process; -1 unknown
	HitRatio  float64       // -1 when not applicable
	Errors    int64
	RSSMB     float64
	Extra     string
}

func main() {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "-role") {
		os.Exit(childMain(os.Args[1:]))
	}
	os.Exit(parentMain(os.Args[1:], os.Stdout, os.Stderr))
}

func parentMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	var scen, growth string
	var list bool
	fs.IntVar(&o.Conns, "conns", 32, "keep-alive connections")
	fs.DurationVar(&o.Duration, "duration", 5*time.Second, "measured time per target (bounded: at most 2m)")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured load before each measurement")
	fs.Int64Var(&o.MaxRequests, "max-requests", 5_000_000, "stop a measurement after this many requests")
	fs.IntVar(&o.PageSize, "size", 20480, "page body bytes")
	fs.IntVar(&o.Pages, "pages", 10_000, "distinct pages of the working-set and mixed scenarios")
	fs.IntVar(&o.LargePages, "large-pages", 100_000, "distinct pages of the larger-than-memory scenario (x -size bytes on disk; check df first)")
	fs.Int64Var(&o.Memory, "memory", 0, "the server's in-memory tier in bytes (httpcache.Config.MemoryCacheSize; 0: its default, -1: off)")
	fs.StringVar(&growth, "growth", "1000,100000,1000000", "store sizes of the growth scenario")
	fs.IntVar(&o.GrowthBody, "growth-body", 1024, "body bytes of the growth scenario's filler records (the 1,000 hit pages are -size)")
	fs.StringVar(&o.Dir, "dir", "", "directory for the databases (default: a new temp dir, removed at the end)")
	fs.BoolVar(&o.Pin, "pin", true, "pin the server (and the peers) to CPU 0 and the load generator and origin to CPU 1 with taskset (live: see -list)")
	fs.StringVar(&o.Profile, "profile", "", "write the server's CPU, alloc, block and mutex profiles of each scenario's firstrender run into this directory")
	fs.BoolVar(&o.BaselineOneBody, "baseline-one-body", false, "the plain handler serves one shared body for every path (the comparison before 2026-12-01 15:00), instead of each page from its own copy in memory")
	fs.IntVar(&o.Rounds, "rounds", 1, "alternate baseline and firstrender this many times per scenario (1 to 9) and report the median round")
	fs.IntVar(&o.WSMessage, "ws-message", 256, "live socket message bytes")
	fs.StringVar(&o.Nginx, "nginx", "", "nginx binary of the nginx proxy_cache peer (default: nginx on PATH or in /usr/sbin; \"off\": leave it out)")
	fs.StringVar(&o.Varnishd, "varnishd", "", "varnishd binary of the Varnish peer (default: varnishd on PATH or in /usr/sbin; \"off\": leave it out)")
	fs.StringVar(&scen, "scenarios", "", "comma-separated scenarios (default: every default scenario; -list shows them)")
	fs.BoolVar(&list, "list", false, "list the scenarios and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if list {
		for _, s := range registry {
			d := ""
			if s.Default {
				d = " (default)"
			}
			fmt.Fprintf(stdout, "%-16s %s%s\n", s.Name, s.Doc, d)
		}
		fmt.Fprintln(stdout, "\nPeers (hot, working-set, large, mixed; nginx also in live), each optional: nginx proxy_cache (-nginx) and")
		fmt.Fprintln(stdout, "Varnish (-varnishd), in front of the same origin, pinned with firstrender, configs in the run's dir.")
		for _, pk := range [][3]string{{"nginx", o.Nginx, "nginx"}, {"varnishd", o.Varnishd, "varnishd"}} {
			if p, why := lookPeer(pk[0], pk[1], pk[2]); p != "" {
				fmt.Fprintf(stdout, "  %-8s %s\n", pk[2], p)
			} else {
				fmt.Fprintf(stdout, "  %-8s %s\n", pk[2], why)
			}
		}
		return 0
	}
	if o.Duration <= 0 || o.Duration > 2*time.Minute || o.Conns < 1 || o.Conns > 1024 || o.PageSize < 512 || o.Rounds < 1 || o.Rounds > 9 {
		fmt.Fprintln(stderr, "loadtest: -duration must be in (0, 2m], -conns in [1, 1024], -size at least 512, -rounds in [1, 9]")
		return 2
	}
	for _, g := range strings.Split(growth, ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		n, err := strconv.Atoi(g)
		if err != nil || n < 1000 || n > 10_000_000 {
			fmt.Fprintf(stderr, "loadtest: -growth %q: sizes from 1000 to 10,000,000\n", g)
			return 2
		}
		o.Growth = append(o.Growth, n)
	}
	var run []Scenario
	if scen == "" {
		for _, s := range registry {
			if s.Default {
				run = append(run, s)
			}
		}
	} else {
		for _, name := range strings.Split(scen, ",") {
			i := slices.IndexFunc(registry, func(s Scenario) bool { return s.Name == strings.TrimSpace(name) })
			if i < 0 {
				fmt.Fprintf(stderr, "loadtest: unknown scenario %q (see -list)\n", name)
				return 2
			}
			run = append(run, registry[i])
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := newEnv(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return 1
	}
	defer env.cleanup()
	fmt.Fprintf(stderr, "loadtest: %s; %d CPUs; load average %s; pinning: %s; peers: %s\n", runtime.Version(), runtime.NumCPU(), loadAvg(), env.pinNote, env.peersNote())
	var rows []Row
	failed := false
	for _, s := range run {
		fmt.Fprintf(stderr, "loadtest: scenario %s ...\n", s.Name)
		t := time.Now()
		rs, err := s.Run(ctx, env)
		env.stopAll()
		rows = append(rows, rs...)
		if err != nil {
			fmt.Fprintf(stderr, "loadtest: scenario %s: %v\n", s.Name, err)
			failed = true
		}
		fmt.Fprintf(stderr, "loadtest: scenario %s done in %v\n", s.Name, time.Since(t).Round(time.Second))
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintf(stdout, "# loadtest %s, %d conns, %v per target, %d-byte pages, load average at end %s, %s\n",
		time.Now().UTC().Format(time.RFC3339), o.Conns, o.Duration, o.PageSize, loadAvg(), env.pinNote)
	printTable(stdout, rows)
	if failed {
		return 1
	}
	return 0
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
}

func printTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\treq/s\tp50\tp99\tCPU/req\tallocs/req\tGC%\thit%\tx req/s\tx p99\tx CPU\tnote\t")
	for _, r := range rows {
		if r.Skipped {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t\t\t\t%s\t\n", r.Scenario, r.Target, r.Note)
			continue
		}
		m := r.M
		allocs, gc, hit := "-", "-", "-"
		if m.Allocs >= 0 {
			allocs = fmt.Sprintf("%.1f", m.Allocs)
		}
		if m.GCShare >= 0 {
			gc = fmt.Sprintf("%.1f", 100*m.GCShare)
		}
		if m.HitRatio >= 0 {
			hit = fmt.Sprintf("%.1f", 100*m.HitRatio)
		}
		xr, xp, xc := "", "", ""
		if r.Ref != nil && r.Ref.RPS > 0 {
			xr = fmt.Sprintf("%.2f", m.RPS/r.Ref.RPS)
			if r.Ref.P99 > 0 {
				xp = fmt.Sprintf("%.2f", float64(m.P99)/float64(r.Ref.P99))
			}
			if r.Ref.CPUPerReq > 0 {
				xc = fmt.Sprintf("%.2f", float64(m.CPUPerReq)/float64(r.Ref.CPUPerReq))
			}
		}
		note := r.Note
		if m.Errors > 0 {
			note = strings.TrimSpace(note + fmt.Sprintf(" errors=%d", m.Errors))
		}
		if m.Extra != "" {
			note = strings.TrimSpace(note + " " + m.Extra)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Scenario, r.Target, m.RPS,
			fmtDur(m.P50), fmtDur(m.P99), fmtDur(m.CPUPerReq), allocs, gc, hit, xr, xp, xc, note)
	}
	tw.Flush()
}

// Env runs the peers of a scenario.
type Env struct {
	Opts    Options
	log     io.Writer
	exe     string
	dir     string
	ownDir  bool
	pin     bool
	pinNote string
	mu      sync.Mutex
	procs   []*Proc
	// The peers' binaries ("" not run, and why in the note).
	nginx, nginxNote      string
	varnishd, varnishNote string
}

func newEnv(o Options, log io.Writer) (*Env, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	e := &Env{Opts: o, log: log, exe: exe, dir: o.Dir}
	if e.dir == "" {
		if e.dir, err = os.MkdirTemp("", "firstrender-loadtest-"); err != nil {
			return nil, err
		}
		e.ownDir = true
	}
	e.pinNote = "off"
	if o.Pin {
		if _, err := exec.LookPath("taskset"); err != nil {
			e.pinNote = "off (no taskset)"
		} else if runtime.NumCPU() < 2 {
			e.pinNote = "off (1 CPU)"
		} else if err := exec.Command("taskset", "-a", "-p", "-c", "1", strconv.Itoa(os.Getpid())).Run(); err != nil {
			e.pinNote = "off (taskset: " + err.Error() + ")"
		} else {
			e.pin = true
			e.pinNote = "server (baseline, firstrender, nginx, Varnish) on CPU 0, load generator and origin on CPU 1 (live: see its notes)"
		}
	}
	e.nginx, e.nginxNote = lookPeer("nginx", o.Nginx, "nginx")
	e.varnishd, e.varnishNote = lookPeer("varnishd", o.Varnishd, "varnishd")
	return e, nil
}

func (e *Env) peersNote() string {
	var s []string
	for _, p := range [][3]string{{"nginx", e.nginx, e.nginxNote}, {"varnishd", e.varnishd, e.varnishNote}} {
		if p[1] != "" {
			s = append(s, p[0]+" "+p[1])
		} else {
			s = append(s, p[0]+" "+p[2])
		}
	}
	return strings.Join(s, "; ")
}

// Dir is the directory for databases; removed at the end unless given.
func (e *Env) Dir() string { return e.dir }

func (e *Env) cleanup() {
	e.stopAll()
	if e.ownDir {
		os.RemoveAll(e.dir)
	}
}

func (e *Env) stopAll() {
	e.mu.Lock()
	ps := e.procs
	e.procs = nil
	e.mu.Unlock()
	for _, p := range ps {
		p.Stop()
	}
}

// Proc is a child process: one of the roles in child.go.
type Proc struct {
	Role string
	Addr string            // public address
	Info map[string]string // the READY line's fields (admin, ctl, open_ms, ...)
	cmd  *exec.Cmd
	in   io.WriteCloser
	done chan struct{}
	err  error
	// group: a peer (peers.go) in a process group of its own, stopped by
	// signals to the group, its CPU time summed over its descendants.
	group    bool
	stopping atomic.Bool // a group's Stop has begun
}

// Pid is the process id of the child itself (taskset execs it in place).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stop ends the child (closing its stdin, then SIGTERM, then SIGKILL) and
// waits for it.
func (p *Proc) Stop() {
	if p.group {
		p.stopGroup()
		return
	}
	p.in.Close()
	select {
	case <-p.done:
		return
	case <-time.After(3 * time.Second):
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Wait waits for the child to exit by itself (bounded by ctx).
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readyTimeout bounds how long a child may take to print READY.
const readyTimeout = 15 * time.Minute

// start runs the child with role and args, on cpu ("0", "1"; "" unpinned),
// and waits (bounded) for its READY line.
func (e *Env) start(ctx context.Context, role, cpu string, args ...string) (*Proc, error) {
	argv := append([]string{"-role=" + role}, args...)
	var cmd *exec.Cmd
	if e.pin && cpu != "" {
		cmd = exec.Command("taskset", append([]string{"-c", cpu, e.exe}, argv...)...)
	} else {
		cmd = exec.Command(e.exe, argv...)
	}
	cmd.Stderr = e.log
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Role: role, cmd: cmd, in: in, done: make(chan struct{}), Info: map[string]string{}}
	// The child prints READY and may exit right after it (a prefill with
	// -exit-after-prefill): Wait closes the stdout pipe once the child has
	// exited, so it must not run before the scanner has read everything
	// (os/exec: "it is incorrect to call Wait before all reads from the
	// pipe have completed"), and done must not be closed before a READY
	// line already written is in ready. Otherwise the READY line was lost
	// or lost the select below, and the start failed with "exited before
	// it was ready: <nil>" (exit status 0).
	ready := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "READY ") {
				select {
				case ready <- l:
				default:
				}
			}
		}
		io.Copy(io.Discard, out) // a line too long for the scanner: keep draining
	}()
	go func() {
		<-scanned
		p.err = cmd.Wait()
		close(p.done)
	}()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	// Prefilling a million records takes a while (3.5 to 4.5 minutes on
	// the loaded 2-core machine); nothing else does.
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	parse := func(l string) (*Proc, error) {
		for _, f := range strings.Fields(l)[1:] {
			k, v, _ := strings.Cut(f, "=")
			p.Info[k] = v
		}
		p.Addr = p.Info["addr"]
		return p, nil
	}
	select {
	case l := <-ready:
		return parse(l)
	case <-p.done:
		select {
		case l := <-ready: // READY, then exited by itself (scanned before done)
			return parse(l)
		default:
		}
		return nil, fmt.Errorf("%s exited before it was ready: %v", role, p.err)
	case <-t.C:
		p.Stop()
		return nil, fmt.Errorf("%s not ready within %v", role, readyTimeout)
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
}

// StartOrigin starts the origin (on the load generator's CPU).
func (e *Env) StartOrigin(ctx context.Context) (*Proc, error) {
	return e.start(ctx, "origin", "1", "-size="+strconv.Itoa(e.Opts.PageSize))
}

// StartBaseline starts the plain net/http server (on the server CPU),
// serving pages distinct bodies (see runBaseline; one with
// -baseline-one-body, as before 2026-12-01 15:00).
func (e *Env) StartBaseline(ctx context.Context, pages int) (*Proc, error) {
	if e.Opts.BaselineOneBody {
		pages = 1
	}
	return e.start(ctx, "baseline", "0", "-size="+strconv.Itoa(e.Opts.PageSize), "-bodies="+strconv.Itoa(max(pages, 1)))
}

// ServerOpts configure one firstrender child.
type ServerOpts struct {
	DB               string // database file; "" a new one in Dir
	Listen           string // "" any port
	Memory           int64  // 0: Options.Memory
	Prefill          int    // records /g/0../g/<n-1> stored before READY
	PrefillBody      int    // body bytes of the copies from PrefillFull on (0: the page size)
	PrefillFull      int    // the first PrefillFull copies keep the whole page
	NoSync           bool
	ExitAfterPrefill bool
}

var dbSeq int

// StartServer starts firstrender in front of origin (on the server CPU).
func (e *Env) StartServer(ctx context.Context, origin *Proc, so ServerOpts) (*Proc, error) {
	if so.DB == "" {
		e.mu.Lock()
		dbSeq++
		so.DB = fmt.Sprintf("%s/fr-%d.db", e.dir, dbSeq)
		e.mu.Unlock()
	}
	if so.Listen == "" {
		so.Listen = "127.0.0.1:0"
	}
	if so.Memory == 0 {
		so.Memory = e.Opts.Memory
	}
	args := []string{"-origin=http://" + origin.Addr, "-db=" + so.DB, "-listen=" + so.Listen,
		"-memory=" + strconv.FormatInt(so.Memory, 10), "-size=" + strconv.Itoa(e.Opts.PageSize),
		"-prefill=" + strconv.Itoa(so.Prefill), "-prefill-body=" + strconv.Itoa(so.PrefillBody),
		"-prefill-full=" + strconv.Itoa(so.PrefillFull)}
	if so.NoSync {
		args = append(args, "-nosync")
	}
	if so.ExitAfterPrefill {
		args = append(args, "-exit-after-prefill")
	}
	p, err := e.start(ctx, "server", "0", args...)
	if p != nil {
		p.Info["db"] = so.DB
	}
	return p, err
}

// cpuTime is a process's utime+stime from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	_, d, err := readStat(pid)
	return d, err
}

// cpu is p's CPU time: its own, or with its descendants' for a peer.
func (p *Proc) cpu() (time.Duration, error) {
	if p.group {
		return treeCPU(p.Pid())
	}
	return cpuTime(p.Pid())
}

// rssMB is a process's resident set from /proc/<pid>/status.
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

var ctlClient = &http.Client{Timeout: 60 * time.Second}

func (p *Proc) memStats() (memStats, bool) {
	ctl := p.Info["ctl"]
	if ctl == "" {
		return memStats{}, false
	}
	resp, err := ctlClient.Get("http://" + ctl + "/memstats")
	if err != nil {
		return memStats{}, false
	}
	defer resp.Body.Close()
	var m memStats
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return memStats{}, false
	}
	return m, true
}

// tierFigures are a firstrender child's memory tier figures, from its
// admin listener's /metrics: the entries held, and the store reads offered
// to the tier (admitted or rejected, firstrender_memory_admissions_total
// plus firstrender_memory_rejections_total): every hit not served from
// memory is one.
type tierFigures struct{ entries, reads float64 }

func (p *Proc) tierStats() (tierFigures, bool) {
	a := p.Info["admin"]
	if a == "" {
		return tierFigures{}, false
	}
	resp, err := ctlClient.Get("http://" + a + "/metrics")
	if err != nil {
		return tierFigures{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return tierFigures{}, false
	}
	return parseTierFigures(resp.Body)
}

// parseTierFigures reads tierFigures from a Prometheus text exposition;
// ok is false without a firstrender_memory_entries sample.
func parseTierFigures(r io.Reader) (t tierFigures, ok bool) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return tierFigures{}, false
	}
	e := fams["firstrender_memory_entries"]
	if e == nil || len(e.GetMetric()) == 0 {
		return tierFigures{}, false
	}
	// A sample is a gauge or counter as the server declares it, untyped
	// without a TYPE line.
	value := func(m *dto.Metric) float64 {
		return m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
	}
	t.entries = value(e.GetMetric()[0])
	for _, name := range []string{"firstrender_memory_admissions_total", "firstrender_memory_rejections_total"} {
		for _, m := range fams[name].GetMetric() {
			t.reads += value(m)
		}
	}
	return t, true
}

// Measure runs l against server process p after a warm-up (Options.Warmup
// of the same load, unmeasured), reading p's CPU time and runtime figures
// around the measured part.
func (e *Env) Measure(ctx context.Context, p *Proc, l *load) (Measurement, *result) {
	if l.conns == 0 {
		l.conns = e.Opts.Conns
	}
	if l.max == 0 {
		l.max = e.Opts.MaxRequests
	}
	if e.Opts.Warmup > 0 {
		w := *l
		w.duration, w.check = e.Opts.Warmup, nil
		w.run(ctx)
	}
	l.duration = e.Opts.Duration
	// Nothing else of the run may work on the measured core: a target's
	// leftover work after its own measurement (a commit, an access-time
	// flush, a peer's worker pool winding down) would be charged to the
	// next target's requests/s.
	busy, waited, quiet := e.quiesce(ctx, p)
	if !quiet {
		fmt.Fprintf(e.log, "loadtest: %s: the other processes still used %.0f%% of a core after %s; measuring anyway\n", p.Role, 100*busy, waited.Round(time.Millisecond))
	}
	o0 := e.othersCPU(p, false)
	var profDone chan struct{}
	if e.Opts.Profile != "" && l.profile != "" {
		profDone = e.startProfiles(p, l.profile)
	}
	m0, okm := p.memStats()
	t0m, okt := p.tierStats()
	s0, oks := readSteal()
	io0, errio := p.sysIO()
	c0, errc := p.cpu()
	t0 := time.Now()
	r := l.run(ctx)
	c1, errc2 := p.cpu()
	io1, errio2 := p.sysIO()
	s1, oks2 := readSteal()
	others := float64(e.othersCPU(p, false)-o0) / float64(time.Since(t0))
	m1, okm2 := p.memStats()
	t1m, okt2 := p.tierStats()
	if profDone != nil {
		<-profDone
		e.saveProfiles(p, l.profile)
	}
	m := Measurement{Requests: r.requests, RPS: r.rps(), P50: r.pct(0.50), P99: r.pct(0.99),
		Allocs: -1, GCShare: -1, HitRatio: r.hitRatio(), Errors: r.errors, RSSMB: rssMB(p.Pid())}
	if errc == nil && errc2 == nil && r.requests > 0 {
		m.CPUPerReq = (c1 - c0) / time.Duration(r.requests)
	}
	if okm && okm2 && r.requests > 0 {
		m.Allocs = float64(m1.Allocs-m0.Allocs) / float64(r.requests)
		if d := m1.TotalCPU - m0.TotalCPU; d > 0 {
			m.GCShare = (m1.GCCPU - m0.GCCPU) / d
		}
	}
	if !quiet || others > quietShare {
		m.Extra = fmt.Sprintf("other targets used %.0f%% of a core before, %.0f%% during", 100*busy, 100*others)
	}
	if oks && oks2 {
		m.Extra = strings.TrimSpace(m.Extra + " " + stealSince(s0, s1))
	}
	if c := m1.Commits - m0.Commits; okm && okm2 && c > 0 {
		m.Extra = strings.TrimSpace(m.Extra + fmt.Sprintf(" store: %d commits, %.1f writes each", c, float64(m1.Writes-m0.Writes)/float64(c)))
	}
	if errio == nil && errio2 == nil && r.requests > 0 {
		m.Extra = strings.TrimSpace(m.Extra + fmt.Sprintf(" syscalls/req: %.2f reads, %.2f writes", float64(io1.reads-io0.reads)/float64(r.requests), float64(io1.writes-io0.writes)/float64(r.requests)))
	}
	if okt && okt2 && r.requests > 0 && t1m.entries+t1m.reads > 0 {
		reads := t1m.reads - t0m.reads
		m.Extra = strings.TrimSpace(m.Extra + fmt.Sprintf(" memory tier: %.0f entries, %.0f store reads (%.1f%% of requests)", t1m.entries, reads, 100*reads/float64(r.requests)))
	}
	if r.firstErr != nil {
		fmt.Fprintf(e.log, "loadtest: %s: first error: %v\n", p.Role, r.firstErr)
	}
	return m, r
}

const (
	quietShare  = 0.03 // of a core, all the other processes together
	quietWindow = 100 * time.Millisecond
	quietMax    = 10 * time.Second
)

// quiesce waits until the run's processes other than p use less than
// quietShare of a core together over a quietWindow, at most quietMax. It
// returns their share in the last window, how long it waited and whether
// they went quiet. The generator itself is idle here: nothing is sent.
func (e *Env) quiesce(ctx context.Context, p *Proc) (busy float64, waited time.Duration, quiet bool) {
	start := time.Now()
	for {
		c0, t0 := e.othersCPU(p, true), time.Now()
		select {
		case <-ctx.Done():
			return busy, time.Since(start), false
		case <-time.After(quietWindow):
		}
		busy = float64(e.othersCPU(p, true)-c0) / float64(time.Since(t0))
		if busy < quietShare {
			return busy, time.Since(start), true
		}
		if time.Since(start) >= quietMax {
			return busy, time.Since(start), false
		}
	}
}

// othersCPU is the CPU time so far of the run's live processes other
// than p (a peer's with its descendants), the origin's only with
// origin: during a measurement the origin answers p's misses.
func (e *Env) othersCPU(p *Proc, origin bool) time.Duration {
	e.mu.Lock()
	ps := slices.Clone(e.procs)
	e.mu.Unlock()
	var sum time.Duration
	for _, q := range ps {
		if q == p || q.Role == "origin" && !origin {
			continue
		}
		select {
		case <-q.done:
			continue
		default:
		}
		if d, err := q.cpu(); err == nil {
			sum += d
		}
	}
	return sum
}

// startProfiles sets the child's block and mutex profile rates and fetches
// a CPU profile over the measured window into Options.Profile.
func (e *Env) startProfiles(p *Proc, name string) chan struct{} {
	ctl := "http://" + p.Info["ctl"]
	if r, err := ctlClient.Get(ctl + "/rate?block=10000&mutex=10"); err == nil {
		r.Body.Close()
	}
	done := make(chan struct{})
	secs := max(1, int(e.Opts.Duration/time.Second)-1)
	go func() {
		defer close(done)
		e.fetch(ctl+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), name+".cpu.pprof")
	}()
	return done
}

func (e *Env) saveProfiles(p *Proc, name string) {
	ctl := "http://" + p.Info["ctl"]
	for _, k := range []string{"allocs", "block", "mutex"} {
		e.fetch(ctl+"/debug/pprof/"+k, name+"."+k+".pprof")
	}
	if r, err := ctlClient.Get(ctl + "/rate?block=0&mutex=0"); err == nil {
		r.Body.Close()
	}
}

func (e *Env) fetch(u, file string) {
	if err := os.MkdirAll(e.Opts.Profile, 0o755); err != nil {
		fmt.Fprintf(e.log, "loadtest: profile: %v\n", err)
		return
	}
	resp, err := ctlClient.Get(u)
	if err != nil {
		fmt.Fprintf(e.log, "loadtest: profile %s: %v\n", u, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(e.Opts.Profile + "/" + file)
	if err != nil {
		fmt.Fprintf(e.log, "loadtest: profile: %v\n", err)
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
}

// stealNote is the share of a CPU's time taken by the hypervisor (steal,
// /proc/stat) during a measurement above which its row's note says so: the
// VM's host gave the run less than the CPUs it counts on.
const stealNote = 0.02

// cpuTicks are /proc/stat's per-CPU lines: each CPU's total and steal ticks.
type cpuTicks struct{ total, steal []uint64 }

func readSteal() (cpuTicks, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}, false
	}
	return parseSteal(string(b))
}

// parseSteal reads the cpuN lines of a /proc/stat text (user nice system
// idle iowait irq softirq steal ...; guest time is already in user).
func parseSteal(stat string) (cpuTicks, bool) {
	var t cpuTicks
	for _, l := range strings.Split(stat, "\n") {
		f := strings.Fields(l)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var total, steal uint64
		for j, v := range f[1:9] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return cpuTicks{}, false
			}
			total += n
			if j == 7 {
				steal = n
			}
		}
		t.total, t.steal = append(t.total, total), append(t.steal, steal)
	}
	return t, len(t.total) > 0
}

// since is each CPU's steal share between t0 and t.
func (t cpuTicks) since(t0 cpuTicks) []float64 {
	if len(t.total) != len(t0.total) {
		return nil
	}
	out := make([]float64, len(t.total))
	for i := range t.total {
		if d := t.total[i] - t0.total[i]; d > 0 {
			out[i] = float64(t.steal[i]-t0.steal[i]) / float64(d)
		}
	}
	return out
}

// stealSince is the note on the host's steal time between t0 and t1, or
// "" when it stayed under stealNote on every CPU.
func stealSince(t0, t1 cpuTicks) string {
	st := t1.since(t0)
	if !slices.ContainsFunc(st, func(v float64) bool { return v >= stealNote }) {
		return ""
	}
	return fmtSteal(st)
}

func fmtSteal(st []float64) string {
	parts := make([]string, len(st))
	for i, v := range st {
		parts[i] = fmt.Sprintf("cpu%d %.0f%%", i, 100*v)
	}
	return "host steal: " + strings.Join(parts, ", ")
}
