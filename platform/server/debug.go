package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// ListenDebug serves Go's profiling endpoints (net/http/pprof, under /debug/pprof/) on addr
// until ctx ends, and returns once the listener is open. addr must be a loopback address
// (CheckDebugAddr): a profile shows the code and costs the service CPU while it is taken,
// so it is for an operator on the machine or a port-forward, never for a network. Services
// turn it on with their *_PPROF_ADDR variable; it is off by default.
func ListenDebug(ctx context.Context, addr string, log *slog.Logger) error {
	if err := CheckDebugAddr(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("profiling listener stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("profiling endpoints listening", "addr", ln.Addr().String())
	return nil
}

// CheckDebugAddr accepts host:port with a loopback host (127.0.0.1, ::1, localhost).
func CheckDebugAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: the profiling listener must be on a loopback address (127.0.0.1, ::1, localhost)", addr)
	}
	return nil
}
