//go:build pprof

package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
)

var pprofAddr = flag.String("pprof", "", "loopback address of the profiling endpoints")

func init() {
	startProfiling = func() {
		if *pprofAddr == "" {
			return
		}
		if host, _, err := net.SplitHostPort(*pprofAddr); err != nil || !net.ParseIP(host).IsLoopback() {
			log.Fatalf("-pprof %q must be a loopback address", *pprofAddr)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go func() { log.Println(http.ListenAndServe(*pprofAddr, mux)) }()
	}
}
