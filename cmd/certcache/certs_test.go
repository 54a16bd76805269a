package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"
)

// Test certificates in autocert's cache format, made at run time by a test
// CA: a private key in PEM, then the leaf and the CA in PEM.

type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var (
	caOnce sync.Once
	ca     testCA
)

// theCA returns the test CA, "certcache test CA".
func theCA(t *testing.T) testCA {
	t.Helper()
	caOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "certcache test CA"},
			NotBefore:             time.Now().Add(-24 * time.Hour),
			NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			panic(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		ca = testCA{c, key}
	})
	return ca
}

// leafSpec describes a test leaf.
type leafSpec struct {
	names     []string
	rsa       bool          // an RSA 2048 key; else ECDSA P-256
	notBefore time.Time     // zero: an hour ago
	validFor  time.Duration // from notBefore; zero: 90 days
	otherKey  bool          // store a private key that is not the leaf's
	serial    int64
}

// rsaKeys caches RSA keys: generating them under -race is slow.
var rsaKeys struct {
	sync.Mutex
	keys []*rsa.PrivateKey
}

func rsaKey(i int) *rsa.PrivateKey {
	rsaKeys.Lock()
	defer rsaKeys.Unlock()
	for len(rsaKeys.keys) <= i {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKeys.keys = append(rsaKeys.keys, k)
	}
	return rsaKeys.keys[i]
}

// certValue returns a certificate value as autocert stores it, and the
// PEM of its private key (for tests that check it is never printed).
func makeCertValue(t *testing.T, s leafSpec) (value, keyPEM []byte) {
	t.Helper()
	var key, stored crypto.Signer
	if s.rsa {
		key, stored = rsaKey(0), rsaKey(0)
		if s.otherKey {
			stored = rsaKey(1)
		}
	} else {
		k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		key, stored = k1, k1
		if s.otherKey {
			stored = k2
		}
	}
	if s.notBefore.IsZero() {
		s.notBefore = time.Now().Add(-time.Hour)
	}
	if s.validFor == 0 {
		s.validFor = 90 * 24 * time.Hour
	}
	if s.serial == 0 {
		s.serial = time.Now().UnixNano()
	}
	c := theCA(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(s.serial),
		Subject:      pkix.Name{CommonName: s.names[0]},
		DNSNames:     s.names,
		NotBefore:    s.notBefore,
		NotAfter:     s.notBefore.Add(s.validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	switch k := stored.(type) {
	case *ecdsa.PrivateKey:
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b})
	case *rsa.PrivateKey:
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	}
	buf.Write(keyPEM)
	pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
	return buf.Bytes(), keyPEM
}

// accountKeyValue returns an ACME account key as autocert stores it.
func accountKeyValue(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b})
}
