package integration

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"example.com/shop/integration/harness"
	"example.com/shop/platform/devca"
	"example.com/shop/platform/mtls"
)

// TestMTLSAndClientCredentialsInsideTheStack calls the payment service's internal listener
// the way the order service does: with the order service's certificate from the stack's CA
// and a client-credentials token from the real Keycloak. The same call without a
// certificate, with a certificate from another CA, or with a shopper's token is refused.
// (The refund in TestAdminRefundsAndDeletes travels payment -> order over the same kind of
// channel.)
func TestMTLSAndClientCredentialsInsideTheStack(t *testing.T) {
	containerFor(t, shop.Payment, "payment")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := "https://" + shop.PaymentInternal + "/internal/payments?orderId=00000000-0000-0000-0000-000000000000"

	identity := func(service string) *mtls.Identity {
		id, err := mtls.Load(mtls.Files{
			CA:   filepath.Join(shop.PKI.Dir, "ca.pem"),
			Cert: filepath.Join(shop.PKI.Dir, service+".pem"),
			Key:  filepath.Join(shop.PKI.Dir, service+"-key.pem"),
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	orderID := identity("order-service")
	call := func(cfg *tls.Config, token string) (int, error) {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	cc := clientcredentials.Config{ClientID: "order-service", ClientSecret: harness.OrderServiceSecret,
		TokenURL: shop.Issuer() + "/protocol/openid-connect/token"}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("order-service client credentials: %v", err)
	}
	if st, err := call(orderID.ClientConfig(), tok.AccessToken); err != nil || st != http.StatusOK {
		t.Fatalf("order-service certificate and token: %d, %v; want 200", st, err)
	}

	noCert := orderID.ClientConfig()
	noCert.GetClientCertificate = nil
	if st, err := call(noCert, tok.AccessToken); err == nil {
		t.Errorf("no client certificate: answered %d, want a refused handshake", st)
	}
	other, err := devca.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := other.Issue("order-service", []string{"127.0.0.1"}, time.Now().Add(-time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign := orderID.ClientConfig()
	foreign.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}, nil
	}
	if st, err := call(foreign, tok.AccessToken); err == nil {
		t.Errorf("certificate from another CA: answered %d, want a refused handshake", st)
	}
	if st, err := call(orderID.ClientConfig(), apiToken(t, harness.Alice)); err != nil || st != http.StatusForbidden {
		t.Errorf("a shopper's token with the order-service certificate: %d, %v; want 403", st, err)
	}
	if st, err := call(identity("payment-service").ClientConfig(), tok.AccessToken); err != nil || st != http.StatusForbidden {
		t.Errorf("payment-service certificate (not allowed on this route): %d, %v; want 403", st, err)
	}
}
