package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	portOrderInternal   = 18093
	portPaymentInternal = 18094
	portPG              = 15432
	portCheckoutGw      = 18090
	portOrder           = 18091
	portPayment         = 18092
	portCheckoutPprof   = 16061
	portOrderPprof      = 16062
	portPaymentPprof    = 16063
)

// postgres is a throwaway PostgreSQL cluster under the work folder.
type postgres struct {
	proc *proc
	pid  int // the postmaster
	cred *syscall.Credential
}

// startPostgres makes a fresh cluster and starts it on loopback. As root it runs as the
// postgres account, which PostgreSQL insists on.
func startPostgres() (*postgres, error) {
	root := filepath.Join(cfg.work, "pg")
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	data, sock := filepath.Join(root, "data"), filepath.Join(root, "sock")
	for _, d := range []string{data, sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	pg := &postgres{}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres account (Debian's postgresql package makes it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, d := range []string{root, data, sock} {
			if err := os.Chown(d, uid, gid); err != nil {
				return nil, err
			}
		}
	}
	initdb := exec.Command(filepath.Join(cfg.pgBin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	initdb.Dir = root
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	p, err := start(spec{name: "postgres", core: -1, bin: filepath.Join(cfg.pgBin, "postgres"), dir: root, cred: pg.cred, args: []string{
		"-D", data, "-p", strconv.Itoa(portPG), "-k", sock, "-c", "listen_addresses=" + host, "-c", "max_connections=200",
		// Where the database's time goes: statistics of every statement.
		"-c", "shared_preload_libraries=pg_stat_statements", "-c", "pg_stat_statements.track=all",
	}})
	if err != nil {
		return nil, err
	}
	pg.proc, pg.pid = p, p.pid
	// Listening is not accepting: wait until the server takes connections.
	for deadline := time.Now().Add(60 * time.Second); ; {
		if p.exited() {
			return nil, fmt.Errorf("postgres exited: %v\n%s", p.err, tail("postgres"))
		}
		if _, err := run(5*time.Second, filepath.Join(cfg.pgBin, "pg_isready"), "-q", "-h", host, "-p", strconv.Itoa(portPG)); err == nil {
			return pg, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("PostgreSQL did not accept connections within a minute:\n%s", tail("postgres"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (pg *postgres) createDB(name string) error {
	_, err := run(30*time.Second, filepath.Join(cfg.pgBin, "createdb"), "-h", host, "-p", strconv.Itoa(portPG), "-U", "postgres", name)
	return err
}

// sql runs statements through psql and returns the rows, fields separated by '|'.
func (pg *postgres) sql(db, query string) (string, error) {
	return run(time.Minute, filepath.Join(cfg.pgBin, "psql"), "-X", "-q", "-At", "-F", "|", "-h", host, "-p", strconv.Itoa(portPG),
		"-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-c", query)
}

// statementStat is one row of pg_stat_statements over the checkout's measured window.
type statementStat struct {
	DB        string  `json:"db"`
	Calls     float64 `json:"calls_per_checkout"`
	MS        float64 `json:"ms_per_checkout"`
	MeanMS    float64 `json:"mean_ms"`
	Statement string  `json:"statement"`
}

// orderEnv and paymentEnv configure the services: their API listener, their mutual-TLS
// internal listener with certificates from the internal CA (made by platform/cmd/certs
// into the work folder), a client secret for their Keycloak client (tokens are fetched
// only for calls without a user, which the benchmark does not make), and each other.
func orderEnv(issuer string, listen, internal, payment, paymentInternal int, db []string) []string {
	c := filepath.Join(cfg.work, "certs")
	return append([]string{
		"ORDER_ADDR=" + addr(listen), "ORDER_INTERNAL_ADDR=" + addr(internal), "OIDC_ISSUER=" + issuer,
		"ORDER_PAYMENT_URL=http://" + addr(payment), "ORDER_PAYMENT_INTERNAL_URL=https://" + addr(paymentInternal),
		"ORDER_TLS_CA=" + filepath.Join(c, "ca.pem"), "ORDER_TLS_CERT=" + filepath.Join(c, "order-service.pem"),
		"ORDER_TLS_KEY=" + filepath.Join(c, "order-service-key.pem"), "ORDER_CLIENT_SECRET=bench-only",
	}, db...)
}

func paymentEnv(issuer string, listen, internal, order, orderInternal int, db []string) []string {
	c := filepath.Join(cfg.work, "certs")
	return append([]string{
		"PAYMENT_ADDR=" + addr(listen), "PAYMENT_INTERNAL_ADDR=" + addr(internal), "OIDC_ISSUER=" + issuer,
		"PAYMENT_ORDER_URL=http://" + addr(order), "PAYMENT_ORDER_INTERNAL_URL=https://" + addr(orderInternal),
		"PAYMENT_TLS_CA=" + filepath.Join(c, "ca.pem"), "PAYMENT_TLS_CERT=" + filepath.Join(c, "payment-service.pem"),
		"PAYMENT_TLS_KEY=" + filepath.Join(c, "payment-service-key.pem"), "PAYMENT_CLIENT_SECRET=bench-only",
	}, db...)
}

func pgDSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", host, portPG, db)
}

// checkoutResult is the checkout load generator's summary plus the driver's measurements.
type checkoutResult struct {
	Workers       int                `json:"workers"`
	DurationS     float64            `json:"duration_s"`
	Checkouts     int64              `json:"checkouts"`
	Errors        int64              `json:"errors"`
	CheckoutsPerS float64            `json:"checkouts_per_s"`
	Total         map[string]float64 `json:"total"`
	Create        map[string]float64 `json:"create"`
	Pay           map[string]float64 `json:"pay"`
	// CPUms is CPU milliseconds per checkout of each party, measured over the run.
	CPUms map[string]float64 `json:"cpu_ms_per_checkout"`
	// CPUShare is each party's share of the machine's CPU time over the run.
	CPUShare map[string]float64 `json:"cpu_share"`
	// GatewayShare is the gateway's CPU profile by category; GatewayTop its top functions.
	GatewayShare map[string]float64 `json:"gateway_share"`
	GatewayTop   string             `json:"gateway_top"`
	// OrderShare, PaymentShare and their Tops are the services' own profiles
	// (ORDER_/PAYMENT_PPROF_ADDR), by serviceOrder's categories.
	OrderShare   map[string]float64 `json:"order_share"`
	OrderTop     string             `json:"order_top"`
	PaymentShare map[string]float64 `json:"payment_share"`
	PaymentTop   string             `json:"payment_top"`
	// Statements are the database's statements with the most execution time;
	// StatementsPerCheckout counts all of them, OrderReads the reads of one order by id.
	Statements            []statementStat `json:"statements"`
	StatementsPerCheckout float64         `json:"statements_per_checkout"`
	OrderReads            float64         `json:"order_reads_per_checkout"`
}

// runCheckout measures orders placed and paid per second through gateway -> order ->
// payment on PostgreSQL, and where the CPU time goes meanwhile.
func runCheckout(id *idp, pg *postgres) (*checkoutResult, error) {
	for _, db := range []string{"shop_order", "shop_payment"} {
		if err := pg.createDB(db); err != nil {
			return nil, err
		}
	}
	if _, err := pg.sql("postgres", "CREATE EXTENSION pg_stat_statements"); err != nil {
		return nil, err
	}
	orderURL, paymentURL := "http://"+addr(portOrder), "http://"+addr(portPayment)
	payment, err := start(spec{name: "checkout-payment", core: -1, bin: cfg.serviceBin("payment"), quiet: true, dir: cfg.work,
		env: paymentEnv(id.issuer, portPayment, portPaymentInternal, portOrder, portOrderInternal,
			[]string{"PAYMENT_DB_DRIVER=postgres", "PAYMENT_DB_DSN=" + pgDSN("shop_payment"), "PAYMENT_PPROF_ADDR=" + addr(portPaymentPprof)})})
	if err != nil {
		return nil, err
	}
	order, err := start(spec{name: "checkout-order", core: -1, bin: cfg.serviceBin("order"), quiet: true, dir: cfg.work,
		env: orderEnv(id.issuer, portOrder, portOrderInternal, portPayment, portPaymentInternal,
			[]string{"ORDER_DB_DRIVER=postgres", "ORDER_DB_DSN=" + pgDSN("shop_order"), "ORDER_PPROF_ADDR=" + addr(portOrderPprof)})})
	if err != nil {
		return nil, err
	}
	gwEnv := gatewayEnv(portCheckoutGw, id.issuer, orderURL, true)
	gwEnv = append(gwEnv, "GATEWAY_PAYMENT_URL="+paymentURL, "GWPROF_ADDR="+addr(portCheckoutPprof))
	gw, err := start(spec{name: "checkout-gateway", core: -1, bin: cfg.benchBin("gwprof"), quiet: true, env: gwEnv})
	if err != nil {
		return nil, err
	}
	for _, s := range []struct {
		p    *proc
		port int
	}{{payment, portPayment}, {order, portOrder}, {gw, portCheckoutGw}} {
		if _, err := waitHTTP(s.p, fmt.Sprintf("http://%s/readyz", addr(s.port)), 200, time.Now(), 30*time.Second); err != nil {
			return nil, err
		}
	}

	warm := 3 * time.Second
	dur := cfg.checkoutDuration
	gen := exec.Command(cfg.benchBin("checkout"), "-gateway", "http://"+addr(portCheckoutGw),
		"-tokens", id.checkoutUsers, "-admin-token", id.admin, "-workers", strconv.Itoa(cfg.checkoutWorkers),
		"-duration", dur.String(), "-warmup", warm.String(), "-max", "500000")
	var out, errOut bytes.Buffer
	gen.Stdout, gen.Stderr = &out, &errOut
	if err := gen.Start(); err != nil {
		return nil, err
	}
	parties := map[string]group{
		"gateway":        {pids: []int{gw.pid}},
		"order":          {pids: []int{order.pid}},
		"payment":        {pids: []int{payment.pid}},
		"postgresql":     {pids: []int{pg.pid}, tree: true},
		"load generator": {pids: []int{gen.Process.Pid}},
	}
	// The product set-up takes a moment before the warm-up starts; then measure the window.
	time.Sleep(warm + 500*time.Millisecond)
	if _, err := pg.sql("postgres", "SELECT pg_stat_statements_reset()"); err != nil {
		return nil, err
	}
	before := map[string]float64{}
	for k, g := range parties {
		before[k] = g.cpuSeconds()
	}
	t0 := time.Now()
	// One CPU profile of each service over the same window.
	profFiles := map[int]string{}
	for port, name := range map[int]string{portCheckoutPprof: "gateway", portOrderPprof: "order", portPaymentPprof: "payment"} {
		profFiles[port] = filepath.Join(cfg.work, "profiles", name+"-checkout.pprof")
	}
	profDone := make(chan error, len(profFiles))
	for port, file := range profFiles {
		go func() { profDone <- fetchProfile(port, dur-2*time.Second, file) }()
	}
	time.Sleep(dur - time.Second)
	after := map[string]float64{}
	for k, g := range parties {
		after[k] = g.cpuSeconds()
	}
	window := time.Since(t0).Seconds()
	stmts, err := pg.sql("postgres", `SELECT d.datname, s.calls, round(s.total_exec_time::numeric, 3), round(s.mean_exec_time::numeric, 4),
		regexp_replace(left(s.query, 140), '\s+', ' ', 'g')
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname IN ('shop_order', 'shop_payment') ORDER BY s.total_exec_time DESC LIMIT 12`)
	if err != nil {
		return nil, err
	}
	totals, err := pg.sql("postgres", `SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname IN ('shop_order', 'shop_payment')`)
	if err != nil {
		return nil, err
	}
	if err := gen.Wait(); err != nil {
		return nil, fmt.Errorf("checkout load generator: %v\n%s\n%s", err, errOut.String(), out.String())
	}
	var res checkoutResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("checkout summary: %v\n%s", err, out.String())
	}
	for range profFiles {
		if err := <-profDone; err != nil {
			return nil, err
		}
	}
	res.CPUms, res.CPUShare = map[string]float64{}, map[string]float64{}
	rate := res.CheckoutsPerS
	for k := range parties {
		cpu := after[k] - before[k]
		res.CPUms[k] = cpu / window / rate * 1000
		res.CPUShare[k] = cpu / window / float64(cfg.cores)
	}
	allCalls, _ := strconv.ParseFloat(strings.TrimSpace(totals), 64)
	res.StatementsPerCheckout = allCalls / (rate * window)
	for _, line := range strings.Split(strings.TrimSpace(stmts), "\n") {
		f := strings.SplitN(line, "|", 5)
		if len(f) != 5 {
			continue
		}
		calls, _ := strconv.ParseFloat(f[1], 64)
		total, _ := strconv.ParseFloat(f[2], 64)
		mean, _ := strconv.ParseFloat(f[3], 64)
		n := rate * window
		res.Statements = append(res.Statements, statementStat{DB: strings.TrimPrefix(f[0], "shop_"), Calls: calls / n, MS: total / n, MeanMS: mean, Statement: f[4]})
		if strings.HasPrefix(f[4], `SELECT * FROM "orders" WHERE id = `) {
			res.OrderReads += calls / n
		}
	}
	if res.GatewayShare, res.GatewayTop, err = summarize(profFiles[portCheckoutPprof], categorize); err != nil {
		return nil, err
	}
	if res.OrderShare, res.OrderTop, err = summarize(profFiles[portOrderPprof], categorizeService); err != nil {
		return nil, err
	}
	if res.PaymentShare, res.PaymentTop, err = summarize(profFiles[portPaymentPprof], categorizeService); err != nil {
		return nil, err
	}
	for _, p := range []*proc{gw, order, payment} {
		p.stop()
	}
	return &res, nil
}

// fetchProfile takes a CPU profile of d from a profiling listener (gwprof's, or a service's
// *_PPROF_ADDR).
func fetchProfile(port int, d time.Duration, file string) error {
	secs := max(1, int(d.Seconds()))
	client := &http.Client{Timeout: d + 30*time.Second}
	resp, err := client.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr(port), secs))
	if err != nil {
		return fmt.Errorf("CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("CPU profile: status %d", resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// trimPprof drops pprof's preamble lines that name files of this machine.
func trimPprof(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Type:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}
