// Command order runs the shop's order service.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"example.com/shop/order/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, os.Getenv); err != nil {
		slog.Error("order stopped", "err", err)
		os.Exit(1)
	}
}
