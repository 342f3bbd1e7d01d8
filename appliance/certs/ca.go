package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"strings"
	"time"
)

// Where the local CA lives in the KV (outside certmagic's key space).
const (
	caCertKey = "local_ca/ca.crt"
	caKeyKey  = "local_ca/ca.key"
)

// resetAdvice tells a person how to get out of a broken CA.
const resetAdvice = "restore Hearth's data from a backup to keep the devices that trust it working; " +
	"or reset the local CA (`hearth admin tls reset-ca`), after which every device must trust Hearth again"

// authority is the loaded local CA.
type authority struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	pool    *x509.CertPool
}

// caOptions are the settings a new (or rebuilt) CA certificate is made with.
type caOptions struct {
	name      string        // subject common name prefix
	lifetime  time.Duration // validity of the CA certificate
	minLeft   time.Duration // re-issue the CA certificate when less than this is left
	permitted []string      // permitted DNS domains (name constraints)
}

// Fingerprint returns the SHA-256 fingerprint of a DER certificate as
// colon-separated upper-case hex, the form certificate viewers show.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// parseCAKey decodes the stored CA private key: one PEM "PRIVATE KEY" block
// holding a PKCS #8 ECDSA P-256 key.
func parseCAKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\"", block.Type)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("trailing data after the key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want ECDSA", k)
	}
	if ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("key is on %s, want P-256", ek.Curve.Params().Name)
	}
	return ek, nil
}

func encodeCAKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseCACert decodes a PEM CA certificate: the first "CERTIFICATE" block,
// which must be a CA certificate.
func parseCACert(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM certificate")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		if !c.IsCA {
			return nil, errors.New("certificate is not a CA certificate")
		}
		return c, nil
	}
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// keyID is a short, stable name for a key: the first 8 hex digits of the
// SHA-256 of its public key. It keeps the subjects of two Hearths' CAs apart
// on a device that trusts both, and stays the same when a CA certificate is
// re-issued from the same key.
func keyID(k *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:4]), nil
}

// makeCACert self-signs a CA certificate for key.
func makeCACert(key *ecdsa.PrivateKey, now time.Time, o caOptions) (*x509.Certificate, []byte, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	id, err := keyID(key)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.name + " " + id, Organization: []string{"Hearth"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(o.lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		PermittedDNSDomains:   o.permitted,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func newAuthority(c *x509.Certificate, certPEM []byte, key *ecdsa.PrivateKey) *authority {
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &authority{cert: c, certPEM: certPEM, key: key, pool: pool}
}

// loadOrCreateCA loads the local CA from st, making one on first run. It
// never replaces a CA key that devices may trust: a stored certificate
// without a readable, matching key is an error. A readable key without a
// readable certificate (or with an expired or nearly expired one) gets a new
// certificate for the same key and subject, which devices that trust the
// old one accept as the same authority.
func loadOrCreateCA(ctx context.Context, st *Storage, now time.Time, o caOptions, log *slog.Logger) (*authority, error) {
	certPEM, certErr := st.Load(ctx, caCertKey)
	keyPEM, keyErr := st.Load(ctx, caKeyKey)
	certMissing := errors.Is(certErr, fs.ErrNotExist)
	keyMissing := errors.Is(keyErr, fs.ErrNotExist)
	if certErr != nil && !certMissing && !errors.Is(certErr, ErrCorruptRecord) {
		return nil, fmt.Errorf("read CA certificate: %w", certErr)
	}
	if keyErr != nil && !keyMissing && !errors.Is(keyErr, ErrCorruptRecord) {
		return nil, fmt.Errorf("read CA key: %w", keyErr)
	}

	if certMissing && keyMissing {
		return createCA(ctx, st, now, o, log)
	}

	var cert *x509.Certificate
	var certParseErr error
	if certErr == nil {
		cert, certParseErr = parseCACert(certPEM)
	} else if !certMissing {
		certParseErr = certErr
	}
	described := ""
	if cert != nil {
		described = fmt.Sprintf(" (CA %q, SHA-256 %s)", cert.Subject.CommonName, Fingerprint(cert.Raw))
	}

	if keyMissing {
		return nil, fmt.Errorf("%w%s; Hearth will not make a new CA by itself: %s", ErrCAKeyMissing, described, resetAdvice)
	}
	var key *ecdsa.PrivateKey
	if keyErr == nil {
		key, keyErr = parseCAKey(keyPEM)
	}
	if keyErr != nil && certMissing {
		// Nothing of the old CA is left for a device to match: start over.
		log.Warn("the local CA key is damaged and no CA certificate is stored; making a new CA", "err", keyErr)
		return createCA(ctx, st, now, o, log)
	}
	if keyErr != nil {
		return nil, fmt.Errorf("%w%s: %v; Hearth will not make a new CA by itself: %s", ErrCAKeyCorrupt, described, keyErr, resetAdvice)
	}

	if cert == nil {
		why := "missing"
		if certParseErr != nil {
			why = "damaged: " + certParseErr.Error()
		}
		log.Warn("the local CA certificate is missing or damaged; re-issuing it from the stored CA key, which devices that trust this Hearth still accept",
			"problem", why)
		return reissueCA(ctx, st, key, now, o, log)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w%s: %s", ErrCAKeyMismatch, described, resetAdvice)
	}
	if now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("%w: it reads %s, before this Hearth's CA was made (%s); set the clock (is NTP working?)",
			ErrClockWrong, now.UTC().Format(time.RFC3339), cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if cert.NotAfter.Sub(now) < o.minLeft {
		log.Warn("the local CA certificate expires soon or has expired; re-issuing it from the same key. Devices must download the CA certificate again",
			"not_after", cert.NotAfter)
		return reissueCA(ctx, st, key, now, o, log)
	}
	return newAuthority(cert, certPEM, key), nil
}

func createCA(ctx context.Context, st *Storage, now time.Time, o caOptions, log *slog.Logger) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	keyPEM, err := encodeCAKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode CA key: %w", err)
	}
	if err := st.Store(ctx, caKeyKey, keyPEM); err != nil {
		return nil, fmt.Errorf("store CA key: %w", err)
	}
	a, err := storeCACert(ctx, st, key, now, o)
	if err != nil {
		return nil, err
	}
	log.Info("created the local CA; devices trust Hearth once they install its certificate",
		"ca", a.cert.Subject.CommonName, "sha256", Fingerprint(a.cert.Raw), "not_after", a.cert.NotAfter)
	return a, nil
}

func reissueCA(ctx context.Context, st *Storage, key *ecdsa.PrivateKey, now time.Time, o caOptions, log *slog.Logger) (*authority, error) {
	a, err := storeCACert(ctx, st, key, now, o)
	if err != nil {
		return nil, err
	}
	log.Info("re-issued the local CA certificate", "ca", a.cert.Subject.CommonName, "sha256", Fingerprint(a.cert.Raw), "not_after", a.cert.NotAfter)
	return a, nil
}

func storeCACert(ctx context.Context, st *Storage, key *ecdsa.PrivateKey, now time.Time, o caOptions) (*authority, error) {
	cert, certPEM, err := makeCACert(key, now, o)
	if err != nil {
		return nil, fmt.Errorf("make CA certificate: %w", err)
	}
	if err := st.Store(ctx, caCertKey, certPEM); err != nil {
		return nil, fmt.Errorf("store CA certificate: %w", err)
	}
	return newAuthority(cert, certPEM, key), nil
}

// ResetCA deletes the local CA and every certificate it issued from kv, so
// that the next Start makes a new CA. Every device that trusted the old CA
// must then trust the new one. Call it only while no Manager uses kv.
func ResetCA(ctx context.Context, kv KV) error {
	st, err := NewStorage(StorageConfig{KV: kv})
	if err != nil {
		return err
	}
	defer st.Close()
	for _, key := range []string{caCertKey, caKeyKey, localCertsPrefix()} {
		if err := st.Delete(ctx, key); err != nil {
			return fmt.Errorf("reset CA: %w", err)
		}
	}
	return nil
}
