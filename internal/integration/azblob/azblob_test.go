package azblob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/certcache/certcache"
	ccazblob "github.com/certcache/certcache/azblob"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

var dev = testenv.AzuriteDevAccount

// useKey points the package's credential look-up at account for the rest
// of t: the way a deployment sets AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY.
func useKey(t testing.TB, a testenv.AzuriteAccount) {
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	t.Setenv("AZURE_STORAGE_SAS_TOKEN", "")
	t.Setenv("AZURE_STORAGE_ACCOUNT", a.Name)
	t.Setenv("AZURE_STORAGE_KEY", a.Key)
}

// noCredentials clears every storage credential variable for the rest of t.
func noCredentials(t testing.TB) {
	for _, v := range []string{"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"} {
		t.Setenv(v, "")
	}
}

func open(t testing.TB, rawURL string) certcache.Cache {
	t.Helper()
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("Open(%q): %v", rawURL, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawClient is an SDK client on endpoint with account's key.
func rawClient(t testing.TB, endpoint string, a testenv.AzuriteAccount) *azblob.Client {
	t.Helper()
	cred, err := azblob.NewSharedKeyCredential(a.Name, a.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := azblob.NewClientWithSharedKeyCredential(endpoint, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func createContainer(t testing.TB, c *azblob.Client, name string) {
	t.Helper()
	if _, err := c.CreateContainer(context.Background(), name, nil); err != nil {
		t.Fatalf("CreateContainer(%s): %v", name, err)
	}
}

func randomKey() string {
	b := make([]byte, 64)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func TestConformance(t *testing.T) {
	_, ep := testenv.Azurite(t)
	useKey(t, dev)
	// The container is created by the first call that needs it.
	nsURL := func(ns string) string {
		return "azblob://certs/" + ns + "?create_container=true&timeout=5s&endpoint=" + ep
	}
	drivertest.Run(t, drivertest.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), nsURL(ns))
		},
		URL: nsURL,
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			return certcache.Open(context.Background(), "azblob://certs?timeout=2s&endpoint=http://"+testenv.ClosedAddr(t)+"/"+dev.Name)
		},
		BrokenIsUnavailable: true,
		Outage: func(t testing.TB) (certcache.Cache, func(), func()) {
			srv, ep := testenv.Azurite(t)
			createContainer(t, rawClient(t, ep, dev), "outage")
			c := open(t, "azblob://outage/p?timeout=2s&endpoint="+ep)
			return c, func() { srv.Stop(t) }, func() { srv.Restart(t) }
		},
		Timeout: 5 * time.Second,
		Secrets: []string{dev.Key},
	})
}

// TestCustomAccount runs the suite on an account other than the
// well-known one, as AZURITE_ACCOUNTS defines it, with keys at the root of
// a container per namespace.
func TestCustomAccount(t *testing.T) {
	acct := testenv.AzuriteAccount{Name: "certcachetest", Key: randomKey()}
	srv, _ := testenv.Azurite(t, acct)
	useKey(t, acct)
	drivertest.Run(t, drivertest.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			// A container per namespace, keys at its root; the service
			// URL is built from account, domain and protocol as for an
			// emulator: http://DOMAIN/ACCOUNT.
			return certcache.Open(context.Background(), "azblob://"+ns+"?create_container=true&account="+acct.Name+
				"&domain="+srv.Addr(0)+"&protocol=http")
		},
		Secrets: []string{acct.Key},
	})
}

// TestMissingContainer: without create_container, a missing container is an
// error on every call, never a miss; with it, the first call creates it.
func TestMissingContainer(t *testing.T) {
	_, ep := testenv.Azurite(t)
	useKey(t, dev)
	ctx := context.Background()
	c := open(t, "azblob://nosuchcontainer?endpoint="+ep)
	_, err := c.Get(ctx, "example.com+token")
	checkNotMiss(t, "Get", err, dev.Key)
	if !bloberror.HasCode(err, bloberror.ContainerNotFound) || !strings.Contains(err.Error(), "create_container=true") {
		t.Errorf("Get error %q: want ContainerNotFound with a hint", err)
	}
	checkNotMiss(t, "Put", c.Put(ctx, "example.com+token", []byte("v")), dev.Key)
	checkNotMiss(t, "Delete", c.Delete(ctx, "example.com+token"), dev.Key)

	created := open(t, "azblob://nosuchcontainer?create_container=true&endpoint="+ep)
	if _, err := created.Get(ctx, "example.com+token"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("Get with create_container = %v, want a miss in the new container", err)
	}
	if err := created.Put(ctx, "example.com+token", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "example.com+token"); err != nil || string(got) != "v" {
		t.Errorf("Get through the first cache = %q, %v", got, err)
	}
}

// TestWrongKey: a refused key is an error, never a miss, and never shown.
func TestWrongKey(t *testing.T) {
	acct := testenv.AzuriteAccount{Name: "certcachetest", Key: randomKey()}
	_, ep := testenv.Azurite(t, acct)
	createContainer(t, rawClient(t, ep, acct), "certs")
	wrong := testenv.AzuriteAccount{Name: acct.Name, Key: randomKey()}
	useKey(t, wrong)
	ctx := context.Background()
	c := open(t, "azblob://certs?endpoint="+ep)
	_, err := c.Get(ctx, "example.com")
	checkNotMiss(t, "Get", err, wrong.Key)
	if !bloberror.HasCode(err, bloberror.AuthenticationFailed, bloberror.AuthorizationFailure) {
		t.Errorf("Get with a wrong key = %v; want AuthenticationFailed or AuthorizationFailure", err)
	}
	if !strings.HasPrefix(err.Error(), `certcache/azblob: get "example.com": azure: `) || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q: want one line naming backend, operation and key", err)
	}
	checkNotMiss(t, "Put", c.Put(ctx, "example.com", []byte("v")), wrong.Key)
	checkNotMiss(t, "Delete", c.Delete(ctx, "example.com"), wrong.Key)

	// The well-known account's key on a server that does not know it.
	useKey(t, dev)
	c = open(t, "azblob://certs?endpoint="+strings.Replace(ep, acct.Name, dev.Name, 1))
	_, err = c.Get(ctx, "example.com")
	checkNotMiss(t, "Get with an unknown account", err, dev.Key)
}

func checkNotMiss(t *testing.T, op string, err error, secret string) {
	t.Helper()
	if err == nil || errors.Is(err, autocert.ErrCacheMiss) {
		t.Errorf("%s = %v, want a non-miss error", op, err)
		return
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("%s error reveals the key: %v", op, err)
	}
}

// TestConnectionString: AZURE_STORAGE_CONNECTION_STRING comes first and
// names the account and its endpoint.
func TestConnectionString(t *testing.T) {
	_, ep := testenv.Azurite(t)
	noCredentials(t)
	t.Setenv("AZURE_STORAGE_KEY", randomKey()) // ignored: the connection string comes first
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "DefaultEndpointsProtocol=http;AccountName="+dev.Name+";AccountKey="+dev.Key+";BlobEndpoint="+ep+";")
	roundTrip(t, open(t, "azblob://certs/cs?create_container=true"))
	_, err := certcache.Open(context.Background(), "azblob://certs?account="+dev.Name)
	if !errors.Is(err, certcache.ErrInvalidURL) || !strings.Contains(err.Error(), "leave account out of the URL") {
		t.Errorf("Open with a connection string and account= : %v", err)
	}
}

// TestSASToken: AZURE_STORAGE_SAS_TOKEN signs every request; a wrong one
// is refused, and neither shows up in errors, also when the service is
// down and net/http quotes the request URL.
func TestSASToken(t *testing.T) {
	_, ep := testenv.Azurite(t)
	createContainer(t, rawClient(t, ep, dev), "certs")
	cred, err := azblob.NewSharedKeyCredential(dev.Name, dev.Key)
	if err != nil {
		t.Fatal(err)
	}
	perms := sas.ContainerPermissions{Read: true, Write: true, Create: true, Delete: true}
	q, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    time.Now().Add(time.Hour),
		ContainerName: "certs",
		Permissions:   perms.String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	noCredentials(t)
	t.Setenv("AZURE_STORAGE_SAS_TOKEN", q.Encode())
	roundTrip(t, open(t, "azblob://certs/sas?endpoint="+ep))

	ctx := context.Background()
	down := open(t, "azblob://certs?timeout=2s&endpoint=http://"+testenv.ClosedAddr(t)+"/"+dev.Name)
	_, err = down.Get(ctx, "example.com")
	checkNotMiss(t, "Get with the service down", err, q.Signature())
	if !errors.Is(err, certcache.ErrUnavailable) {
		t.Errorf("Get with the service down = %v, want ErrUnavailable", err)
	}

	forged := strings.Replace(q.Encode(), "sig=", "sig=AAAA", 1)
	t.Setenv("AZURE_STORAGE_SAS_TOKEN", forged)
	c := open(t, "azblob://certs?endpoint="+ep)
	_, err = c.Get(ctx, "example.com")
	checkNotMiss(t, "Get with a forged SAS", err, "AAAA"+q.Signature())
}

// TestDefaultCredential: with no storage variable set, Open falls back to
// DefaultAzureCredential without contacting anything; the SDK refuses to
// send a token over plain HTTP before asking for one, so the call fails
// here without reaching for an identity endpoint.
func TestDefaultCredential(t *testing.T) {
	noCredentials(t)
	c := open(t, "azblob://certs?timeout=2s&endpoint=http://"+testenv.ClosedAddr(t)+"/"+dev.Name)
	_, err := c.Get(context.Background(), "example.com")
	if err == nil || errors.Is(err, autocert.ErrCacheMiss) || !strings.Contains(err.Error(), "https") {
		t.Errorf("Get = %v, want the SDK's refusal to send a token over http", err)
	}
	// Without an endpoint the account is needed to name the service.
	_, err = certcache.Open(context.Background(), "azblob://certs")
	if !errors.Is(err, certcache.ErrInvalidURL) || !strings.Contains(err.Error(), "AZURE_STORAGE_ACCOUNT") {
		t.Errorf("Open without an account: %v", err)
	}
}

func roundTrip(t *testing.T, c certcache.Cache) {
	t.Helper()
	ctx := context.Background()
	v := drivertest.CertValue()
	if err := c.Put(ctx, "example.com", v); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got, err := c.Get(ctx, "example.com"); err != nil || !bytes.Equal(got, v) {
		t.Fatalf("Get = %d bytes, %v", len(got), err)
	}
	if err := c.Delete(ctx, "example.com"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.Get(ctx, "example.com"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("Get after Delete = %v, want a miss", err)
	}
}

// TestBlobNames shows where keys land: autocert's keys as they are under
// the prefix, anything else percent-encoded, a final dot too.
func TestBlobNames(t *testing.T) {
	_, ep := testenv.Azurite(t)
	useKey(t, dev)
	raw := rawClient(t, ep, dev)
	createContainer(t, raw, "names")
	c := open(t, "azblob://names/prod/myapp?endpoint="+ep)
	ctx := context.Background()
	want := map[string]string{
		"example.com+rsa":      "prod/myapp/example.com+rsa",
		"acme_account+key":     "prod/myapp/acme_account+key",
		"../x":                 "prod/myapp/%2E.%2Fx",
		"a/b":                  "prod/myapp/a%2Fb",
		"a.":                   "prod/myapp/a%2E",
		"..":                   "prod/myapp/%2E%2E",
		"bücher.example":       "prod/myapp/b%C3%BCcher.example",
		strings.Repeat("k", 5): "prod/myapp/kkkkk",
	}
	for key := range want {
		if err := c.Put(ctx, key, []byte(key)); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("x", certcache.MaxKeyLen)
	if err := c.Put(ctx, long, []byte("long")); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	pager := raw.NewListBlobsFlatPager("names", nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			got[*b.Name] = true
			if len(*b.Name) > 1024 {
				t.Errorf("blob name of %d bytes", len(*b.Name))
			}
		}
	}
	for key, name := range want {
		if !got[name] {
			t.Errorf("key %q: no blob %q (have %v)", key, name, got)
		}
	}
	if len(got) != len(want)+1 {
		t.Errorf("%d blobs for %d keys: %v", len(got), len(want)+1, got)
	}
}

// TestNewWithClient covers the door for users who hold a client.
func TestNewWithClient(t *testing.T) {
	_, ep := testenv.Azurite(t)
	client := rawClient(t, ep, dev)
	ctx := context.Background()
	c, err := ccazblob.New(client, "mine", &ccazblob.Options{Prefix: "app", CreateContainer: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "example.com", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	resp, err := client.DownloadStream(ctx, "mine", "app/example.com", nil)
	if err != nil {
		t.Fatalf("raw download of app/example.com: %v", err)
	}
	resp.Body.Close()
	c.Close()
	if _, err := client.DownloadStream(ctx, "mine", "app/example.com", nil); err != nil {
		t.Errorf("client unusable after cache Close: %v", err)
	}
	for _, tc := range []struct {
		client    *azblob.Client
		container string
		o         *ccazblob.Options
		want      string
	}{
		{nil, "mine", nil, "nil client"},
		{client, "Mine", nil, "lowercase"},
		{client, "", nil, "no container"},
		{client, "mine", &ccazblob.Options{Prefix: "a/../b"}, "prefix"},
		{client, "mine", &ccazblob.Options{Prefix: strings.Repeat("p", 300)}, "limit 256"},
	} {
		if _, err := ccazblob.New(tc.client, tc.container, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %+v) = %v, want an error containing %q", tc.container, tc.o, err, tc.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	useKey(t, dev)
	drivertest.RunOpenErrors(t, []drivertest.OpenCase{
		{"azblob://certs?acount=x", "unknown parameter acount"},
		{"azblob://certs?max_conns=0", "max_conns=0: want at least 1"},
		{"azblob://certs?max_conns=many", `max_conns="many"`},
		{"azblob://certs?bogus=1&other=2", "unknown parameter bogus, other"},
		{"azblob://certs?prefix=myapp", "azblob://CONTAINER/PREFIX"},
		{"azblob://certs?account=a1b2c&account=a1b2c", "account given 2 times"},
		{"azblob://certs?account=x&storage_account=x", "not both"},
		{"azblob://certs?account=My_Account", "3 to 24 lowercase"},
		{"azblob://certs?create_container=yes", "create_container"},
		{"azblob://certs?protocol=ftp", "protocol"},
		{"azblob://certs?domain=evil.example/x", "domain"},
		{"azblob://certs?endpoint=ftp://h", "http or https"},
		{"azblob://certs?endpoint=http://h/a&domain=d", "leave out domain"},
		{"azblob://certs?key=" + dev.Key, "parameter key looks like a secret"},
		{"azblob://certs?account_key=" + dev.Key, "AZURE_STORAGE_KEY"},
		{"azblob://certs?sas_token=" + dev.Key, "looks like a secret"},
		{"azblob://certs?connection_string=AccountKey=" + dev.Key, "AZURE_STORAGE_CONNECTION_STRING"},
		{"azblob://certs?sv=2020-01-01&sp=r&sig=" + dev.Key, "parameter sig, sp, sv looks like a SAS token"},
		{"azblob://certs?endpoint=http://h/a%3Fsig%3D" + dev.Key, "no user, query or fragment"},
		{"azblob://acct:pw-secret@certs", "no user or password"},
		{"azblob:///prefix", "no container"},
		{"azblob://Certs", "lowercase letters"},
		{"azblob://ab", "3 to 63"},
		{"azblob://a--b", "single hyphens"},
		{"azblob://certs/a/../b", "segment"},
		{"azblob://certs/a//b", "empty segment"},
		{"azblob://certs/a./b", "ending in a dot"},
		{"azblob://certs/a%20b", "character"},
		{"azblob://certs?account=other1", "AZURE_STORAGE_ACCOUNT"},
		{"azblob:certs", "want azblob://"},
	}, dev.Key, dev.Key[:20])
}

// TestOpenAccepts: URLs that open (Open contacts nothing, so no server).
func TestOpenAccepts(t *testing.T) {
	useKey(t, dev)
	drivertest.RunOpenAccepts(t, []string{
		"azblob://certs",
		"azblob://certs?max_conns=4",
		"azblob://certs/",
		"azblob://certs/prod/myapp/?create_container=true",
		"azblob://certs?account=" + dev.Name,
		"azblob://certs?storage_account=" + dev.Name + "&domain=blob.core.chinacloudapi.cn",
		"azblob://certs?domain=127.0.0.1:10000&protocol=http",
		"azblob://certs?endpoint=http://127.0.0.1:10000/devstoreaccount1/",
		"azblob://$root?timeout=3s",
	})
}

func BenchmarkAzblob(b *testing.B) {
	_, ep := testenv.Azurite(b)
	useKey(b, dev)
	c := open(b, "azblob://bench/p?create_container=true&endpoint="+ep)
	b.Run("certcache", func(b *testing.B) { drivertest.RunBenchmarks(b, c) })

	// The raw SDK calls doing the same work on the same server.
	client := rawClient(b, ep, dev)
	ctx := context.Background()
	v := drivertest.CertValue()
	if _, err := client.UploadBuffer(ctx, "bench", "raw/bench.example", v, nil); err != nil {
		b.Fatal(err)
	}
	b.Run("raw", func(b *testing.B) {
		b.Run("GetHit", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				resp, err := client.DownloadStream(ctx, "bench", "raw/bench.example", nil)
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, *resp.ContentLength)
				_, err = io.ReadFull(resp.Body, buf)
				resp.Body.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("GetMiss", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, err := client.DownloadStream(ctx, "bench", "raw/missing.example", nil)
				if !bloberror.HasCode(err, bloberror.BlobNotFound) {
					b.Fatal(err)
				}
			}
		})
		b.Run("Put", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				if _, err := client.UploadBuffer(ctx, "bench", "raw/bench-put.example", v, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
