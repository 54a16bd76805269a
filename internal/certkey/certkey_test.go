package certkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want Kind
	}{
		{"example.com", Cert},
		{"example.com+rsa", Cert},
		{"xn--bcher-kva.example", Cert},
		{"a-b_c.example.org", Cert},
		{"acme_account+key", Account},
		{"acme_account.key", Other}, // autocert's legacy account key name
		{"example.com+token", Challenge},
		{"abcdef+http-01", Challenge},
		{"localhost", Other}, // autocert refuses names without a dot
		{"Example.com", Other},
		{".example.com", Other},
		{"example.com.", Other},
		{"a/b.c", Other},
		{"example.com+rsa+rsa", Other},
	} {
		if got := KindOf(tc.key); got != tc.want {
			t.Errorf("KindOf(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

// value returns an autocert cache value: key PEM, then the leaf for name,
// signed by key itself, public key pub.
func value(t *testing.T, keyDER []byte, keyType string, name string, pub, priv any, notBefore, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	v := pem.EncodeToMemory(&pem.Block{Type: keyType, Bytes: keyDER})
	return append(v, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
}

func TestInspect(t *testing.T) {
	now := time.Now()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ec)
	rsaDER := x509.MarshalPKCS1PrivateKey(rk)
	from, to := now.Add(-time.Hour), now.Add(89*24*time.Hour)
	good := value(t, ecDER, "EC PRIVATE KEY", "example.com", &ec.PublicKey, ec, from, to)
	for _, tc := range []struct {
		name  string
		key   string
		data  []byte
		ok    bool // Inspect succeeds
		valid bool // and ValidAt(now)
	}{
		{"valid ECDSA", "example.com", good, true, true},
		{"valid PKCS#8", "example.com", value(t, ecPKCS8, "PRIVATE KEY", "example.com", &ec.PublicKey, ec, from, to), true, true},
		{"valid RSA", "example.com+rsa", value(t, rsaDER, "RSA PRIVATE KEY", "example.com", &rk.PublicKey, rk, from, to), true, true},
		{"expired", "example.com", value(t, ecDER, "EC PRIVATE KEY", "example.com", &ec.PublicKey, ec, now.Add(-2*time.Hour), now.Add(-time.Hour)), true, false},
		{"not valid yet", "example.com", value(t, ecDER, "EC PRIVATE KEY", "example.com", &ec.PublicKey, ec, now.Add(time.Hour), now.Add(2*time.Hour)), true, false},
		{"another name", "example.org", good, false, false},
		{"key does not match", "example.com", value(t, ecDER, "EC PRIVATE KEY", "example.com", &other.PublicKey, other, from, to), false, false},
		{"ECDSA under +rsa", "example.com+rsa", good, false, false},
		{"RSA under the ECDSA key", "example.com", value(t, rsaDER, "RSA PRIVATE KEY", "example.com", &rk.PublicKey, rk, from, to), false, false},
		{"certificate first", "example.com", certFirst(good), false, false},
		{"trailing garbage", "example.com", append(append([]byte{}, good...), "garbage"...), false, false},
		{"sealed bytes", "example.com", []byte("\x01sealed, no PEM"), false, false},
		{"key only", "example.com", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), false, false},
	} {
		v, err := Inspect(tc.key, tc.data)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Inspect err = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err == nil && v.ValidAt(now) != tc.valid {
			t.Errorf("%s: ValidAt(now) = %v, want %v", tc.name, !tc.valid, tc.valid)
		}
	}
}

func TestDue(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	for _, tc := range []struct {
		name          string
		before, after time.Duration // relative to now
		renewBefore   time.Duration
		want          bool
	}{
		{"fresh 90-day", -time.Hour, 90*day - time.Hour, 0, false},
		{"90-day with 29 days left", -61 * day, 29 * day, 0, true},
		{"60-second, 30 s left", -30 * time.Second, 30 * time.Second, 0, false},
		{"60-second, 15 s left", -45 * time.Second, 15 * time.Second, 0, true},
		{"expired", -2 * time.Hour, -time.Hour, 0, true},
		{"6-day, 2.5 days left, RenewBefore 72h", -3*day - 12*time.Hour, 2*day + 12*time.Hour, 72 * time.Hour, true},
		{"6-day, 2.5 days left, default", -3*day - 12*time.Hour, 2*day + 12*time.Hour, 0, false},
		{"RenewBefore below a third", -61 * day, 29 * day, 24 * time.Hour, false},
		{"RenewBefore capped at 30 days", -30 * day, 31 * day, 60 * day, false},
	} {
		v := Validity{NotBefore: now.Add(tc.before), NotAfter: now.Add(tc.after)}
		if got := v.Due(Threshold(v, tc.renewBefore), now); got != tc.want {
			t.Errorf("%s: Due = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// certFirst swaps the key and certificate blocks of v.
func certFirst(v []byte) []byte {
	key, rest := pem.Decode(v)
	return append(rest, pem.EncodeToMemory(key)...)
}
