package s3

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestChecksumsMatch pins each algorithm to its standard check value (the
// checksum of "123456789"), so that a wrong table or polynomial cannot pass
// for a match.
func TestChecksumsMatch(t *testing.T) {
	data := []byte("123456789")
	b64 := func(b ...byte) string { return base64.StdEncoding.EncodeToString(b) }
	for _, tc := range []struct {
		header, value string
	}{
		{"X-Amz-Checksum-Crc32", b64(0xcb, 0xf4, 0x39, 0x26)},
		{"X-Amz-Checksum-Crc32c", b64(0xe3, 0x06, 0x92, 0x83)},
		{"X-Amz-Checksum-Crc64nvme", b64(0xae, 0x8b, 0x14, 0x86, 0x0a, 0x79, 0x98, 0x88)},
		{"X-Amz-Checksum-Sha1", b64(0xf7, 0xc3, 0xbc, 0x1d, 0x80, 0x8e, 0x04, 0x73, 0x2a, 0xdf, 0x67, 0x99, 0x65, 0xcc, 0xc3, 0x4c, 0xa7, 0xae, 0x34, 0x41)},
		{"X-Amz-Checksum-Sha256", "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU="},
	} {
		h := http.Header{}
		h.Set(tc.header, tc.value)
		if !checksumsMatch(h, data) {
			t.Errorf("%s: %q does not match %q", tc.header, h.Get(tc.header), data)
		}
		if checksumsMatch(h, []byte("123456788")) {
			t.Errorf("%s: other data matches too", tc.header)
		}
	}
	// A multipart upload's composite checksum covers parts: skipped.
	h := http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA==-3"}}
	if !checksumsMatch(h, data) {
		t.Error("a composite checksum was checked against the whole object")
	}
	if !checksumsMatch(http.Header{}, data) {
		t.Error("no checksum: want a match (nothing to check)")
	}
}

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a</Key></Error>`, "NoSuchKey"},
		{`<Error><Code>NoSuchBucket</Code><Message>&lt;Code&gt;NoSuchKey&lt;/Code&gt;</Message></Error>`, "NoSuchBucket"},
		{`<Error><Code> NoSuchKey </Code></Error>`, "NoSuchKey"},
		{`<Error><Code>NoSuchKey`, ""},
		{`not found`, ""},
		{``, ""},
	} {
		if got := errorCode(strings.NewReader(tc.body)); got != tc.want {
			t.Errorf("errorCode(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// sdkRecorder records the requests a client sends and answers none.
type sdkRecorder struct{ reqs []*http.Request }

func (r *sdkRecorder) Do(req *http.Request) (*http.Response, error) {
	r.reqs = append(r.reqs, req)
	return nil, errors.New("recorded, not sent")
}

// TestFastGetMatchesSDKRequest: for each way of addressing a bucket, the
// fast path's request goes to the URL the SDK's GetObject goes to, and is
// signed for the same region and service. Nothing is sent.
func TestFastGetMatchesSDKRequest(t *testing.T) {
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}, nil
	})
	for _, tc := range []struct {
		name, region, bucket string
		opt                  func(o *s3.Options)
	}{
		{"virtual host, us-east-1", "us-east-1", "my-bucket", nil},
		{"virtual host", "eu-west-1", "my-bucket", nil},
		{"path style", "eu-west-1", "my-bucket", func(o *s3.Options) { o.UsePathStyle = true }},
		{"dotted bucket", "eu-west-1", "my.bucket.example", nil},
		{"dual-stack", "eu-west-1", "my-bucket", func(o *s3.Options) {
			o.EndpointOptions.UseDualStackEndpoint = aws.DualStackEndpointStateEnabled
		}},
		{"FIPS", "us-east-1", "my-bucket", func(o *s3.Options) {
			o.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
		}},
		{"accelerate", "eu-west-1", "my-bucket", func(o *s3.Options) { o.UseAccelerate = true }},
		{"endpoint, path style", "us-east-1", "certs", func(o *s3.Options) {
			o.BaseEndpoint = aws.String("http://127.0.0.1:9000")
			o.UsePathStyle = true
		}},
		{"endpoint with a path, virtual host", "auto", "certs", func(o *s3.Options) {
			o.BaseEndpoint = aws.String("https://storage.example/s3")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &sdkRecorder{}
			client := s3.New(s3.Options{Region: tc.region, Credentials: creds, HTTPClient: rec, Retryer: aws.NopRetryer{}}, func(o *s3.Options) {
				if tc.opt != nil {
					tc.opt(o)
				}
			})
			d, err := newDriver(client, tc.bucket, Options{Prefix: "certs"})
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"example.com", "key with spaces/ünï+code"} {
				rec.reqs = nil
				if _, err := d.Get(context.Background(), key); err == nil {
					t.Fatal("Get succeeded on a client that sends nothing")
				}
				if d.fast == nil {
					t.Fatal("no fast path for this client")
				}
				if len(rec.reqs) != 2 || rec.reqs[0].Header.Get("Amz-Sdk-Invocation-Id") != "" || rec.reqs[1].Header.Get("Amz-Sdk-Invocation-Id") == "" {
					t.Fatalf("%d requests; want the fast path's, then the SDK's", len(rec.reqs))
				}
				fast, sdk := rec.reqs[0], rec.reqs[1]
				where := func(r *http.Request) string { return r.URL.Scheme + "://" + r.URL.Host + r.URL.EscapedPath() }
				if where(fast) != where(sdk) {
					t.Errorf("Get(%q): fast path to %s, SDK to %s", key, where(fast), where(sdk))
				}
				if f, s := scope(fast), scope(sdk); f == "" || f != s {
					t.Errorf("Get(%q): signed for %q, the SDK for %q", key, f, s)
				}
			}
		})
	}
}

// scope returns the credential scope of a SigV4 Authorization header
// without its date: access key, region, service.
func scope(r *http.Request) string {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[0] + "/" + parts[2] + "/" + parts[3]
}
