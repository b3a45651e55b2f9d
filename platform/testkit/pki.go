package testkit

import (
	"path/filepath"
	"testing"
	"time"

	"example.com/shop/platform/devca"
	"example.com/shop/platform/mtls"
)

// PKI is a test CA in a temporary folder, issuing certificates as `make certs` does, so
// tests of mutual TLS run on real certificates and real handshakes.
type PKI struct {
	// CA issues the certificates; its certificate is Files.CA of each of them.
	CA  *devca.CA
	dir string
	t   testing.TB
}

// NewPKI makes a CA valid for an hour and writes its certificate into a temporary folder.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca, err := devca.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{CA: ca, dir: t.TempDir(), t: t}
	if err := devca.WriteCert(p.caFile(), ca.Cert); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *PKI) caFile() string { return filepath.Join(p.dir, "ca.pem") }

// Issue writes a certificate of service (SPIFFE id mtls.ID(service)) for localhost and
// 127.0.0.1, issued by ca (p.CA when nil), valid from notBefore for ttl, as name.pem and
// name-key.pem; the files it returns trust p.CA. Issuing under a name again replaces the
// files, as a renewal does.
func (p *PKI) Issue(ca *devca.CA, service, name string, notBefore time.Time, ttl time.Duration) mtls.Files {
	p.t.Helper()
	if ca == nil {
		ca = p.CA
	}
	leaf, err := ca.Issue(service, []string{"localhost", "127.0.0.1"}, notBefore, ttl)
	if err != nil {
		p.t.Fatal(err)
	}
	f := mtls.Files{CA: p.caFile(), Cert: filepath.Join(p.dir, name+".pem"), Key: filepath.Join(p.dir, name+"-key.pem")}
	// Key first, as `make certs` does: a reader that sees the new certificate finds its key.
	if err := devca.WriteKey(f.Key, leaf.Key); err != nil {
		p.t.Fatal(err)
	}
	if err := devca.WriteCert(f.Cert, leaf.Cert); err != nil {
		p.t.Fatal(err)
	}
	return f
}

// Load loads files as an mtls.Identity.
func (p *PKI) Load(files mtls.Files) *mtls.Identity {
	p.t.Helper()
	id, err := mtls.Load(files)
	if err != nil {
		p.t.Fatal(err)
	}
	return id
}

// Files writes a certificate of service from p.CA, valid for the next hour, under the
// service's name, as `make certs` does, and returns its files.
func (p *PKI) Files(service string) mtls.Files {
	p.t.Helper()
	return p.Issue(nil, service, service, time.Now().Add(-time.Minute), time.Hour)
}

// Identity is the identity of service with the certificate of Files(service).
func (p *PKI) Identity(service string) *mtls.Identity {
	p.t.Helper()
	return p.Load(p.Files(service))
}
