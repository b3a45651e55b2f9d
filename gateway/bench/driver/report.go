package main

import (
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Targets of issue 8.
const (
	targetThroughput = 0.9  // gateway with cache: at least this share of the bare proxy's req/s
	targetP99        = 1.2  // and a p99 at most this multiple of the bare proxy's
	targetIdleMB     = 30.0 // each Go service idle below this resident memory
	targetReadyMS    = 200.0
)

type target struct {
	What, Measured string
	Met            bool
}

func find(rs []doorResult, key string, overflow bool) *doorResult {
	for i := range rs {
		if rs[i].Key == key && rs[i].Overflow == overflow {
			return &rs[i]
		}
	}
	return nil
}

func targets() []target {
	var ts []target
	bare, gw := find(results.Single, "bare", false), find(results.Single, "gw-cache", false)
	if bare != nil && gw != nil {
		r := gw.RPS / bare.RPS
		ts = append(ts, target{"gateway (cache on) throughput >= 0.9x bare Fiber proxy",
			fmt.Sprintf("%.2fx (%.0f vs %.0f req/s)", r, gw.RPS, bare.RPS), r >= targetThroughput})
		p := gw.P99ms / bare.P99ms
		ts = append(ts, target{"gateway (cache on) p99 <= 1.2x bare Fiber proxy",
			fmt.Sprintf("%.2fx (%.2f vs %.2f ms)", p, gw.P99ms, bare.P99ms), p <= targetP99})
	}
	for _, peer := range []string{"haproxy", "scg"} {
		o := find(results.Single, peer, false)
		if o == nil || gw == nil {
			continue
		}
		ts = append(ts, target{"gateway ahead of " + o.Label + " on throughput",
			fmt.Sprintf("%.2fx (%.0f vs %.0f req/s)", gw.RPS/o.RPS, gw.RPS, o.RPS), gw.RPS > o.RPS})
		ts = append(ts, target{"gateway ahead of " + o.Label + " on memory (peak RSS)",
			fmt.Sprintf("%.1f vs %.1f MiB", gw.PeakMB, o.PeakMB), gw.PeakMB < o.PeakMB})
	}
	for _, s := range results.Idle {
		ts = append(ts, target{s.Service + " idle < 30 MiB", fmt.Sprintf("%.1f MiB", s.IdleMB), s.IdleMB < targetIdleMB})
		ts = append(ts, target{s.Service + " ready (/healthz) < 200 ms", fmt.Sprintf("%.0f ms (/readyz %.0f ms)", s.HealthzMS, s.ReadyzMS), s.HealthzMS < targetReadyMS})
	}
	return ts
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) {
		return "–"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func doorTable(b *strings.Builder, rs []doorResult, baseKey string) {
	base := find(rs, baseKey, false)
	if base == nil {
		fmt.Fprintln(b, "(not measured in this run)")
		return
	}
	fmt.Fprintln(b, "| front door | req/s | p50 ms | p99 ms | CPU s / 1k req | peak RSS MiB | door / load core busy | req/s vs bare | p50 vs bare | p99 vs bare | CPU vs bare | RSS vs bare |")
	fmt.Fprintln(b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(b, "| %s | %.0f | %.2f | %.2f | %.3f | %.1f | %.0f%% / %.0f%% | %s | %s | %s | %s | %s |\n",
			r.Label, r.RPS, r.P50ms, r.P99ms, r.CPUPer1k, r.PeakMB, r.DoorBusy*100, r.LoadBusy*100,
			ratio(r.RPS, base.RPS), ratio(r.P50ms, base.P50ms), ratio(r.P99ms, base.P99ms),
			ratio(r.CPUPer1k, base.CPUPer1k), ratio(r.PeakMB, base.PeakMB))
	}
}

func report() error {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m, v, s := results.Machine, results.Versions, results.Settings

	w("# Benchmarks\n\n")
	w("Written by `make bench` (`gateway/bench/run.sh`) on %s; every number below comes from that one run, and\n", results.Date)
	w("ratios are taken against the bare Fiber proxy measured in the same run, so they carry over to other\n")
	w("machines better than the absolute numbers do. Rerun it to check them: nothing here is typed by hand except\n")
	w("the notes, and the raw numbers of the run are in `.cache/bench/results.json`.\n\n")
	w("![Front doors, checkout and idle footprint](benchmarks.png)\n\n")

	w("## Machine and versions\n\n")
	w("| | |\n|---|---|\n")
	w("| CPU | %s, %s cores (`nproc`) |\n| memory | %s |\n| kernel | %s |\n| OS | %s |\n", m["cpu"], m["nproc"], m["memory"], m["kernel"], m["os"])
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w("| %s | %s |\n", k, v[k])
	}
	took := time.Duration(results.ElapsedS * float64(time.Second)).Round(time.Second)
	if cfg.started > 0 && results.MakeBenchS == 0 {
		results.MakeBenchS = time.Since(time.Unix(cfg.started, 0)).Seconds()
	}
	if results.MakeBenchS > 0 {
		w("\n`make bench` took %s from start to report (builds included; the measurements %s).\n\n", time.Duration(results.MakeBenchS*float64(time.Second)).Round(time.Second), took)
	} else {
		w("\nThe measurements took %s.\n\n", took)
	}

	if results.Quiet {
		w("Before measuring, the driver waited %.0f s for the machine to be quiet (other processes below a tenth of a core).\n\n", results.QuietWaitS)
	} else if results.QuietWaitS > 0 {
		w("**The machine never became quiet** (the driver waited %.0f s for other processes to drop below a tenth of a core): runs\n", results.QuietWaitS)
		w("during which others took more than %.0f%% of a core were measured again while the retry budget lasted; see the\n", noisy*100)
		w("per-round numbers for what each kept run shared the machine with.\n\n")
	}
	w("## Front doors: one token\n\n")
	w("The same request (`GET %s` with the same RS256 access token, %d bytes) through each front door to the\n", orderPath, tokenBytes())
	w("same upstream. Medians of %s interleaved rounds of %s each, `wrk -t1 -c%s` on core %d, the door alone on\n", s["rounds"], s["duration"], s["conns"], cfg.loadCore)
	w("core %d; CPU is the door's own (user+system from `/proc/<pid>/stat`), peak RSS its `VmHWM`.\n\n", cfg.doorCore)
	doorTable(&b, results.Single, "bare")
	w("\n%s\n", otherLoad(results.Single))

	w("\n## Front doors: many users\n\n")
	w("Each request carries the next of %s tokens of distinct users (wrk calls Lua per request here, so compare\n", s["many"])
	w("these rows with each other, not with the table above). The gateway's token cache holds 10,000 tokens: with\n")
	w("%s users it verifies each token once, then hits; the last row cycles through %s users, more than the cache\n", s["many"], s["overflow"])
	w("holds, so every lookup misses and the gateway verifies every request with the cache in the way.\n\n")
	doorTable(&b, results.Many, "bare")
	w("\n%s\n", otherLoad(results.Many))

	w("\n## Targets (issue 8)\n\n")
	w("| target | measured | |\n|---|---|---|\n")
	for _, t := range targets() {
		mark := "met"
		if !t.Met {
			mark = "**missed**"
		}
		w("| %s | %s | %s |\n", t.What, t.Measured, mark)
	}
	w("\n%s\n", notes())

	w("\n## Where the time goes\n\n")
	w("CPU profiles (10 s each, `go tool pprof`) of the bare Fiber proxy and of the gateway, cache on and off, under\n")
	w("the one-token wrk load, each alone on the door core; samples are summed by what they were doing (the innermost\n")
	w("frame that names a part: `gateway/bench/driver/profile.go`), then scaled to the door's CPU per request in\n")
	w("the measured rounds above (the profiled run's own figures are in the last row). The profiled builds are `gateway/bench/gwprof` (the gateway's own `internal/app` plus a loopback\n")
	w("profiling listener) and the bare proxy built with `-tags pprof`.\n\n")
	profileTable(&b, results.Profiles)
	for _, p := range results.Profiles {
		w("\n<details><summary>%s: top functions</summary>\n\n```\n%s\n```\n</details>\n", p.Label, p.Top)
	}

	if c := results.Checkout; c != nil {
		w("\n## Checkout: gateway -> order -> payment on PostgreSQL\n\n")
		w("%d shoppers (distinct users, tokens from the fake Keycloak) each place an order (`POST /api/orders`, one line,\n", c.Workers)
		w("`Idempotency-Key`) and pay it (`POST /api/orders/:id/pay`, card 4242 4242 4242 4242) through the gateway, for\n")
		w("%s after a 3 s warm-up (`gateway/bench/checkout`). Everything shares the machine's %s cores unpinned: the three\n", s["checkout_duration"], m["nproc"])
		w("services, PostgreSQL %s (fresh cluster on loopback, default durability settings) and the load generator.\n\n", v["postgresql"])
		w("**%.0f checkouts per second** (%d orders placed and paid in %.1f s, %d errors).\n\n", c.CheckoutsPerS, c.Checkouts, c.DurationS, c.Errors)
		w("| latency, ms | p50 | p90 | p99 | max | mean |\n|---|---:|---:|---:|---:|---:|\n")
		for _, row := range []struct {
			name string
			m    map[string]float64
		}{{"place order (POST /api/orders)", c.Create}, {"pay (POST /api/orders/:id/pay)", c.Pay}, {"whole checkout", c.Total}} {
			w("| %s | %.1f | %.1f | %.1f | %.1f | %.1f |\n", row.name, row.m["p50_ms"], row.m["p90_ms"], row.m["p99_ms"], row.m["max_ms"], row.m["mean_ms"])
		}
		w("\nWhere the time goes, by process (CPU from `/proc`, over the measured window):\n\n")
		w("| process | CPU ms per checkout | share of the machine's CPU |\n|---|---:|---:|\n")
		for _, k := range []string{"gateway", "order", "payment", "postgresql", "load generator"} {
			w("| %s | %.2f | %.0f%% |\n", k, c.CPUms[k], c.CPUShare[k]*100)
		}
		w("\nPostgreSQL's statements with the most execution time over the window (`pg_stat_statements`; per checkout):\n\n")
		w("| database | statement | calls | ms | mean ms |\n|---|---|---:|---:|---:|\n")
		for _, st := range c.Statements {
			w("| %s | `%s` | %.2f | %.3f | %.3f |\n", st.DB, strings.ReplaceAll(st.Statement, "|", "\\|"), st.Calls, st.MS, st.MeanMS)
		}
		w("\nEach service's CPU profile over the same window, by part (CPU ms per checkout, from the process's CPU above;\n")
		w("the order and payment services serve their profiles on `ORDER_PPROF_ADDR` and `PAYMENT_PPROF_ADDR`, loopback only):\n\n")
		w("| order service, during the checkout | CPU ms per checkout | share |\n|---|---:|---:|\n")
		for _, k := range serviceOrder {
			if sh := c.OrderShare[k]; sh >= 0.005 {
				w("| %s | %.3f | %.0f%% |\n", k, sh*c.CPUms["order"], sh*100)
			}
		}
		w("\n| payment service, during the checkout | CPU ms per checkout | share |\n|---|---:|---:|\n")
		for _, k := range serviceOrder {
			if sh := c.PaymentShare[k]; sh >= 0.005 {
				w("| %s | %.3f | %.0f%% |\n", k, sh*c.CPUms["payment"], sh*100)
			}
		}
		w("\n<details><summary>order service during the checkout: top functions</summary>\n\n```\n%s\n```\n</details>\n", c.OrderTop)
		w("\n<details><summary>payment service during the checkout: top functions</summary>\n\n```\n%s\n```\n</details>\n\n", c.PaymentTop)
		w("The gateway's CPU profile during the checkout, by part (CPU ms per checkout; a checkout is two requests):\n\n")
		w("| gateway, during the checkout | CPU ms per checkout | share |\n|---|---:|---:|\n")
		for _, k := range categoryOrder {
			if sh := c.GatewayShare[k]; sh >= 0.005 {
				w("| %s | %.3f | %.0f%% |\n", k, sh*c.CPUms["gateway"], sh*100)
			}
		}
		w("\n<details><summary>gateway during the checkout: top functions</summary>\n\n```\n%s\n```\n</details>\n", c.GatewayTop)
	}

	w("\n## Idle memory and readiness of each Go service\n\n")
	trials := 0
	if len(results.Idle) > 0 {
		trials = results.Idle[0].Trials
	}
	w("Each service started %d times, unpinned, on a fresh database: time from starting the process to the first\n", trials)
	w("200 from `/healthz` and from `/readyz` (database answers, signing keys fetched from the fake Keycloak), and\n")
	w("resident memory (`VmRSS`) two seconds after `/healthz` first answered. Medians.\n\n")
	w("| service | ready: /healthz ms | /readyz ms | idle RSS MiB |\n|---|---:|---:|---:|\n")
	for _, r := range results.Idle {
		w("| %s | %.0f | %.0f | %.1f |\n", r.Service, r.HealthzMS, r.ReadyzMS, r.IdleMB)
	}

	w("\n## What each door checks\n\n")
	w("Before any load, each door got the good token and then tokens that differ from it in one respect each; the\n")
	w("status each answered (a checking door must refuse all but, where it cannot know Keycloak's `typ` claim, the ID token):\n\n")
	names := []string{"no-token", "tampered-payload", "foreign-key", "wrong-audience", "wrong-issuer", "expired", "id-token"}
	w("| door | %s |\n|---|%s\n", strings.Join(names, " | "), strings.Repeat("---:|", len(names)))
	for _, row := range results.Preflight {
		var cells []string
		for _, n := range names {
			cells = append(cells, fmt.Sprint(row.Status[n]))
		}
		w("| %s | %s |\n", row.Door, strings.Join(cells, " | "))
	}

	w("\n## How it was measured\n\n")
	b.WriteString(method())

	w("\n## Per-round numbers\n\n")
	w("| front door | tokens | round req/s | round p99 ms | door core busy | other processes (share of a core) |\n|---|---|---|---|---|---|\n")
	for _, sec := range []struct {
		name string
		rs   []doorResult
	}{{"1", results.Single}, {s["many"], results.Many}} {
		for _, r := range sec.rs {
			tok := sec.name
			if r.Overflow {
				tok = s["overflow"]
			}
			var rps, p99, busy, other []string
			for _, x := range r.Rounds {
				rps = append(rps, fmt.Sprintf("%.0f", x.rps()))
				p99 = append(p99, fmt.Sprintf("%.2f", float64(x.P99US)/1000))
				busy = append(busy, fmt.Sprintf("%.0f%%", x.DoorBusy*100))
				other = append(other, fmt.Sprintf("%.0f%%", x.OtherBusy*100))
			}
			w("| %s | %s | %s | %s | %s | %s |\n", r.Label, tok, strings.Join(rps, ", "), strings.Join(p99, ", "), strings.Join(busy, ", "), strings.Join(other, ", "))
		}
	}

	md := b.String()
	// The report names no path of this machine.
	md = strings.ReplaceAll(md, cfg.repo+"/", "")
	if err := os.WriteFile(filepath.Join(cfg.docs, "benchmarks.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := chart(); err != nil {
		if cfg.sections == allSections {
			return err
		}
		log.Printf("chart of a partial run: %v", err)
	}
	return nil
}

func tokenBytes() int {
	b, _ := os.ReadFile(filepath.Join(cfg.work, "idp", "token.txt"))
	return len(strings.TrimSpace(string(b)))
}

// otherLoad reports how much CPU other processes of the machine took during the rounds.
func otherLoad(rs []doorResult) string {
	var all []float64
	for _, r := range rs {
		for _, x := range r.Rounds {
			all = append(all, x.OtherBusy)
		}
	}
	if len(all) == 0 {
		return ""
	}
	hi := 0.0
	for _, v := range all {
		hi = max(hi, v)
	}
	msg := fmt.Sprintf("Other processes of the machine used %.0f%% of a core during the median round (%.0f%% at most).", median(all)*100, hi*100)
	if hi > 0.1 {
		msg += " **Something else ran during some rounds; rounds it overlapped are less reliable** (see the per-round numbers)."
	}
	return msg
}
