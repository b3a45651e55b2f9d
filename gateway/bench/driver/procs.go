package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process the driver started; every one is stopped when the driver ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
	err  error
}

var (
	procsMu sync.Mutex
	procs   []*proc
)

// spec describes a process to start.
type spec struct {
	name string
	// core pins the process (and its threads) to one CPU with taskset; -1 leaves it free.
	core int
	bin  string
	args []string
	env  []string
	dir  string
	// quiet sends standard output to /dev/null (access logs under load); standard error
	// always goes to logs/<name>.log.
	quiet bool
	// cred runs the process as another account (PostgreSQL refuses root).
	cred *syscall.Credential
}

func start(s spec) (*proc, error) {
	logFile, err := os.Create(filepath.Join(cfg.work, "logs", s.name+".log"))
	if err != nil {
		return nil, err
	}
	bin, args := s.bin, s.args
	if s.core >= 0 && cfg.pin {
		// taskset execs the program, so the pid is the program's own.
		args = append([]string{"-c", strconv.Itoa(s.core), bin}, args...)
		bin = "taskset"
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Dir = s.dir
	cmd.Stderr = logFile
	cmd.Stdout = logFile
	if s.quiet {
		cmd.Stdout = nil // /dev/null
	}
	// Should the driver die without stopping it, the process is told to end too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Credential: s.cred}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", s.name, err)
	}
	p := &proc{name: s.name, cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	return p, nil
}

// exited reports whether p has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends p: SIGTERM, then SIGKILL after a grace period.
func (p *proc) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(8 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stopAll ends every process still running, newest first.
func stopAll() {
	procsMu.Lock()
	list := append([]*proc(nil), procs...)
	procsMu.Unlock()
	var wg sync.WaitGroup
	for i := len(list) - 1; i >= 0; i-- {
		wg.Go(func() { list[i].stop() })
	}
	wg.Wait()
}

// tail is the end of a process's log, for error messages.
func tail(name string) string {
	b, _ := os.ReadFile(filepath.Join(cfg.work, "logs", name+".log"))
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return string(b)
}

// waitHTTP polls url until it answers want, p ends, or timeout passes. It returns the time
// from since to the first such answer.
func waitHTTP(p *proc, url string, want int, since time.Time, timeout time.Duration) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second}
	deadline := since.Add(timeout)
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			return 0, fmt.Errorf("%s exited: %v\n%s", p.name, p.err, tail(p.name))
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return time.Since(since), nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	name := url
	if p != nil {
		name = p.name + " (" + url + ")"
	}
	return 0, fmt.Errorf("%s did not answer %d within %s", name, want, timeout)
}

// waitTCP waits until addr accepts connections.
func waitTCP(p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, tail(p.name))
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s: nothing listens on %s after %s", p.name, addr, timeout)
}

// portFree fails when something already listens on addr: a benchmark must not measure,
// or disturb, someone else's server.
func portFree(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is already in use; stop what listens there", addr)
	}
	return nil
}

// cpuTicks is the user+system CPU time of pid, in clock ticks; with children, also the
// time of its children that have ended (PostgreSQL's backends).
func cpuTicks(pid int, children bool) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses; fields follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is the state (field 3); utime is field 14, stime 15, cutime 16, cstime 17.
	var sum int64
	idx := []int{11, 12}
	if children {
		idx = append(idx, 13, 14)
	}
	for _, k := range idx {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// procStats reads /proc/<pid>/stat of every process, keyed by pid, as the fields after the
// command name (which may itself hold spaces and parentheses): field 0 is the state, 1 the
// parent pid, 6 the flags, 11 and 12 user and system time in clock ticks.
func procStats() map[int][]string {
	out := map[int][]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		out[pid] = strings.Fields(string(b[i+1:]))
	}
	return out
}

// childrenOf lists the live children of pid.
func childrenOf(pid int) []int {
	var out []int
	parent := strconv.Itoa(pid)
	for c, f := range procStats() {
		if len(f) > 1 && f[1] == parent {
			out = append(out, c)
		}
	}
	return out
}

// group is the set of processes one measured party consists of: a front door and, for
// Spring Cloud Gateway, its Redis; for PostgreSQL, the postmaster and its backends.
type group struct {
	pids []int
	// tree adds the live children of each pid and the CPU time of the ended ones.
	tree bool
}

func (g group) cpuSeconds() float64 {
	var ticks int64
	for _, pid := range g.pids {
		t, err := cpuTicks(pid, g.tree)
		if err == nil {
			ticks += t
		}
		if g.tree {
			for _, c := range childrenOf(pid) {
				if t, err := cpuTicks(c, false); err == nil {
					ticks += t
				}
			}
		}
	}
	return float64(ticks) / float64(cfg.clkTck)
}

// statusKB reads a "Name: N kB" line of /proc/<pid>/status.
func statusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(strings.TrimPrefix(line, field+":"))
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// peakMB is the summed peak resident memory (VmHWM) of the group's processes.
func (g group) peakMB() float64 {
	var kb int64
	for _, pid := range g.pids {
		kb += statusKB(pid, "VmHWM")
	}
	return float64(kb) / 1024
}

// run runs a command to completion with a timeout and returns its combined output.
func run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// otherCPU sums the CPU time (seconds) of every user-space process on the machine that is
// not the driver or one of its descendants, keyed by pid, to tell how much else ran during
// a measurement (another build or test on a shared machine skews every number).
func otherCPU() map[int]float64 {
	self := os.Getpid()
	type st struct {
		ppid  int
		ticks int64
		kthr  bool
	}
	all := map[int]st{}
	for pid, f := range procStats() {
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		flags, _ := strconv.ParseUint(f[6], 10, 64)
		var t int64
		// Own time only: a parent's time of reaped children would count their whole past.
		for _, k := range []int{11, 12} {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			t += v
		}
		all[pid] = st{ppid: ppid, ticks: t, kthr: flags&0x00200000 != 0}
	}
	ours := func(pid int) bool {
		for range 4 { // the driver, its children and grandchildren (PostgreSQL's backends)
			if pid == self {
				return true
			}
			s, ok := all[pid]
			if !ok || s.ppid <= 1 {
				return false
			}
			pid = s.ppid
		}
		return false
	}
	out := map[int]float64{}
	for pid, s := range all {
		if !s.kthr && !ours(pid) {
			out[pid] = float64(s.ticks) / float64(cfg.clkTck)
		}
	}
	return out
}

// otherDelta is the CPU seconds others used between two otherCPU snapshots.
func otherDelta(before, after map[int]float64) float64 {
	var d float64
	for pid, t := range after {
		if b, ok := before[pid]; ok {
			d += max(0, t-b)
		} else {
			d += t
		}
	}
	return d
}
