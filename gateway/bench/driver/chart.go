package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Colours of the chart: the gateway stands out, the baseline is grey.
var colours = map[string]string{
	"direct": "0xb0b0b0", "bare": "0x707070", "gw-nocache": "0x7fb3e0", "gw-cache": "0x1f6fb4",
	"haproxy": "0xe08a2e", "scg": "0x4f9a3c",
}

func colour(r doorResult) string {
	if r.Overflow {
		return "0x0c3b66"
	}
	if c, ok := colours[r.Key]; ok {
		return c
	}
	return "0x999999"
}

// short is a door's label on the chart's axis.
func short(r doorResult) string {
	l := map[string]string{
		"direct": "upstream\\ndirect", "bare": "bare\\nFiber", "gw-nocache": "gateway\\ncache off",
		"gw-cache": "gateway\\ncache on", "haproxy": "HAProxy\\njwt_verify", "scg": "Spring Cloud\\nGateway",
	}[r.Key]
	if r.Overflow {
		l = fmt.Sprintf("gateway\\n%s users", results.Settings["overflow"])
	}
	return l
}

// chart writes the numbers as gnuplot data and draws docs/benchmarks.png from them.
func chart() error {
	dir := filepath.Join(cfg.work, "chart")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name string, lines []string) string {
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
		return p
	}
	var single, many []string
	for _, r := range results.Single {
		single = append(single, fmt.Sprintf("\"%s\" %.1f %.3f %.3f %.4f %.2f %s", short(r), r.RPS, r.P50ms, r.P99ms, r.CPUPer1k, r.PeakMB, colour(r)))
	}
	for _, r := range results.Many {
		many = append(many, fmt.Sprintf("\"%s\" %.1f %.3f %.3f %.4f %.2f %s", short(r), r.RPS, r.P50ms, r.P99ms, r.CPUPer1k, r.PeakMB, colour(r)))
	}
	singleF, manyF := write("single.dat", single), write("many.dat", many)

	var idle []string
	for _, r := range results.Idle {
		idle = append(idle, fmt.Sprintf("\"%s\" %.2f %.1f", strings.ReplaceAll(strings.Replace(r.Service, " (", "\\n(", 1), "PostgreSQL", "Postgres"), r.IdleMB, r.HealthzMS))
	}
	idleF := write("idle.dat", idle)

	// CPU per request by part, from the profiles: the larger parts, the rest as "other".
	var parts []string
	for _, c := range categoryOrder {
		big := false
		for _, p := range results.Profiles {
			if p.Share[c]*p.USPerRequest >= 2 {
				big = true
			}
		}
		if big {
			parts = append(parts, c)
		}
	}
	head := "door"
	for _, c := range parts {
		head += fmt.Sprintf(" \"%s\"", strings.SplitN(c, " (", 2)[0])
	}
	prof := []string{head + " other"}
	for _, p := range results.Profiles {
		line := fmt.Sprintf("\"%s\"", strings.Replace(p.Label, ", ", "\\n", 1))
		rest := p.USPerRequest
		for _, c := range parts {
			v := p.Share[c] * p.USPerRequest
			rest -= v
			line += fmt.Sprintf(" %.2f", v)
		}
		prof = append(prof, line+fmt.Sprintf(" %.2f", max(0, rest)))
	}
	profF := write("profile.dat", prof)
	nProf := len(parts) + 2

	var co, cpu []string
	title := "checkout (no data)"
	if c := results.Checkout; c != nil {
		for _, row := range []struct {
			n string
			m map[string]float64
		}{{"place order", c.Create}, {"pay", c.Pay}, {"whole checkout", c.Total}} {
			co = append(co, fmt.Sprintf("\"%s\" %.2f %.2f %.2f", row.n, row.m["p50_ms"], row.m["p90_ms"], row.m["p99_ms"]))
		}
		for _, k := range []string{"gateway", "order", "payment", "postgresql", "load generator"} {
			cpu = append(cpu, fmt.Sprintf("\"%s\" %.3f", k, c.CPUms[k]))
		}
		title = fmt.Sprintf("Checkout latency, %.0f checkouts/s, %d shoppers (ms)", c.CheckoutsPerS, c.Workers)
	}
	coF, cpuF := write("checkout.dat", co), write("checkout-cpu.dat", cpu)

	gp := fmt.Sprintf(`set terminal pngcairo size 1600,2500 font "sans,11" noenhanced
set output %q
set multiplot layout 5,2 title "Shop benchmarks, %s: front doors on one core each, same token and route (%s)" font "sans,14"
set style fill solid 0.9 border -1
set boxwidth 0.7
set grid ytics
set key top right
set xtics font "sans,9"
set yrange [0:*]
set offsets 0,0,graph 0.12,0

set title "Throughput, one token (req/s, median of rounds)"
plot %q using 0:2:7:xtic(1) with boxes lc rgb variable notitle, '' using 0:2:(sprintf("%%.0f",$2)) with labels offset 0,0.8 notitle

set title "Throughput, %s distinct users (req/s)"
plot %q using 0:2:7:xtic(1) with boxes lc rgb variable notitle, '' using 0:2:(sprintf("%%.0f",$2)) with labels offset 0,0.8 notitle

set title "Latency, one token (ms, log scale): p50 and p99"
set logscale y
set yrange [0.1:*]
set style data histograms
set style histogram clustered gap 1
set boxwidth 0.9
plot %q using 3:xtic(1) title "p50" lc rgb "0x7fb3e0", '' using 4 title "p99" lc rgb "0x1f6fb4"

set title "CPU seconds per 1,000 requests, one token (the door's own, log scale)"
set style data boxes
set boxwidth 0.7
set yrange [0.001:*]
plot %q using 0:5:7:xtic(1) with boxes lc rgb variable notitle, '' using 0:5:(sprintf("%%.3f",$5)) with labels offset 0,0.8 notitle

set title "Peak resident memory, one token (MiB, log scale)"
set yrange [1:*]
plot %q using 0:6:7:xtic(1) with boxes lc rgb variable notitle, '' using 0:6:(sprintf("%%.1f",$6)) with labels offset 0,0.8 notitle
unset logscale y
set yrange [0:*]

set title "CPU µs per request by part (CPU profiles, one token)"
set linetype 1 lc rgb "#6a3d9a"
set linetype 2 lc rgb "#1b9e77"
set linetype 3 lc rgb "#a6cee3"
set linetype 4 lc rgb "#fdbf6f"
set linetype 5 lc rgb "#b15928"
set linetype 6 lc rgb "#1f78b4"
set linetype 7 lc rgb "#e31a1c"
set linetype 8 lc rgb "#333333"
set linetype 9 lc rgb "#cab2d6"
set linetype 10 lc rgb "#33a02c"
set linetype 11 lc rgb "#ff7f00"
set linetype 12 lc rgb "#999999"
set linetype 13 lc rgb "#fb9a99"
set linetype 14 lc rgb "#ffff33"
set linetype 15 lc rgb "#8dd3c7"
set style data histograms
set style histogram rowstacked
set boxwidth 0.6
set key outside right top vertical font "sans,8"
plot for [i=2:%d] %q using i:xtic(1) title columnheader(i) lt (i-1)
set key top right font "sans,11"
set style data boxes
set boxwidth 0.7

set title %q
set style data histograms
set style histogram clustered gap 1
set boxwidth 0.9
plot %q using 2:xtic(1) title "p50" lc rgb "0x7fb3e0", '' using 3 title "p90" lc rgb "0x1f6fb4", '' using 4 title "p99" lc rgb "0x0c3b66"

set title "Checkout: CPU ms per checkout, by process"
set style data boxes
set boxwidth 0.7
plot %q using 0:2:xtic(1) with boxes lc rgb "0x4f9a3c" notitle, '' using 0:2:(sprintf("%%.2f",$2)) with labels offset 0,0.8 notitle

set title "Go services: idle RSS (MiB, target < 30)"
plot %q using 0:2:xtic(1) with boxes lc rgb "0x1f6fb4" notitle, '' using 0:2:(sprintf("%%.1f",$2)) with labels offset 0,0.8 notitle, 30 with lines dt 2 lc rgb "red" title "target"

set title "Go services: ready after (ms from start to the first 200 of /healthz, target < 200)"
plot %q using 0:3:xtic(1) with boxes lc rgb "0x7fb3e0" notitle, '' using 0:3:(sprintf("%%.0f",$3)) with labels offset 0,0.8 notitle, 200 with lines dt 2 lc rgb "red" title "target"
unset multiplot
`, filepath.Join(cfg.docs, "benchmarks.png"), results.Date, strings.TrimSpace(results.Machine["cpu"]),
		singleF, results.Settings["many"], manyF, singleF, singleF, singleF, nProf, profF, title, coF, cpuF, idleF, idleF)
	script := write("benchmarks.gp", []string{gp})
	_, err := run(time.Minute, "gnuplot", script)
	return err
}
