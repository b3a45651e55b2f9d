// Command certs makes the development CA and the certificates of the services' internal mTLS
// listeners (`make certs`; `make run` calls it when they are missing). It writes into a
// git-ignored folder (certs/ by default) that docker-compose mounts too:
//
//	ca.pem, ca-key.pem                      the dev CA
//	<service>.pem, <service>-key.pem        one per service, SPIFFE ID spiffe://shop/<service>
//	webapp-client-key.pem                   the web shop's private_key_jwt key (ECDSA P-256),
//	                                        whose public half it serves for the realm to fetch
//
// Existing files are kept while they are valid for more than a third of their lifetime;
// certificates close to expiry are renewed under the same CA, and the services pick the new
// files up without a restart. -renew renews every service certificate now.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"example.com/shop/platform/devca"
	"example.com/shop/platform/mtls"
)

// services lists who gets a certificate and the host names it answers to: the compose/
// container alias and loopback for `make run`.
var services = map[string][]string{
	"order-service":   {"order", "localhost", "127.0.0.1"},
	"payment-service": {"payment", "localhost", "127.0.0.1"},
}

const (
	caTTL   = 5 * 365 * 24 * time.Hour
	leafTTL = 90 * 24 * time.Hour
)

func main() {
	dir := flag.String("dir", "certs", "output folder")
	renew := flag.Bool("renew", false, "renew every service certificate now")
	flag.Parse()
	if err := run(*dir, *renew); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
}

func run(dir string, renew bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	caCert, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	ca, err := devca.LoadCA(caCert, caKey)
	if err != nil {
		if ca, err = devca.NewCA("Shop dev CA", caTTL); err != nil {
			return err
		}
		if err := devca.WriteKey(caKey, ca.Key); err != nil {
			return err
		}
		if err := devca.WriteCert(caCert, ca.Cert); err != nil {
			return err
		}
		renew = true // certificates of an old CA are useless now
		fmt.Println("made a new dev CA:", caCert)
	}
	for name, hosts := range services {
		certPath, keyPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		if !renew && fresh(certPath) {
			continue
		}
		leaf, err := ca.Issue(name, hosts, time.Now().Add(-time.Minute), leafTTL)
		if err != nil {
			return err
		}
		// Key first: a service that sees the new certificate must find its key.
		if err := devca.WriteKey(keyPath, leaf.Key); err != nil {
			return err
		}
		if err := devca.WriteCert(certPath, leaf.Cert); err != nil {
			return err
		}
		fmt.Printf("issued %s for %s (valid until %s)\n", certPath, mtls.ID(name), leaf.Cert.NotAfter.Format(time.DateOnly))
	}
	return clientKey(filepath.Join(dir, "webapp-client-key.pem"))
}

// clientKey writes the web shop's client-authentication key once: every webapp replica
// loads the same file, and the realm trusts whatever the JWKS built from it lists, so it
// is kept as long as it exists (rotate by adding a second key to the file).
func clientKey(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := devca.WriteKey(path, key); err != nil {
		return err
	}
	fmt.Println("made the web shop's client key:", path)
	return nil
}

// fresh reports whether the certificate at path exists and has more than a third of its
// lifetime left.
func fresh(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return false
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	life := c.NotAfter.Sub(c.NotBefore)
	return time.Until(c.NotAfter) > life/3
}
