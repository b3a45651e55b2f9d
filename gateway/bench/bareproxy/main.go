// Command bareproxy is the benchmarks' physical limit of the gateway's design: a Fiber app
// that forwards /api/orders/** to the upstream with Fiber's own proxy middleware and checks
// nothing (no token, no limits, no logging).
//
//	bareproxy -addr 127.0.0.1:18001 -upstream 127.0.0.1:18081
//
// Built with -tags pprof it also takes -pprof ADDR, a loopback listener with Go's profiling
// endpoints (the benchmark's profile of the bare proxy); the measured build has none.
package main

import (
	"flag"
	"log"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/proxy"
)

// startProfiling is set by the pprof build.
var startProfiling = func() {}

func main() {
	addr := flag.String("addr", "127.0.0.1:18001", "listen address (loopback)")
	upstream := flag.String("upstream", "127.0.0.1:18081", "upstream host:port")
	flag.Parse()
	startProfiling()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.All("/api/orders/*", proxy.Balancer(proxy.Config{Servers: []string{"http://" + *upstream}}))
	log.Fatal(app.Listen(*addr))
}
