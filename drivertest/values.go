package drivertest

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
	"strings"
	"sync"
	"time"
)

// CertValue returns what autocert caches for a domain: an ECDSA P-256
// private key and a three-certificate chain (leaf, intermediate, root) in
// PEM, about 3.5 KiB, valid for example.com and *.example.com for 90 days. It is made once per process; the caller owns the
// returned copy.
func CertValue() []byte {
	certValueOnce.Do(func() { certValue = makeCertValue(false) })
	return bytes.Clone(certValue)
}

// RSACertValue is CertValue with an RSA 2048 leaf key, as autocert caches
// under "<domain>+rsa".
func RSACertValue() []byte {
	rsaCertValueOnce.Do(func() { rsaCertValue = makeCertValue(true) })
	return bytes.Clone(rsaCertValue)
}

// CertValueFor returns the value autocert would use under the certificate
// key key, for example.com and its subdomains: RSACertValue for
// "<domain>+rsa", CertValue otherwise.
func CertValueFor(key string) []byte {
	if strings.HasSuffix(key, "+rsa") {
		return RSACertValue()
	}
	return CertValue()
}

var (
	certValueOnce, rsaCertValueOnce sync.Once
	certValue, rsaCertValue         []byte
)

func makeCertValue(rsaLeaf bool) []byte {
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		panic(err)
	}
	var leafKey crypto.Signer
	if rsaLeaf {
		leafKey, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		leafKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		panic(err)
	}
	now := time.Now()
	tmpl := func(serial int64, cn string, ca bool) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: cn, Organization: []string{"certcache test"}},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(90 * 24 * time.Hour),
			IsCA:                  ca,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		}
	}
	root := tmpl(1, "certcache test root", true)
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		panic(err)
	}
	inter := tmpl(2, "certcache test intermediate", true)
	interDER, err := x509.CreateCertificate(rand.Reader, inter, root, &interKey.PublicKey, rootKey)
	if err != nil {
		panic(err)
	}
	leaf := tmpl(3, "example.com", false)
	leaf.DNSNames = []string{"example.com", "*.example.com"}
	leaf.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, inter, leafKey.Public(), interKey)
	if err != nil {
		panic(err)
	}
	// The order autocert writes: the key first, then the chain.
	var b bytes.Buffer
	switch k := leafKey.(type) {
	case *rsa.PrivateKey:
		pem.Encode(&b, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	case *ecdsa.PrivateKey:
		keyDER, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			panic(err)
		}
		pem.Encode(&b, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}
	for _, der := range [][]byte{leafDER, interDER, rootDER} {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return b.Bytes()
}

// PEMLike returns n bytes shaped like PEM: a header line, base64-alphabet
// lines of 64 characters, a footer.
func PEMLike(n int) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	head, foot := []byte("-----BEGIN CERTIFICATE-----\n"), []byte("-----END CERTIFICATE-----\n")
	b := make([]byte, 0, n)
	b = append(b, head...)
	for i := 0; len(b) < n-len(foot); i++ {
		if i%65 == 64 {
			b = append(b, '\n')
		} else {
			b = append(b, alphabet[(i*7)%64])
		}
	}
	b = append(b, foot...)
	return b[:n]
}
