package harness

import (
	"os"
	"path/filepath"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"example.com/shop/platform/devca"
)

// PKI is the test stack's own internal CA and a certificate per service, made fresh for
// each run with platform/devca (the code behind `make certs`).
type PKI struct {
	Dir string
	CA  *devca.CA
}

// services that get a certificate, with the names they answer to: their network alias and
// loopback (tests reach published ports on 127.0.0.1).
var pkiServices = map[string][]string{
	"order-service":   {"order", "localhost", "127.0.0.1"},
	"payment-service": {"payment", "localhost", "127.0.0.1"},
}

// NewPKI writes ca.pem and <service>.pem / <service>-key.pem into a temporary folder.
func NewPKI() (*PKI, error) {
	dir, err := os.MkdirTemp("", "shop-e2e-pki-")
	if err != nil {
		return nil, err
	}
	ca, err := devca.NewCA("Shop e2e CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := devca.WriteCert(filepath.Join(dir, "ca.pem"), ca.Cert); err != nil {
		return nil, err
	}
	for name, hosts := range pkiServices {
		leaf, err := ca.Issue(name, hosts, time.Now().Add(-time.Minute), 24*time.Hour)
		if err != nil {
			return nil, err
		}
		if err := devca.WriteKey(filepath.Join(dir, name+"-key.pem"), leaf.Key); err != nil {
			return nil, err
		}
		if err := devca.WriteCert(filepath.Join(dir, name+".pem"), leaf.Cert); err != nil {
			return nil, err
		}
	}
	return &PKI{Dir: dir, CA: ca}, nil
}

// Files copies the CA and service's certificate and key into a container under /certs.
// The key is copied readable for the image's non-root user; it exists only for this run.
func (p *PKI) Files(service string) []testcontainers.ContainerCustomizer {
	file := func(name string) testcontainers.ContainerFile {
		return testcontainers.ContainerFile{HostFilePath: filepath.Join(p.Dir, name), ContainerFilePath: "/certs/" + name, FileMode: 0o644}
	}
	return []testcontainers.ContainerCustomizer{testcontainers.WithFiles(
		file("ca.pem"), file(service+".pem"), file(service+"-key.pem"),
	)}
}
