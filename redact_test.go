package certcache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/certcache/certcache/driver"
)

func TestURLSecrets(t *testing.T) {
	u, err := url.Parse("redis://user:p%40ss%2Fw0rd@host/0?sentinel_password=sp1&sas_token=sv%3D1%26sig%3Dabc&prefix=app&encryption_key=env:K")
	if err != nil {
		t.Fatal(err)
	}
	got := urlSecrets(u)
	for _, want := range []string{"p@ss/w0rd", "p%40ss%2Fw0rd", "sp1", "sv=1&sig=abc", "sv%3D1%26sig%3Dabc"} {
		found := false
		for _, s := range got {
			found = found || s == want
		}
		if !found {
			t.Errorf("urlSecrets misses %q (got %q)", want, got)
		}
	}
	u2, _ := url.Parse("s3://b?sse_kms_key_id=k")
	if got := urlSecrets(u2); len(got) != 0 {
		t.Errorf("urlSecrets(sse_kms_key_id=k) = %q; a key's id is not a secret", got)
	}
	for _, s := range got {
		if s == "app" || s == "user" || s == "host" {
			t.Errorf("urlSecrets treats %q as a secret", s)
		}
	}
}

func TestRedactKeepsChain(t *testing.T) {
	cause := fmt.Errorf("%w: dial redis://u:hunter2@h: refused", ErrUnavailable)
	err := redact(cause, []string{"hunter2"})
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("redacted error still shows the secret: %v", err)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("redacted error lost its chain: %v", err)
	}
	if plain := errors.New("nothing secret"); redact(plain, []string{"hunter2"}) != plain {
		t.Error("redact wrapped an error that holds no secret")
	}
}

// secretDriver fails every call with an error that quotes its URL, as SDKs do.
type secretDriver struct{ u string }

func (d secretDriver) Get(ctx2 context.Context, key string) ([]byte, error) { return nil, d.err() }
func (d secretDriver) Put(ctx2 context.Context, key string, _ []byte) error { return d.err() }
func (d secretDriver) Delete(ctx2 context.Context, key string) error        { return d.err() }
func (d secretDriver) Close() error                                         { return d.err() }
func (d secretDriver) err() error                                           { return fmt.Errorf("cannot reach %s", d.u) }

func TestCallErrorsAreRedacted(t *testing.T) {
	const raw = "leaky://admin:hunter2@db.internal/x?api_key=K3Y"
	Register("leaky", Backend{Name: "leaky", Open: func(_ context.Context, u *url.URL) (driver.Driver, error) {
		return secretDriver{u: raw}, nil
	}})
	c, err := Open(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "example.com")
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "K3Y") {
		t.Errorf("Get error = %v; want an error without the secrets", err)
	}
	if err := c.Close(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Close error = %v; want an error without the secrets", err)
	}
}
