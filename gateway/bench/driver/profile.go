package main

import (
	"bufio"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A CPU profile, read through `go tool pprof -raw`, is summed into a few categories a
// reader can act on. Each sample goes to the category of the innermost frame that names
// one; a system call is told apart by whom it serves (upstream, client, log, scheduler).
var categoryRules = []struct{ match, category string }{
	{"crypto/rsa", catRSA}, {"fips140/rsa", catRSA}, {"fips140/bigmod", catRSA}, {"math/big", catRSA},
	{"authn.Authorization", catEdge}, {"authn.RefuseAmbiguous", catEdge}, {"authn.WithPrincipal", catCache},
	{"go-jose", catJWT}, {"go-oidc", catJWT}, {"shop/platform/authn", catJWT},
	{"tokencache", catCache}, {"(*Cache)", catCache}, {"golang-lru", catCache},
	{"ratelimit", catLimit}, {"x/time/rate", catLimit},
	{"log/slog", catLog}, {"accessLog", catLog},
	{"prometheus", catMetrics}, {"(*metrics)", catMetrics},
	{"requestid", catReqID}, {"google/uuid", catReqID}, {"sanitizeRequestID", catReqID},
	{"shop/gateway/internal/proxy", catProxy}, {"(*Proxy)", catProxy}, {"fiber/v2/middleware/proxy", catProxy},
	{"fasthttp.(*HostClient)", catProxy}, {"fasthttp.(*Client)", catProxy}, {"fasthttp.(*LBClient)", catProxy},
	{"fasthttp.(*transport)", catProxy}, {"fasthttp.(*Response).Read", catProxy}, {"fasthttp.(*ResponseHeader).Read", catProxy},
	{"helmet", catEdge}, {"shop/gateway/internal/edge", catEdge}, {"shop/gateway/internal/route", catEdge},
	{"authz", catEdge}, {"app.routeChain", catEdge}, {"app.New.", catEdge}, {"Harden", catEdge},
	{"gofiber/fiber", catFiber},
	{"fasthttp", catServer},
	{"gcBgMarkWorker", catGC}, {"bgsweep", catGC}, {"bgscavenge", catGC}, {"gcDrain", catGC}, {"runtime.GC", catGC},
}

const (
	catClientIO   = "socket I/O with the client (kernel, loopback TCP)"
	catUpstreamIO = "socket I/O with the upstream (kernel, loopback TCP)"
	catServer     = "HTTP parsing and writing (fasthttp server)"
	catFiber      = "Fiber routing and context"
	catProxy      = "proxy: upstream request and answer (user space)"
	catEdge       = "edge checks, security headers, policy"
	catReqID      = "request id (UUID)"
	catLog        = "access log (JSON line to stdout)"
	catMetrics    = "metrics (Prometheus histogram)"
	catLimit      = "rate limit (token bucket per subject)"
	catCache      = "token cache lookup (SHA-256, LRU)"
	catJWT        = "token: JWT parsing, claims (go-jose, go-oidc)"
	catRSA        = "token: RSA signature check"
	catGC         = "garbage collector"
	catRuntime    = "Go scheduler, netpoll and the rest"
)

// categoryOrder is the order of the report's rows.
var categoryOrder = []string{catClientIO, catUpstreamIO, catServer, catFiber, catProxy, catEdge, catReqID, catLog,
	catMetrics, catLimit, catCache, catJWT, catRSA, catGC, catRuntime}

func categorize(stack [][]string) string {
	// stack[0] is the leaf location; each location lists its functions, inlined first.
	var frames []string
	for _, loc := range stack {
		frames = append(frames, loc...)
	}
	if len(frames) > 0 && (strings.Contains(frames[0], "Syscall") || strings.Contains(frames[0], "syscall.")) {
		for _, f := range frames {
			switch {
			case strings.Contains(f, "os.(*File).Write"):
				return catLog
			case strings.Contains(f, "netpoll"), strings.Contains(f, "EpollWait"), strings.Contains(f, "runtime.usleep"), strings.Contains(f, "futex"):
				return catRuntime
			case strings.Contains(f, "fasthttp.(*HostClient)"), strings.Contains(f, "fasthttp.(*transport)"), strings.Contains(f, "fasthttp.(*Client)"), strings.Contains(f, "fasthttp.(*LBClient)"):
				return catUpstreamIO
			case strings.Contains(f, "fasthttp.(*Server)"), strings.Contains(f, "fasthttp.(*workerPool)"):
				return catClientIO
			}
		}
		return catRuntime
	}
	for _, f := range frames {
		for _, r := range categoryRules {
			if strings.Contains(f, r.match) {
				return r.category
			}
		}
	}
	return catRuntime
}

// serviceRules sort the order and payment services' CPU profiles during the checkout: by
// the innermost frame that names one, after system calls, which count as network I/O.
var serviceRules = []struct{ match, category string }{
	{"crypto/rsa", svcToken}, {"fips140/rsa", svcToken}, {"fips140/bigmod", svcToken}, {"math/big", svcToken},
	{"go-jose", svcToken}, {"go-oidc", svcToken}, {"shop/platform/authn", svcToken},
	{"golang.org/x/oauth2", svcExchange}, {"shop/platform/svcauth", svcExchange},
	{"jackc/pgx", svcDriver}, {"jackc/pgconn", svcDriver}, {"database/sql", svcDriver},
	{"gorm.io", svcGORM},
	{"encoding/json", svcJSON},
	{"log/slog", svcLog}, {"zapcore", svcLog},
	{"prometheus", svcMetrics},
	{"net/http.(*Transport)", svcClient}, {"net/http.(*persistConn)", svcClient}, {"net/http.(*Client)", svcClient},
	{"crypto/tls", svcClient},
	{"gofiber/fiber", svcServer}, {"fasthttp", svcServer},
	{"gcBgMarkWorker", catGC}, {"bgsweep", catGC}, {"bgscavenge", catGC}, {"gcDrain", catGC}, {"runtime.GC", catGC},
	{"example.com/shop/", svcOwn},
}

const (
	svcIO       = "network I/O (kernel)"
	svcServer   = "HTTP server (Fiber, fasthttp)"
	svcClient   = "HTTP client (calls to the other service)"
	svcToken    = "bearer token check (JWT, RSA)"
	svcExchange = "token exchange client (x/oauth2)"
	svcDriver   = "PostgreSQL driver (pgx)"
	svcGORM     = "GORM"
	svcJSON     = "JSON"
	svcLog      = "logging"
	svcMetrics  = "metrics"
	svcOwn      = "the service's own code"
)

// serviceOrder is the order of the report's rows for the services.
var serviceOrder = []string{svcIO, svcServer, svcClient, svcToken, svcExchange, svcDriver, svcGORM, svcJSON,
	svcLog, svcMetrics, svcOwn, catGC, catRuntime}

func categorizeService(stack [][]string) string {
	var frames []string
	for _, loc := range stack {
		frames = append(frames, loc...)
	}
	if len(frames) > 0 && (strings.Contains(frames[0], "Syscall") || strings.Contains(frames[0], "syscall.")) {
		for _, f := range frames {
			if strings.Contains(f, "netpoll") || strings.Contains(f, "EpollWait") || strings.Contains(f, "futex") || strings.Contains(f, "runtime.usleep") {
				return catRuntime
			}
		}
		return svcIO
	}
	for _, f := range frames {
		for _, r := range serviceRules {
			if strings.Contains(f, r.match) {
				return r.category
			}
		}
	}
	return catRuntime
}

// profileSummary is a CPU profile summed by category.
type profileSummary struct {
	Label string `json:"label"`
	// Share of the profile's CPU time per category (sums to 1).
	Share map[string]float64 `json:"share"`
	// USPerRequest is the process's CPU microseconds per request over the profiled run,
	// so Share times USPerRequest is each category's cost per request.
	USPerRequest float64 `json:"us_per_request"`
	RPS          float64 `json:"rps"`
	Top          string  `json:"top"`
	// Key is the door's key; ProfiledUS and ProfiledRPS are the profiled run's own CPU per
	// request and rate, kept when USPerRequest and RPS are replaced by the rounds' figures.
	Key         string  `json:"key"`
	ProfiledUS  float64 `json:"profiled_us"`
	ProfiledRPS float64 `json:"profiled_rps"`
}

// summarize reads a profile file into categories (by categorize) and the flat top functions.
func summarize(file string, categorize func(stack [][]string) string) (map[string]float64, string, error) {
	raw, err := run(2*time.Minute, "go", "tool", "pprof", "-raw", file)
	if err != nil {
		return nil, "", err
	}
	locs := map[string][]string{}
	type sample struct {
		value float64
		ids   []string
	}
	var samples []sample
	section := ""
	var cur string
	sc := bufio.NewScanner(strings.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Samples:"), strings.HasPrefix(line, "Locations"), strings.HasPrefix(line, "Mappings"):
			section = strings.TrimSuffix(strings.Fields(line)[0], ":")
			continue
		}
		switch section {
		case "Samples":
			head, ids, ok := strings.Cut(line, ":")
			f := strings.Fields(head)
			if !ok || len(f) != 2 {
				continue
			}
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				continue
			}
			samples = append(samples, sample{v, strings.Fields(ids)})
		case "Locations":
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			if strings.HasSuffix(f[0], ":") { // "N: 0xaddr M=1 func file:line s=..."
				cur = strings.TrimSuffix(f[0], ":")
				if len(f) >= 4 {
					locs[cur] = append(locs[cur], f[3])
				}
			} else if cur != "" { // an inlined frame of the same location
				locs[cur] = append(locs[cur], f[0])
			}
		}
	}
	share := map[string]float64{}
	var total float64
	for _, s := range samples {
		var stack [][]string
		for _, id := range s.ids {
			stack = append(stack, locs[id])
		}
		share[categorize(stack)] += s.value
		total += s.value
	}
	if total == 0 {
		return nil, "", fmt.Errorf("%s holds no samples", file)
	}
	for k := range share {
		share[k] /= total
	}
	top, err := run(2*time.Minute, "go", "tool", "pprof", "-top", "-nodecount=15", file)
	if err != nil {
		return nil, "", err
	}
	return share, trimPprof(top), nil
}

// profileDoor runs a door built with profiling endpoints on the door core, drives it with
// wrk and takes a CPU profile of 10 s meanwhile.
func profileDoor(label string, s spec, listen, pprofPort int, readyURL string, id *idp) (*profileSummary, error) {
	s.core, s.quiet = cfg.doorCore, true
	p, err := start(s)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if readyURL != "" {
		if _, err := waitHTTP(p, readyURL, 200, time.Now(), 20*time.Second); err != nil {
			return nil, err
		}
	} else if err := waitTCP(p, addr(listen), 20*time.Second); err != nil {
		return nil, err
	}
	d := &door{port: listen}
	if _, err := runWrk(d.url(), id.token, 3*time.Second); err != nil {
		return nil, err
	}
	file := filepath.Join(cfg.work, "profiles", strings.ReplaceAll(strings.ToLower(label), " ", "-")+".pprof")
	done := make(chan error, 1)
	before := group{pids: []int{p.pid}}.cpuSeconds()
	go func() { done <- fetchProfile(pprofPort, 10*time.Second, file) }()
	res, err := runWrk(d.url(), id.token, 12*time.Second)
	if err != nil {
		return nil, err
	}
	used := group{pids: []int{p.pid}}.cpuSeconds() - before
	if err := <-done; err != nil {
		return nil, err
	}
	share, top, err := summarize(file, categorize)
	if err != nil {
		return nil, err
	}
	us := used / float64(res.Requests) * 1e6
	return &profileSummary{Label: label, Share: share, USPerRequest: us, RPS: res.rps(), Top: top, ProfiledUS: us, ProfiledRPS: res.rps()}, nil
}

// profileDoors profiles the bare Fiber proxy and the gateway, cache on and off, under the
// one-token load, so the report can show per request what the gateway adds and where.
func profileDoors(id *idp) ([]profileSummary, error) {
	up := "http://" + addr(portUpstream)
	var out []profileSummary
	bare, err := profileDoor("bare Fiber proxy", spec{name: "bareproxy-prof", bin: cfg.benchBin("bareproxy-prof"),
		args: []string{"-addr", addr(portGwProf), "-upstream", addr(portUpstream), "-pprof", addr(portPprof)}}, portGwProf, portPprof, "", id)
	if err != nil {
		return nil, err
	}
	bare.Key = "bare"
	out = append(out, *bare)
	for _, c := range []struct {
		label, key string
		cache      bool
	}{{"gateway, cache on", "gw-cache", true}, {"gateway, cache off", "gw-nocache", false}} {
		env := append(gatewayEnv(portGwProf, id.issuer, up, c.cache), "GWPROF_ADDR="+addr(portPprof))
		s, err := profileDoor(c.label, spec{name: "gwprof", bin: cfg.benchBin("gwprof"), env: env}, portGwProf, portPprof,
			"http://"+addr(portGwProf)+"/readyz", id)
		if err != nil {
			return nil, err
		}
		s.Key = c.key
		out = append(out, *s)
	}
	// One 10 s profile is a smaller sample than the rounds: its shares are kept, but scaled
	// to the CPU per request the rounds measured for the same door.
	for i := range out {
		if r := find(results.Single, out[i].Key, false); r != nil {
			out[i].USPerRequest, out[i].RPS = r.CPUPer1k*1000, r.RPS
		}
	}
	return out, nil
}

// profileTable writes the categories as rows and the profiled doors as columns, in CPU
// microseconds per request.
func profileTable(b *strings.Builder, ps []profileSummary) {
	fmt.Fprintf(b, "| CPU µs per request |")
	for _, p := range ps {
		fmt.Fprintf(b, " %s |", p.Label)
	}
	fmt.Fprintf(b, "\n|---|%s\n", strings.Repeat("---:|", len(ps)))
	for _, c := range categoryOrder {
		any := false
		for _, p := range ps {
			if p.Share[c] >= 0.002 {
				any = true
			}
		}
		if !any {
			continue
		}
		fmt.Fprintf(b, "| %s |", c)
		for _, p := range ps {
			v := p.Share[c] * p.USPerRequest
			if v < 0.05 {
				fmt.Fprintf(b, " – |")
			} else {
				fmt.Fprintf(b, " %.1f |", v)
			}
		}
		fmt.Fprintln(b)
	}
	fmt.Fprintf(b, "| **total** (req/s, rounds' medians) |")
	for _, p := range ps {
		fmt.Fprintf(b, " **%.1f** (%.0f) |", p.USPerRequest, p.RPS)
	}
	fmt.Fprintf(b, "\n| the profiled run itself: CPU µs per request (req/s) |")
	for _, p := range ps {
		fmt.Fprintf(b, " %.1f (%.0f) |", p.ProfiledUS, p.ProfiledRPS)
	}
	fmt.Fprintln(b)
}

// sortedShares lists a profile's categories, largest first.
func sortedShares(p profileSummary) []string {
	var ks []string
	for k := range p.Share {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return p.Share[ks[i]] > p.Share[ks[j]] })
	return ks
}
