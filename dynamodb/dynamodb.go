// Package dynamodb is certcache's Amazon DynamoDB backend, on aws-sdk-go-v2.
// Importing it registers the dynamodb:// scheme with certcache.Open:
//
//	import _ "github.com/certcache/certcache/dynamodb"
//
//	cache, err := certcache.Open(ctx, "dynamodb://certcache?region=eu-west-1")
//
// Users who already hold a *dynamodb.Client call New.
//
// # URLs
//
//	dynamodb://TABLE[/PREFIX][?PARAMS]
//
// Items are stored in TABLE, in the partition "/PREFIX" ("/" without a
// prefix), so that several caches can share one table. Parameters:
//
//	region         the table's region; default: the SDK's (AWS_REGION, the profile's
//	               region), or us-east-1 when endpoint is set
//	endpoint       a DynamoDB-compatible server, "http://127.0.0.1:8000" (default: AWS;
//	               AWS_ENDPOINT_URL also works); without a scheme, https
//	disable_https  true: reach endpoint over plain HTTP when it names no scheme
//	profile        the shared configuration profile (~/.aws/config) to use
//	max_conns      the most connections open to the server at once; default
//	               ten per CPU
//	timeout        the per-call timeout (handled by certcache.Open); default 10s
//
// An unknown or repeated parameter is an error that names it.
//
// # The table
//
// Creating the table is the user's job (or the certcache CLI's user's), as
// creating a bucket is for s3: a missing table is an error on every call,
// never a miss. Its key schema must be a partition key named "pk" and a
// sort key named "sk", both of type String (S); any billing mode. For
// example:
//
//	aws dynamodb create-table --table-name certcache \
//	  --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
//	  --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
//	  --billing-mode PAY_PER_REQUEST
//
// A value is the item with sort key "k:" and the key encoded as
// internal/keyname encodes names ([A-Za-z0-9._+-] kept, every other byte
// percent-encoded, a name over 900 bytes shortened with a SHA-256 and the
// whole key kept in attribute "key"). A lease is the item "l:" and its
// encoded name, a chunk of a large value "c:…": the three never share a
// sort key, so no lease or chunk is ever a key.
//
// # Values
//
// Values up to certcache.MaxValueSize are stored. DynamoDB caps an item at
// 400 KB, so a value over 384 KiB is stored as chunks of that size under a
// new random generation, followed by its item naming the generation; the
// item's single write makes the new value visible at once, whole, and the
// old value's chunks are deleted after it. No TransactWriteItems is needed
// (dynalite, the emulator the tests run, has none). A Put that fails
// midway may leave unreferenced chunks behind, never a torn value.
// Reads are strongly consistent (ConsistentRead), as autocert needs a
// certificate just Put by another node to be read back.
//
// # Leases
//
// Leases follow the AWS DynamoDB Lock Client (see lease.go): no node's wall
// clock is compared with another's. A holder rewrites the lease's record
// version number on every refresh; a contender takes the lease over only
// after it has watched the same record version number for the lease's
// whole TTL on its own monotonic clock. So a node that first looks at a
// lease whose holder died waits a TTL from then, however old the lease;
// certcache's coordination polls, and takes it then. For the same reason
// certcache leases shows expiries estimated by this process, and certcache
// unlock without -force breaks only a lease this process has watched for
// its TTL.
//
// # Credentials
//
// Credentials never go in the URL (one with a user or password is refused):
// they come from the AWS SDK's default chain, as config.LoadDefaultConfig
// resolves it (the environment, the shared files and profile, SSO, web
// identity, ECS and EC2 roles). Open reads only the environment and local
// files. The minimal IAM policy, for table certcache:
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [
//	    {"Effect": "Allow",
//	     "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"],
//	     "Resource": "arn:aws:dynamodb:REGION:ACCOUNT:table/certcache"}
//	  ]
//	}
//
// Query serves Get of large values, listing and lease listing; Scan and
// TransactWriteItems are not used. A policy may narrow access to one
// prefix with the dynamodb:LeadingKeys condition key on "/PREFIX".
//
// # Errors
//
// Only a missing item is a miss. A missing table, AccessDenied, and every
// other failure are errors that never match autocert.ErrCacheMiss; network
// failures, 503 answers and throttling that outlasted the SDK's retries
// match certcache.ErrUnavailable. A client built from a URL does not retry
// a refused connection, so a stopped server is reported in milliseconds.
//
// # dynalite
//
// The tests run dynalite 3.2.2, which implements every call this backend
// makes, condition expressions and the 400 KB item limit included, but
// differs from DynamoDB in ways the code guards: it refuses an empty
// binary attribute (an empty value is stored without one, on DynamoDB
// too), it serves every read consistently (the code asks for
// ConsistentRead all the same), and it has no TransactWriteItems (not
// used) and no IAM (policies are not tested).
package dynamodb

import (
	"errors"
	"fmt"
	"time"

	"github.com/certcache/certcache/internal/backendopts"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/certcache/certcache"
)

// Scheme is the URL scheme this package registers.
const Scheme = "dynamodb"

func init() {
	certcache.Register(Scheme, certcache.Backend{Name: "dynamodb", Open: openURL})
}

// Options configure a DynamoDB cache. The zero value (or nil) gives the
// defaults.
type Options struct {
	// Prefix names the cache's partition of the table, "/" + Prefix, so
	// that caches may share a table. If empty, the partition "/".
	Prefix string

	// Timeout bounds each call. If zero, certcache.DefaultTimeout.
	Timeout time.Duration

	// Cache configures what every backend shares: the Get timeout, the
	// circuit breaker, issuance coordination and its lease TTL, and the
	// OpenTelemetry providers and logger (see certcache.Options). Timeout
	// above, when set, overrides Cache.Timeout.
	Cache certcache.Options
}

// New returns a Cache that stores items in table through client. Close does
// not affect client: it belongs to the caller. New does not contact the
// server.
func New(client *dynamodb.Client, table string, o *Options) (certcache.Cache, error) {
	if client == nil {
		return nil, errors.New("certcache/dynamodb: New: nil client")
	}
	var opts Options
	if o != nil {
		opts = *o
	}
	d, err := newDriver(client, table, opts)
	if err != nil {
		return nil, fmt.Errorf("certcache/dynamodb: New: %w", err)
	}
	return certcache.NewCache("dynamodb", d, backendopts.Cache(opts.Cache, opts.Timeout)), nil
}
