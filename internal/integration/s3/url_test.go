package s3_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

func TestOpenErrors(t *testing.T) {
	const secret = "AKIAsecretLEAK"
	drivertest.RunOpenErrors(t, []drivertest.OpenCase{
		{"s3://b/p?region=eu-west-1&bogus=1&other=2", "unknown parameter bogus, other"},
		{"s3://b/p?region=eu-west-1&region=us-east-1", "region given 2 times"},
		{"s3://b/p?region=", "region is empty"},
		{"s3://b/p?region=eu-west-1&max_conns=0", "max_conns=0: want at least 1"},
		{"s3://b/p?region=eu-west-1&max_conns=-2", `max_conns="-2"`},
		{"s3://b/p?region=eu-west-1&use_path_style=yes please", `use_path_style="yes please"`},
		{"s3://b/p?region=eu-west-1&sse=rot13", `sse="rot13": want one of AES256, aws:kms`},
		{"s3://b/p?region=eu-west-1&sse_kms_key_id=alias/certs", "sse_kms_key_id needs sse=aws:kms"},
		{"s3://b/p?region=eu-west-1&sse=AES256&sse_kms_key_id=alias/certs", "sse_kms_key_id needs sse=aws:kms"},
		{"s3://b/p?region=eu-west-1&disable_https=true", "disable_https needs endpoint"},
		{"s3://b/p?endpoint=https://h:9000&disable_https=true", "contradicts the https scheme"},
		{"s3://b/p?endpoint=ftp://h", `endpoint="ftp://h": want an http or https URL`},
		{"s3://b/p?endpoint=http://", "no host"},
		{"s3://b/p?endpoint=http://u:" + secret + "@h", "credentials do not belong in the endpoint"},
		{"s3://b/p?endpoint=http://h/?x=1", "no query"},
		{"s3://b/p?region=eu-west-1&request_checksum_calculation=never", "request_checksum_calculation"},
		{"s3://b/p?region=eu-west-1&response_checksum_validation=x", "response_checksum_validation"},
		{"s3://b/p?region=eu-west-1&anonymous=true", "anonymous is not offered"},
		{"s3://b/p?region=eu-west-1&profile=nonexistent", `profile "nonexistent" is not in the shared configuration files`},
		{"s3://b/p?region=eu-west-1&profile=", "profile is empty"},
		{"s3://b/p", "no region"},
		{"s3://key:" + secret + "@b/p?region=eu-west-1", "credentials do not belong in the URL"},
		{"s3://b:9000/p?region=eu-west-1", "has a port"},
		{"s3:///p?region=eu-west-1", "no bucket"},
		{"s3:b?region=eu-west-1", "no bucket"},
		{"s3://b/p#frag?region=eu-west-1", "no fragment"},
		{"s3://b/a/../b?region=eu-west-1", "path segment .."},
		{"s3://b/a//b?region=eu-west-1", "empty path segment"},
		{"s3://b/a%0Ab?region=eu-west-1", "control character"},
		{"s3://b/" + strings.Repeat("p", 300) + "?region=eu-west-1", "path segment of 300 bytes"},
		{"s3://b/" + strings.Repeat("p/", 300) + "?region=eu-west-1", "599 bytes, limit 512"},
	}, secret)
}

// TestOpenConfig: the region, profile and endpoint come from the SDK's
// configuration chain when the URL does not name them.
func TestOpenConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("[profile certs]\nregion = eu-central-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfg)
	for _, u := range []string{
		"s3://b/p?profile=certs",
		"s3://b/p?endpoint=http://127.0.0.1:1&use_path_style=true", // region defaults to us-east-1
		"s3://b?region=eu-west-1&sse=aws:kms&sse_kms_key_id=alias/certs",
	} {
		c, err := certcache.Open(context.Background(), u)
		if err != nil {
			t.Errorf("Open(%q): %v", u, err)
			continue
		}
		c.Close()
	}
	t.Setenv("AWS_REGION", "ap-south-1")
	c, err := certcache.Open(context.Background(), "s3://b/p")
	if err != nil {
		t.Fatalf("Open with AWS_REGION: %v", err)
	}
	c.Close()
}

// TestOpenDoesNotDial: Open succeeds with the server down, so an instance
// can start during an outage, and the first call reports it. Open asks no
// one else either: with AWS_DEFAULTS_MODE=auto the SDK would ask the
// instance metadata service (here a loopback listener) for its region.
func TestOpenDoesNotDial(t *testing.T) {
	imds, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer imds.Close()
	var dialled atomic.Int32
	go func() {
		for {
			conn, err := imds.Accept()
			if err != nil {
				return
			}
			dialled.Add(1)
			conn.Close()
		}
	}()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://"+imds.Addr().String())
	t.Setenv("AWS_DEFAULTS_MODE", "auto")
	useCredentials(t, "id", "secret")

	c, err := certcache.Open(context.Background(), "s3://b/p?timeout=2s&endpoint=http://"+testenv.ClosedAddr(t))
	if err != nil {
		t.Fatalf("Open with the server down: %v", err)
	}
	defer c.Close()
	if n := dialled.Load(); n != 0 {
		t.Errorf("Open contacted the instance metadata service %d times", n)
	}
	_, err = c.Get(context.Background(), "example.com")
	if err == nil || errors.Is(err, autocert.ErrCacheMiss) || !errors.Is(err, certcache.ErrUnavailable) {
		t.Errorf("Get with the server down = %v, want an ErrUnavailable error", err)
	}
}
