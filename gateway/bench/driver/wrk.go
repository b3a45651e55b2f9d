package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what wrk.lua's done() prints, plus what the driver adds.
type wrkResult struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Bytes      int64   `json:"bytes"`
	Connect    int64   `json:"connect"`
	Read       int64   `json:"read"`
	Write      int64   `json:"write"`
	Status     int64   `json:"status"`
	Timeout    int64   `json:"timeout"`
	P50US      int64   `json:"p50_us"`
	P90US      int64   `json:"p90_us"`
	P99US      int64   `json:"p99_us"`
	MaxUS      int64   `json:"max_us"`
	MeanUS     float64 `json:"mean_us"`
	Non2xx     int64   `json:"non_2xx"`
	// WrkCPU is wrk's own CPU time (seconds); DoorBusy and LoadBusy are the shares of one
	// core the door and the load side (wrk and the upstream) used during the run.
	WrkCPU   float64 `json:"wrk_cpu_s"`
	DoorBusy float64 `json:"door_busy"`
	LoadBusy float64 `json:"load_busy"`
	// OtherBusy is the CPU (in cores) that processes other than the benchmark's used
	// meanwhile.
	OtherBusy float64 `json:"other_busy"`
}

func (r wrkResult) rps() float64 { return float64(r.Requests) / (float64(r.DurationUS) / 1e6) }

func (r wrkResult) errors() int64 {
	return r.Connect + r.Read + r.Write + r.Status + r.Timeout + r.Non2xx
}

var non2xx = regexp.MustCompile(`Non-2xx or 3xx responses:\s*(\d+)`)

// runWrk drives url for d with the tokens of tokensFile, wrk pinned to the load core. It
// fails when any request failed in any way: a front door that refuses or drops requests
// is not measured, it is broken.
func runWrk(url, tokensFile string, d time.Duration) (wrkResult, error) {
	args := []string{"-t1", fmt.Sprintf("-c%d", cfg.conns), fmt.Sprintf("-d%ds", int(d.Seconds())),
		"--latency", "--timeout", "5s", "-s", cfg.wrkLua, url}
	bin := "wrk"
	if cfg.pin {
		args = append([]string{"-c", strconv.Itoa(cfg.loadCore), "wrk"}, args...)
		bin = "taskset"
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "BENCH_TOKENS="+tokensFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s", url, err, out)
	}
	var res wrkResult
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "BENCH "); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				return res, fmt.Errorf("wrk %s: unreadable summary %q: %w", url, rest, err)
			}
			found = true
		}
	}
	res.WrkCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	if !found {
		return res, fmt.Errorf("wrk %s printed no summary:\n%s", url, out)
	}
	if m := non2xx.FindStringSubmatch(string(out)); m != nil {
		res.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if res.Requests == 0 {
		return res, fmt.Errorf("wrk %s: no request completed:\n%s", url, out)
	}
	if res.errors() > 0 {
		return res, fmt.Errorf("wrk %s: %d failed requests (connect %d, read %d, write %d, timeout %d, status>=400 %d, non-2xx %d) of %d:\n%s",
			url, res.errors(), res.Connect, res.Read, res.Write, res.Timeout, res.Status, res.Non2xx, res.Requests, out)
	}
	return res, nil
}
