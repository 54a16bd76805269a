package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// runCmd runs the command line in-process and returns what it printed and
// its exit status.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb)
	t.Logf("certcache %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

// fixture is a directory written by autocert.DirCache itself, holding one
// value of every kind ls knows and each thing it must report.
type fixture struct {
	dir    string
	values map[string][]byte
	keys   map[string][]byte // private key PEM of each certificate, never to be printed
}

// The fixture's keys.
const (
	fxGood      = "a.example.com"
	fxRSA       = "a.example.com+rsa"
	fxExpired   = "old.example.com"
	fxSoon      = "soon.example.com" // expires in 10 days
	fxNotCert   = "bad.example.com"
	fxMismatch  = "mismatch.example.com"
	fxWrongName = "wrongname.example.com"
	fxAccount   = "acme_account+key"
	fxToken     = "Zt0ken-abc+http-01"
	fxOther     = "certcache-notes"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{dir: filepath.Join(t.TempDir(), "autocert"), values: map[string][]byte{}, keys: map[string][]byte{}}
	now := time.Now()
	cert := func(key string, s leafSpec) {
		v, k := makeCertValue(t, s)
		fx.values[key], fx.keys[key] = v, k
	}
	cert(fxGood, leafSpec{names: []string{fxGood, "www." + fxGood}})
	cert(fxRSA, leafSpec{names: []string{fxGood}, rsa: true})
	cert(fxExpired, leafSpec{names: []string{fxExpired}, notBefore: now.Add(-100 * 24 * time.Hour), validFor: 90 * 24 * time.Hour})
	cert(fxSoon, leafSpec{names: []string{fxSoon}, notBefore: now.Add(-80 * 24 * time.Hour), validFor: 90 * 24 * time.Hour})
	cert(fxMismatch, leafSpec{names: []string{fxMismatch}, otherKey: true})
	cert(fxWrongName, leafSpec{names: []string{"other.example.com"}})
	fx.values[fxNotCert] = []byte("this is not a certificate\n")
	fx.values[fxAccount] = accountKeyValue(t)
	fx.values[fxToken] = []byte("Zt0ken-abc.thumbprint")
	fx.values[fxOther] = []byte("notes")

	dc := autocert.DirCache(fx.dir)
	for k, v := range fx.values {
		if err := dc.Put(context.Background(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

func (fx *fixture) url() string { return "file://" + fx.dir }
