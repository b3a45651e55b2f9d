// Command payment runs the shop's payment service.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"example.com/shop/payment/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, os.Getenv); err != nil {
		slog.Error("payment stopped", "err", err)
		os.Exit(1)
	}
}
