// Command upstream is the benchmarks' shared upstream: it answers every request with a
// small JSON document shaped like an order, as fast as it can, so that the front doors in
// front of it are what is measured.
//
//	upstream -addr 127.0.0.1:18081
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

var body = []byte(`{"id":"6f1c2a8e-3b7d-4e59-9a0c-1d2e3f4a5b6c","status":"pending","total":{"amount":1999,"currency":"EUR"}}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address (loopback)")
	flag.Parse()
	s := &fasthttp.Server{
		Name:                  "bench-upstream",
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(body)
		},
	}
	log.Fatal(s.ListenAndServe(*addr))
}
