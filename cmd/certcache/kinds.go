package main

import (
	"fmt"
	"time"

	"github.com/certcache/certcache/internal/certkey"
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

// classify returns the kind of key and, for a certificate, the domain it is
// for, as internal/certkey (which coordination and the preload ask too)
// tells it.
func classify(key string) (k kind, domain string) {
	switch certkey.KindOf(key) {
	case certkey.Cert:
		domain, isRSA := certkey.Domain(key)
		if isRSA {
			return kindRSACert, domain
		}
		return kindCert, domain
	case certkey.Account:
		return kindAccountKey, ""
	case certkey.Challenge:
		return kindToken, ""
	}
	if key == certkey.LegacyAccountKey {
		return kindAccountKey, ""
	}
	return kindOther, ""
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
