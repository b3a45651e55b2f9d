package testkit

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/mtls"
	"example.com/shop/platform/server"
)

// ServeInternal serves app as a service's internal listener runs (server.Serve behind
// id.ServerConfig: TLS 1.3, a client certificate of the CA required) on a loopback port
// until the test ends, and returns its base URL, https://127.0.0.1:<port>. An error from
// serving fails the test.
func ServeInternal(t testing.TB, app *fiber.App, id *mtls.Identity) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, app, tls.NewListener(ln, id.ServerConfig())) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serving the internal app: %v", err)
		}
	})
	return "https://" + ln.Addr().String()
}
