package encrypt_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/encrypt"
)

func TestConformanceFile(t *testing.T) {
	key := newKey(t)
	ref := b64File(t, key)
	root := t.TempDir()
	drivertest.Run(t, drivertest.Harness{
		SealedSizes: true, // listed sizes count the sealing overhead (encrypt.Overhead)
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), "file://"+filepath.Join(root, ns)+"?encryption_key="+ref)
		},
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			blocker := filepath.Join(t.TempDir(), "not-a-dir")
			if err := os.WriteFile(blocker, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return certcache.Open(context.Background(), "file://"+filepath.Join(blocker, "certs")+"?encryption_key="+ref)
		},
		Secrets: keySecrets(key),
	})
}

// TestFileAtRest reads the files directly: sealed, no PEM; and a directory
// written by autocert.DirCache before encryption is read in migration mode.
func TestFileAtRest(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	dir := t.TempDir()
	v := drivertest.CertValue()
	if err := os.WriteFile(filepath.Join(dir, "old.example.com"), v, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := certcache.Open(ctx, "file://"+dir+"?encryption_key="+b64File(t, key)+"&encryption_migrate=true")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.Get(ctx, "old.example.com"); err != nil || string(got) != string(v) {
		t.Fatalf("migration Get of a DirCache file: %v", err)
	}
	for _, name := range []string{"example.com", "acme_account+key", "old.example.com"} {
		if err := c.Put(ctx, name, v); err != nil {
			t.Fatal(err)
		}
		stored, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		checkSealed(t, stored, v, encrypt.KeyID(key))
	}
}
