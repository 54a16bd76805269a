package reliability

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

// Secrets the sweep plants in URLs and in the environment. None may appear
// in any error, in any form a URL or DSN would carry it.
const (
	secretPassword = "Pw-0f7c1e9b"
	secretAccess   = "AKIA7C0FFEE5EC12E7"
	secretSAS      = "sig=S4sSig9aTuRe%2Fxyz"
)

var secretAccountKey = base64.StdEncoding.EncodeToString([]byte("account-key-that-is-32-bytes-ok!"))

func secretForms() []string {
	forms := []string{secretPassword, secretAccess, secretAccountKey, "S4sSig9aTuRe"}
	for _, s := range []string{secretPassword, secretAccountKey} {
		forms = append(forms, url.QueryEscape(s), url.PathEscape(s))
	}
	return forms
}

// checkNoSecret fails if err shows any planted secret, or is a miss.
func checkNoSecret(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if err == autocert.ErrCacheMiss || errors.Is(err, autocert.ErrCacheMiss) { //nolint:errorlint
		t.Errorf("%s: a failure reported as a miss: %v", what, err)
	}
	for _, s := range secretForms() {
		if strings.Contains(err.Error(), s) {
			t.Errorf("%s: error shows the secret %q: %v", what, s, err)
		}
	}
}

// sweep opens rawURL and, if that works, drives every call; every error on
// the way must be free of secrets, and at least one must occur.
func sweep(t *testing.T, rawURL string) {
	t.Helper()
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		checkNoSecret(t, "Open", err)
		return
	}
	defer func() { checkNoSecret(t, "Close", c.Close()) }()
	ctx := context.Background()
	_, getErr := c.Get(ctx, "example.com")
	checkNoSecret(t, "Get", getErr)
	putErr := c.Put(ctx, "example.com", []byte("v"))
	checkNoSecret(t, "Put", putErr)
	delErr := c.Delete(ctx, "example.com")
	checkNoSecret(t, "Delete", delErr)
	if getErr == nil && putErr == nil && delErr == nil {
		t.Errorf("every call succeeded on %s; the case tests nothing", redacted(rawURL))
	}
}

func redacted(rawURL string) string {
	for _, s := range secretForms() {
		rawURL = strings.ReplaceAll(rawURL, s, "xxxxx")
	}
	return rawURL
}

// TestSecretsNeverInErrors sweeps the error paths that carry a URL or
// credentials: refused URLs, unreachable servers and servers that refuse the
// credentials, for every backend.
func TestSecretsNeverInErrors(t *testing.T) {
	pw := url.PathEscape(secretPassword)
	closed := func(t *testing.T) string { return testenv.ClosedAddr(t) }
	for _, tc := range []struct {
		name string
		env  map[string]string
		url  func(t *testing.T) string
	}{
		// Open refuses the URL.
		{"redis/bad-param", nil, func(*testing.T) string { return "redis://:" + pw + "@h:6379/0?bogus=" + pw }},
		{"redis/bad-db", nil, func(*testing.T) string { return "redis://u:" + pw + "@h:6379/x" }},
		{"redis+sentinel/no-master", nil, func(*testing.T) string {
			return "redis+sentinel://:" + pw + "@h:26379?password=" + pw
		}},
		{"postgres/bad-param", nil, func(*testing.T) string { return "postgres://u:" + pw + "@h/db?bogus=1" }},
		{"postgres/bad-sslmode", nil, func(*testing.T) string { return "postgres://u:" + pw + "@h/db?sslmode=" + pw }},
		{"postgres/bad-port", nil, func(*testing.T) string { return "postgres://u:" + pw + "@h:99999/db" }},
		{"mysql/bad-param", nil, func(*testing.T) string { return "mysql://u:" + pw + "@h/db?bogus=1" }},
		{"mysql/bad-tls", nil, func(*testing.T) string { return "mysql://u:" + pw + "@h/db?tls=" + pw }},
		{"s3/userinfo", nil, func(*testing.T) string { return "s3://" + secretAccess + ":" + pw + "@bucket/p" }},
		{"s3/endpoint-userinfo", nil, func(*testing.T) string {
			return "s3://bucket/p?endpoint=" + url.QueryEscape("http://"+secretAccess+":"+secretPassword+"@h:9000")
		}},
		{"dynamodb/userinfo", nil, func(*testing.T) string { return "dynamodb://" + secretAccess + ":" + pw + "@table/p" }},
		{"dynamodb/endpoint-userinfo", nil, func(*testing.T) string {
			return "dynamodb://table/p?endpoint=" + url.QueryEscape("http://"+secretAccess+":"+secretPassword+"@h:8000")
		}},
		{"azblob/key-param", nil, func(*testing.T) string {
			return "azblob://c/p?account=a&account_key=" + url.QueryEscape(secretAccountKey)
		}},
		{"azblob/sas-param", nil, func(*testing.T) string { return "azblob://c/p?account=a&sv=2024&" + secretSAS }},
		{"encrypt/literal-key", nil, func(*testing.T) string {
			return "mem://?encryption_key=" + url.QueryEscape(secretAccountKey)
		}},
		// The server cannot be reached.
		{"redis/unreachable", nil, func(t *testing.T) string { return "redis://:" + pw + "@" + closed(t) + "/0?timeout=2s" }},
		{"postgres/unreachable", nil, func(t *testing.T) string {
			return "postgres://u:" + pw + "@" + closed(t) + "/db?sslmode=disable&timeout=2s"
		}},
		{"mysql/unreachable", nil, func(t *testing.T) string { return "mysql://u:" + pw + "@" + closed(t) + "/db?timeout=2s" }},
		{"s3/unreachable", map[string]string{"AWS_ACCESS_KEY_ID": secretAccess, "AWS_SECRET_ACCESS_KEY": secretPassword},
			func(t *testing.T) string {
				return "s3://bucket/p?use_path_style=true&timeout=2s&endpoint=http://" + closed(t)
			}},
		{"dynamodb/unreachable", map[string]string{"AWS_ACCESS_KEY_ID": secretAccess, "AWS_SECRET_ACCESS_KEY": secretPassword},
			func(t *testing.T) string { return "dynamodb://table/p?timeout=2s&endpoint=http://" + closed(t) }},
		{"azblob/unreachable-key", map[string]string{"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": secretAccountKey},
			func(t *testing.T) string {
				return "azblob://c/p?timeout=2s&endpoint=http://" + closed(t) + "/acct"
			}},
		{"azblob/unreachable-sas", map[string]string{"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": "",
			"AZURE_STORAGE_SAS_TOKEN": "sv=2024-01-01&ss=b&srt=sco&sp=rwd&" + secretSAS},
			func(t *testing.T) string {
				return "azblob://c/p?timeout=2s&endpoint=http://" + closed(t) + "/acct"
			}},
		// The server refuses the credentials.
		{"redis/wrong-password", nil, func(t *testing.T) string {
			srv, _ := testenv.Redis(t)
			srv.Exec(t, "redis-cli", "-p", srv.Port(0), "CONFIG", "SET", "requirepass", "the-right-one")
			return "redis://:" + pw + "@" + srv.Addr(0) + "/0"
		}},
		{"postgres/wrong-password", nil, func(t *testing.T) string {
			srv, _ := testenv.Postgres(t)
			return testenv.PostgresUserURL(srv, testenv.PostgresUser, secretPassword)
		}},
		{"mariadb/wrong-password", nil, func(t *testing.T) string {
			srv, _ := testenv.MariaDB(t)
			return testenv.MariaDBUserURL(srv, testenv.MariaDBUser, secretPassword)
		}},
		{"s3/wrong-secret", map[string]string{"AWS_ACCESS_KEY_ID": testenv.MinIOUser, "AWS_SECRET_ACCESS_KEY": secretPassword},
			func(t *testing.T) string {
				srv, endpoint := testenv.MinIO(t)
				srv.Exec(t, "mc", "mb", "local/certs")
				return "s3://certs/p?use_path_style=true&endpoint=" + endpoint
			}},
		{"azblob/wrong-key", map[string]string{"AZURE_STORAGE_ACCOUNT": testenv.AzuriteDevAccount.Name, "AZURE_STORAGE_KEY": secretAccountKey},
			func(t *testing.T) string {
				_, endpoint := testenv.Azurite(t)
				return "azblob://certs/p?endpoint=" + endpoint
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			sweep(t, tc.url(t))
		})
	}
}
