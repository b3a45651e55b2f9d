// Command webapp runs the shop's webapp service; `webapp healthcheck` asks a running one whether it
// is ready (for container health checks, since the image has no shell), and
// `webapp checkconfig` whether the environment configures it (for deployment checks).
package main

import (
	"example.com/shop/platform/server"
	"example.com/shop/webapp/internal/app"
)

func main() { server.Main("webapp", "WEBAPP_ADDR", ":8080", &app.Config{}, app.Run) }
