package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

const portIdle = 18100

// idleResult is one Go service's start-up and idle footprint, medians of the trials.
type idleResult struct {
	Service string `json:"service"`
	// HealthzMS is the time from starting the process to the first 200 from /healthz;
	// ReadyzMS to the first 200 from /readyz (database reachable, signing keys fetched).
	HealthzMS float64 `json:"healthz_ms"`
	ReadyzMS  float64 `json:"readyz_ms"`
	// IdleMB is the resident memory (VmRSS) two seconds after /healthz first answered.
	IdleMB float64 `json:"idle_mb"`
	Trials int     `json:"trials"`
}

// measureIdle starts each Go service in turn, unpinned, on its configuration of the
// checkout benchmark (PostgreSQL) and on its embedded default (SQLite), and records how
// soon it answers and how much memory it holds when idle.
func measureIdle(id *idp, pg *postgres) ([]idleResult, error) {
	type variant struct {
		name string
		bin  string
		env  func(trial int, dir string) ([]string, error)
	}
	listen := addr(portIdle)
	issuer := "OIDC_ISSUER=" + id.issuer
	// The idle service's internal listener and a peer nobody answers at: a service must
	// start without its peers.
	internal, peer, peerInternal := portIdle+1, portIdle+2, portIdle+3
	pgDB := func(prefix string, trial int) (string, error) {
		name := fmt.Sprintf("idle_%s_%d", prefix, trial)
		return pgDSN(name), pg.createDB(name)
	}
	variants := []variant{
		{"gateway", cfg.gatewayBin, func(int, string) ([]string, error) {
			return []string{"GATEWAY_ADDR=" + listen, issuer}, nil
		}},
		{"order (PostgreSQL)", cfg.serviceBin("order"), func(trial int, _ string) ([]string, error) {
			dsn, err := pgDB("order", trial)
			return orderEnv(id.issuer, portIdle, internal, peer, peerInternal, []string{"ORDER_DB_DRIVER=postgres", "ORDER_DB_DSN=" + dsn}), err
		}},
		{"order (SQLite)", cfg.serviceBin("order"), func(_ int, dir string) ([]string, error) {
			return orderEnv(id.issuer, portIdle, internal, peer, peerInternal, []string{"ORDER_DB_DSN=" + filepath.Join(dir, "order.db")}), nil
		}},
		{"payment (PostgreSQL)", cfg.serviceBin("payment"), func(trial int, _ string) ([]string, error) {
			dsn, err := pgDB("payment", trial)
			return paymentEnv(id.issuer, portIdle, internal, peer, peerInternal, []string{"PAYMENT_DB_DRIVER=postgres", "PAYMENT_DB_DSN=" + dsn}), err
		}},
		{"payment (SQLite)", cfg.serviceBin("payment"), func(_ int, dir string) ([]string, error) {
			return paymentEnv(id.issuer, portIdle, internal, peer, peerInternal, []string{"PAYMENT_DB_DSN=" + filepath.Join(dir, "payment.db")}), nil
		}},
		{"webapp", cfg.serviceBin("webapp"), func(int, string) ([]string, error) {
			return []string{"WEBAPP_ADDR=" + listen, "WEBAPP_PUBLIC_URL=http://" + listen, issuer}, nil
		}},
	}
	var out []idleResult
	for _, v := range variants {
		var hz, rz, mb []float64
		for trial := range cfg.idleTrials {
			dir := filepath.Join(cfg.work, "idle", fmt.Sprintf("%d-%d", len(out), trial))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			env, err := v.env(trial, dir)
			if err != nil {
				return nil, err
			}
			if err := portFree(listen); err != nil {
				return nil, err
			}
			t0 := time.Now()
			p, err := start(spec{name: "idle", core: -1, bin: v.bin, env: env, dir: dir, quiet: true})
			if err != nil {
				return nil, err
			}
			h, err := waitHTTP(p, "http://"+listen+"/healthz", 200, t0, 10*time.Second)
			if err != nil {
				p.stop()
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			r, err := waitHTTP(p, "http://"+listen+"/readyz", 200, t0, 10*time.Second)
			if err != nil {
				p.stop()
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			time.Sleep(time.Until(t0.Add(h + 2*time.Second)))
			rss := float64(statusKB(p.pid, "VmRSS")) / 1024
			p.stop()
			hz, rz, mb = append(hz, ms(h)), append(rz, ms(r)), append(mb, rss)
		}
		out = append(out, idleResult{Service: v.name, HealthzMS: median(hz), ReadyzMS: median(rz), IdleMB: median(mb), Trials: cfg.idleTrials})
	}
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
