// Command gateway runs the shop's gateway service; `gateway healthcheck` asks a running one whether it
// is ready (for container health checks, since the image has no shell), and
// `gateway checkconfig` whether the environment configures it (for deployment checks).
package main

import (
	"example.com/shop/gateway/internal/app"
	"example.com/shop/platform/server"
)

func main() { server.Main("gateway", "GATEWAY_ADDR", ":8000", &app.Config{}, app.Run) }
