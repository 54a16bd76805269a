// Package certkey knows what autocert keeps under each cache key and how
// autocert judges a cached certificate: whether it will use it at all, and
// when it will renew it. Issuance coordination, the memory front's preload
// and the expiry gauge all ask here, so that they agree with autocert and
// with each other.
//
// The rules follow golang.org/x/crypto/acme/autocert: Manager.cacheGet and
// validCert (autocert.go) for a usable value, domainRenewal.next
// (renewal.go) for the renewal threshold.
package certkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"time"
)

// Kind tells what autocert keeps under a key.
type Kind int

const (
	// Other is anything autocert does not order: TLS-ALPN-01 token
	// certificates ("<domain>+token"), HTTP-01 challenges
	// ("<token>+http-01"), and keys autocert never writes.
	Other Kind = iota
	// Cert is a certificate with its private key: "<domain>" (ECDSA) or
	// "<domain>+rsa".
	Cert
	// Account is the ACME account key, "acme_account+key".
	Account
)

// AccountKey is the key autocert keeps its ACME account key under.
const AccountKey = "acme_account+key"

// legacyAccountKey is where older autocert versions kept the account key;
// it has a dot and would otherwise pass for a domain.
const legacyAccountKey = "acme_account.key"

// KindOf recognises autocert's keys. A certificate key is a domain name as
// autocert makes it (lower-case ASCII after IDNA, at least one dot inside),
// optionally followed by "+rsa".
func KindOf(key string) Kind {
	if key == AccountKey {
		return Account
	}
	name := strings.TrimSuffix(key, "+rsa")
	if name == legacyAccountKey || !strings.Contains(name, ".") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return Other
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return Other
		}
	}
	return Cert
}

// Validity is when a certificate autocert would use is valid.
type Validity struct {
	NotBefore, NotAfter time.Time
}

// Inspect reports when the certificate stored under a certificate key is
// valid if autocert would use the value at some time, and an error saying
// why not otherwise: autocert treats such a value as a miss and orders (or,
// for a private key it cannot parse, fails the handshake on the handshake
// path and orders on the renewal path). ValidAt adds the checks of time.
//
// The checks are autocert's: a private key PEM block first, then nothing
// but PEM blocks; a chain whose leaf names the domain and holds the public
// half of the private key, of the type the key asks for (ECDSA for
// "<domain>", RSA for "<domain>+rsa").
func Inspect(key string, data []byte) (Validity, error) {
	domain, isRSA := strings.CutSuffix(key, "+rsa")
	priv, rest := pem.Decode(data)
	if priv == nil || !strings.Contains(priv.Type, "PRIVATE") {
		return Validity{}, errors.New("no private key first")
	}
	signer, err := parsePrivateKey(priv.Bytes)
	if err != nil {
		return Validity{}, err
	}
	var der []byte
	for len(rest) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		der = append(der, b.Bytes...)
	}
	if len(rest) > 0 {
		return Validity{}, errors.New("data after the certificate chain")
	}
	chain, err := x509.ParseCertificates(der)
	if err != nil || len(chain) == 0 {
		return Validity{}, errors.New("no certificate")
	}
	leaf := chain[0]
	if err := leaf.VerifyHostname(domain); err != nil {
		return Validity{}, err
	}
	if err := matches(leaf, signer, isRSA); err != nil {
		return Validity{}, err
	}
	return Validity{NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}, nil
}

// ValidAt reports whether autocert accepts the certificate at now.
func (v Validity) ValidAt(now time.Time) bool {
	return !now.Before(v.NotBefore) && !now.After(v.NotAfter)
}

// matches reports whether signer is the private half of leaf's public key,
// of the type the key asks for.
func matches(leaf *x509.Certificate, signer crypto.Signer, isRSA bool) error {
	switch pub := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		prv, ok := signer.(*rsa.PrivateKey)
		if !ok || pub.N.Cmp(prv.N) != 0 {
			return errors.New("private key does not match the certificate")
		}
		if !isRSA {
			return errors.New("RSA certificate under an ECDSA key")
		}
	case *ecdsa.PublicKey:
		prv, ok := signer.(*ecdsa.PrivateKey)
		if !ok || !pub.Equal(prv.Public()) {
			return errors.New("private key does not match the certificate")
		}
		if isRSA {
			return errors.New("ECDSA certificate under an RSA key")
		}
	default:
		return errors.New("unknown public key algorithm")
	}
	return nil
}

// parsePrivateKey parses the forms autocert reads: PKCS#1, PKCS#8 (RSA or
// ECDSA) and SEC 1.
func parsePrivateKey(der []byte) (crypto.Signer, error) {
	if key, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return key, nil
	}
	if key, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch key := key.(type) {
		case *rsa.PrivateKey:
			return key, nil
		case *ecdsa.PrivateKey:
			return key, nil
		}
		return nil, errors.New("unknown private key type in PKCS#8")
	}
	if key, err := x509.ParseECPrivateKey(der); err == nil {
		return key, nil
	}
	return nil, errors.New("private key does not parse")
}

// Leaf returns the first certificate of an autocert cache value (a private
// key, then the chain, leaf first), without judging it.
func Leaf(data []byte) (*x509.Certificate, bool) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, false
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		leaf, err := x509.ParseCertificate(b.Bytes)
		return leaf, err == nil
	}
}

// maxThreshold caps the renewal threshold as autocert does.
const maxThreshold = 30 * 24 * time.Hour

// Threshold is how long before expiry autocert starts renewing a
// certificate valid over v, for a Manager whose RenewBefore is
// renewBefore: RenewBefore if set, else a third of the lifetime, capped at
// 30 days either way. autocert adds a jitter of up to a tenth of it; the
// threshold is the earliest it renews.
func Threshold(v Validity, renewBefore time.Duration) time.Duration {
	if renewBefore > 0 {
		return min(renewBefore, maxThreshold)
	}
	return min(v.NotAfter.Sub(v.NotBefore)/3, maxThreshold)
}

// Due reports whether autocert may renew at now a certificate valid over
// v that it renews threshold before expiry.
func (v Validity) Due(threshold time.Duration, now time.Time) bool {
	return !now.Before(v.NotAfter.Add(-threshold))
}
