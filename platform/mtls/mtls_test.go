package mtls_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/devca"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/server"
	"example.com/shop/platform/testkit"
)

// startInternal serves an internal listener whose /internal/orders route admits only the
// order service; it counts the requests that reached the handler.
func startInternal(t *testing.T, id *mtls.Identity) (addr string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	app := server.New(server.Options{Name: "internal", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app.Get("/internal/orders", mtls.Allow(mtls.ID("order-service")), func(c *fiber.Ctx) error {
		hits.Add(1)
		return c.JSON(mtls.PeerIDs(c))
	})
	return strings.TrimPrefix(testkit.ServeInternal(t, app, id), "https://"), hits
}

func client(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

func TestInternalListener(t *testing.T) {
	p := testkit.NewPKI(t)
	now := time.Now().Add(-time.Minute)
	addr, hits := startInternal(t, p.Identity("payment-service"))
	url := "https://" + addr + "/internal/orders"

	orderID := p.Identity("order-service")
	webappID := p.Identity("webapp")
	expiredID := p.Load(p.Issue(nil, "order-service", "expired", now.Add(-2*time.Hour), time.Hour))
	otherCA, err := devca.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// It trusts our CA, but its own certificate is from another.
	foreignID := p.Load(p.Issue(otherCA, "order-service", "foreign", now, time.Hour))
	noCert := orderID.ClientConfig()
	noCert.GetClientCertificate = nil

	refused := map[string]*tls.Config{
		"no client certificate":          noCert,
		"certificate from another CA":    foreignID.ClientConfig(),
		"expired certificate":            expiredID.ClientConfig(),
		"TLS 1.2 (internal is 1.3 only)": func() *tls.Config { c := orderID.ClientConfig(); c.MaxVersion = tls.VersionTLS12; return c }(),
	}
	for name, cfg := range refused {
		resp, err := client(cfg).Get(url)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: handshake accepted, status %d", name, resp.StatusCode)
		}
	}

	resp, err := client(webappID.ClientConfig()).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("valid certificate of a service not allowed on the route: status %d, want 403", resp.StatusCode)
	}

	if resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + addr + "/internal/orders"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plaintext request answered 200")
		}
	}

	if hits.Load() != 0 {
		t.Fatalf("refused callers reached the handler %d times", hits.Load())
	}

	resp, err = client(orderID.ClientConfig()).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `["spiffe://shop/order-service"]` || hits.Load() != 1 {
		t.Fatalf("order service: status %d body %s hits %d", resp.StatusCode, body, hits.Load())
	}
}

// TestRenewedCertificateIsUsedWithoutRestart replaces the server's certificate files and
// checks that the next handshake presents the new certificate.
func TestRenewedCertificateIsUsedWithoutRestart(t *testing.T) {
	p := testkit.NewPKI(t)
	now := time.Now().Add(-time.Minute)
	addr, _ := startInternal(t, p.Load(p.Issue(nil, "payment-service", "payment", now, time.Hour)))
	orderID := p.Identity("order-service")

	serial := func() string {
		conn, err := tls.Dial("tcp", addr, orderID.ClientConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	time.Sleep(1100 * time.Millisecond) // past the reload check interval and mtime granularity
	p.Issue(nil, "payment-service", "payment", now, 2*time.Hour)
	if after := serial(); after == before {
		t.Fatal("the server still presents the old certificate after renewal")
	}
}

// TestClientConfigForAcceptsOnlyThePeer: a client calling the payment service refuses a
// server with a valid certificate of the CA, for the right host, of another service. Here
// that is the order service's own listener, which a wrong port in a URL would reach: every
// development certificate names localhost. The refusal comes in the handshake, so no
// request, and no token, reaches that server. The usual checks still come first.
func TestClientConfigForAcceptsOnlyThePeer(t *testing.T) {
	p := testkit.NewPKI(t)
	now := time.Now().Add(-time.Minute)
	orderID := p.Identity("order-service")
	addr, hits := startInternal(t, orderID)
	url := "https://" + addr + "/internal/orders"

	_, err := client(orderID.ClientConfigFor(mtls.ID("payment-service"))).Get(url)
	if err == nil || !strings.Contains(err.Error(), `names ["spiffe://shop/order-service"], want spiffe://shop/payment-service`) {
		t.Fatalf("a client of the payment service called the order service: %v", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the refused server received the request")
	}

	// ClientConfig checks the host name only, and would have sent it; expecting the server
	// it is, ClientConfigFor does too.
	for name, cfg := range map[string]*tls.Config{
		"ClientConfig":                   orderID.ClientConfig(),
		"ClientConfigFor(order-service)": orderID.ClientConfigFor(mtls.ID("order-service")),
	} {
		resp, err := client(cfg).Get(url)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", name, resp.StatusCode)
		}
	}

	// The identity is checked after the chain and the host name, not instead of them.
	otherCA, err := devca.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignAddr, _ := startInternal(t, p.Load(p.Issue(otherCA, "payment-service", "foreign", now, time.Hour)))
	_, err = tls.Dial("tcp", foreignAddr, orderID.ClientConfigFor(mtls.ID("payment-service")))
	if !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Errorf("the payment service's id on a certificate of another CA: %v, want an unknown authority", err)
	}
	paymentAddr, _ := startInternal(t, p.Identity("payment-service"))
	cfg := orderID.ClientConfigFor(mtls.ID("payment-service"))
	cfg.ServerName = "payment.internal" // a name the certificate does not carry
	_, err = tls.Dial("tcp", paymentAddr, cfg)
	if !errors.As(err, new(x509.HostnameError)) {
		t.Errorf("the payment service under a name its certificate lacks: %v, want a host name error", err)
	}
}
