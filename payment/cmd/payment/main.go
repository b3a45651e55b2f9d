// Command payment runs the shop's payment service; `payment healthcheck` asks a running one whether it
// is ready (for container health checks, since the image has no shell), and
// `payment checkconfig` whether the environment configures it (for deployment checks).
package main

import (
	"example.com/shop/payment/internal/app"
	"example.com/shop/platform/server"
)

func main() { server.Main("payment", "PAYMENT_ADDR", ":8082", &app.Config{}, app.Run) }
