// Command webapp runs the shop's webapp service; `webapp healthcheck` asks a running one whether it
// is ready (for container health checks, since the image has no shell).
package main

import (
	"cmp"
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"example.com/shop/platform/server"
	"example.com/shop/webapp/internal/app"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		os.Exit(server.Probe(cmp.Or(os.Getenv("WEBAPP_ADDR"), ":8080")))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, os.Getenv); err != nil {
		slog.Error("webapp stopped", "err", err)
		os.Exit(1)
	}
}
