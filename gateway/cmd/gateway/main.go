// Command gateway runs the shop's gateway service; `gateway healthcheck` asks a running one whether it
// is ready (for container health checks, since the image has no shell).
package main

import (
	"cmp"
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"example.com/shop/gateway/internal/app"
	"example.com/shop/platform/server"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		os.Exit(server.Probe(cmp.Or(os.Getenv("GATEWAY_ADDR"), ":8000")))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, os.Getenv); err != nil {
		slog.Error("gateway stopped", "err", err)
		os.Exit(1)
	}
}
