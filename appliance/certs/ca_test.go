package certs_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hearth-home/hearth/appliance/certs"
	"github.com/hearth-home/hearth/appliance/certs/certstest"
)

// putRecord stores value at key the way Storage does.
func putRecord(t testing.TB, kv certs.KV, key string, value []byte) {
	t.Helper()
	if err := kv.Put(key, certs.EncodeRecord(value, time.Now())); err != nil {
		t.Fatal(err)
	}
}

func getRecord(t testing.TB, kv certs.KV, key string) []byte {
	t.Helper()
	raw, err := kv.Get(key)
	if err != nil || raw == nil {
		return nil
	}
	v, _, err := certs.DecodeRecord(raw)
	if err != nil {
		return nil
	}
	return v
}

func pemKey(t testing.TB, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// selfSigned makes a CA certificate for key with the given validity.
func selfSigned(t testing.TB, key *ecdsa.PrivateKey, notBefore, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Hearth local CA test"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func storedCAKey(t testing.TB, kv certs.KV) *ecdsa.PrivateKey {
	t.Helper()
	k, err := certs.ParseCAKey(getRecord(t, kv, certs.CAKeyKey))
	if err != nil {
		t.Fatalf("stored CA key: %v", err)
	}
	return k
}

// TestCABadInput damages the stored CA in each way a disk, a botched restore
// or a person can, and checks that Hearth either refuses with a precise
// error and changes nothing (when devices may trust the old CA), or repairs
// it without changing the key devices trust.
func TestCABadInput(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, kv *certstest.MemKV)
		// wantErr is the sentinel Start must fail with; nil means Start
		// succeeds.
		wantErr error
		// sameKey: on success, whether the CA key must be the old one.
		sameKey bool
	}{
		{"key missing", func(t *testing.T, kv *certstest.MemKV) { kv.Delete(certs.CAKeyKey) }, certs.ErrCAKeyMissing, false},
		{"key not PEM", func(t *testing.T, kv *certstest.MemKV) { putRecord(t, kv, certs.CAKeyKey, []byte("not a key")) }, certs.ErrCAKeyCorrupt, false},
		{"key truncated", func(t *testing.T, kv *certstest.MemKV) {
			k := getRecord(t, kv, certs.CAKeyKey)
			putRecord(t, kv, certs.CAKeyKey, k[:len(k)/2])
		}, certs.ErrCAKeyCorrupt, false},
		{"key record damaged", func(t *testing.T, kv *certstest.MemKV) { kv.Put(certs.CAKeyKey, []byte{7, 7}) }, certs.ErrCAKeyCorrupt, false},
		{"key on the wrong curve", func(t *testing.T, kv *certstest.MemKV) { putRecord(t, kv, certs.CAKeyKey, pemKey(t, p384)) }, certs.ErrCAKeyCorrupt, false},
		{"key of another CA", func(t *testing.T, kv *certstest.MemKV) { putRecord(t, kv, certs.CAKeyKey, pemKey(t, other)) }, certs.ErrCAKeyMismatch, false},
		{"clock before the CA was made", func(t *testing.T, kv *certstest.MemKV) {
			k := storedCAKey(t, kv)
			putRecord(t, kv, certs.CACertKey, selfSigned(t, k, time.Now().AddDate(1, 0, 0), time.Now().AddDate(5, 0, 0)))
		}, certs.ErrClockWrong, false},
		{"certificate missing", func(t *testing.T, kv *certstest.MemKV) { kv.Delete(certs.CACertKey) }, nil, true},
		{"certificate damaged", func(t *testing.T, kv *certstest.MemKV) { putRecord(t, kv, certs.CACertKey, []byte("garbage")) }, nil, true},
		{"certificate expired", func(t *testing.T, kv *certstest.MemKV) {
			k := storedCAKey(t, kv)
			putRecord(t, kv, certs.CACertKey, selfSigned(t, k, time.Now().AddDate(-10, 0, 0), time.Now().AddDate(0, 0, -1)))
		}, nil, true},
		{"both missing", func(t *testing.T, kv *certstest.MemKV) {
			kv.Delete(certs.CACertKey)
			kv.Delete(certs.CAKeyKey)
		}, nil, false},
		{"key damaged and certificate missing", func(t *testing.T, kv *certstest.MemKV) {
			kv.Delete(certs.CACertKey)
			putRecord(t, kv, certs.CAKeyKey, []byte("garbage"))
		}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := certstest.NewMemKV()
			first := startManager(t, certs.Config{KV: kv})
			oldPEM := first.CACertPEM()
			oldKey := storedCAKey(t, kv)
			oldLeaf := served(t, first, "hearth.local")
			first.Close()

			tc.damage(t, kv)
			before := map[string][]byte{}
			for _, k := range kv.Keys() {
				before[k], _ = kv.Get(k)
			}
			m := newManager(t, certs.Config{KV: kv})
			err := m.Start(context.Background())

			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Start = %v, want %v", err, tc.wantErr)
				}
				if !errors.Is(err, certs.ErrClockWrong) &&
					(!strings.Contains(err.Error(), "SHA-256") || !strings.Contains(err.Error(), "backup")) {
					t.Errorf("error %q does not name the CA's fingerprint and the way out", err)
				}
				for _, k := range kv.Keys() {
					if got, _ := kv.Get(k); !bytes.Equal(got, before[k]) {
						t.Errorf("refused Start changed %s", k)
					}
				}
				if len(kv.Keys()) != len(before) {
					t.Errorf("refused Start wrote keys: %q", kv.Keys())
				}
				if st := m.Status(); st.Ready || !strings.Contains(st.Error, err.Error()[len("certs: "):]) {
					t.Errorf("Status() = %+v, want not ready with the error", st)
				}
				if _, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: "hearth.local"}); !errors.Is(err, certs.ErrNotStarted) {
					t.Errorf("handshake after a refused Start = %v, want ErrNotStarted", err)
				}
				return
			}

			if err != nil {
				t.Fatalf("Start = %v, want success", err)
			}
			newKey := storedCAKey(t, kv)
			if got := newKey.Equal(oldKey); got != tc.sameKey {
				t.Fatalf("CA key kept = %v, want %v", got, tc.sameKey)
			}
			pool := caPool(t, m)
			if _, err := served(t, m, "hearth.local").Verify(x509.VerifyOptions{Roots: pool, DNSName: "hearth.local"}); err != nil {
				t.Errorf("served leaf does not verify against the current CA: %v", err)
			}
			if tc.sameKey {
				// A device that trusts the old CA certificate still trusts
				// what is served, and the old leaf chains to the new one.
				old := x509.NewCertPool()
				old.AppendCertsFromPEM(oldPEM)
				if _, err := served(t, m, "hearth.local").Verify(x509.VerifyOptions{Roots: old, DNSName: "hearth.local"}); err != nil {
					t.Errorf("served leaf does not verify against the old CA certificate: %v", err)
				}
				if _, err := oldLeaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "hearth.local"}); err != nil {
					t.Errorf("the old leaf does not verify against the re-issued CA: %v", err)
				}
				ca, _ := certs.ParseCACert(m.CACertPEM())
				if !ca.NotAfter.After(time.Now().AddDate(9, 0, 0)) {
					t.Errorf("re-issued CA expires %s, want ten years out", ca.NotAfter)
				}
			}
		})
	}
}

// failingKV fails every read, like a store that cannot be read.
type failingKV struct{ certs.KV }

func (failingKV) Get(string) ([]byte, error) { return nil, errors.New("disk I/O error") }

func TestCAUnreadableStorage(t *testing.T) {
	kv := certstest.NewMemKV()
	m := newManager(t, certs.Config{KV: failingKV{kv}})
	err := m.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "disk I/O error") {
		t.Fatalf("Start with unreadable storage = %v, want the read error", err)
	}
	if keys := kv.Keys(); len(keys) != 0 {
		t.Fatalf("Start with unreadable storage wrote %q; it must not make a new CA", keys)
	}
}

// TestClockWrong runs in a synctest bubble, whose clock reads 2000-01-01:
// Hearth refuses to make a CA that would be useless once the clock is set.
func TestClockWrong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := certstest.NewMemKV()
		log, _ := testLogger(t)
		m, err := certs.New(certs.Config{KV: kv, Names: []string{"hearth.local"}, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		err = m.Start(context.Background())
		if !errors.Is(err, certs.ErrClockWrong) || !strings.Contains(err.Error(), "2000-01-01") {
			t.Fatalf("Start in 2000 = %v, want ErrClockWrong naming the time", err)
		}
		if keys := kv.Keys(); len(keys) != 0 {
			t.Fatalf("Start with a wrong clock wrote %q", keys)
		}
	})
}

func TestResetCA(t *testing.T) {
	kv := certstest.NewMemKV()
	m := startManager(t, certs.Config{KV: kv})
	old := m.CACertPEM()
	m.Close()
	if err := certs.ResetCA(context.Background(), kv); err != nil {
		t.Fatalf("ResetCA = %v", err)
	}
	m2 := startManager(t, certs.Config{KV: kv})
	if bytes.Equal(m2.CACertPEM(), old) {
		t.Fatal("ResetCA kept the CA")
	}
	if _, err := served(t, m2, "hearth.local").Verify(x509.VerifyOptions{Roots: caPool(t, m2), DNSName: "hearth.local"}); err != nil {
		t.Fatalf("after ResetCA the served leaf does not verify against the new CA: %v", err)
	}
}

// TestNameConstraints: the CA may only certify the home's own names, so a
// copy of its key could not impersonate a bank to a device that trusts it.
func TestNameConstraints(t *testing.T) {
	kv := certstest.NewMemKV()
	m := startManager(t, certs.Config{KV: kv, Names: []string{"hearth.local", "hearth.example.com", "10.0.0.2"}})
	st := m.Status()
	if st.Ready {
		t.Errorf("Status().Ready with a name the CA may not certify, want false")
	}
	var found bool
	for _, c := range st.Certificates {
		if c.Name == "hearth.example.com" {
			found = strings.Contains(c.Error, "outside") && c.NotAfter.IsZero()
		} else if c.Error != "" || c.NotAfter.IsZero() {
			t.Errorf("Status for %s = %+v, want a certificate", c.Name, c)
		}
	}
	if !found {
		t.Errorf("Status() = %+v, want an error for hearth.example.com", st)
	}

	// Sign a leaf for a bank with the CA's own key: clients refuse it.
	key := storedCAKey(t, kv)
	ca, _ := certs.ParseCACert(m.CACertPEM())
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), DNSNames: []string{"bank.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &leafKey.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	var invalid x509.CertificateInvalidError
	_, err = leaf.Verify(x509.VerifyOptions{Roots: caPool(t, m), DNSName: "bank.example.com"})
	if !errors.As(err, &invalid) || invalid.Reason != x509.CANotAuthorizedForThisName {
		t.Fatalf("a bank certificate signed by the CA key verified: %v", err)
	}

	// CADomains widens the constraints of a new CA.
	m2 := startManager(t, certs.Config{Names: []string{"hearth.local", "hearth.example.com"}, CADomains: []string{"example.com"}})
	if _, err := served(t, m2, "hearth.example.com").Verify(x509.VerifyOptions{Roots: caPool(t, m2), DNSName: "hearth.example.com"}); err != nil {
		t.Fatalf("with CADomains example.com: %v", err)
	}
}

func FuzzParseCAKey(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	good := pemKey(f, k)
	sec1, _ := x509.MarshalECPrivateKey(k)
	for _, seed := range [][]byte{good, pemKey(f, p384), good[:len(good)/2], append(good, "junk"...),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), []byte("not a key"), nil} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := certs.ParseCAKey(b)
		if err == nil && k.Curve != elliptic.P256() {
			t.Fatalf("ParseCAKey accepted a key on %s", k.Curve.Params().Name)
		}
	})
}

func FuzzParseCACert(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := selfSigned(f, k, time.Now(), time.Now().Add(time.Hour))
	for _, seed := range [][]byte{ca, ca[:len(ca)/2], append(pemKey(f, k), ca...), []byte("garbage"), nil} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := certs.ParseCACert(b)
		if err == nil && !c.IsCA {
			t.Fatal("ParseCACert accepted a certificate that is not a CA")
		}
	})
}
