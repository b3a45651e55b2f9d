// Command driver runs the shop's performance benchmarks on loopback and writes the report.
// gateway/bench/run.sh (make bench) installs the tools, builds the programs and calls it;
// it can be rerun alone with the same flags.
//
// Front doors (one shared upstream, the same route and the same Keycloak-shaped token):
// the upstream direct, a bare Fiber proxy, the gateway with its token cache off and on,
// HAProxy with jwt_verify, and Spring Cloud Gateway. Each door runs on its own core, wrk
// on the other; doors are driven in interleaved rounds after a warm-up, and every number
// is also given as a ratio to the bare Fiber proxy measured in the same run. Then the
// checkout through gateway -> order -> payment on PostgreSQL, and the idle footprint of
// each Go service.
//
// Every load loop is bounded in time (and the checkout in count) and targets loopback
// only. Any failed request fails the run.
package main

import (
	"archive/zip"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type config struct {
	repo, work, docs      string
	benchBinDir, binDir   string
	gatewayBin            string
	scgJar, pgBin, wrkLua string
	javaHeap              string

	rounds                      int
	duration, warmup, scgWarmup time.Duration
	manyWarmup                  time.Duration
	conns, many, overflow       int
	checkoutDuration            time.Duration
	checkoutWorkers, idleTrials int
	loadCore, doorCore, cores   int
	clkTck                      int
	pin                         bool
	sections                    string
	started                     int64
	quietWait                   time.Duration
}

var cfg config

const allSections = "doors,profiles,checkout,idle"

func (c config) runs(section string) bool {
	return slices.Contains(strings.Split(c.sections, ","), section)
}

func (c config) benchBin(name string) string   { return filepath.Join(c.benchBinDir, name) }
func (c config) serviceBin(name string) string { return filepath.Join(c.binDir, name) }
func (c config) javaOpts() []string            { return []string{"-Xmx" + c.javaHeap} }

// rel names a path of the repository relative to its root, for the report.
func rel(p string) string {
	if r, err := filepath.Rel(cfg.repo, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return filepath.Base(p)
}

func main() {
	flag.StringVar(&cfg.repo, "repo", ".", "repository root")
	flag.StringVar(&cfg.work, "work", ".cache/bench", "work folder (logs, tokens, profiles, database)")
	flag.StringVar(&cfg.docs, "docs", "docs", "folder the report (benchmarks.md, benchmarks.png) is written to")
	flag.StringVar(&cfg.benchBinDir, "bench-bin", ".cache/bench/bin", "folder of the benchmark's own programs")
	flag.StringVar(&cfg.binDir, "bin", "bin", "folder of the services' binaries (make build)")
	flag.StringVar(&cfg.scgJar, "scg-jar", "", "Spring Cloud Gateway jar; empty skips that door")
	flag.StringVar(&cfg.pgBin, "pg-bin", "", "PostgreSQL's bin folder (initdb, postgres, createdb)")
	flag.StringVar(&cfg.wrkLua, "wrk-lua", "gateway/bench/wrk.lua", "wrk script")
	flag.StringVar(&cfg.javaHeap, "java-heap", "512m", "Spring Cloud Gateway's -Xmx (the JVM's default in a 2 GiB container)")
	flag.IntVar(&cfg.rounds, "rounds", 3, "interleaved rounds per door")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "length of one measured wrk run")
	flag.DurationVar(&cfg.warmup, "warmup", 5*time.Second, "warm-up of each door before the rounds")
	flag.DurationVar(&cfg.scgWarmup, "scg-warmup", 120*time.Second, "warm-up of Spring Cloud Gateway (its JIT compiler shares the core)")
	flag.DurationVar(&cfg.manyWarmup, "many-warmup", 3*time.Second, "warm-up of each door before the many-token rounds")
	flag.IntVar(&cfg.conns, "conns", 32, "wrk connections")
	flag.IntVar(&cfg.many, "many", 1000, "distinct users (tokens) of the many-token run")
	flag.IntVar(&cfg.overflow, "overflow", 12000, "distinct users of the cache-overflow run (more than the gateway's cache holds)")
	flag.DurationVar(&cfg.checkoutDuration, "checkout-duration", 20*time.Second, "measured time of the checkout benchmark")
	flag.IntVar(&cfg.checkoutWorkers, "checkout-workers", 16, "concurrent shoppers of the checkout benchmark")
	flag.IntVar(&cfg.idleTrials, "idle-trials", 3, "starts of each service for the idle measurement (median)")
	flag.DurationVar(&cfg.quietWait, "quiet-wait", 10*time.Minute, "longest wait for other processes to leave the machine quiet before measuring")
	flag.Int64Var(&cfg.started, "started", 0, "when make bench started (Unix seconds), to report its whole run time")
	flag.StringVar(&cfg.sections, "sections", allSections, "parts to run (a partial run still writes a report of what it measured)")
	flag.Parse()

	for _, p := range []*string{&cfg.repo, &cfg.work, &cfg.docs, &cfg.benchBinDir, &cfg.binDir, &cfg.scgJar, &cfg.pgBin, &cfg.wrkLua} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				log.Fatal(err)
			}
			*p = abs
		}
	}
	cfg.gatewayBin = cfg.serviceBin("gateway")
	cfg.cores = runtime.NumCPU()
	cfg.pin = cfg.cores >= 2
	cfg.loadCore, cfg.doorCore = 0, 1
	cfg.clkTck = 100
	if out, err := run(5*time.Second, "getconf", "CLK_TCK"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(out)); err == nil && n > 0 {
			cfg.clkTck = n
		}
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		log.Print("interrupted: stopping everything")
		stopAll()
		os.Exit(130)
	}()

	err := bench()
	stopAll()
	if err != nil {
		log.Printf("benchmark FAILED: %v", err)
		os.Exit(1)
	}
}

// results is everything the report is made from; it is also saved as results.json.
var results struct {
	Date     string            `json:"date"`
	Machine  map[string]string `json:"machine"`
	Versions map[string]string `json:"versions"`
	Settings map[string]string `json:"settings"`

	SCGStartSeconds float64          `json:"scg_start_s"`
	Preflight       []preflightRow   `json:"preflight"`
	Single          []doorResult     `json:"single_token"`
	Many            []doorResult     `json:"many_tokens"`
	Profiles        []profileSummary `json:"profiles"`
	Checkout        *checkoutResult  `json:"checkout"`
	Idle            []idleResult     `json:"idle"`
	ElapsedS        float64          `json:"elapsed_s"`
	QuietWaitS      float64          `json:"quiet_wait_s"`
	Quiet           bool             `json:"quiet"`
	MakeBenchS      float64          `json:"make_bench_s"`
}

type preflightRow struct {
	Door   string         `json:"door"`
	Status map[string]int `json:"status"`
}

func bench() error {
	if cfg.sections == "report" {
		// The report again from the raw numbers of the last run, e.g. after a change of
		// its wording; nothing is measured.
		raw, err := os.ReadFile(filepath.Join(cfg.work, "results.json"))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &results); err != nil {
			return err
		}
		return report()
	}
	began := time.Now()
	for _, d := range []string{"logs", "profiles", "idle"} {
		if err := os.MkdirAll(filepath.Join(cfg.work, d), 0o755); err != nil {
			return err
		}
	}
	for _, port := range []int{portIdP, portUpstream, portBare, portGwOff, portGwOn, portHAProxy, portSCG, portRedis,
		portGwProf, portPprof, portPG, portCheckoutGw, portOrder, portPayment, portOrderInternal, portPaymentInternal,
		portCheckoutPprof, portIdle, portIdle + 1} {
		if err := portFree(addr(port)); err != nil {
			return err
		}
	}
	results.Date = time.Now().UTC().Format("2006-01-02 15:04 UTC")
	results.Machine, results.Versions = machine(), versions()
	results.Settings = map[string]string{
		"rounds": strconv.Itoa(cfg.rounds), "duration": cfg.duration.String(), "warmup": cfg.warmup.String(),
		"scg_warmup": cfg.scgWarmup.String(), "conns": strconv.Itoa(cfg.conns), "many": strconv.Itoa(cfg.many),
		"overflow": strconv.Itoa(cfg.overflow), "checkout_duration": cfg.checkoutDuration.String(),
		"checkout_workers": strconv.Itoa(cfg.checkoutWorkers), "java_heap": cfg.javaHeap, "pinned": strconv.FormatBool(cfg.pin),
	}

	step("fake Keycloak: key pair and tokens")
	id, err := startIdP()
	if err != nil {
		return err
	}
	if cfg.runs("doors") || cfg.runs("profiles") {
		if err := measureDoors(id); err != nil {
			return err
		}
	}
	if cfg.runs("checkout") || cfg.runs("idle") {
		step("checkout: PostgreSQL, order, payment, gateway")
		pg, err := startPostgres()
		if err != nil {
			return err
		}
		if cfg.runs("checkout") {
			if results.Checkout, err = runCheckout(id, pg); err != nil {
				return err
			}
		}
		if cfg.runs("idle") {
			step("idle memory and readiness of each Go service")
			if results.Idle, err = measureIdle(id, pg); err != nil {
				return err
			}
		}
	}
	stopAll()

	results.ElapsedS = time.Since(began).Seconds()
	raw, _ := json.MarshalIndent(&results, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.work, "results.json"), raw, 0o644); err != nil {
		return err
	}
	step("report")
	if err := report(); err != nil {
		return err
	}
	raw, _ = json.MarshalIndent(&results, "", "  ")
	return os.WriteFile(filepath.Join(cfg.work, "results.json"), raw, 0o644)
}

// measureDoors runs the front-door benchmarks and the profiles.
func measureDoors(id *idp) error {
	step("front doors")
	upstream, doors, err := startDoors(id)
	if err != nil {
		return err
	}
	upstreamGroup = upstream.group
	waitQuiet()
	if cfg.runs("doors") {
		step("preflight: every door serves the route; the checking doors refuse bad tokens")
		if err := preflight(id, doors); err != nil {
			return err
		}

		step("warm-up")
		for _, d := range doors {
			w := cfg.warmup
			if d.key == "scg" {
				w = cfg.scgWarmup
			}
			// Long warm-ups in slices of at most 20s, each checked for errors.
			for left := w; left > 0; left -= 20 * time.Second {
				if _, err := runWrk(d.url(), id.token, min(left, 20*time.Second)); err != nil {
					return fmt.Errorf("warm-up of %s: %w", d.label, err)
				}
			}
		}
		var single []entry
		for _, d := range doors {
			single = append(single, entry{door: d, tokens: id.token, label: d.label})
		}
		step(fmt.Sprintf("one token: %d rounds x %d doors x %s", cfg.rounds, len(single), cfg.duration))
		if results.Single, err = measure(single); err != nil {
			return err
		}

		var many []entry
		for _, d := range doors {
			if d.key == "direct" {
				continue
			}
			many = append(many, entry{door: d, tokens: id.many, label: d.label})
			if d.key == "gw-cache" {
				many = append(many, entry{door: d, tokens: id.overflow, label: fmt.Sprintf("gateway, cache on, %d users", cfg.overflow), overflow: true})
			}
		}
		step(fmt.Sprintf("%d users: warm-up, then %d rounds x %d doors x %s", cfg.many, cfg.rounds, len(many), cfg.duration))
		for _, e := range many {
			if _, err := runWrk(e.door.url(), e.tokens, cfg.manyWarmup); err != nil {
				return fmt.Errorf("warm-up of %s: %w", e.label, err)
			}
		}
		if results.Many, err = measure(many); err != nil {
			return err
		}
	}
	var doorPids []int
	for _, d := range doors {
		if d.key != "direct" {
			doorPids = append(doorPids, d.group.pids...)
		}
	}
	stopPids(doorPids...)

	if cfg.runs("profiles") {
		step("CPU profiles of the bare proxy and the gateway under the one-token load")
		if results.Profiles, err = profileDoors(id); err != nil {
			return err
		}
	}

	return nil
}

// waitQuiet waits, at most cfg.quietWait, until other processes have used less than a
// tenth of a core for three 5-second windows in a row: a benchmark on a machine shared
// with a build or a test suite measures the neighbour.
func waitQuiet() {
	began := time.Now()
	calm := 0
	for calm < 3 && time.Since(began) < cfg.quietWait {
		before := otherCPU()
		time.Sleep(5 * time.Second)
		used := otherDelta(before, otherCPU()) / 5
		if used < 0.1 {
			calm++
		} else {
			calm = 0
			log.Printf("   other processes use %.0f%% of a core: waiting for a quiet machine (%s so far)", used*100, time.Since(began).Round(time.Second))
		}
	}
	results.QuietWaitS = time.Since(began).Seconds()
	results.Quiet = calm >= 3
}

// upstreamGroup is the shared upstream, part of the load side.
var upstreamGroup group

func step(s string) { log.Printf("== %s", s) }

// stopPids stops some of the driver's processes, by pid, and waits for them.
func stopPids(pids ...int) {
	procsMu.Lock()
	var list []*proc
	for _, p := range procs {
		if slices.Contains(pids, p.pid) {
			list = append(list, p)
		}
	}
	procsMu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Go(p.stop)
	}
	wg.Wait()
}

// noisy is the share of a core other processes may take during a run before it is redone.
const noisy = 0.15

// retryBudget bounds the time spent measuring again, so a busy machine cannot make the
// run endless; once spent, noisy runs are kept and shown as such.
var retryBudget = 4 * time.Minute

// entry is one measured combination of a door and a token file.
type entry struct {
	door     *door
	tokens   string
	label    string
	overflow bool
}

// doorResult is one entry's numbers over all rounds.
type doorResult struct {
	Key      string  `json:"key"`
	Label    string  `json:"label"`
	Overflow bool    `json:"overflow,omitempty"`
	RPS      float64 `json:"rps"`    // median of the rounds
	P50ms    float64 `json:"p50_ms"` // median of the rounds
	P99ms    float64 `json:"p99_ms"` // median of the rounds
	// CPUPer1k is the door's CPU seconds per 1,000 requests over all rounds.
	CPUPer1k float64 `json:"cpu_s_per_1k"`
	// PeakMB is the door's peak resident memory (VmHWM, MiB) when its rounds ended.
	PeakMB float64 `json:"peak_mb"`
	// DoorBusy and LoadBusy: medians of the rounds' shares of a core used by the door and
	// by the load side (wrk plus the upstream); a door below ~95% while the load side is
	// near 100% was not the bottleneck.
	// AnonMB and FileMB split the resident memory after the rounds: heap, stacks and
	// runtime (RssAnon) against pages mapped from the program's files (RssFile).
	AnonMB    float64     `json:"anon_mb"`
	FileMB    float64     `json:"file_mb"`
	DoorBusy  float64     `json:"door_busy"`
	LoadBusy  float64     `json:"load_busy"`
	Requests  int64       `json:"requests"`
	RoundsRPS []float64   `json:"rounds_rps"`
	Rounds    []wrkResult `json:"rounds"`
}

// measure drives the entries in interleaved rounds: each round visits every entry once,
// starting one entry further along than the round before, so no door is always first
// or always after the same neighbour.
func measure(entries []entry) ([]doorResult, error) {
	out := make([]doorResult, len(entries))
	cpu := make([]float64, len(entries))
	for i, e := range entries {
		out[i] = doorResult{Key: e.door.key, Label: e.label, Overflow: e.overflow}
	}
	for r := range cfg.rounds {
		for j := range entries {
			i := (j + r) % len(entries)
			e := entries[i]
			var res wrkResult
			var used float64
			// A run during which other processes took much of the machine is done again,
			// at most twice; the report shows what the kept run shared the machine with.
			for try := 0; ; try++ {
				before, upBefore, others := e.door.group.cpuSeconds(), upstreamGroup.cpuSeconds(), otherCPU()
				var err error
				res, err = runWrk(e.door.url(), e.tokens, cfg.duration)
				if err != nil {
					return nil, fmt.Errorf("%s, round %d: %w", e.label, r+1, err)
				}
				used = e.door.group.cpuSeconds() - before
				wall := float64(res.DurationUS) / 1e6
				res.DoorBusy = used / wall
				res.LoadBusy = res.WrkCPU / wall
				if e.door.key != "direct" {
					res.LoadBusy += (upstreamGroup.cpuSeconds() - upBefore) / wall
				}
				res.OtherBusy = otherDelta(others, otherCPU()) / wall
				if res.OtherBusy <= noisy || try == 3 || retryBudget <= 0 {
					break
				}
				pause := time.Duration(5<<try) * time.Second
				log.Printf("   round %d  %-32s others used %.0f%% of a core meanwhile: measuring again in %s", r+1, e.label, res.OtherBusy*100, pause)
				time.Sleep(pause)
				retryBudget -= pause + cfg.duration
			}
			cpu[i] += used
			out[i].Rounds = append(out[i].Rounds, res)
			out[i].RoundsRPS = append(out[i].RoundsRPS, res.rps())
			log.Printf("   round %d  %-32s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  door %3.0f%%  load %3.0f%%  others %3.0f%%",
				r+1, e.label, res.rps(), float64(res.P50US)/1000, float64(res.P99US)/1000, res.DoorBusy*100, res.LoadBusy*100, res.OtherBusy*100)
		}
	}
	for i, e := range entries {
		var p50, p99, door, load []float64
		for _, res := range out[i].Rounds {
			out[i].Requests += res.Requests
			p50 = append(p50, float64(res.P50US)/1000)
			p99 = append(p99, float64(res.P99US)/1000)
			door, load = append(door, res.DoorBusy), append(load, res.LoadBusy)
		}
		out[i].DoorBusy, out[i].LoadBusy = median(door), median(load)
		out[i].RPS = median(out[i].RoundsRPS)
		out[i].P50ms, out[i].P99ms = median(p50), median(p99)
		out[i].CPUPer1k = cpu[i] / float64(out[i].Requests) * 1000
		out[i].PeakMB = e.door.group.peakMB()
		for _, pid := range e.door.group.pids {
			out[i].AnonMB += float64(statusKB(pid, "RssAnon")) / 1024
			out[i].FileMB += float64(statusKB(pid, "RssFile")) / 1024
		}
	}
	return out, nil
}

func machine() map[string]string {
	m := map[string]string{"nproc": strconv.Itoa(runtime.NumCPU())}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if mm := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); mm != nil {
			m["cpu"] = strings.TrimSpace(string(mm[1]))
		}
	}
	if out, err := run(5*time.Second, "uname", "-sr"); err == nil {
		m["kernel"] = strings.TrimSpace(out)
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if mm := regexp.MustCompile(`MemTotal:\s*(\d+) kB`).FindSubmatch(b); mm != nil {
			kb, _ := strconv.Atoi(string(mm[1]))
			m["memory"] = fmt.Sprintf("%.0f GiB", float64(kb)/1024/1024)
		}
	}
	if b, err := os.ReadFile("/etc/debian_version"); err == nil {
		m["os"] = "Debian " + strings.TrimSpace(string(b))
	}
	return m
}

func versions() map[string]string {
	v := map[string]string{"go": runtime.Version()}
	first := func(out string, re string) string {
		if m := regexp.MustCompile(re).FindStringSubmatch(out); m != nil {
			return m[1]
		}
		return "?"
	}
	if out, err := run(10*time.Second, "go", "version"); err == nil {
		v["go"] = first(out, `go version (go\S+)`)
	}
	out, _ := run(10*time.Second, "haproxy", "-v")
	v["haproxy"] = first(out, `HAProxy version (\S+)`)
	out, _ = run(10*time.Second, "wrk", "-v")
	v["wrk"] = first(out, `wrk (\S+)`)
	out, _ = run(10*time.Second, "redis-server", "--version")
	v["redis"] = first(out, `v=(\S+)`)
	out, _ = run(10*time.Second, filepath.Join(cfg.pgBin, "postgres"), "--version")
	v["postgresql"] = first(out, `\) (\S+)`)
	if cfg.scgJar != "" {
		out, _ = run(10*time.Second, "java", "-version")
		v["java"] = first(out, `version "([^"]+)"`) + " (" + first(out, `(OpenJDK 64-Bit \S+ VM)`) + ")"
		if zr, err := zip.OpenReader(cfg.scgJar); err == nil {
			for _, f := range zr.File {
				base := filepath.Base(f.Name)
				if m := regexp.MustCompile(`^spring-cloud-gateway-server-webflux-(\S+)\.jar$`).FindStringSubmatch(base); m != nil {
					v["spring-cloud-gateway"] = m[1]
				}
				if m := regexp.MustCompile(`^spring-boot-(\d\S*)\.jar$`).FindStringSubmatch(base); m != nil {
					v["spring-boot"] = m[1]
				}
				if m := regexp.MustCompile(`^spring-security-oauth2-resource-server-(\S+)\.jar$`).FindStringSubmatch(base); m != nil {
					v["spring-security"] = m[1]
				}
			}
			zr.Close()
		}
	}
	return v
}
