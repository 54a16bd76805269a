package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	ccs3 "github.com/certcache/certcache/s3"
	"golang.org/x/crypto/acme/autocert"
)

// TestMain isolates the tests from the machine's AWS configuration: no
// shared files, no profile, no region, and never the instance metadata
// service (a test must send nothing beyond loopback). Tests hand credentials
// to the SDK through the environment, as a deployment would.
func TestMain(m *testing.M) {
	cleanup := testenv.IsolateAWS()
	code := m.Run()
	cleanup()
	os.Exit(code)
}

const bucket = "certcache-test"

// minio starts a MinIO server with an empty bucket, created with the SDK,
// and gives the test the root credentials through the environment. It
// returns the server and its endpoint.
func minio(t testing.TB, start func(testing.TB) (*testenv.Server, string)) (*testenv.Server, string) {
	t.Helper()
	srv, endpoint := start(t)
	useCredentials(t, testenv.MinIOUser, testenv.MinIOPassword)
	client := rawClient(t, endpoint)
	if _, err := client.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("creating bucket %s: %v", bucket, err)
	}
	return srv, endpoint
}

func useCredentials(t testing.TB, id, secret string) {
	t.Setenv("AWS_ACCESS_KEY_ID", id)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
}

// rawClient is an SDK client on endpoint with the environment's credentials,
// for checking what the cache stored and for the raw benchmarks.
func rawClient(t testing.TB, endpoint string) *awss3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

// cacheURL is the URL of prefix in the test bucket on endpoint.
func cacheURL(endpoint, prefix, extra string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&use_path_style=true%s", bucket, prefix, endpoint, extra)
}

func open(t testing.TB, rawURL string) certcache.Cache {
	t.Helper()
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The store's own behaviour, beneath issuance coordination (which takes
	// a value autocert would refuse for a miss): the values here are no
	// certificates. Coordination has its own tests.
	return certcache.Uncoordinated(c)
}

func TestConformance(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	drivertest.Run(t, drivertest.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), cacheURL(endpoint, ns, "&timeout=5s"))
		},
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			return certcache.Open(context.Background(), cacheURL("http://"+testenv.ClosedAddr(t), "broken", "&timeout=2s"))
		},
		BrokenIsUnavailable: true,
		Outage: testenv.OutageOn(func(t testing.TB) (*testenv.Server, string) { return minio(t, testenv.MinIO) },
			func(endpoint string) string { return cacheURL(endpoint, "outage", "&timeout=2s") }),
		Timeout: 5 * time.Second,
		// No URL: a contender process would start before this package
		// registers s3:// (conformance's init runs first), and the server
		// arbitrates between the separate clients of one process as it does
		// between processes.
		Secrets: []string{testenv.MinIOPassword},
	})
}

// mustFail checks that err is a non-miss error of the form
// `certcache/s3: OP "example.com": …` that mentions want.
func mustFail(t *testing.T, op string, err error, want string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s succeeded; want an error", op)
		return
	case errors.Is(err, autocert.ErrCacheMiss):
		t.Errorf("%s = %v: a failure reported as a miss", op, err)
	}
	t.Logf("%s: %v", op, err)
	if prefix := fmt.Sprintf("certcache/s3: %s %q: ", op, "example.com"); !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("%s error %q does not start with %q", op, err, prefix)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s error %q does not mention %s", op, err, want)
	}
	if strings.Contains(err.Error(), testenv.MinIOPassword) {
		t.Errorf("%s error reveals the password: %v", op, err)
	}
}

// TestMissingBucket: a bucket that does not exist is an error on every
// call, never an empty cache.
func TestMissingBucket(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	c := open(t, "s3://no-such-bucket/certs?use_path_style=true&endpoint="+endpoint)
	ctx := context.Background()
	_, err := c.Get(ctx, "example.com")
	mustFail(t, "get", err, `bucket "no-such-bucket": operation error S3: GetObject`)
	mustFail(t, "get", err, "NoSuchBucket")
	mustFail(t, "put", c.Put(ctx, "example.com", []byte("v")), "NoSuchBucket")
	mustFail(t, "delete", c.Delete(ctx, "example.com"), "NoSuchBucket")
}

// TestDenied: requests the server refuses are errors, never misses, for
// users whose policy lacks s3:ListBucket (S3 then answers AccessDenied for a
// missing object) or s3:GetObject.
func TestDenied(t *testing.T) {
	srv, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	root := open(t, cacheURL(endpoint, "certs", ""))
	if err := root.Put(ctx, "stored.example", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	objects := fmt.Sprintf(`"arn:aws:s3:::%s/certs/*"`, bucket)
	policies := map[string]string{
		"no-list": fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:DeleteObject"],"Resource":[%s]}]}`, objects),
		"no-get": fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["s3:PutObject","s3:DeleteObject"],"Resource":[%s]},
			{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::%s"]}]}`, objects, bucket),
	}
	for name, policy := range policies {
		srv.Exec(t, "sh", "-c", fmt.Sprintf("printf '%%s' '%s' > /tmp/%s.json", policy, name))
		srv.Exec(t, "mc", "admin", "policy", "create", "local", name, "/tmp/"+name+".json")
		srv.Exec(t, "mc", "admin", "user", "add", "local", name+"-user", name+"-password")
		srv.Exec(t, "mc", "admin", "policy", "attach", "local", name, "--user", name+"-user")
	}

	t.Run("NoListBucket", func(t *testing.T) {
		useCredentials(t, "no-list-user", "no-list-password")
		c := open(t, cacheURL(endpoint, "certs", ""))
		if got, err := c.Get(ctx, "stored.example"); err != nil || string(got) != "cert" {
			t.Fatalf("Get of a stored key = %q, %v", got, err)
		}
		if err := c.Put(ctx, "example.org", []byte("v")); err != nil {
			t.Fatalf("Put: %v", err)
		}
		// Unlike AWS, MinIO tells an IAM user that an object is missing
		// without s3:ListBucket: a true miss, and a miss it stays.
		if _, err := c.Get(ctx, "example.com"); err != autocert.ErrCacheMiss { //nolint:errorlint
			t.Errorf("Get of a missing key on MinIO without s3:ListBucket = %v; want the miss MinIO reports", err)
		}
	})
	t.Run("NoGetObject", func(t *testing.T) {
		useCredentials(t, "no-get-user", "no-get-password")
		c := open(t, cacheURL(endpoint, "certs", ""))
		// A missing key is AccessDenied here, as it is on AWS without
		// s3:ListBucket: an error with a hint, never a miss.
		_, err := c.Get(ctx, "example.com")
		mustFail(t, "get", err, "AccessDenied")
		mustFail(t, "get", err, "s3:ListBucket")
		if err := c.Put(ctx, "example.com", []byte("v")); err != nil {
			t.Fatalf("Put: %v", err)
		}
		_, err = c.Get(ctx, "example.com")
		mustFail(t, "get", err, "AccessDenied")
	})
	t.Run("OutsidePrefix", func(t *testing.T) {
		useCredentials(t, "no-list-user", "no-list-password")
		c := open(t, cacheURL(endpoint, "other", ""))
		_, err := c.Get(ctx, "example.com")
		mustFail(t, "get", err, "AccessDenied")
		mustFail(t, "put", c.Put(ctx, "example.com", []byte("v")), "AccessDenied")
		mustFail(t, "delete", c.Delete(ctx, "example.com"), "AccessDenied")
	})
	t.Run("WrongSecret", func(t *testing.T) {
		useCredentials(t, testenv.MinIOUser, "not-the-password")
		c := open(t, cacheURL(endpoint, "certs", ""))
		_, err := c.Get(ctx, "example.com")
		mustFail(t, "get", err, "SignatureDoesNotMatch")
	})
}

// TestObjectNames: keys become object names under the prefix, readable
// for autocert's keys, escaped otherwise, and never longer than a path
// segment may be.
func TestObjectNames(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	long := strings.Repeat("k", 300)
	for _, tc := range []struct {
		prefix string
		key    string
		want   string
	}{
		{"certs", "example.com+rsa", "certs/example.com+rsa"},
		{"certs/", "acme_account+key", "certs/acme_account+key"},
		{"a/b", "../x/y", "a/b/%2E.%2Fx%2Fy"},
		{"", "example.com", "example.com"},
		{"", ".hidden", "%2Ehidden"},
	} {
		c := open(t, cacheURL(endpoint, tc.prefix, ""))
		if err := c.Put(ctx, tc.key, []byte("v")); err != nil {
			t.Fatalf("Put(%q) under %q: %v", tc.key, tc.prefix, err)
		}
		if _, err := rawClient(t, endpoint).HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: &tc.want}); err != nil {
			t.Errorf("key %q under prefix %q: object %q: %v", tc.key, tc.prefix, tc.want, err)
		}
	}
	c := open(t, cacheURL(endpoint, "long", ""))
	if err := c.Put(ctx, long, []byte("v")); err != nil {
		t.Fatal(err)
	}
	out, err := rawClient(t, endpoint).ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("long/")})
	if err != nil || len(out.Contents) != 1 {
		t.Fatalf("listing long/: %v, %v", out, err)
	}
	if name := strings.TrimPrefix(*out.Contents[0].Key, "long/"); len(name) > 255 || !strings.Contains(name, "~") {
		t.Errorf("a 300-byte key is stored as %q (%d bytes); want a hashed name of at most 255", name, len(name))
	}
}

// TestChecksums: with the SDK's defaults, Put sends a CRC checksum and MinIO
// accepts and keeps it; request_checksum_calculation=when_required stops
// sending it, and both read back.
func TestChecksums(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	v := drivertest.CertValue()
	for _, tc := range []struct {
		param    string
		checksum bool
	}{{"", true}, {"&request_checksum_calculation=when_supported", true}, {"&request_checksum_calculation=when_required&response_checksum_validation=when_required", false}} {
		c := open(t, cacheURL(endpoint, "sums", tc.param))
		key := fmt.Sprintf("example%d.com", len(tc.param))
		if err := c.Put(ctx, key, v); err != nil {
			t.Fatalf("%s: Put: %v", tc.param, err)
		}
		if got, err := c.Get(ctx, key); err != nil || !bytes.Equal(got, v) {
			t.Fatalf("%s: Get = %d bytes, %v", tc.param, len(got), err)
		}
		head, err := rawClient(t, endpoint).HeadObject(ctx, &awss3.HeadObjectInput{
			Bucket: aws.String(bucket), Key: aws.String("sums/" + key), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatal(err)
		}
		if got := head.ChecksumCRC32 != nil || head.ChecksumCRC32C != nil || head.ChecksumCRC64NVME != nil; got != tc.checksum {
			t.Errorf("%q: stored object has a CRC checksum: %v, want %v", tc.param, got, tc.checksum)
		}
	}
}

// TestSSE: sse=AES256 and sse=aws:kms (with a key) store encrypted objects.
func TestSSE(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIOKMS)
	ctx := context.Background()
	for _, tc := range []struct {
		param string
		want  types.ServerSideEncryption
	}{
		{"&sse=AES256", types.ServerSideEncryptionAes256},
		{"&sse=aws:kms&sse_kms_key_id=" + testenv.MinIOKMSKey, types.ServerSideEncryptionAwsKms},
	} {
		c := open(t, cacheURL(endpoint, "sse", tc.param))
		key := strings.ReplaceAll(string(tc.want), ":", "-") + ".example"
		if err := c.Put(ctx, key, []byte("secret key")); err != nil {
			t.Fatalf("%s: Put: %v", tc.param, err)
		}
		if got, err := c.Get(ctx, key); err != nil || string(got) != "secret key" {
			t.Fatalf("%s: Get = %q, %v", tc.param, got, err)
		}
		head, err := rawClient(t, endpoint).HeadObject(ctx, &awss3.HeadObjectInput{
			Bucket: aws.String(bucket), Key: aws.String("sse/" + key)})
		if err != nil {
			t.Fatal(err)
		}
		if head.ServerSideEncryption != tc.want {
			t.Errorf("%s: object encryption %q, want %q", tc.param, head.ServerSideEncryption, tc.want)
		}
	}
	// A key the server does not know is a Put error.
	c := open(t, cacheURL(endpoint, "sse", "&sse=aws:kms&sse_kms_key_id=no-such-key"))
	if err := c.Put(ctx, "example.com", []byte("v")); err == nil {
		t.Error("Put with an unknown KMS key succeeded")
	}
}

// TestNewWithClient covers the door for users who hold a client: the cache
// uses its prefix and Close leaves the client usable.
func TestNewWithClient(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	client := rawClient(t, endpoint)
	ctx := context.Background()
	c, err := ccs3.New(client, bucket, &ccs3.Options{Prefix: "mine", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "example.com", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	out, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("mine/example.com")})
	if err != nil {
		t.Fatalf("client unusable after cache Close, or object not at mine/example.com: %v", err)
	}
	out.Body.Close()
	for _, tc := range []struct {
		bucket string
		o      *ccs3.Options
		want   string
	}{
		{"", nil, "no bucket"},
		{bucket, &ccs3.Options{SSE: "rot13"}, `sse="rot13"`},
		{bucket, &ccs3.Options{SSEKMSKeyID: "k"}, "needs sse=aws:kms"},
		{bucket, &ccs3.Options{Prefix: "a//b"}, "empty path segment"},
	} {
		if _, err := ccs3.New(client, tc.bucket, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %+v) = %v, want an error mentioning %q", tc.bucket, tc.o, err, tc.want)
		}
	}
	if _, err := ccs3.New(nil, bucket, nil); err == nil {
		t.Error("New(nil client) succeeded")
	}
}
