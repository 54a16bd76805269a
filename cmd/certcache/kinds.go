package main

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

// kind is what autocert keeps under a key, told by the key's name.
type kind int

const (
	kindOther kind = iota
	kindCert
	kindRSACert
	kindAccountKey
	kindToken
)

func (k kind) String() string {
	switch k {
	case kindCert:
		return "certificate"
	case kindRSACert:
		return "RSA certificate"
	case kindAccountKey:
		return "account key"
	case kindToken:
		return "challenge token"
	}
	return "other"
}

// isCert reports whether keys of kind k hold a certificate.
func (k kind) isCert() bool { return k == kindCert || k == kindRSACert }

// MarshalText makes a kind its name in JSON.
func (k kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name, for programs (and tests) that read
// the JSON back.
func (k *kind) UnmarshalText(b []byte) error {
	for _, c := range []kind{kindOther, kindCert, kindRSACert, kindAccountKey, kindToken} {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("unknown kind %q", b)
}

// The names autocert gives what it caches; see its certKey.String,
// accountKey and httpTokenCacheKey.
const (
	accountKeyName       = "acme_account+key"
	legacyAccountKeyName = "acme_account.key" // autocert before 2018
	suffixRSA            = "+rsa"
	suffixToken          = "+token"   // TLS-ALPN-01 (and, long ago, TLS-SNI) certificates
	suffixHTTP01         = "+http-01" // HTTP-01 key authorizations
)

// classify returns the kind of key and, for a certificate, the domain it is
// for.
func classify(key string) (k kind, domain string) {
	switch {
	case key == accountKeyName || key == legacyAccountKeyName:
		return kindAccountKey, ""
	case strings.HasSuffix(key, suffixToken) || strings.HasSuffix(key, suffixHTTP01):
		return kindToken, ""
	}
	if d, ok := strings.CutSuffix(key, suffixRSA); ok && isDomain(d) {
		return kindRSACert, d
	}
	if isDomain(key) {
		return kindCert, key
	}
	return kindOther, ""
}

// isDomain reports whether s looks like a name autocert keeps a
// certificate under: autocert lower-cases and punycodes the server name
// and refuses one without a dot, so what remains is [a-z0-9.-] with a dot
// inside.
func isDomain(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || !strings.Contains(s, ".") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// certValue is a certificate value parsed as autocert's cacheGet parses it:
// the private key in PEM, then the chain in PEM, leaf first. It never keeps
// the private key, only what can be said about it.
type certValue struct {
	KeyType    string              // of the private key: "ECDSA P-256", "RSA 2048"
	KeyMatches bool                // the private key's public half is the leaf's
	Chain      []*x509.Certificate // leaf first
}

// errNotCert is wrapped by parseCertValue's errors: the value is not a
// certificate in autocert's format.
var errNotCert = errors.New("not a certificate")

// parseCertValue parses a certificate value. An error wraps errNotCert and
// says what is wrong; it never quotes the value.
func parseCertValue(data []byte) (*certValue, error) {
	notCert := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errNotCert, fmt.Sprintf(format, args...))
	}
	priv, rest := pem.Decode(data)
	if priv == nil {
		return nil, notCert("no PEM block (%d bytes)", len(data))
	}
	if !strings.Contains(priv.Type, "PRIVATE") {
		return nil, notCert("first PEM block is %q, want a private key", priv.Type)
	}
	key, err := parsePrivateKey(priv.Bytes)
	if err != nil {
		return nil, notCert("%v", err)
	}
	v := &certValue{KeyType: keyType(key.Public())}
	for len(rest) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, notCert("PEM block %d is %q, want CERTIFICATE", len(v.Chain)+2, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, notCert("certificate %d: %v", len(v.Chain)+1, err)
		}
		v.Chain = append(v.Chain, c)
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		// autocert takes leftover bytes for corruption and ignores the value.
		return nil, notCert("%d bytes after the last PEM block", len(rest))
	}
	if len(v.Chain) == 0 {
		return nil, notCert("a private key but no certificate")
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); ok {
		v.KeyMatches = pub.Equal(v.Chain[0].PublicKey)
	}
	return v, nil
}

// parsePrivateKey parses a DER private key in the forms autocert reads:
// PKCS #1, PKCS #8, SEC 1.
func parsePrivateKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("private key of type %T in PKCS #8, which autocert does not use", k)
		}
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("private key does not parse (not PKCS #1, PKCS #8 or SEC 1)")
}

// parseAccountKey parses an ACME account key value: one PEM private key.
func parseAccountKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil || !strings.Contains(b.Type, "PRIVATE") {
		return nil, errors.New("not a PEM private key")
	}
	return parsePrivateKey(b.Bytes)
}

// keyType describes a public key: "ECDSA P-256", "RSA 2048", "Ed25519".
func keyType(pub crypto.PublicKey) string {
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

// problems returns what autocert would refuse in v, stored under a key of
// kind k for domain, at now (see autocert's validCert). An empty result
// means autocert serves it.
func (v *certValue) problems(k kind, domain string, now time.Time) []string {
	var p []string
	leaf := v.Chain[0]
	switch {
	case now.Before(leaf.NotBefore):
		p = append(p, "not valid until "+leaf.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(leaf.NotAfter):
		p = append(p, "expired "+leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if domain != "" {
		if err := leaf.VerifyHostname(domain); err != nil {
			p = append(p, fmt.Sprintf("the leaf does not cover %s", domain))
		}
	}
	if !v.KeyMatches {
		p = append(p, "the private key does not match the leaf")
	}
	_, isRSA := leaf.PublicKey.(*rsa.PublicKey)
	switch {
	case k == kindRSACert && !isRSA:
		p = append(p, "an RSA certificate key holds a "+keyType(leaf.PublicKey)+" leaf")
	case k == kindCert && isRSA:
		p = append(p, "an RSA leaf under a key without "+suffixRSA)
	}
	return p
}

// until describes the time from now to t: "in 89d", "3h ago".
func until(t, now time.Time) string {
	d := t.Sub(now)
	if d < 0 {
		return roughDuration(-d) + " ago"
	}
	return "in " + roughDuration(d)
}

// roughDuration formats d in its largest unit: 89d, 5h, 12m, 30s.
func roughDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= 2*time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
