package encrypt_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/encrypt"
	_ "github.com/certcache/certcache/layered"
)

// rawKey returns a random key that is not all printable, so that it
// can be stored raw.
func rawKey(t testing.TB) []byte {
	for {
		k := newKey(t)
		for _, c := range k {
			if c < 0x20 || c > 0x7e {
				return k
			}
		}
	}
}

// TestOpenURL: every accepted spelling of a key opens a cache whose values
// open with that key.
func TestOpenURL(t *testing.T) {
	ctx := context.Background()
	key, old := rawKey(t), newKey(t)
	t.Setenv("CC_TEST_KEY_STD", base64.StdEncoding.EncodeToString(key))
	t.Setenv("CC_TEST_KEY_URL", base64.RawURLEncoding.EncodeToString(key))
	t.Setenv("CC_TEST_KEY_SPACES", "  "+base64.StdEncoding.EncodeToString(key)+"\n")
	t.Setenv("CC_TEST_OLD", base64.StdEncoding.EncodeToString(old))
	rawFile := keyFile(t, key)
	oldFile := b64File(t, old)
	for _, tc := range []struct {
		name, query string
		migrate     bool
	}{
		{"env base64", "encryption_key=env:CC_TEST_KEY_STD", false},
		{"env base64url unpadded", "encryption_key=env:CC_TEST_KEY_URL", false},
		{"env with white space", "encryption_key=env:CC_TEST_KEY_SPACES", false},
		{"file raw 32 bytes", "encryption_key=" + rawFile, false},
		{"file base64 with newline", "encryption_key=" + b64File(t, key), false},
		{"older keys, comma-separated", "encryption_key=env:CC_TEST_KEY_STD&encryption_keys=env:CC_TEST_OLD," + oldFile, false},
		{"older keys, repeated", "encryption_key=env:CC_TEST_KEY_STD&encryption_keys=env:CC_TEST_OLD&encryption_keys=" + oldFile, false},
		{"escaped", "encryption_key=" + url.QueryEscape("env:CC_TEST_KEY_STD"), false},
		{"migrate", "encryption_key=env:CC_TEST_KEY_STD&encryption_migrate=true", true},
		{"migrate off", "encryption_key=env:CC_TEST_KEY_STD&encryption_migrate=false&timeout=3s", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "url-" + strings.ReplaceAll(tc.name, " ", "-")
			c, err := certcache.Open(ctx, "mem://"+strings.ReplaceAll(name, ",", "")+"?"+tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			raw := openMem(t, strings.ReplaceAll(name, ",", ""))
			v := drivertest.CertValue() // a certificate autocert would use: coordination serves it
			if err := c.Put(ctx, "example.com", v); err != nil {
				t.Fatal(err)
			}
			stored, _ := raw.Get(ctx, "example.com")
			checkSealed(t, stored, v, encrypt.KeyID(key))
			// The same key from Go opens it.
			direct, _ := encrypt.New(raw, mustKeyring(t, key), nil)
			if got, err := direct.Get(ctx, "example.com"); err != nil || !bytes.Equal(got, v) {
				t.Errorf("value sealed via the URL does not open with the key: %q, %v", got, err)
			}
			// Values sealed with an older key open when it is listed.
			oldC, _ := encrypt.New(raw, mustKeyring(t, old), nil)
			oldC.Put(ctx, "old.example.com", v)
			_, err = c.Get(ctx, "old.example.com")
			if listed := strings.Contains(tc.query, "encryption_keys"); listed != (err == nil) {
				t.Errorf("Get of a value sealed with the older key = %v (older key listed: %v)", err, listed)
			}
			// Migration follows the parameter.
			raw.Put(ctx, "plain.example.com", v)
			_, err = c.Get(ctx, "plain.example.com")
			if tc.migrate != (err == nil) {
				t.Errorf("Get of a plaintext value = %v with migrate=%v", err, tc.migrate)
			}
		})
	}
}

// TestOpenURLErrors: bad parameters are refused at Open with
// certcache.ErrInvalidURL, a message that says what is wrong, and no key
// material, whatever the value held.
func TestOpenURLErrors(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	literal := base64.StdEncoding.EncodeToString(key)
	t.Setenv("CC_TEST_KEY", base64.StdEncoding.EncodeToString(key))
	t.Setenv("CC_TEST_SHORT", base64.StdEncoding.EncodeToString(key[:16]))
	t.Setenv("CC_TEST_TEXT32", "correct-horse-battery-staple-123")
	t.Setenv("CC_TEST_GARBAGE", "not base64 at all!")
	t.Setenv("CC_TEST_EMPTY", "")
	long := append(bytes.Clone(key), key...)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, query, want string
	}{
		{"missing env var", "encryption_key=env:CC_TEST_NOT_SET", "environment variable CC_TEST_NOT_SET is not set"},
		{"empty env var", "encryption_key=env:CC_TEST_EMPTY", "environment variable CC_TEST_EMPTY: empty"},
		{"base64 of 16 bytes", "encryption_key=env:CC_TEST_SHORT", "base64 of 16 bytes, want 32"},
		{"32 characters of text", "encryption_key=env:CC_TEST_TEXT32", "32 characters of text, not a raw key"},
		{"not base64", "encryption_key=env:CC_TEST_GARBAGE", "neither a raw 32-byte key nor base64"},
		{"raw 64 bytes in a file", "encryption_key=" + keyFile(t, long), "neither a raw 32-byte key nor base64"},
		{"raw 31 bytes in a file", "encryption_key=" + keyFile(t, key[:31]), "neither a raw 32-byte key nor base64"},
		{"missing file", "encryption_key=file:" + filepath.Join(dir, "nope.key"), "nope.key: no such file"},
		{"file is a directory", "encryption_key=file:" + dir, "is a directory"},
		{"literal base64 key", "encryption_key=" + url.QueryEscape(literal), "must be env:NAME or file:PATH"},
		{"literal raw key", "encryption_key=" + url.QueryEscape(string(key)), "must be env:NAME or file:PATH"},
		{"literal older key", "encryption_key=env:CC_TEST_KEY&encryption_keys=" + url.QueryEscape(literal), "encryption_keys: bad encryption key: a key reference must be"},
		{"unknown source", "encryption_key=vault:secret/cache", "must be env:NAME or file:PATH"},
		{"uppercase source", "encryption_key=ENV:CC_TEST_KEY", "must be env:NAME or file:PATH"},
		{"env without name", "encryption_key=env:", "the environment variable's name is missing"},
		{"file without path", "encryption_key=file:", "the file's path is missing"},
		{"empty", "encryption_key=", "encryption_key is empty"},
		{"repeated", "encryption_key=env:CC_TEST_KEY&encryption_key=env:CC_TEST_KEY", "encryption_key given 2 times"},
		{"older keys alone", "encryption_keys=env:CC_TEST_KEY", "need encryption_key=env:NAME or file:PATH"},
		{"migrate alone", "encryption_migrate=true", "need encryption_key"},
		{"migrate not a bool", "encryption_key=env:CC_TEST_KEY&encryption_migrate=yes please", `encryption_migrate="yes please": want true or false`},
		{"empty older entry", "encryption_key=env:CC_TEST_KEY&encryption_keys=env:CC_TEST_KEY,", "encryption_keys has an empty entry"},
		{"unknown param", "encryption_key=env:CC_TEST_KEY&encryption_cipher=aes", "mem:// takes no parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := certcache.Open(ctx, "mem://?"+tc.query)
			if err == nil {
				c.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, certcache.ErrInvalidURL) {
				t.Errorf("%v does not match certcache.ErrInvalidURL", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			checkNoSecret(t, err, keySecrets(key))
			if strings.Contains(err.Error(), "correct-horse") || strings.Contains(err.Error(), "not base64 at all") {
				t.Errorf("error shows the content of the key variable: %v", err)
			}
		})
	}
}

// TestLoadKeyErrorsHideContent calls LoadKey directly, where no redaction
// by certcache.Open can hide a leak.
func TestLoadKeyErrorsHideContent(t *testing.T) {
	key := newKey(t)
	secrets := keySecrets(key)
	b64 := base64.StdEncoding.EncodeToString(key)
	t.Setenv("CC_TEST_TRUNC", b64[:30])
	for _, ref := range []string{
		b64, string(key), "key:" + b64, b64 + ":x", "env:CC_TEST_TRUNC",
		keyFile(t, []byte(b64[:40]+"\n")), keyFile(t, append([]byte(b64), 'x')), keyFile(t, key[:20]),
	} {
		k, err := encrypt.LoadKey(ref)
		if err == nil {
			t.Errorf("LoadKey accepted a bad reference (%d bytes)", len(ref))
			clear(k)
			continue
		}
		if !errors.Is(err, encrypt.ErrKey) {
			t.Errorf("%v does not match ErrKey", err)
		}
		checkNoSecret(t, err, append(secrets, b64[:30], b64[:20]))
	}
	// And the working form.
	t.Setenv("CC_TEST_GOOD", b64)
	k, err := encrypt.LoadKey("env:CC_TEST_GOOD")
	if err != nil || !bytes.Equal(k, key) {
		t.Errorf("LoadKey(env:) = %v", err)
	}
	kr, err := encrypt.LoadKeyring("env:CC_TEST_GOOD", b64File(t, newKey(t)))
	if err != nil || kr.PrimaryID() != encrypt.KeyID(key) || len(kr.IDs()) != 2 {
		t.Errorf("LoadKeyring = %v, %v", kr, err)
	}
	if _, err := encrypt.LoadKeyring("env:CC_TEST_GOOD", "env:CC_TEST_TRUNC"); !errors.Is(err, encrypt.ErrKey) {
		t.Errorf("LoadKeyring with a bad older key = %v", err)
	}
}

// TestWithMemoryFront: the layered package's memory front and encryption
// turned on in one URL work together, and the store holds sealed values.
func TestWithMemoryFront(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	ref := b64File(t, key)
	c, err := certcache.Open(ctx, "mem://with-front?memory=true&encryption_key="+ref)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw := openMem(t, "with-front")
	v := drivertest.CertValue() // a certificate autocert would use: coordination serves it
	if err := c.Put(ctx, "example.com", v); err != nil {
		t.Fatal(err)
	}
	stored, _ := raw.Get(ctx, "example.com")
	checkSealed(t, stored, v, encrypt.KeyID(key))
	if got, err := c.Get(ctx, "example.com"); err != nil || !bytes.Equal(got, v) {
		t.Errorf("Get through front and encryption = %q, %v", got, err)
	}
	// Reseal finds the encrypting cache below the memory front.
	if _, err := encrypt.Reseal(ctx, c, "example.com"); err != nil {
		t.Errorf("Reseal through the memory front: %v", err)
	}
}
