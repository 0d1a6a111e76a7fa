// formica-bench-go: the Go peers of formica-bench (docs/benchmarks.md). It is
// started by formica-bench for one (workload, system, run), speaks the child
// protocol of bench/bench.h, and uses the standard library only:
//
//	formica-bench-go --child WORKLOAD SYSTEM --fd N --params "k=v ..." [--quick] [--series FILE]
//
// Systems:
//
//	go-goroutines  W1-W4: one goroutine per task, a sync.WaitGroup to wait
//	go-pool        W1-W4: a bounded pool of at most capacity goroutines, started
//	               on demand, taking tasks from one unbuffered channel, each
//	               leaving after expiry idle (1 s unless the workload names one)
//	go-syncpool    O1, O1s, O1h: sync.Pool of 64-byte slices
//
// The sizes come from --params (formica-bench passes its own); figures use
// the metric names of the C workloads. Go's defaults otherwise (GOMAXPROCS =
// CPUs, GOGC = 100).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

type params map[string]int64

func (p params) get(key string) int64 {
	v, ok := p[key]
	if !ok {
		panic("missing parameter " + key)
	}
	return v
}

// result is one line of the child protocol: "ok name=value ..." or "fail why".
type result struct {
	names  []string
	values []float64
	err    string
}

func (r *result) set(name string, v float64) {
	r.names = append(r.names, name)
	r.values = append(r.values, v)
}

func (r *result) fail(format string, args ...interface{}) {
	if r.err == "" {
		r.err = fmt.Sprintf(format, args...)
	}
}

func (r *result) line() string {
	if r.err != "" {
		return "fail " + strings.ReplaceAll(r.err, "\n", " ") + "\n"
	}
	var b strings.Builder
	b.WriteString("ok")
	for i, n := range r.names {
		fmt.Fprintf(&b, " %s=%s", n, strconv.FormatFloat(r.values[i], 'g', 17, 64))
	}
	b.WriteString("\n")
	return b.String()
}

// ---- the pools ----

type pool interface {
	submit(task func())
	wait()
}

// goroutines: one goroutine per task.
type goroutines struct{ wg sync.WaitGroup }

func (g *goroutines) submit(task func()) {
	g.wg.Add(1)
	go func() {
		task()
		g.wg.Done()
	}()
}

func (g *goroutines) wait() { g.wg.Wait() }

// boundedPool: at most capacity workers, started when a task finds no idle
// one, each leaving after expiry without a task.
type boundedPool struct {
	work   chan func()
	slots  chan struct{} // one token per running worker
	expiry time.Duration
	wg     sync.WaitGroup
}

func newBoundedPool(capacity int, expiry time.Duration) *boundedPool {
	return &boundedPool{work: make(chan func()), slots: make(chan struct{}, capacity), expiry: expiry}
}

func (p *boundedPool) worker(task func()) {
	timer := time.NewTimer(p.expiry)
	defer timer.Stop()
	for {
		task()
		p.wg.Done()
		if !timer.Stop() {
			<-timer.C
		}
		timer.Reset(p.expiry)
		select {
		case task = <-p.work:
		case <-timer.C:
			<-p.slots
			return
		}
	}
}

func (p *boundedPool) submit(task func()) {
	p.wg.Add(1)
	select { // an idle worker first
	case p.work <- task:
		return
	default:
	}
	select { // then an idle worker or a new one, or wait for either
	case p.work <- task:
	case p.slots <- struct{}{}:
		go p.worker(task)
	}
}

func (p *boundedPool) wait() { p.wg.Wait() }

func newPool(system string, capacity int, expiry time.Duration) (pool, error) {
	switch system {
	case "go-goroutines":
		return &goroutines{}, nil
	case "go-pool":
		return newBoundedPool(capacity, expiry), nil
	}
	return nil, fmt.Errorf("no pool system %s", system)
}

// ---- W1-W3 ----

func burn(iters uint64) uint64 {
	x := uint64(88172645463325252)
	for i := uint64(0); i < iters; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// threadCPU is this OS thread's CPU time (the caller locks itself to it).
func threadCPU() float64 {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// cpuPerTask measures the ideal of W3 in this program, as the C side does in
// its own: the best of 3 batches of tasks run inline.
func cpuPerTask(iters uint64, n int) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	best := 1e9
	var sink uint64
	for batch := 0; batch < 3; batch++ {
		t0 := threadCPU()
		for i := 0; i < n; i++ {
			sink ^= burn(iters)
		}
		if d := (threadCPU() - t0) / float64(n); d < best {
			best = d
		}
	}
	if sink == 1 {
		fmt.Fprint(os.Stderr, "")
	}
	return best
}

// batch runs the timed part of W1-W3: create, submit every task, wait.
func batch(system string, p params, task func(), done *int64, r *result) float64 {
	tasks := p.get("tasks")
	t0 := time.Now()
	pl, err := newPool(system, int(p.get("capacity")), time.Second)
	if err != nil {
		r.fail("%v", err)
		return 0
	}
	for i := int64(0); i < tasks; i++ {
		pl.submit(task)
	}
	pl.wait()
	wall := time.Since(t0).Seconds()
	if got := atomic.LoadInt64(done); got != tasks {
		r.fail("wait returned with %d of %d tasks done", got, tasks)
	}
	return wall
}

func runW1(system string, p params, r *result) {
	var done int64
	wall := batch(system, p, func() { atomic.AddInt64(&done, 1) }, &done, r)
	r.set("ns_per_task", wall*1e9/float64(p.get("tasks")))
	r.set("submit_retries", 0)
}

func runW2(system string, p params, r *result) {
	var done int64
	sleep := time.Duration(p.get("sleep_ns"))
	wall := batch(system, p, func() { time.Sleep(sleep); atomic.AddInt64(&done, 1) }, &done, r)
	r.set("wall", wall)
	r.set("submit_retries", 0)
}

func runW3(system string, p params, r *result) {
	iters := uint64(p.get("burn_iters"))
	ideal := cpuPerTask(iters, int(p.get("calibration_tasks"))) * float64(p.get("tasks")) /
		float64(p.get("capacity"))
	var done, sink int64
	task := func() {
		atomic.AddInt64(&sink, int64(burn(iters)&1))
		atomic.AddInt64(&done, 1)
	}
	wall := batch(system, p, task, &done, r)
	r.set("wall", wall)
	r.set("wall_over_ideal", wall/ideal)
	r.set("submit_retries", 0)
}

// ---- W4 ----

// procSample reads the OS threads and the resident set of this process.
func procSample() (threads int64, rssMB float64, ok bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 22 {
		return 0, 0, false
	}
	threads, _ = strconv.ParseInt(f[20-3], 10, 64)
	pages, _ := strconv.ParseInt(f[24-3], 10, 64)
	return threads, float64(pages) * float64(os.Getpagesize()) / (1024 * 1024), true
}

// sampler keeps the peak thread count every 10 ms and writes every 5th sample
// to the series file, if any.
func sampler(stop <-chan struct{}, peak *int64, series *os.File, finished chan<- struct{}) {
	t0 := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		if th, rss, ok := procSample(); ok {
			if th > *peak {
				*peak = th
			}
			if series != nil && n%5 == 0 {
				fmt.Fprintf(series, "%.3f %.2f %d\n", time.Since(t0).Seconds(), rss, th)
			}
		}
		select {
		case <-stop:
			close(finished)
			return
		case <-tick.C:
		}
	}
}

func runW4(system string, p params, seriesPath string, r *result) {
	bursts, tasks := p.get("bursts"), p.get("tasks")
	sleep := time.Duration(p.get("sleep_ns"))
	interval := time.Duration(p.get("interval_ns"))
	pl, err := newPool(system, int(p.get("capacity")), time.Duration(p.get("expiry_ns")))
	if err != nil {
		r.fail("%v", err)
		return
	}
	var series *os.File
	if seriesPath != "" {
		if series, err = os.Create(seriesPath); err == nil {
			defer series.Close()
		}
	}
	var peak, done int64
	stop, finished := make(chan struct{}), make(chan struct{})
	_, rssBefore, _ := procSample()
	go sampler(stop, &peak, series, finished)
	task := func() { time.Sleep(sleep); atomic.AddInt64(&done, 1) }
	t0 := time.Now()
	slowest := 0.0
	for b := int64(0); b < bursts; b++ {
		time.Sleep(time.Until(t0.Add(time.Duration(b) * interval)))
		start := time.Now()
		for i := int64(0); i < tasks; i++ {
			pl.submit(task)
		}
		pl.wait()
		if d := time.Since(start).Seconds(); d > slowest {
			slowest = d
		}
	}
	time.Sleep(time.Duration(p.get("settle_ns")))
	threads, rssAfter, ok := procSample()
	close(stop)
	<-finished
	if !ok {
		r.fail("reading /proc/self/stat")
	}
	if done != bursts*tasks {
		r.fail("%d of %d tasks done", done, bursts*tasks)
	}
	r.set("peak_threads", float64(peak))
	r.set("threads_after_idle", float64(threads))
	r.set("rss_after_idle", rssAfter)
	r.set("rss_before", rssBefore)
	r.set("slowest_burst", slowest*1e3)
	r.set("submit_retries", 0)
}

// ---- O1, O1s, O1h: sync.Pool ----

func newObjPool(size int) *sync.Pool {
	return &sync.Pool{New: func() interface{} {
		b := make([]byte, size)
		return &b
	}}
}

func runPairs(p params, r *result) {
	pairs, threads := p.get("pairs"), int(p.get("threads"))
	pl := newObjPool(int(p.get("obj_size")))
	var ready int32
	var wg sync.WaitGroup
	body := func() {
		atomic.AddInt32(&ready, 1)
		for atomic.LoadInt32(&ready) < int32(threads) {
		}
		for i := int64(0); i < pairs; i++ {
			b := pl.Get().(*[]byte)
			(*b)[0] = byte(i)
			pl.Put(b)
		}
	}
	for i := 1; i < threads; i++ {
		wg.Add(1)
		go func() { body(); wg.Done() }()
	}
	for atomic.LoadInt32(&ready) < int32(threads-1) {
	}
	t0 := time.Now()
	body()
	wg.Wait()
	r.set("ns_per_pair", time.Since(t0).Seconds()*1e9/float64(pairs))
}

func runHandoff(p params, r *result) {
	pairs, ring := p.get("pairs"), p.get("ring")
	pl := newObjPool(int(p.get("obj_size")))
	slots := make([]*[]byte, ring)
	var head, tail int64 // next slot to fill, next slot to empty
	go func() {
		for i := int64(0); i < pairs; i++ {
			b := pl.Get().(*[]byte)
			(*b)[0] = byte(i)
			for i-atomic.LoadInt64(&tail) >= ring {
			}
			slots[i%ring] = b
			atomic.StoreInt64(&head, i+1)
		}
	}()
	t0 := time.Now()
	for i := int64(0); i < pairs; i++ {
		for atomic.LoadInt64(&head) <= i {
		}
		b := slots[i%ring]
		atomic.StoreInt64(&tail, i+1)
		pl.Put(b)
	}
	r.set("ns_per_object", time.Since(t0).Seconds()*1e9/float64(pairs))
}

// ---- main ----

func parseParams(s string) params {
	p := params{}
	for _, kv := range strings.Fields(s) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				p[k] = n
			}
		}
	}
	return p
}

func main() {
	args := os.Args[1:]
	if len(args) < 3 || args[0] != "--child" {
		fmt.Fprintln(os.Stderr, "usage: formica-bench-go --child WORKLOAD SYSTEM --fd N --params P [--quick] [--series FILE]")
		os.Exit(2)
	}
	workload, system := args[1], args[2]
	fd, p, series := -1, params{}, ""
	for i := 3; i < len(args); i++ {
		switch {
		case args[i] == "--fd" && i+1 < len(args):
			fd, _ = strconv.Atoi(args[i+1])
			i++
		case args[i] == "--params" && i+1 < len(args):
			p = parseParams(args[i+1])
			i++
		case args[i] == "--series" && i+1 < len(args):
			series = args[i+1]
			i++
		}
	}
	if fd < 0 {
		fmt.Fprintln(os.Stderr, "formica-bench-go: --fd missing")
		os.Exit(2)
	}
	out := os.NewFile(uintptr(fd), "report")
	r := &result{}
	func() {
		defer func() {
			if e := recover(); e != nil {
				r.fail("%v", e)
			}
		}()
		switch {
		case workload == "W1" && system != "go-syncpool":
			runW1(system, p, r)
		case workload == "W2" && system != "go-syncpool":
			runW2(system, p, r)
		case workload == "W3" && system != "go-syncpool":
			runW3(system, p, r)
		case workload == "W4" && system != "go-syncpool":
			runW4(system, p, series, r)
		case (workload == "O1" || workload == "O1s") && system == "go-syncpool":
			runPairs(p, r)
		case workload == "O1h" && system == "go-syncpool":
			runHandoff(p, r)
		default:
			r.fail("formica-bench-go has no %s on %s", system, workload)
		}
	}()
	// One write below PIPE_BUF: the parent gets the whole line or nothing.
	if _, err := out.Write([]byte(r.line())); err != nil {
		os.Exit(1)
	}
}
