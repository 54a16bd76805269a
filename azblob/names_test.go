package azblob

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/certcache/certcache"
)

// hostileKeys are keys whose blob names take every path of the encoding:
// plain, escaped, a leading or final dot, shortened with a hash.
var hostileKeys = []string{
	"example.com+rsa", "a", "a.", ".", "..", "...", ".a", "a/b", "a%2Fb", "%", "~", "~lease/x", "a~b",
	"../../etc/passwd", "bücher.example", "x:y*z?", "a b", `back\slash`,
	strings.Repeat("x", certcache.MaxKeyLen),
	strings.Repeat("x", certcache.MaxKeyLen-1) + ".",
	strings.Repeat("/", 400),
	strings.Repeat("/", 399) + "a",
	strings.Repeat("é", 300),
	strings.Repeat("a", 1000) + "%",
}

func testDriver(t *testing.T, prefix string) *driver {
	t.Helper()
	c, err := azblob.NewClientWithNoCredential("http://127.0.0.1:1/acct", nil)
	if err != nil {
		t.Fatal(err)
	}
	return newDriver(c, "certs", prefix, false)
}

// TestKeyOf: every key's blob name decodes to the key, shortened names
// through the metadata Put records, and names Put never writes are not keys.
func TestKeyOf(t *testing.T) {
	for _, prefix := range []string{"", "p", strings.Repeat("q", maxPrefixLen)} {
		d := testDriver(t, prefix)
		for _, key := range hostileKeys {
			name := d.blobName(key)
			var md map[string]*string
			if o := putOptions(key, name); o != nil {
				md = o.Metadata
			}
			got, ok, err := d.keyOf(name, md)
			if err != nil || !ok || got != key {
				t.Errorf("prefix %q: keyOf(blobName(%.40q)) = %.40q, %v, %v", prefix, key, got, ok, err)
			}
			if shortened(name) {
				if _, _, err := d.keyOf(name, nil); err == nil {
					t.Errorf("prefix %q: shortened name %.60q without metadata: no error", prefix, name)
				}
			}
		}
		for _, name := range []string{
			d.prefix + "a/b", d.prefix + leaseDir + "x", d.prefix + "a%2f", d.prefix + "a%2", d.prefix + "a%", d.prefix + "a.",
			d.prefix + "%2E%2Fx" + "%2", d.prefix + "a b", "elsewhere/x",
		} {
			if key, ok, err := d.keyOf(name, nil); ok || err != nil {
				t.Errorf("prefix %q: keyOf(%q) = %q, %v, %v; want not a key", prefix, name, key, ok, err)
			}
		}
	}
}

// TestServerPrefix: the service-side prefix for every prefix of every key
// starts that key's blob name, so filtering on it never drops a key.
func TestServerPrefix(t *testing.T) {
	for _, prefix := range []string{"", "prod/myapp", strings.Repeat("q", maxPrefixLen)} {
		d := testDriver(t, prefix)
		for _, key := range hostileKeys {
			name := d.blobName(key)
			for i := 0; i <= len(key); i++ {
				if !utf8.ValidString(key[:i]) {
					continue
				}
				if sp := d.serverPrefix(key[:i]); !strings.HasPrefix(name, sp) {
					t.Errorf("prefix %q: key %.40q: blob %.60q does not start with the server prefix %.60q of %.40q", prefix, key, name, sp, key[:i])
				}
			}
		}
	}
}

// TestLeaseBlob: lease blobs live under the reserved sub-prefix, within
// Azure's name limit, and never at a key's blob.
func TestLeaseBlob(t *testing.T) {
	d := testDriver(t, "p")
	keys := map[string]bool{}
	for _, key := range hostileKeys {
		keys[d.blobName(key)] = true
	}
	seen := map[string]string{}
	for _, name := range hostileKeys {
		bn := d.leaseBlob(name)
		if !strings.HasPrefix(bn, "p/"+leaseDir) || len(bn) > maxBlobName {
			t.Errorf("lease %.40q: blob %.60q (%d bytes)", name, bn, len(bn))
		}
		if keys[bn] {
			t.Errorf("lease %.40q: blob %q is a key's blob", name, bn)
		}
		if other, dup := seen[bn]; dup {
			t.Errorf("leases %.40q and %.40q share blob %q", name, other, bn)
		}
		seen[bn] = name
	}
	if err := checkPrefix("p/~lease"); err == nil {
		t.Error(`checkPrefix("p/~lease") = nil: another cache's keys could land among leases`)
	}
}
