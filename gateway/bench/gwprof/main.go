// Command gwprof is the gateway (internal/app, configured from the same environment as
// cmd/gateway) with Go's profiling endpoints on a second, loopback-only listener, so the
// benchmark can take a CPU profile of it under load. It is never deployed.
//
//	GWPROF_ADDR=127.0.0.1:16060 OIDC_ISSUER=... gwprof
package main

import (
	"context"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"example.com/shop/gateway/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	addr := os.Getenv("GWPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:16060"
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("GWPROF_ADDR %q must be a loopback address", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go func() { log.Println(http.ListenAndServe(addr, mux)) }()
	if err := app.Run(ctx, os.Getenv); err != nil {
		log.Fatal(err)
	}
}
