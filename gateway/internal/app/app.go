// Package app wires the gateway service together: configuration, HTTP server and routes.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"example.com/shop/platform/config"
	"example.com/shop/platform/server"
)

// Config is the gateway service's configuration, from environment variables.
type Config struct {
	Addr string `env:"GATEWAY_ADDR" default:":8000"`
}

// Run starts the service and blocks until ctx is cancelled.
func Run(ctx context.Context, getenv func(string) string) error {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("service", "gateway")
	var cfg Config
	if err := config.Load(getenv, &cfg); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "config", config.LogValue(&cfg))
	app := server.New(server.Options{Name: "gateway", Logger: log})
	return server.ListenAndServe(ctx, app, cfg.Addr)
}
