package main

import (
	"fmt"
	"sort"
	"strings"
)

// method describes the set-up, from the settings of this run.
func method() string {
	s := results.Settings
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("- **Loopback only, bounded.** Every server listens on 127.0.0.1; every load loop is bounded in time (wrk `-d`,\n")
	w("  the checkout generator `-duration` and `-max`). Any failed request (socket error, timeout, status >= 400,\n")
	w("  any non-2xx) in any warm-up or round fails the run, and so does a door that lets a bad token through.\n")
	w("- **Pinning.** wrk, the shared upstream and the fake Keycloak run on core %d (`taskset`); the front door under\n", cfg.loadCore)
	w("  test runs on core %d with everything it needs (Redis for Spring Cloud Gateway); Go sets GOMAXPROCS=1 there and\n", cfg.doorCore)
	w("  the JVM sees one processor. The direct row is the upstream on the load core, as a ceiling of the set-up.\n")
	w("- **Rounds.** Every door gets a warm-up (%s; Spring Cloud Gateway %s, since its JIT compiler works on the same\n", s["warmup"], s["scg_warmup"])
	w("  core), then %s rounds of %s; each round visits every door once, each round starting one door further on.\n", s["rounds"], s["duration"])
	w("  Requests/s, p50 and p99 are medians of the rounds (wrk's `--latency` percentiles); CPU is summed over the\n")
	w("  rounds and divided by the requests; peak RSS is `VmHWM` after the rounds.\n")
	w("- **wrk**: `wrk -t1 -c%s -d%s --latency --timeout 5s -s gateway/bench/wrk.lua http://127.0.0.1:<port>%s`\n", s["conns"], s["duration"], orderPath)
	w("  with `BENCH_TOKENS` naming the token file.\n")
	w("- **Fake Keycloak** (`gateway/bench/fakeidp`): a fresh RSA-2048 key per run; discovery and JWKS under\n")
	w("  `/realms/shop`; access tokens with Keycloak's claims (iss, `aud` shop-api, sub, exp, iat, jti, `typ` Bearer,\n")
	w("  `azp` webapp, sid, `realm_access.roles` [USER], `resource_access`, scope, preferred_username, email, ...).\n")
	w("- **Upstream** (`gateway/bench/upstream`): fasthttp answering a 105-byte JSON order to every request.\n")
	w("- **Bare Fiber proxy** (`gateway/bench/bareproxy`): `fiber.New()` and Fiber's `proxy.Balancer` on\n")
	w("  `/api/orders/*`; no token check, no limits, no log.\n")
	w("- **Gateway**: `bin/gateway` from `make build`, the route table of the shop (`/api/orders/**` to the upstream),\n")
	w("  `GATEWAY_RATE`/`GATEWAY_BURST` 10^9 (the limiter runs, in memory, per token subject, but never refuses),\n")
	w("  `GATEWAY_TOKEN_CACHE` false or true; its JSON access log (one line per request) goes to /dev/null. Its whole\n")
	w("  chain runs: request id, access log, security headers, method and path checks, CORS, size limits, token,\n")
	w("  rate limit, policy, header-filtered relay.\n")
	w("- **HAProxy** %s from Debian, one thread: `http_auth_bearer`, `jwt_header_query` (alg must be RS256),\n", results.Versions["haproxy"])
	w("  `jwt_verify` with the realm's public key (PEM), `jwt_payload_query` checks of iss, aud, typ and exp against\n")
	w("  `date()`, and a stick table tracking `http_req_rate(1s)` per `sub` with a limit of 10^8.\n")
	w("- **Spring Cloud Gateway** %s on Spring Boot %s (`gateway/bench/scg`, built by Maven at bench time):\n", results.Versions["spring-cloud-gateway"], results.Versions["spring-boot"])
	w("  the reactive gateway, `spring-boot-starter-oauth2-resource-server` with the JWK set URI of the fake Keycloak,\n")
	w("  issuer and audience checks, the Authorization header relayed unchanged (what `TokenRelay` achieves for a\n")
	w("  resource server, which has no OAuth2 client session to take a token from), and `RequestRateLimiter` with the\n")
	w("  Redis rate limiter keyed by the token's subject (Redis %s on loopback, replenish rate 10^6). JVM: `-Xmx%s`,\n", results.Versions["redis"], s["java_heap"])
	w("  otherwise defaults (with one processor the JVM picks the Serial collector). It took %.1f s to start.\n", results.SCGStartSeconds)
	w("- **Checkout**: PostgreSQL from Debian's packages, `initdb` into `.cache/bench/pg` and run on port 15432;\n")
	w("  `bin/order` and `bin/payment` on it (`*_DB_DRIVER=postgres`), the gateway in front (cache on), the fake\n")
	w("  Keycloak's tokens; the load generator creates 16 products (stock 1,000,000 each) as ADMIN first. Token\n")
	w("  exchange is on, as by default: order -> payment and payment -> order each exchange the shopper's token at the\n")
	w("  fake Keycloak (a signature check and a signing, far cheaper than Keycloak's own, which also looks up the session).\n")
	return b.String()
}

// notes says, for each missed target, where the time goes and what would close the gap,
// from this run's numbers (the profile tables are the evidence).
func notes() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	missed := map[string]bool{}
	for _, t := range targets() {
		if !t.Met {
			missed[t.What] = true
		}
	}
	bare, gw := find(results.Single, "bare", false), find(results.Single, "gw-cache", false)
	if bare == nil || gw == nil {
		return ""
	}
	if len(missed) == 0 {
		w("Every target was met in this run.\n\n")
	}
	if bare.DoorBusy < 0.9 {
		w("- **Read the throughput ratio with care:** the bare proxy's core was only %.0f%% busy (load side %.0f%%), so in this\n", bare.DoorBusy*100, bare.LoadBusy*100)
		w("  run the bare proxy was held back by the load side, not by its own core, and its req/s understates what it can do.\n")
		w("  CPU per request is the fairer comparison: the gateway needs %.2fx the bare proxy's.\n", gw.CPUPer1k/bare.CPUPer1k)
	}
	var pBare, pGw *profileSummary
	for i := range results.Profiles {
		switch results.Profiles[i].Label {
		case "bare Fiber proxy":
			pBare = &results.Profiles[i]
		case "gateway, cache on":
			pGw = &results.Profiles[i]
		}
	}
	if (missed[throughputTarget] || missed[p99Target]) && pBare != nil && pGw != nil {
		w("- **Throughput and p99 against the bare proxy.** On its one core the gateway (cache on) spends %.1f µs of CPU per\n", pGw.USPerRequest)
		w("  request where the bare proxy spends %.1f µs, which by itself caps it at about %.2fx the bare proxy's rate once\n", pBare.USPerRequest, pBare.USPerRequest/pGw.USPerRequest)
		w("  both are CPU-bound (measured: %.2fx); a busier core also queues requests longer, hence the p99. The token check,\n", gw.RPS/bare.RPS)
		w("  cached, is not where the time goes: the extra %.1f µs are, largest first:\n", pGw.USPerRequest-pBare.USPerRequest)
		type diff struct {
			cat string
			us  float64
		}
		var diffs []diff
		for _, c := range categoryOrder {
			d := pGw.Share[c]*pGw.USPerRequest - pBare.Share[c]*pBare.USPerRequest
			if d >= 0.2 {
				diffs = append(diffs, diff{c, d})
			}
		}
		sort.Slice(diffs, func(i, j int) bool { return diffs[i].us > diffs[j].us })
		for _, d := range diffs {
			w("  - %s: +%.1f µs. %s\n", d.cat, d.us, remedy[d.cat])
		}
		if g, bb := gw.Rounds, bare.Rounds; len(g) > 0 && len(bb) > 0 {
			w("  Each answer is %.0f bytes through the gateway and %.0f through the bare proxy (wrk's byte count), which is\n",
				float64(g[0].Bytes)/float64(g[0].Requests), float64(bb[0].Bytes)/float64(bb[0].Requests))
			w("  what the larger server and socket rows pay for.\n")
		}
		w("  Closing the gap to 0.9x means taking the gateway to about %.0f µs per request. The access log is already\n", pBare.USPerRequest/0.9)
		w("  buffered and the header set already short; what is left is each feature's own price (a complete access log,\n")
		w("  the header allowlist, a collision-resistant cache key, a rate-limit bucket), paid on every request.\n")
	}
	if hap := find(results.Single, "haproxy", false); hap != nil && missed["gateway ahead of "+hap.Label+" on memory (peak RSS)"] {
		idle := 0.0
		for _, r := range results.Idle {
			if r.Service == "gateway" {
				idle = r.IdleMB
			}
		}
		w("- **Memory against HAProxy.** HAProxy (C, one thread, its stick table allocated as entries come) peaks at %.1f MiB,\n", hap.PeakMB)
		w("  the gateway at %.1f MiB under load (%.1f MiB idle). After the rounds the gateway held %.1f MiB of pages mapped from\n", gw.PeakMB, idle, gw.FileMB)
		w("  its program file (code, read-only data) and %.1f MiB of heap, stacks and runtime; HAProxy %.1f and %.1f MiB.\n", gw.AnonMB, hap.FileMB, hap.AnonMB)
		if gw.AnonMB-hap.AnonMB >= gw.FileMB-hap.FileMB {
			w("  The gap is in the heap, stacks and runtime, not in code. Garbage-collector settings move it a little (tried by\n")
			w("  hand on the same set-up: GOGC=50 or GOMEMLIMIT=10MiB took about 1.5 MiB off the peak, at a cost in CPU); the\n")
			w("  rest is the Go runtime's own structures and, per connection, a goroutine stack and fasthttp's read and write\n")
			w("  buffers (the read buffer is sized to the largest header limit of the route table). A memory limit together with\n")
			w("  fewer allocations per request would close most of it.\n")
		} else {
			w("  The gap is in the program's pages: the gateway links the Redis client, the Prometheus client, go-oidc and\n")
			w("  go-jose besides Fiber; leaving the Redis limiter and the metrics out of the binary when unused (build tags)\n")
			w("  would shrink it. Garbage-collector settings hardly move it (GOGC=50 or GOMEMLIMIT=10MiB: about 1.5 MiB, tried by hand).\n")
		}
	}
	if scg := find(results.Single, "scg", false); scg != nil {
		w("- **Spring Cloud Gateway** ran on one core as every door did; the JVM then uses the Serial collector and its JIT\n")
		w("  compiler competes with the requests, hence the long warm-up. It was fully busy (%.0f%% of its core) at %.0f req/s:\n", scg.DoorBusy*100, scg.RPS)
		w("  %.2f CPU ms per request, %.0fx the gateway's. It accepts a Keycloak ID token as an access token (it does not read\n", scg.CPUPer1k, scg.CPUPer1k/gw.CPUPer1k)
		w("  Keycloak's `typ` claim), as the table of checks below shows.\n")
	}
	if c := results.Checkout; c != nil && c.StatementsPerCheckout > 0 {
		var busy float64
		for _, v := range c.CPUShare {
			busy += v
		}
		w("- **Checkout** (no target, where the time goes): the two cores were %.0f%% busy, PostgreSQL alone %.0f%%, at\n", busy*100, c.CPUShare["postgresql"]*100)
		w("  %.1f CPU ms per checkout, against %.1f ms for the order service, %.1f ms for the payment service and %.2f ms\n", c.CPUms["postgresql"], c.CPUms["order"], c.CPUms["payment"], c.CPUms["gateway"])
		w("  for the gateway. A checkout costs %.0f SQL statements, BEGIN and COMMIT included (`pg_stat_statements`);\n", c.StatementsPerCheckout)
		w("  single-row writes take about a millisecond each because the machine is saturated, and orders of the same\n")
		w("  product likely queue on its stock row. More checkouts per second would come from fewer statements per\n")
		w("  checkout (the order is read %.1f times and its items as often), not from the gateway, which takes %.0f%% of the CPU.\n", c.OrderReads, c.CPUShare["gateway"]*100)
	}
	for _, r := range results.Idle {
		if r.IdleMB >= targetIdleMB || r.HealthzMS >= targetReadyMS {
			w("- **%s** missed its idle or readiness target: %.1f MiB, ready after %.0f ms.\n", r.Service, r.IdleMB, r.HealthzMS)
		}
	}
	return b.String()
}

const (
	throughputTarget = "gateway (cache on) throughput >= 0.9x bare Fiber proxy"
	p99Target        = "gateway (cache on) p99 <= 1.2x bare Fiber proxy"
)

// remedy is what would shrink each part of the gateway's cost per request.
var remedy = map[string]string{
	catServer: "fasthttp writes the gateway's longer answers: five security headers (the API set, written from precomputed " +
		"keys), the request id and the rate-limit headers ride on every answer. They are the feature, not waste.",
	catClientIO: "Kernel time of the client's connection: the longer answers are copied, and a process that does more " +
		"per request serves fewer requests per wake-up, so each one pays more of the system-call cost; shrinks with the rest.",
	catUpstreamIO: "Kernel time of the upstream exchange: the gateway adds its request id and forwarding headers, and " +
		"the same batching effect as on the client side applies; not a lever of its own.",
	catLog: "One JSON access-log line per request, formatted by log/slog and written through a 64 KiB buffer " +
		"(platform/logging), so no write(2) per request. What is left is the formatting; sampling 2xx answers would remove " +
		"most of it, at the price of an incomplete log.",
	catMetrics: "The Prometheus histogram looks its labelled series up on every request; an observer cached per route and status would not.",
	catFiber:   "Fiber walks about fifteen handlers per request; folding the edge checks into one handler would save the hops.",
	catEdge:    "The edge checks (path, method, CORS, limits, forwarding) run as separate handlers; one combined handler would be cheaper.",
	catProxy:   "The upstream request is built header by header through an allowlist; a precomputed header filter would trim it.",
	catCache:   "SHA-256 over the whole 1.4 kB token and a single-lock LRU; a sharded cache would help under more cores, the hash is the price of safety.",
	catLimit:   "The in-memory token bucket per subject takes a lock per request; sharding it would matter only with more cores.",
	catReqID:   "A random UUID per request.",
	catGC:      "Garbage collection of the per-request allocations; fewer allocations (log attributes, headers) shrink it.",
	catRuntime: "",
	catJWT:     "",
	catRSA:     "",
}
