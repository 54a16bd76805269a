// Package s3 is certcache's Amazon S3 backend, on aws-sdk-go-v2. It works with
// S3 and with S3-compatible servers such as MinIO. Importing it registers the
// s3:// scheme with certcache.Open:
//
//	import _ "github.com/certcache/certcache/s3"
//
//	cache, err := certcache.Open(ctx, "s3://my-bucket/certs?region=eu-west-1")
//
// Users who already hold an *s3.Client call New.
//
// # URLs
//
//	s3://BUCKET[/PREFIX][?PARAMS]
//
// Objects are stored in BUCKET under PREFIX (a path such as "certs" or
// "prod/certs"; none means the bucket's root). Parameters, in the style of Go
// CDK's s3blob:
//
//	region          the bucket's region; default: the SDK's (AWS_REGION, the profile's
//	                region), or us-east-1 when endpoint is set
//	endpoint        an S3-compatible server, "https://minio.internal:9000" (default: AWS;
//	                AWS_ENDPOINT_URL also works); without a scheme, https
//	use_path_style  true: address the bucket in the path (http://HOST/BUCKET/KEY), as
//	                most S3-compatible servers need; default false (virtual hosts)
//	disable_https   true: reach endpoint over plain HTTP when it names no scheme;
//	                refused without endpoint, so that AWS is never spoken to in the clear
//	profile         the shared configuration profile (~/.aws/config) to use
//	sse             server-side encryption of stored objects: AES256 (SSE-S3) or aws:kms
//	                (SSE-KMS); default: the bucket's default encryption
//	sse_kms_key_id  the KMS key for sse=aws:kms; default: the AWS managed key aws/s3
//	request_checksum_calculation  when_supported (the SDK's default: a CRC checksum with
//	                every upload) or when_required, for servers that reject those checksums
//	response_checksum_validation  when_supported (default) or when_required
//	max_conns       the most connections open to the server at once; default
//	                ten per CPU
//	timeout         the per-call timeout (handled by certcache.Open); default 10s
//
// Everything else is configured the SDK's way, in the environment or the
// profile: FIPS and dual-stack endpoints (AWS_USE_FIPS_ENDPOINT,
// use_dualstack_endpoint), retries (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE), a CA
// bundle (AWS_CA_BUNDLE). An unknown or repeated parameter is an error that
// names it. So is
// anonymous: a certificate cache holds private keys, and a bucket readable
// without credentials would publish them.
//
// For example, a MinIO server on plain HTTP:
//
//	s3://certs/prod?endpoint=http://127.0.0.1:9000&use_path_style=true
//
// stores the certificate of example.com as the object "prod/example.com" of
// bucket "certs", signed for region us-east-1, with credentials from the
// environment.
//
// # Credentials
//
// Credentials never go in the URL (one with a user or password is refused):
// they come from the AWS SDK's default chain, as config.LoadDefaultConfig
// resolves it — AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the shared
// config and credentials files (and the profile parameter or AWS_PROFILE),
// SSO, web identity (EKS service accounts), ECS task roles and the EC2
// instance metadata service. Open reads the environment and the local
// configuration files only; credentials are fetched on first use, so an
// instance can start while S3 or the metadata service is unreachable. (The
// SDK's AWS_DEFAULTS_MODE=auto would ask the instance metadata service for its
// region while opening; Open does not let it, and auto then picks the
// standard defaults.)
//
// The minimal IAM policy, for bucket my-bucket and prefix certs:
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [
//	    {"Effect": "Allow",
//	     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
//	     "Resource": "arn:aws:s3:::my-bucket/certs/*"},
//	    {"Effect": "Allow",
//	     "Action": "s3:ListBucket",
//	     "Resource": "arn:aws:s3:::my-bucket"}
//	  ]
//	}
//
// s3:ListBucket is not optional. Without it S3 does not tell a missing object
// from a forbidden one: it answers 403 AccessDenied for both. This backend
// reports AccessDenied as an error, never as a miss (a miss makes autocert
// order a certificate, and a misconfigured policy would then order one on
// every handshake until Let's Encrypt's rate limits stop it), so without
// s3:ListBucket every first Get of a name fails and autocert can never
// obtain a certificate. Grant s3:ListBucket on the bucket as shown: a grant
// narrowed by an s3:prefix condition may not apply to the existence check
// S3 makes for GetObject (the request has no s3:prefix), and then misses
// read as AccessDenied again. With sse=aws:kms the role also needs
// kms:GenerateDataKey and kms:Decrypt on the key.
//
// # Keys
//
// A cache key becomes an object name under the prefix with the encoding of
// internal/keyname: the characters autocert uses ([A-Za-z0-9._+-]) stay as
// they are and every other byte is percent-encoded, so a key never contains
// a "/", no key escapes the prefix or reaches a neighbouring one, and
// distinct keys never share an object. An encoded key longer than 255 bytes
// (the limit MinIO and other file-system-backed servers put on one path
// segment) is shortened to a prefix of its encoding plus a SHA-256 of the
// key. A prefix is at most 512 bytes of printable characters, without empty,
// "." or ".." segments; prefixes do not nest (objects of prefix "a" never
// look like those of "a/b").
//
// A key whose name had to be shortened has its whole key recorded in the
// object's user metadata (x-amz-meta-certcache-key, base64url), where
// certcache.List reads it back.
//
// # Leases
//
// certcache.AcquireLease keeps a lease as a small JSON object (the holder's
// token, the TTL, and a random identifier that gives every write its own
// ETag) named ".lease-" and the encoded lease name under the prefix: never
// a key's name, since keys never begin with a dot, and never listed.
// Acquiring creates it with a conditional PutObject (If-None-Match: *) or
// replaces an expired one with If-Match on its ETag, so that of many nodes
// exactly one wins; refreshing rewrites it with If-Match, and
// releasing writes it back, with If-Match, as free (it is not deleted:
// MinIO ignores If-Match on DeleteObject, and an unconditional delete could
// remove a lease just taken over by another node, so every lease name used
// keeps an object of a few dozen bytes). Expiry is judged by the store's
// clock, never the node's: the object's Last-Modified against the Date of
// the answer that read it, and, within a second of expiry, the
// millisecond times of a listing (a short-lived ".lease-…!…" clock object
// is written beside the lease for this). On MinIO a lease lasts its TTL; on
// a store whose listings give whole seconds, up to two seconds more, never
// less. The server must support conditional writes (If-None-Match and
// If-Match on PutObject: S3 since 2024, and recent MinIO releases; the
// tests check the MinIO they run). Leases need no permission beyond the
// policy above.
//
// # Listing
//
// certcache.List reads the prefix with ListObjectsV2, a page of 1000
// objects at a time, with the delimiter "/" so that nested prefixes stay
// out. It needs s3:ListBucket. Objects under the prefix that no key maps
// to (written by something else) are skipped; a shortened name costs one
// HeadObject to read its key. Sizes and times are those of the listing.
//
// # Reads
//
// Get, the call autocert makes under its Manager-wide lock, skips the SDK's
// per-call middleware (endpoint rules, auth scheme selection, user agent,
// retry and checksum set-up: about 500 allocations and, beside a store on
// the same machine, a third of the call's time). It sends the request the
// SDK would send — a GET of the object, signed with SigV4 by the client's
// signer and credentials, with checksum mode on unless
// response_checksum_validation=when_required — on the client's HTTP client,
// to the endpoint the client's resolver gives for the bucket, and checks the
// object's CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256 or SHA-512 checksum when
// the answer carries one. Only a 200 whose checksum matches and a 404
// NoSuchKey are answered from it; any other status, a network error or a
// checksum mismatch makes the Get an ordinary GetObject call, with the SDK's
// retries and errors. A client handed to New that has middleware or
// interceptors of its own (APIOptions, Interceptors), request logging
// (ClientLogMode), a legacy EndpointResolver, or an endpoint that needs
// another auth scheme (S3 Express) always takes the SDK call. Put, Delete,
// leases and listing always go through the SDK.
//
// # Errors
//
// Only a missing object (S3's NoSuchKey) is a miss. A missing bucket
// (NoSuchBucket), AccessDenied, an expired token, a server error and every
// other failure are errors that are never autocert.ErrCacheMiss; network
// failures and 503 answers (SlowDown, a server starting up) match
// certcache.ErrUnavailable. The SDK retries as it is configured to
// (AWS_MAX_ATTEMPTS, the profile's retry settings), always within the
// per-call timeout, except that a client built from a URL does not retry a
// refused connection: a stopped server is reported at once (in
// milliseconds, not the seconds of the SDK's backoff). A client handed to
// New keeps its own retryer. Deleting a missing object is not an error.
package s3

import (
	"errors"
	"fmt"
	"time"

	"github.com/certcache/certcache/internal/backendopts"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/certcache/certcache"
)

// Scheme is the URL scheme this package registers.
const Scheme = "s3"

func init() {
	certcache.Register(Scheme, certcache.Backend{Name: "s3", Open: openURL})
}

// Options configure an S3 cache. The zero value (or nil) gives the defaults.
type Options struct {
	// Prefix is the object name prefix, a path such as "certs" or
	// "prod/certs" (a trailing slash is optional). If empty, objects are
	// stored at the bucket's root.
	Prefix string

	// Timeout bounds each call. If zero, certcache.DefaultTimeout.
	Timeout time.Duration

	// SSE is the server-side encryption of stored objects:
	// types.ServerSideEncryptionAes256 ("AES256") or
	// types.ServerSideEncryptionAwsKms ("aws:kms"). If empty, the bucket's
	// default encryption applies.
	SSE types.ServerSideEncryption

	// SSEKMSKeyID is the KMS key (ID, ARN or alias) for SSE "aws:kms". If
	// empty, the AWS managed key aws/s3.
	SSEKMSKeyID string

	// Cache configures what every backend shares: the Get timeout, the
	// circuit breaker, issuance coordination and its lease TTL, and the
	// OpenTelemetry providers and logger (see certcache.Options). The zero
	// value gives the defaults, as a URL without those parameters does.
	// Timeout above, when set, overrides Cache.Timeout.
	Cache certcache.Options
}

// New returns a Cache that stores objects in bucket through client. Close
// does not affect client: it belongs to the caller. New does not contact
// the server.
func New(client *s3.Client, bucket string, o *Options) (certcache.Cache, error) {
	if client == nil {
		return nil, errors.New("certcache/s3: New: nil client")
	}
	var opts Options
	if o != nil {
		opts = *o
	}
	d, err := newDriver(client, bucket, opts)
	if err != nil {
		return nil, fmt.Errorf("certcache/s3: New: %w", err)
	}
	return certcache.NewCache("s3", d, backendopts.Cache(opts.Cache, opts.Timeout)), nil
}
