// Command gateway runs the shop's gateway service; `gateway healthcheck` asks a running one whether it
// is ready (for container health checks, since the image has no shell).
package main

import (
	"example.com/shop/gateway/internal/app"
	"example.com/shop/platform/server"
)

func main() { server.Main("gateway", "GATEWAY_ADDR", ":8000", app.Run) }
