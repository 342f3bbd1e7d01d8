package certs

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// localIssuerKey names the local CA in certmagic's storage layout
// (certificates/hearth-local/NAME/...).
const localIssuerKey = "hearth-local"

func localCertsPrefix() string { return certmagic.StorageKeys.CertsPrefix(localIssuerKey) }

// localIssuer is a certmagic Issuer that signs leaf certificates with the
// local CA.
type localIssuer struct {
	ca       atomic.Pointer[authority]
	lifetime time.Duration
}

var _ certmagic.Issuer = (*localIssuer)(nil)

// IssuerKey implements certmagic.Issuer.
func (li *localIssuer) IssuerKey() string { return localIssuerKey }

// Issue implements certmagic.Issuer: it signs a server certificate for the
// CSR's DNS names and IP addresses, valid from an hour ago (for clients whose
// clocks run a little behind) for the leaf lifetime, and never past the CA's
// own expiry.
func (li *localIssuer) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ca := li.ca.Load()
	if ca == nil {
		return nil, fmt.Errorf("local CA: %w", ErrNotStarted)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("local CA: bad certificate request: %w", err)
	}
	if len(csr.DNSNames)+len(csr.IPAddresses) == 0 {
		return nil, errors.New("local CA: certificate request names nothing")
	}
	if len(csr.EmailAddresses)+len(csr.URIs) > 0 {
		return nil, errors.New("local CA: certificate request asks for e-mail or URI names")
	}
	for _, name := range csr.DNSNames {
		if err := checkPermitted(ca.cert, name); err != nil {
			return nil, fmt.Errorf("local CA: %w", err)
		}
	}
	der, err := signLeaf(ca, csr, time.Now(), li.lifetime)
	if err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	return &certmagic.IssuedCertificate{
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

func signLeaf(ca *authority, csr *x509.CertificateRequest, now time.Time, lifetime time.Duration) ([]byte, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := csr.PublicKey.(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	cn := ""
	if len(csr.DNSNames) > 0 {
		cn = csr.DNSNames[0]
	} else {
		cn = csr.IPAddresses[0].String()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              csr.DNSNames,
		IPAddresses:           csr.IPAddresses,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %s: %w", cn, err)
	}
	// Check the result the way a client will, name constraints included.
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("certificate for %s does not verify against the CA: %w", cn, err)
	}
	return der, nil
}

// checkPermitted reports whether the CA's name constraints allow name.
func checkPermitted(ca *x509.Certificate, name string) error {
	if net.ParseIP(name) != nil || len(ca.PermittedDNSDomains) == 0 {
		return nil
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, d := range ca.PermittedDNSDomains {
		d = strings.ToLower(strings.TrimPrefix(d, "."))
		if name == d || strings.HasSuffix(name, "."+d) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s (permitted: %s)", ErrNameNotPermitted, name, strings.Join(ca.PermittedDNSDomains, ", "))
}

// signedBy reports whether the PEM chain's first certificate was signed by
// the CA, i.e. whether a stored leaf belongs to this CA.
func signedBy(chainPEM []byte, ca *x509.Certificate) bool {
	block, _ := pem.Decode(chainPEM)
	if block == nil {
		return false
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	return leaf.CheckSignatureFrom(ca) == nil
}
