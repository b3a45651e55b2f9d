package mtls_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/devca"
	"example.com/shop/platform/mtls"
	"example.com/shop/platform/server"
)

// pki writes a CA and a certificate for each service into a temp dir.
type pki struct {
	dir string
	ca  *devca.CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := devca.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{dir: t.TempDir(), ca: ca}
	if err := devca.WriteCert(filepath.Join(p.dir, "ca.pem"), ca.Cert); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue writes a certificate for service from ca and returns its files.
func (p *pki) issue(t *testing.T, ca *devca.CA, service, name string, notBefore time.Time, ttl time.Duration) mtls.Files {
	t.Helper()
	leaf, err := ca.Issue(service, []string{"localhost", "127.0.0.1"}, notBefore, ttl)
	if err != nil {
		t.Fatal(err)
	}
	f := mtls.Files{CA: filepath.Join(p.dir, "ca.pem"), Cert: filepath.Join(p.dir, name+".pem"), Key: filepath.Join(p.dir, name+"-key.pem")}
	if err := devca.WriteKey(f.Key, leaf.Key); err != nil {
		t.Fatal(err)
	}
	if err := devca.WriteCert(f.Cert, leaf.Cert); err != nil {
		t.Fatal(err)
	}
	return f
}

// startInternal serves an internal listener whose /internal/orders route admits only the
// order service; it counts the requests that reached the handler.
func startInternal(t *testing.T, id *mtls.Identity) (addr string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	app := server.New(server.Options{Name: "internal", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app.Get("/internal/orders", mtls.Allow(devca.ID("order-service")), func(c *fiber.Ctx) error {
		hits.Add(1)
		return c.JSON(mtls.PeerIDs(c))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = server.Serve(ctx, app, tls.NewListener(ln, id.ServerConfig())); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), hits
}

func client(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

func TestInternalListener(t *testing.T) {
	p := newPKI(t)
	now := time.Now().Add(-time.Minute)
	serverFiles := p.issue(t, p.ca, "payment-service", "payment", now, time.Hour)
	serverID, err := mtls.Load(serverFiles)
	if err != nil {
		t.Fatal(err)
	}
	addr, hits := startInternal(t, serverID)
	url := "https://" + addr + "/internal/orders"

	orderID, _ := mtls.Load(p.issue(t, p.ca, "order-service", "order", now, time.Hour))
	webappID, _ := mtls.Load(p.issue(t, p.ca, "webapp", "webapp", now, time.Hour))
	expiredID, _ := mtls.Load(p.issue(t, p.ca, "order-service", "expired", now.Add(-2*time.Hour), time.Hour))
	otherCA, _ := devca.NewCA("another CA", time.Hour)
	foreign := p.issue(t, otherCA, "order-service", "foreign", now, time.Hour)
	foreign.CA = serverFiles.CA // it trusts our CA, but its own certificate is from another
	foreignID, err := mtls.Load(foreign)
	if err != nil {
		t.Fatal(err)
	}
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
	p := newPKI(t)
	now := time.Now().Add(-time.Minute)
	files := p.issue(t, p.ca, "payment-service", "payment", now, time.Hour)
	id, err := mtls.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := startInternal(t, id)
	orderID, _ := mtls.Load(p.issue(t, p.ca, "order-service", "order", now, time.Hour))

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
	p.issue(t, p.ca, "payment-service", "payment", now, 2*time.Hour)
	if after := serial(); after == before {
		t.Fatal("the server still presents the old certificate after renewal")
	}
}
