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
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind tells what autocert keeps under a key.
type Kind int

const (
	// Other is anything autocert does not write, or writes under a name it
	// no longer reads (the legacy account key).
	Other Kind = iota
	// Cert is a certificate with its private key: "<domain>" (ECDSA) or
	// "<domain>+rsa".
	Cert
	// Account is the ACME account key, "acme_account+key".
	Account
	// Challenge is a challenge response autocert keeps while an order runs:
	// a TLS-ALPN-01 certificate ("<domain>+token") or an HTTP-01 key
	// authorization ("<token>+http-01"). autocert never orders for one.
	Challenge
)

// String names k as the CLI shows it.
func (k Kind) String() string {
	switch k {
	case Cert:
		return "certificate"
	case Account:
		return "account key"
	case Challenge:
		return "challenge token"
	}
	return "other"
}

// AccountKey is the key autocert keeps its ACME account key under.
const AccountKey = "acme_account+key"

// LegacyAccountKey is where autocert before 2018 kept the account key; it
// has a dot and would otherwise pass for a domain.
const LegacyAccountKey = "acme_account.key"

// KindOf recognises autocert's keys. A certificate key is a domain name as
// autocert makes it (lower-case ASCII after IDNA, at least one dot inside),
// optionally followed by "+rsa".
func KindOf(key string) Kind {
	switch {
	case key == AccountKey:
		return Account
	case strings.HasSuffix(key, "+token") || strings.HasSuffix(key, "+http-01"):
		return Challenge
	}
	name := strings.TrimSuffix(key, "+rsa")
	if name == LegacyAccountKey || !strings.Contains(name, ".") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
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

// Domain splits a certificate key into the domain and whether it holds the
// RSA certificate ("<domain>+rsa").
func Domain(key string) (domain string, isRSA bool) {
	return strings.CutSuffix(key, "+rsa")
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
func Inspect(key string, data []byte) (Validity, error) {
	v, err := Parse(data)
	if err != nil {
		return Validity{}, err
	}
	if p := v.refusals(key); len(p) > 0 {
		return Validity{}, errors.New(p[0])
	}
	leaf := v.Chain[0]
	return Validity{NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}, nil
}

// ValidAt reports whether autocert accepts the certificate at now.
func (v Validity) ValidAt(now time.Time) bool {
	return !now.Before(v.NotBefore) && !now.After(v.NotAfter)
}

// ErrNotCert is wrapped by Parse's errors: the value is not a certificate
// in autocert's format.
var ErrNotCert = errors.New("not a certificate")

// Value is a certificate value as autocert's cacheGet reads it: a private
// key in PEM, then the chain in PEM, leaf first. It keeps only the public
// half of the private key.
type Value struct {
	Chain   []*x509.Certificate // leaf first
	KeyType string              // of the private key: "ECDSA P-256", "RSA 2048"
	public  crypto.PublicKey
}

// Parse reads a certificate value as autocert does: a private key block
// first, then nothing but PEM blocks, which must parse as certificates. An
// error wraps ErrNotCert and says what is wrong; it never quotes the value.
func Parse(data []byte) (*Value, error) {
	notCert := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrNotCert, fmt.Sprintf(format, args...))
	}
	priv, rest := pem.Decode(data)
	if priv == nil {
		return nil, notCert("no PEM block (%d bytes)", len(data))
	}
	if !strings.Contains(priv.Type, "PRIVATE") {
		return nil, notCert("first PEM block is %q, want a private key", priv.Type)
	}
	signer, err := parsePrivateKey(priv.Bytes)
	if err != nil {
		return nil, notCert("%v", err)
	}
	var der []byte
	blocks := 0
	for len(rest) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		der = append(der, b.Bytes...)
		blocks++
	}
	if len(rest) > 0 {
		// autocert takes leftover bytes for corruption and ignores the value.
		return nil, notCert("%d bytes after the last PEM block", len(rest))
	}
	if blocks == 0 {
		return nil, notCert("a private key but no certificate")
	}
	chain, err := x509.ParseCertificates(der)
	if err != nil {
		return nil, notCert("the chain does not parse: %v", err)
	}
	return &Value{Chain: chain, KeyType: KeyType(signer.Public()), public: signer.Public()}, nil
}

// KeyMatches reports whether the private key is the leaf's, as autocert
// compares them.
func (v *Value) KeyMatches() bool {
	switch pub := v.Chain[0].PublicKey.(type) {
	case *rsa.PublicKey:
		prv, ok := v.public.(*rsa.PublicKey)
		return ok && pub.N.Cmp(prv.N) == 0
	case *ecdsa.PublicKey:
		prv, ok := v.public.(*ecdsa.PublicKey)
		return ok && pub.X.Cmp(prv.X) == 0 && pub.Y.Cmp(prv.Y) == 0
	}
	return false
}

// Problems returns what autocert would refuse in v stored under key at now
// (autocert's validCert); none means autocert serves it.
func (v *Value) Problems(key string, now time.Time) []string {
	var p []string
	leaf := v.Chain[0]
	switch {
	case now.Before(leaf.NotBefore):
		p = append(p, "not valid until "+leaf.NotBefore.UTC().Format(time.RFC3339))
	case now.After(leaf.NotAfter):
		p = append(p, "expired "+leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return append(p, v.refusals(key)...)
}

// refusals returns what autocert refuses in v under key at any time.
func (v *Value) refusals(key string) []string {
	var p []string
	leaf := v.Chain[0]
	domain, isRSA := Domain(key)
	if err := leaf.VerifyHostname(domain); err != nil {
		p = append(p, "the leaf does not cover "+domain)
	}
	if !v.KeyMatches() {
		p = append(p, "the private key does not match the leaf")
	}
	_, leafRSA := leaf.PublicKey.(*rsa.PublicKey)
	_, leafEC := leaf.PublicKey.(*ecdsa.PublicKey)
	switch {
	case !leafRSA && !leafEC:
		p = append(p, "a "+KeyType(leaf.PublicKey)+" leaf, which autocert does not use")
	case isRSA && !leafRSA:
		p = append(p, "an RSA certificate key holds a "+KeyType(leaf.PublicKey)+" leaf")
	case !isRSA && leafRSA:
		p = append(p, "an RSA leaf under a key without +rsa")
	}
	return p
}

// ParseAccountKey parses an ACME account key value: one PEM private key.
func ParseAccountKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil || !strings.Contains(b.Type, "PRIVATE") {
		return nil, errors.New("not a PEM private key")
	}
	return parsePrivateKey(b.Bytes)
}

// KeyType describes a public key: "ECDSA P-256", "RSA 2048", "Ed25519".
func KeyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// parsePrivateKey parses the forms autocert reads: PKCS #1, PKCS #8 (RSA
// or ECDSA) and SEC 1.
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
		return nil, fmt.Errorf("private key of type %T in PKCS #8, which autocert does not use", key)
	}
	if key, err := x509.ParseECPrivateKey(der); err == nil {
		return key, nil
	}
	return nil, errors.New("private key does not parse (not PKCS #1, PKCS #8 or SEC 1)")
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
