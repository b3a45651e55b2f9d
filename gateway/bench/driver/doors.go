package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// Loopback ports of the benchmark; each is checked free before use.
const (
	host         = "127.0.0.1"
	portIdP      = 18180
	portUpstream = 18081
	portBare     = 18001
	portGwOff    = 18002
	portGwOn     = 18003
	portHAProxy  = 18004
	portSCG      = 18005
	portRedis    = 16379
	portGwProf   = 18006
	portPprof    = 16060
)

func addr(port int) string { return fmt.Sprintf("%s:%d", host, port) }

// orderPath is the route every front door serves: one order, read by its owner.
const orderPath = "/api/orders/6f1c2a8e-3b7d-4e59-9a0c-1d2e3f4a5b6c"

// door is one front door in front of the shared upstream.
type door struct {
	key, label string
	port       int
	// checks: the door validates tokens (and must refuse the bad ones).
	checks bool
	group  group
	// refusesIDToken: the door tells Keycloak's ID tokens from access tokens (typ).
	refusesIDToken bool
}

func (d *door) url() string { return "http://" + addr(d.port) + orderPath }

// idp holds what the fake Keycloak wrote.
type idp struct {
	proc                   *proc
	issuer                 string
	dir                    string
	token, admin           string // files
	many, overflow         string // files
	publicPEM              string
	badTokens              [][2]string
	checkoutUsers          string
	tokenValue, adminValue string
}

func startIdP() (*idp, error) {
	dir := filepath.Join(cfg.work, "idp")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	p, err := start(spec{name: "fakeidp", core: cfg.loadCore, bin: cfg.benchBin("fakeidp"), args: []string{
		"-addr", addr(portIdP), "-dir", dir, "-many", fmt.Sprint(cfg.many), "-many-list", fmt.Sprint(cfg.overflow),
	}})
	if err != nil {
		return nil, err
	}
	ready := filepath.Join(dir, "ready")
	for deadline := time.Now().Add(60 * time.Second); ; {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if p.exited() || time.Now().After(deadline) {
			return nil, fmt.Errorf("fake Keycloak did not start:\n%s", tail("fakeidp"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	i := &idp{proc: p, dir: dir,
		token: filepath.Join(dir, "token.txt"), admin: filepath.Join(dir, "admin-token.txt"),
		many:      filepath.Join(dir, fmt.Sprintf("tokens-%d.txt", cfg.many)),
		overflow:  filepath.Join(dir, fmt.Sprintf("tokens-%d.txt", cfg.overflow)),
		publicPEM: filepath.Join(dir, "public.pem"),
	}
	b, err := os.ReadFile(filepath.Join(dir, "issuer.txt"))
	if err != nil {
		return nil, err
	}
	i.issuer = strings.TrimSpace(string(b))
	b, _ = os.ReadFile(i.token)
	i.tokenValue = strings.TrimSpace(string(b))
	b, _ = os.ReadFile(i.admin)
	i.adminValue = strings.TrimSpace(string(b))
	f, err := os.Open(filepath.Join(dir, "bad-tokens.txt"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		name, tok, _ := strings.Cut(sc.Text(), "\t")
		i.badTokens = append(i.badTokens, [2]string{name, tok})
	}
	// The checkout's shoppers: the first users of the many-token file.
	i.checkoutUsers = i.many
	return i, sc.Err()
}

// gatewayEnv is the gateway's configuration in the benchmarks: the upstream behind every
// route, and a rate limit far above what the run can reach.
func gatewayEnv(listen int, issuer, upstream string, cache bool) []string {
	return []string{
		"GATEWAY_ADDR=" + addr(listen), "OIDC_ISSUER=" + issuer, "OIDC_AUDIENCE=shop-api",
		"GATEWAY_ORDER_URL=" + upstream, "GATEWAY_PAYMENT_URL=" + upstream,
		"GATEWAY_RATE=1000000000", "GATEWAY_BURST=1000000000",
		fmt.Sprintf("GATEWAY_TOKEN_CACHE=%t", cache),
		// The fake IdP's user tokens name azp webapp, as the realm's do, but are bearer
		// tokens: these rows measure the bearer path, so no client is held to DPoP.
		"GATEWAY_DPOP_CLIENTS=none",
	}
}

var haproxyTemplate = template.Must(template.New("haproxy").Parse(`# Written by the benchmark driver for this run only.
global
    nbthread 1
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option http-keep-alive

frontend api
    bind {{.Listen}}
    # One rate-limit entry per token subject; the limit is far above what the run reaches.
    stick-table type string len 64 size 100k expire 60s store http_req_rate(1s)
    http-request set-var(txn.bearer) http_auth_bearer
    http-request deny deny_status 401 unless { var(txn.bearer) -m found }
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
    http-request deny deny_status 401 unless { var(txn.alg) -m str RS256 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"{{.PublicKey}}") -m int 1 }
    http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
    http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
    http-request set-var(txn.typ) var(txn.bearer),jwt_payload_query('$.typ')
    http-request set-var(txn.sub) var(txn.bearer),jwt_payload_query('$.sub')
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny deny_status 401 unless { var(txn.iss) -m str {{.Issuer}} }
    http-request deny deny_status 401 unless { var(txn.aud) -m str shop-api }
    http-request deny deny_status 401 unless { var(txn.typ) -m str Bearer }
    http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
    http-request track-sc0 var(txn.sub)
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 100000000 }
    use_backend orders if { path_beg /api/orders/ }

backend orders
    http-reuse always
    server upstream {{.Upstream}}
`))

// startDoors starts the shared upstream and every front door; the upstream and the fake
// Keycloak run on the load core, each door on the door core.
func startDoors(id *idp) (upstream *door, doors []*door, err error) {
	up, err := start(spec{name: "upstream", core: cfg.loadCore, bin: cfg.benchBin("upstream"), args: []string{"-addr", addr(portUpstream)}})
	if err != nil {
		return nil, nil, err
	}
	if err := waitTCP(up, addr(portUpstream), 10*time.Second); err != nil {
		return nil, nil, err
	}
	upstream = &door{key: "direct", label: "upstream direct", port: portUpstream, group: group{pids: []int{up.pid}}}
	doors = append(doors, upstream)
	upURL := "http://" + addr(portUpstream)

	bare, err := start(spec{name: "bareproxy", core: cfg.doorCore, bin: cfg.benchBin("bareproxy"), args: []string{"-addr", addr(portBare), "-upstream", addr(portUpstream)}})
	if err != nil {
		return nil, nil, err
	}
	doors = append(doors, &door{key: "bare", label: "bare Fiber proxy", port: portBare, group: group{pids: []int{bare.pid}}})

	for _, g := range []struct {
		key, label string
		port       int
		cache      bool
	}{{"gw-nocache", "gateway, cache off", portGwOff, false}, {"gw-cache", "gateway, cache on", portGwOn, true}} {
		p, err := start(spec{name: g.key, core: cfg.doorCore, bin: cfg.gatewayBin, quiet: true,
			env: gatewayEnv(g.port, id.issuer, upURL, g.cache)})
		if err != nil {
			return nil, nil, err
		}
		if _, err := waitHTTP(p, "http://"+addr(g.port)+"/readyz", 200, time.Now(), 20*time.Second); err != nil {
			return nil, nil, err
		}
		doors = append(doors, &door{key: g.key, label: g.label, port: g.port, checks: true, refusesIDToken: true, group: group{pids: []int{p.pid}}})
	}

	cfgPath := filepath.Join(cfg.work, "haproxy.cfg")
	f, err := os.Create(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	err = haproxyTemplate.Execute(f, map[string]string{"Listen": addr(portHAProxy), "PublicKey": id.publicPEM, "Issuer": id.issuer, "Upstream": addr(portUpstream)})
	f.Close()
	if err != nil {
		return nil, nil, err
	}
	if out, err := run(30*time.Second, "haproxy", "-c", "-q", "-f", cfgPath); err != nil {
		return nil, nil, fmt.Errorf("haproxy configuration: %v\n%s", err, out)
	}
	hap, err := start(spec{name: "haproxy", core: cfg.doorCore, bin: "haproxy", args: []string{"-db", "-f", cfgPath}})
	if err != nil {
		return nil, nil, err
	}
	if err := waitTCP(hap, addr(portHAProxy), 10*time.Second); err != nil {
		return nil, nil, err
	}
	doors = append(doors, &door{key: "haproxy", label: "HAProxy jwt_verify", port: portHAProxy, checks: true, refusesIDToken: true, group: group{pids: []int{hap.pid}}})

	if cfg.scgJar != "" {
		redis, err := start(spec{name: "redis", core: cfg.doorCore, bin: "redis-server", args: []string{
			"--port", fmt.Sprint(portRedis), "--bind", host, "--save", "", "--appendonly", "no", "--daemonize", "no",
			"--dir", cfg.work,
		}})
		if err != nil {
			return nil, nil, err
		}
		if err := waitTCP(redis, addr(portRedis), 10*time.Second); err != nil {
			return nil, nil, err
		}
		t0 := time.Now()
		scg, err := start(spec{name: "scg", core: cfg.doorCore, bin: "java", args: append(cfg.javaOpts(), "-jar", cfg.scgJar),
			env: []string{fmt.Sprintf("SCG_PORT=%d", portSCG), fmt.Sprintf("SCG_REDIS_PORT=%d", portRedis),
				"OIDC_ISSUER=" + id.issuer, "UPSTREAM_URL=" + upURL}})
		if err != nil {
			return nil, nil, err
		}
		// Spring Security answers 401 to a request without a token once it is up.
		if _, err := waitHTTP(scg, "http://"+addr(portSCG)+orderPath, 401, t0, 120*time.Second); err != nil {
			return nil, nil, err
		}
		results.SCGStartSeconds = time.Since(t0).Seconds()
		doors = append(doors, &door{key: "scg", label: "Spring Cloud Gateway", port: portSCG, checks: true, group: group{pids: []int{scg.pid, redis.pid}}})
	}
	return upstream, doors, nil
}

// preflight proves each door serves the route with the good token and, when it checks
// tokens, refuses each bad one; doors that check nothing must let them through. It
// records which bad tokens each door refused.
func preflight(id *idp, doors []*door) error {
	// A cold JVM takes its time over its first refusals.
	client := &http.Client{Timeout: 60 * time.Second}
	get := func(url, token string) (int, string, error) {
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, string(b), nil
	}
	_, want, err := get(doors[0].url(), "")
	if err != nil {
		return err
	}
	for _, d := range doors {
		status, body, err := get(d.url(), id.tokenValue)
		if err != nil || status != 200 || body != want {
			return fmt.Errorf("%s: the good token got %d %q (%v), want 200 and the upstream's answer", d.label, status, body, err)
		}
		row := map[string]int{}
		for _, bt := range id.badTokens {
			status, _, err := get(d.url(), bt[1])
			if err != nil {
				return fmt.Errorf("%s with %s: %v", d.label, bt[0], err)
			}
			row[bt[0]] = status
			refuse := d.checks && (bt[0] != "id-token" || d.refusesIDToken)
			if refuse && status != 401 {
				return fmt.Errorf("%s let a bad token through (%s): status %d, want 401", d.label, bt[0], status)
			}
			if !refuse && status != 200 {
				return fmt.Errorf("%s refused %s with %d, though it checks nothing of it", d.label, bt[0], status)
			}
		}
		results.Preflight = append(results.Preflight, preflightRow{Door: d.label, Status: row})
	}
	return nil
}
