// Command order runs the shop's order service; `order healthcheck` asks a running one whether it
// is ready (for container health checks, since the image has no shell), and
// `order checkconfig` whether the environment configures it (for deployment checks).
package main

import (
	"example.com/shop/order/internal/app"
	"example.com/shop/platform/server"
)

func main() { server.Main("order", "ORDER_ADDR", ":8081", &app.Config{}, app.Run) }
