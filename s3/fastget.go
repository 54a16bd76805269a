package s3

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyauth "github.com/aws/smithy-go/auth"
	"github.com/aws/smithy-go/encoding/httpbinding"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/certcache/certcache/internal/readall"
)

// A Get is the call autocert makes on every handshake for a name it has
// not loaded, under its Manager-wide lock, and GetObject through the SDK
// costs about 500 allocations and, on a store next door, a third more time
// than the request itself: its middleware stack resolves the endpoint from
// the rules engine, picks an auth scheme, builds a user agent, sets up
// retries and checksum tracking on every call. fastGetter sends the same
// request the SDK would — a GET of the object's URL, signed with SigV4 by
// the client's own signer and credentials, with checksum mode on if the
// client validates response checksums — through the client's own HTTP
// client, with the endpoint resolved once by the client's own resolver.
//
// Only the plain answers are taken from it: 200 (the value, its checksum
// checked) and 404 NoSuchKey (a miss). Anything else — another status, a
// network error, a checksum mismatch, credentials that do not resolve —
// sends the Get through the SDK call instead, which retries and reports
// exactly as it always did; so the fast path changes how long a Get takes,
// never what it answers. A client it cannot honour exactly (middleware or
// interceptors of the user's own, request logging, a legacy endpoint
// resolver, an auth scheme other than SigV4 such as S3 Express) always
// takes the SDK call.
type fastGetter struct {
	base      string // the bucket's endpoint URL, path-style or virtual-host, no trailing slash
	http      s3.HTTPClient
	signer    s3.HTTPSignerV4
	creds     aws.CredentialsProvider // nil: anonymous, unsigned
	service   string                  // signing name
	region    string                  // signing region
	checksums bool                    // ask for and check response checksums
}

// emptySHA256 is the payload hash of a request without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// userAgent names the fast path's requests in server logs.
const userAgent = "certcache-s3 (aws-sdk-go-v2 signer)"

// newFastGetter returns the fast path for bucket on client, or nil if the
// client's configuration asks for something only the SDK's stack does.
func newFastGetter(ctx context.Context, client *s3.Client, bucket string) *fastGetter {
	o := client.Options()
	if len(o.APIOptions) > 0 || interceptors(o.Interceptors) || o.EndpointResolver != nil ||
		o.ClientLogMode != 0 || o.HTTPClient == nil || o.HTTPSignerV4 == nil || o.EndpointResolverV2 == nil {
		return nil
	}
	region := o.Region
	ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, s3.EndpointParameters{
		Bucket:                         &bucket,
		Region:                         &region,
		UseFIPS:                        aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack:                   aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
		Endpoint:                       o.BaseEndpoint,
		ForcePathStyle:                 aws.Bool(o.UsePathStyle),
		Accelerate:                     aws.Bool(o.UseAccelerate),
		DisableMultiRegionAccessPoints: aws.Bool(o.DisableMultiRegionAccessPoints),
		UseArnRegion:                   aws.Bool(o.UseARNRegion),
		DisableS3ExpressSessionAuth:    o.DisableS3ExpressSessionAuth,
	})
	if err != nil || ep.URI.RawQuery != "" || ep.URI.Fragment != "" || len(ep.Headers) > 0 {
		return nil
	}
	f := &fastGetter{
		http:      o.HTTPClient,
		signer:    o.HTTPSignerV4,
		service:   "s3",
		region:    region,
		checksums: o.ResponseChecksumValidation != aws.ResponseChecksumValidationWhenRequired,
	}
	if opts, ok := smithyauth.GetAuthOptions(&ep.Properties); ok && len(opts) > 0 {
		// The rules name the scheme "sigv4"; smithy's ID is also accepted.
		if id := opts[0].SchemeID; id != "sigv4" && id != smithyauth.SchemeIDSigV4 {
			return nil
		}
		if v, ok := smithyhttp.GetSigV4SigningName(&opts[0].SignerProperties); ok {
			f.service = v
		}
		if v, ok := smithyhttp.GetSigV4SigningRegion(&opts[0].SignerProperties); ok {
			f.region = v
		}
	}
	if o.Credentials != nil && !aws.IsCredentialsProvider(o.Credentials, aws.AnonymousCredentials{}) {
		f.creds = o.Credentials
	}
	f.base = strings.TrimSuffix(ep.URI.String(), "/")
	return f
}

// interceptors reports whether r holds any interceptor.
func interceptors(r smithyhttp.InterceptorRegistry) bool {
	return len(r.BeforeExecution)+len(r.BeforeSerialization)+len(r.AfterSerialization)+
		len(r.BeforeRetryLoop)+len(r.BeforeAttempt)+len(r.BeforeSigning)+len(r.AfterSigning)+
		len(r.BeforeTransmit)+len(r.AfterTransmit)+len(r.BeforeDeserialization)+
		len(r.AfterDeserialization)+len(r.AfterAttempt)+len(r.AfterExecution) > 0
}

// get reads object name: its value, or miss for a NoSuchKey. fallback says
// that the answer was not a plain one and the SDK call must be made
// instead. err is set only when the caller's context ended, which no
// second call could outrun. A node whose clock is off by more than S3's
// 15 minutes is refused (RequestTimeTooSkewed) and falls back on every
// Get: the SDK corrects its own signing time for skew, this path does not.
func (f *fastGetter) get(ctx context.Context, name string) (data []byte, miss, fallback bool, err error) {
	// The object name is bound as the SDK binds {Key+}: every byte but
	// the unreserved ones and "/" escaped; url.Parse keeps that escaping
	// (RawPath), and the signer signs it as sent (S3 does not
	// double-encode).
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.base+"/"+httpbinding.EscapePath(name, false), nil)
	if err != nil {
		return nil, false, true, nil
	}
	h := req.Header
	h.Set("User-Agent", userAgent)
	h.Set("Accept-Encoding", "identity") // as the SDK: the checksum covers the stored bytes
	h.Set("X-Amz-Content-Sha256", emptySHA256)
	if f.checksums {
		h.Set("X-Amz-Checksum-Mode", "ENABLED")
	}
	if f.creds != nil {
		creds, err := f.creds.Retrieve(ctx)
		if err != nil {
			return nil, false, true, nil // the SDK reports it
		}
		if err := f.signer.SignHTTP(ctx, creds, req, emptySHA256, f.service, f.region, time.Now(),
			func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }); err != nil {
			return nil, false, true, nil
		}
	}
	resp, err := f.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, false, err // the caller's time is up: no second try
		}
		return nil, false, true, nil
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		data, err := readall.Sized(resp.Body, resp.ContentLength)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, false, err
			}
			return nil, false, true, nil
		}
		if f.checksums && !checksumsMatch(resp.Header, data) {
			return nil, false, true, nil // the SDK reads it again and reports a mismatch
		}
		return data, false, false, nil
	case http.StatusNotFound:
		if errorCode(resp.Body) == "NoSuchKey" {
			return nil, true, false, nil
		}
	default:
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	}
	return nil, false, true, nil
}

// maxErrorBody bounds how much of an error document is read.
const maxErrorBody = 64 << 10

// errorCode returns the Code of an S3 error document, or "". The code is
// the first Code element ("<Error><Code>NoSuchKey</Code>…"); text in the
// other elements is XML-escaped and cannot contain the tag. A scan costs a
// few allocations where encoding/xml costs seventy, on every miss.
func errorCode(body io.Reader) string {
	b, err := io.ReadAll(io.LimitReader(body, maxErrorBody))
	if err != nil {
		return ""
	}
	_, after, ok := bytes.Cut(b, []byte("<Code>"))
	if !ok {
		return ""
	}
	code, _, ok := bytes.Cut(after, []byte("</Code>"))
	if !ok {
		return ""
	}
	return string(bytes.TrimSpace(code))
}

// crc64NVME is the CRC-64/NVME polynomial, reversed, as crc64.MakeTable
// takes it.
const crc64NVME = 0x9a6c9329ac4bc9b5

var (
	crc32cTable    = crc32.MakeTable(crc32.Castagnoli)
	crc64NVMETable = crc64.MakeTable(crc64NVME)
)

// responseChecksums are the full-object checksums S3 may send with
// checksum mode on, with their hashes: the algorithms the SDK validates.
var responseChecksums = []struct {
	header string
	hash   func() hash.Hash
}{
	{"X-Amz-Checksum-Crc64nvme", func() hash.Hash { return crc64.New(crc64NVMETable) }},
	{"X-Amz-Checksum-Crc32", func() hash.Hash { return crc32.NewIEEE() }},
	{"X-Amz-Checksum-Crc32c", func() hash.Hash { return crc32.New(crc32cTable) }},
	{"X-Amz-Checksum-Sha256", sha256.New},
	{"X-Amz-Checksum-Sha1", sha1.New},
	{"X-Amz-Checksum-Sha512", sha512.New},
}

// checksumsMatch reports whether data matches every full-object checksum
// in h. A composite checksum of a multipart upload ("…-N") covers parts,
// not the object, and is skipped, as the SDK skips it.
func checksumsMatch(h http.Header, data []byte) bool {
	for _, c := range responseChecksums {
		want := h.Get(c.header)
		if want == "" || strings.Contains(want, "-") {
			continue
		}
		hh := c.hash()
		hh.Write(data)
		if base64.StdEncoding.EncodeToString(hh.Sum(nil)) != want {
			return false
		}
	}
	return true
}
