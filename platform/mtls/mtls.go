// Package mtls authenticates the channel between the shop's services both ways: an internal
// listener that demands a client certificate from the internal CA (TLS 1.3 only), a client
// that presents its own and accepts only the service it meant to call, and Fiber middleware
// that admits only the identities a route allows. Certificates and keys are re-read from
// disk when they change, so a renewed certificate is used without a restart.
//
// A service is named by its SPIFFE id, spiffe://shop/<service>, carried as the URI SAN of
// its certificate: a name the peer cannot choose, unlike a host name, which says where a
// connection goes rather than who answers it.
package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/problem"
)

// TrustDomain is the SPIFFE trust domain of the shop's identities.
const TrustDomain = "shop"

// ID is the SPIFFE id of a service, e.g. spiffe://shop/order-service: what its certificate
// carries and what route allowlists (Allow) and clients (ClientConfigFor) expect.
func ID(service string) string { return "spiffe://" + TrustDomain + "/" + service }

// Files names the PEM files of a service's identity and of the CA it trusts.
type Files struct {
	CA   string // the internal CA's certificate
	Cert string // this service's certificate
	Key  string // its private key
}

// Identity holds the service's certificate and trusted CA, re-read from Files when they
// change on disk (checked at most once per interval, on use).
type Identity struct {
	files    Files
	interval time.Duration

	mu        sync.Mutex
	checked   time.Time
	certStamp [2]time.Time // mtimes of Cert and Key last loaded
	caStamp   time.Time
	cert      *tls.Certificate
	pool      *x509.CertPool
}

// Load reads the files once and returns an Identity that keeps them current.
func Load(files Files) (*Identity, error) {
	id := &Identity{files: files, interval: time.Second}
	if err := id.reload(true); err != nil {
		return nil, err
	}
	return id, nil
}

func mtime(path string) (time.Time, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// reload re-reads the files whose modification time changed. A failed reload keeps the
// last good certificate: a half-written renewal must not take the listener down.
func (id *Identity) reload(force bool) error {
	id.mu.Lock()
	defer id.mu.Unlock()
	if !force && time.Since(id.checked) < id.interval {
		return nil
	}
	id.checked = time.Now()
	ct, err1 := mtime(id.files.Cert)
	kt, err2 := mtime(id.files.Key)
	at, err3 := mtime(id.files.CA)
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	if force || [2]time.Time{ct, kt} != id.certStamp {
		cert, err := tls.LoadX509KeyPair(id.files.Cert, id.files.Key)
		if err != nil {
			return fmt.Errorf("mtls: loading %s: %w", id.files.Cert, err)
		}
		id.cert, id.certStamp = &cert, [2]time.Time{ct, kt}
	}
	if force || at != id.caStamp {
		pem, err := os.ReadFile(id.files.CA)
		if err != nil {
			return fmt.Errorf("mtls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("mtls: no certificate in %s", id.files.CA)
		}
		id.pool, id.caStamp = pool, at
	}
	return nil
}

func (id *Identity) current() (*tls.Certificate, *x509.CertPool) {
	_ = id.reload(false) // on failure the last good pair stays in use
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.cert, id.pool
}

// ServerConfig is the TLS configuration of an internal listener: TLS 1.3 only, a client
// certificate signed by the internal CA required. Which identities may call which route
// is decided per route by Allow.
func (id *Identity) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Built per handshake so a renewed certificate or CA applies to the next connection.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := id.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{*cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
			}, nil
		},
	}
}

// ClientConfig is the TLS configuration of a client of an internal listener: it presents
// this service's certificate and trusts only the internal CA (not the system roots). The CA
// pool is read when the config is made; renewed client certificates are picked up per
// handshake.
//
// It checks the server's host name but not which service the server is: any certificate of
// the CA that names the host will do. Calls to a particular service use ClientConfigFor.
func (id *Identity) ClientConfig() *tls.Config {
	_, pool := id.current()
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := id.current()
			return cert, nil
		},
	}
}

// ClientConfigFor is ClientConfig for calls to the one service whose SPIFFE id is peerID:
// the handshake fails unless the server's certificate, once verified as usual (chain to the
// internal CA, host name), carries peerID.
//
// The host name alone does not say who answers: every development certificate names
// localhost, and in production several services' certificates may share a name or an
// address. Without this check any service holding a certificate of the CA could stand in
// for the peer (through a wrong URL, DNS entry or proxy) and receive the requests meant
// for it, bearer tokens included. The check runs in the handshake, before a request is
// sent.
func (id *Identity) ClientConfigFor(peerID string) *tls.Config {
	cfg := id.ClientConfig()
	// VerifyConnection runs after the chain and host name have been verified, on every
	// connection including resumed ones, so VerifiedChains[0][0] is the server's checked
	// certificate.
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.VerifiedChains) == 0 {
			return errors.New("mtls: the server's certificate was not verified")
		}
		var got []string
		for _, u := range cs.VerifiedChains[0][0].URIs {
			if u.String() == peerID {
				return nil
			}
			got = append(got, u.String())
		}
		return fmt.Errorf("mtls: the server's certificate names %q, want %s", got, peerID)
	}
	return cfg
}

// Certificate returns the certificate in use (for tests and logs).
func (id *Identity) Certificate() *x509.Certificate {
	cert, _ := id.current()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	return leaf
}

// PeerIDs returns the URI SANs of the verified client certificate of the request, or nil
// on a connection without one.
func PeerIDs(c *fiber.Ctx) []string {
	state := c.Context().TLSConnectionState()
	if state == nil || len(state.VerifiedChains) == 0 {
		return nil
	}
	var ids []string
	for _, u := range state.VerifiedChains[0][0].URIs {
		ids = append(ids, u.String())
	}
	return ids
}

// Allow admits requests whose verified client certificate carries one of the SPIFFE ids;
// others get 403. It is the per-route allowlist of an internal listener.
func Allow(ids ...string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		for _, peer := range PeerIDs(c) {
			if slices.Contains(ids, peer) {
				return c.Next()
			}
		}
		return problem.Forbidden("this caller's certificate is not allowed on this route")
	}
}
