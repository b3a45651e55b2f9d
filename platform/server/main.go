package server

import (
	"cmp"
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Main is the main function of a shop service. `<binary> healthcheck` probes a running
// instance (Probe) at the address in the environment variable addrVar, defaultAddr when
// unset, and exits with its result; `<binary> checkconfig` loads cfg (a pointer to the
// service's zero Config) from the environment and prints a ConfigReport, exit 1 unless it
// is valid; otherwise run runs until SIGINT or SIGTERM, and a failure is logged and exits 1.
func Main(name, addrVar, defaultAddr string, cfg any, run func(ctx context.Context, getenv func(string) string) error) {
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		os.Exit(Probe(cmp.Or(os.Getenv(addrVar), defaultAddr)))
	}
	if len(os.Args) == 2 && os.Args[1] == "checkconfig" {
		os.Exit(CheckConfig(os.Stdout, name, addrVar, os.Environ(), cfg))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv)
	stop()
	if err != nil {
		slog.Error(name+" stopped", "err", err)
		os.Exit(1)
	}
}
