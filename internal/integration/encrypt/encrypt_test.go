package encrypt_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/encrypt"
	"golang.org/x/crypto/acme/autocert"
)

// newKey returns a random key.
func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, encrypt.KeySize)
	rand.Read(k)
	return k
}

// keyFile writes content to a new file and returns "file:PATH".
func keyFile(t testing.TB, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cache.key")
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return "file:" + p
}

// b64File writes key in base64 with a trailing newline, as
// "openssl rand -base64 32 > file" does, and returns "file:PATH".
func b64File(t testing.TB, key []byte) string {
	return keyFile(t, []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
}

// keySecrets returns every spelling of key that must never show in an
// error.
func keySecrets(keys ...[]byte) []string {
	var s []string
	for _, k := range keys {
		s = append(s, string(k),
			base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k),
			hex.EncodeToString(k))
		// A fragment is a leak too.
		b := base64.RawStdEncoding.EncodeToString(k)
		s = append(s, b[:16], b[len(b)-16:])
	}
	return s
}

func checkNoSecret(t testing.TB, err error, secrets []string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error reveals key material: %v", err)
			return
		}
	}
}

var memSeq atomic.Int64

// memPair opens a fresh named mem:// store twice: through the encryption
// wrapper with kr and o, and raw, to read and write what the store holds
// (beneath coordination, which would take sealed bytes for no certificate).
func memPair(t testing.TB, kr *encrypt.Keyring, o *encrypt.Options) (enc, raw certcache.Cache) {
	t.Helper()
	name := fmt.Sprintf("enc-%d", memSeq.Add(1))
	return wrapMem(t, name, kr, o), certcache.Uncoordinated(openMem(t, name))
}

func openMem(t testing.TB, name string) certcache.Cache {
	t.Helper()
	c, err := certcache.Open(context.Background(), "mem://"+name+"?coordinate=false") // encryption alone: coordination has its own tests
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wrapMem(t testing.TB, name string, kr *encrypt.Keyring, o *encrypt.Options) certcache.Cache {
	t.Helper()
	c, err := encrypt.New(openMem(t, name), kr, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustKeyring(t testing.TB, primary []byte, older ...[]byte) *encrypt.Keyring {
	t.Helper()
	kr, err := encrypt.NewKeyring(primary, older...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// wantDecryptErr fails unless err is a descriptive ErrDecrypt that is not
// a miss, names the key and holds no key material.
func wantDecryptErr(t testing.TB, what string, err error, secrets []string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: Get succeeded, want ErrDecrypt", what)
		return
	case errors.Is(err, autocert.ErrCacheMiss):
		t.Errorf("%s: %v is a miss: autocert would order a new certificate", what, err)
	case !errors.Is(err, encrypt.ErrDecrypt):
		t.Errorf("%s: %v does not match encrypt.ErrDecrypt", what, err)
	}
	var ce *certcache.Error
	if !errors.As(err, &ce) || ce.Op != "get" || ce.Key == "" {
		t.Errorf("%s: %v is not a *certcache.Error naming the operation and key", what, err)
	}
	if !strings.HasPrefix(err.Error(), "certcache/") {
		t.Errorf("%s: %q does not start with certcache/", what, err)
	}
	checkNoSecret(t, err, secrets)
}

func TestConformanceMem(t *testing.T) {
	key := newKey(t)
	ref := b64File(t, key)
	drivertest.Run(t, drivertest.Harness{
		SealedSizes: true, // listed sizes count the sealing overhead (encrypt.Overhead)
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), "mem://"+ns+"?encryption_key="+ref)
		},
		Secrets: keySecrets(key),
	})
}

func TestSealedAtRest(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	kr := mustKeyring(t, key)
	enc, raw := memPair(t, kr, nil)
	v := drivertest.CertValue()
	if err := enc.Put(ctx, "example.com", v); err != nil {
		t.Fatal(err)
	}
	stored, err := raw.Get(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	checkSealed(t, stored, v, kr.PrimaryID())
	got, err := enc.Get(ctx, "example.com")
	if err != nil || !bytes.Equal(got, v) {
		t.Fatalf("Get = %.30q, %v; want the value put", got, err)
	}
	// Two seals of one value differ (random nonces).
	if err := enc.Put(ctx, "example.com", v); err != nil {
		t.Fatal(err)
	}
	again, _ := raw.Get(ctx, "example.com")
	if bytes.Equal(again, stored) {
		t.Error("sealing the same value twice gave the same bytes")
	}
}

// checkSealed checks stored is the sealed form of v under key id id: the
// header, the length, and no trace of the plaintext.
func checkSealed(t testing.TB, stored, v []byte, id string) {
	t.Helper()
	if len(stored) != len(v)+encrypt.Overhead {
		t.Errorf("stored %d bytes for a %d-byte value; want %d more", len(stored), len(v), encrypt.Overhead)
	}
	if !bytes.HasPrefix(stored, []byte("\x89CCE\x01")) {
		t.Errorf("stored value starts %q, want the magic and version 1", stored[:min(len(stored), 5)])
	}
	if len(stored) >= 13 && hex.EncodeToString(stored[5:13]) != id {
		t.Errorf("stored key id %x, want %s", stored[5:13], id)
	}
	for _, s := range []string{"-----BEGIN", "PRIVATE KEY", "CERTIFICATE"} {
		if bytes.Contains(stored, []byte(s)) {
			t.Errorf("the store holds plaintext %q", s)
		}
	}
	if len(v) >= 64 && bytes.Contains(stored, v[len(v)/2:len(v)/2+32]) {
		t.Error("the store holds a run of the plaintext")
	}
}

func TestTampered(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	for _, migrate := range []bool{false, true} {
		t.Run(fmt.Sprintf("migrate=%v", migrate), func(t *testing.T) {
			enc, raw := memPair(t, mustKeyring(t, key), &encrypt.Options{Migrate: migrate})
			v := drivertest.CertValue()
			if err := enc.Put(ctx, "example.com", v); err != nil {
				t.Fatal(err)
			}
			sealed, _ := raw.Get(ctx, "example.com")
			n := len(sealed)
			for _, tc := range []struct {
				name string
				at   int
			}{
				{"magic", 0}, {"magic2", 2}, {"version", 4}, {"keyid", 7}, {"nonce", 15},
				{"ciphertextFirst", 25}, {"ciphertextMiddle", 25 + len(v)/2}, {"ciphertextLast", n - 17},
				{"tagFirst", n - 16}, {"tagLast", n - 1},
			} {
				for _, bit := range []byte{0x01, 0x80} {
					bad := bytes.Clone(sealed)
					bad[tc.at] ^= bit
					if err := raw.Put(ctx, "example.com", bad); err != nil {
						t.Fatal(err)
					}
					got, err := enc.Get(ctx, "example.com")
					wantDecryptErr(t, fmt.Sprintf("byte %d (%s) ^ %#x", tc.at, tc.name, bit), err, keySecrets(key))
					if got != nil {
						t.Errorf("%s: Get returned %d bytes with the error", tc.name, len(got))
					}
				}
			}
			// An appended byte is tampering too.
			raw.Put(ctx, "example.com", append(bytes.Clone(sealed), 0))
			_, err := enc.Get(ctx, "example.com")
			wantDecryptErr(t, "appended byte", err, keySecrets(key))
		})
	}
}

func TestTruncated(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	for _, migrate := range []bool{false, true} {
		enc, raw := memPair(t, mustKeyring(t, key), &encrypt.Options{Migrate: migrate})
		v := drivertest.CertValue()
		enc.Put(ctx, "example.com", v)
		sealed, _ := raw.Get(ctx, "example.com")
		for _, n := range []int{1, 3, 4, 5, 12, 13, 24, 25, encrypt.Overhead - 1, encrypt.Overhead, encrypt.Overhead + 10, len(sealed) - 16, len(sealed) - 1} {
			raw.Put(ctx, "example.com", sealed[:n])
			_, err := enc.Get(ctx, "example.com")
			wantDecryptErr(t, fmt.Sprintf("migrate=%v, truncated to %d of %d bytes", migrate, n, len(sealed)), err, keySecrets(key))
		}
		// Truncated to nothing: without migration, a value that is not
		// sealed; with it, an empty plaintext value (indistinguishable).
		raw.Put(ctx, "example.com", []byte{})
		got, err := enc.Get(ctx, "example.com")
		if migrate {
			if err != nil || len(got) != 0 {
				t.Errorf("migrate: empty stored value = %q, %v; want it as plaintext", got, err)
			}
		} else {
			wantDecryptErr(t, "truncated to 0 bytes", err, keySecrets(key))
		}
	}
}

// TestSwapped: values moved between cache keys do not open, so an attacker
// with write access cannot serve one domain's certificate, or the account
// key, under another name.
func TestSwapped(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	enc, raw := memPair(t, mustKeyring(t, key), nil)
	a, b := []byte("-----BEGIN value of a.example"), []byte("-----BEGIN value of b.example")
	enc.Put(ctx, "a.example", a)
	enc.Put(ctx, "b.example", b)
	enc.Put(ctx, "acme_account+key", []byte("-----BEGIN EC PRIVATE KEY"))
	sa, _ := raw.Get(ctx, "a.example")
	sb, _ := raw.Get(ctx, "b.example")
	sk, _ := raw.Get(ctx, "acme_account+key")
	raw.Put(ctx, "a.example", sb)
	raw.Put(ctx, "b.example", sa)
	raw.Put(ctx, "c.example", sk) // the account key copied to a domain
	for _, name := range []string{"a.example", "b.example", "c.example"} {
		_, err := enc.Get(ctx, name)
		wantDecryptErr(t, "swapped "+name, err, keySecrets(key))
		if err != nil && !strings.Contains(err.Error(), "moved from another cache key") {
			t.Errorf("error %q does not suggest a moved value", err)
		}
	}
	// Put back, they open again.
	raw.Put(ctx, "a.example", sa)
	if got, err := enc.Get(ctx, "a.example"); err != nil || !bytes.Equal(got, a) {
		t.Errorf("restored a.example = %q, %v", got, err)
	}
}

func TestWrongKey(t *testing.T) {
	ctx := context.Background()
	k1, k2 := newKey(t), newKey(t)
	name := fmt.Sprintf("wrong-%d", memSeq.Add(1))
	c1 := wrapMem(t, name, mustKeyring(t, k1), nil)
	c2 := wrapMem(t, name, mustKeyring(t, k2), &encrypt.Options{Migrate: true})
	if err := c1.Put(ctx, "example.com", drivertest.CertValue()); err != nil {
		t.Fatal(err)
	}
	_, err := c2.Get(ctx, "example.com")
	wantDecryptErr(t, "wrong key", err, keySecrets(k1, k2))
	if err != nil && !strings.Contains(err.Error(), "key id "+encrypt.KeyID(k1)) {
		t.Errorf("error %q does not name the key id the value needs", err)
	}
	if err != nil && !strings.Contains(err.Error(), encrypt.KeyID(k2)) {
		t.Errorf("error %q does not name the keyring's key ids", err)
	}
	// A miss is still the bare sentinel through the wrapper.
	if _, err := c2.Get(ctx, "missing.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Errorf("Get of a missing key = %v, want the bare autocert.ErrCacheMiss", err)
	}
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	oldKey, newK := newKey(t), newKey(t)
	name := fmt.Sprintf("rot-%d", memSeq.Add(1))
	before := wrapMem(t, name, mustKeyring(t, oldKey), nil)
	v1, v2 := drivertest.CertValue(), []byte("-----BEGIN account key")
	before.Put(ctx, "example.com", v1)
	before.Put(ctx, "acme_account+key", v2)

	kr := mustKeyring(t, newK, oldKey, newK) // a duplicate is kept once
	if got, want := kr.IDs(), []string{encrypt.KeyID(newK), encrypt.KeyID(oldKey)}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("IDs = %v, want %v", got, want)
	}
	after := wrapMem(t, name, kr, nil)
	raw := openMem(t, name)
	// Old values still open.
	for k, v := range map[string][]byte{"example.com": v1, "acme_account+key": v2} {
		if got, err := after.Get(ctx, k); err != nil || !bytes.Equal(got, v) {
			t.Errorf("after rotation, Get(%q) = %.20q, %v", k, got, err)
		}
	}
	// New values use the new key id.
	v3 := []byte("-----BEGIN renewed")
	after.Put(ctx, "example.com", v3)
	stored, _ := raw.Get(ctx, "example.com")
	checkSealed(t, stored, v3, encrypt.KeyID(newK))
	// Reseal moves what autocert never rewrites to the new key.
	n, err := encrypt.Reseal(ctx, after, "example.com", "acme_account+key", "missing.example")
	if err != nil || n != 1 {
		t.Errorf("Reseal = %d, %v; want 1 value rewritten", n, err)
	}
	stored, _ = raw.Get(ctx, "acme_account+key")
	checkSealed(t, stored, v2, encrypt.KeyID(newK))
	// Now the old key can go.
	onlyNew := wrapMem(t, name, mustKeyring(t, newK), nil)
	for k, v := range map[string][]byte{"example.com": v3, "acme_account+key": v2} {
		if got, err := onlyNew.Get(ctx, k); err != nil || !bytes.Equal(got, v) {
			t.Errorf("new key only, Get(%q) = %.20q, %v", k, got, err)
		}
	}
	// And the old key alone no longer opens them.
	_, err = before.Get(ctx, "acme_account+key")
	wantDecryptErr(t, "old key only", err, keySecrets(oldKey, newK))
	if _, err := encrypt.Reseal(ctx, raw, "example.com"); err == nil {
		t.Error("Reseal on a cache without encryption succeeded")
	}
}

func TestMigration(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	kr := mustKeyring(t, key)
	pem := drivertest.CertValue()
	token := []byte("LbVtFxbR2aVvNaq2JSUGcc6xcvcW7YSiUGsm0ZInLP8.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI")

	t.Run("off", func(t *testing.T) {
		enc, raw := memPair(t, kr, nil)
		raw.Put(ctx, "example.com", pem)
		_, err := enc.Get(ctx, "example.com")
		wantDecryptErr(t, "plaintext without migration", err, keySecrets(key))
		if !errors.Is(err, encrypt.ErrNotSealed) || !strings.Contains(fmt.Sprint(err), "encryption_migrate=true") {
			t.Errorf("error %v does not match ErrNotSealed or point at encryption_migrate", err)
		}
		// The value is left alone, not deleted or rewritten.
		if got, _ := raw.Get(ctx, "example.com"); !bytes.Equal(got, pem) {
			t.Error("a failed Get changed the stored value")
		}
	})
	t.Run("on", func(t *testing.T) {
		enc, raw := memPair(t, kr, &encrypt.Options{Migrate: true})
		for name, v := range map[string][]byte{
			"example.com": pem, "tok+http-01": token, "acme_account+key": pem[:200], "empty.example": {},
		} {
			raw.Put(ctx, name, v)
			got, err := enc.Get(ctx, name)
			if err != nil || !bytes.Equal(got, v) || got == nil {
				t.Errorf("migrate: Get(%q) of plaintext = %.20q, %v; want it as stored", name, got, err)
			}
		}
		// The next Put seals.
		enc.Put(ctx, "example.com", pem)
		stored, _ := raw.Get(ctx, "example.com")
		checkSealed(t, stored, pem, kr.PrimaryID())
		if got, err := enc.Get(ctx, "example.com"); err != nil || !bytes.Equal(got, pem) {
			t.Errorf("sealed value in migration mode = %.20q, %v", got, err)
		}
		// Reseal seals plaintext values at once.
		n, err := encrypt.Reseal(ctx, enc, "acme_account+key", "tok+http-01", "example.com")
		if err != nil || n != 2 {
			t.Errorf("Reseal = %d, %v; want 2 values rewritten", n, err)
		}
		stored, _ = raw.Get(ctx, "acme_account+key")
		checkSealed(t, stored, pem[:200], kr.PrimaryID())
		// Neither sealed nor text: an error, never bytes handed to autocert.
		raw.Put(ctx, "binary.example", []byte{0x00, 0xff, 0xfe, 'x'})
		_, err = enc.Get(ctx, "binary.example")
		wantDecryptErr(t, "binary value without the magic", err, keySecrets(key))
		// A sealed value whose first byte was damaged is not plaintext.
		bad := bytes.Clone(stored)
		bad[0] = '-'
		raw.Put(ctx, "damaged.example", bad)
		_, err = enc.Get(ctx, "damaged.example")
		wantDecryptErr(t, "sealed value with a damaged first byte", err, keySecrets(key))
	})
}

// TestSizeLimit: the limit through encryption is certcache.MaxValueSize
// less the sealing overhead, checked before anything is sent, so that no
// backend ever sees a value it would refuse.
func TestSizeLimit(t *testing.T) {
	ctx := context.Background()
	enc, raw := memPair(t, mustKeyring(t, newKey(t)), nil)
	if encrypt.MaxValueSize != certcache.MaxValueSize-encrypt.Overhead || encrypt.Overhead != 41 {
		t.Fatalf("MaxValueSize %d, Overhead %d", encrypt.MaxValueSize, encrypt.Overhead)
	}
	largest := make([]byte, encrypt.MaxValueSize)
	rand.Read(largest)
	if err := enc.Put(ctx, "largest", largest); err != nil {
		t.Fatalf("Put of encrypt.MaxValueSize bytes: %v", err)
	}
	stored, _ := raw.Get(ctx, "largest")
	if len(stored) != certcache.MaxValueSize {
		t.Errorf("sealed largest value is %d bytes, want exactly certcache.MaxValueSize", len(stored))
	}
	if got, err := enc.Get(ctx, "largest"); err != nil || !bytes.Equal(got, largest) {
		t.Errorf("Get of the largest value: %d bytes, %v", len(got), err)
	}
	for _, n := range []int{encrypt.MaxValueSize + 1, certcache.MaxValueSize, certcache.MaxValueSize + 1} {
		err := enc.Put(ctx, "too-large", make([]byte, n))
		if !errors.Is(err, certcache.ErrTooLarge) || !strings.Contains(fmt.Sprint(err), "sealing overhead") {
			t.Errorf("Put of %d bytes = %v, want certcache.ErrTooLarge explaining the overhead", n, err)
		}
		if _, err := raw.Get(ctx, "too-large"); err != autocert.ErrCacheMiss { //nolint:errorlint
			t.Errorf("a refused value reached the store: %v", err)
		}
	}
}

func TestNew(t *testing.T) {
	inner := openMem(t, "")
	if _, err := encrypt.New(nil, mustKeyring(t, newKey(t)), nil); err == nil {
		t.Error("New(nil cache) succeeded")
	}
	if _, err := encrypt.New(inner, nil, nil); err == nil {
		t.Error("New(nil keyring) succeeded")
	}
	if _, err := encrypt.New(inner, &encrypt.Keyring{}, nil); err == nil {
		t.Error("New(empty keyring) succeeded")
	}
	key := newKey(t)
	for _, tc := range []struct {
		primary []byte
		older   [][]byte
		want    string
	}{
		{key[:16], nil, "primary key is 16 bytes, want 32"},
		{nil, nil, "primary key is 0 bytes"},
		{key, [][]byte{key, append(key, 0)}, "older key #2 is 33 bytes"},
	} {
		_, err := encrypt.NewKeyring(tc.primary, tc.older...)
		if !errors.Is(err, encrypt.ErrKey) || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("NewKeyring: %v, want ErrKey with %q", err, tc.want)
		}
		checkNoSecret(t, err, keySecrets(key))
	}
	// The keyring copies its keys.
	k := bytes.Clone(key)
	kr := mustKeyring(t, k)
	c, _ := encrypt.New(openMem(t, "copy-check"), kr, nil)
	c.Put(context.Background(), "x", []byte("v"))
	clear(k)
	if got, err := c.Get(context.Background(), "x"); err != nil || string(got) != "v" {
		t.Errorf("after clearing the caller's key slice: %q, %v", got, err)
	}
	// Close closes the wrapped cache.
	c.Close()
	if err := c.Put(context.Background(), "x", []byte("v")); !errors.Is(err, certcache.ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
}

func TestKeyID(t *testing.T) {
	// Pinned: ids are stored in every sealed value, so they must never
	// change for a given key.
	zero := make([]byte, encrypt.KeySize)
	if got, want := encrypt.KeyID(zero), "273d59ab6520d6b7"; got != want {
		t.Errorf("KeyID(zero key) = %s, want %s", got, want)
	}
	k := newKey(t)
	if encrypt.KeyID(k) == encrypt.KeyID(newKey(t)) {
		t.Error("two random keys share an id")
	}
	if strings.Contains(hex.EncodeToString(k), encrypt.KeyID(k)) {
		t.Error("the key id is a piece of the key")
	}
}
