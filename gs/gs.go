// Package gs is certcache's Google Cloud Storage backend, on
// cloud.google.com/go/storage. Importing it registers the gs:// scheme (Go
// CDK's name for GCS) with certcache.Open:
//
//	import _ "github.com/certcache/certcache/gs"
//
//	cache, err := certcache.Open(ctx, "gs://my-bucket/certs")
//
// Users who already hold a *storage.Client call New.
//
// # URLs
//
//	gs://BUCKET[/PREFIX][?PARAMS]
//
// Objects are stored in BUCKET under PREFIX (a path such as "certs" or
// "prod/certs"; none means the bucket's root). Parameters:
//
//	endpoint   the JSON API's address instead of Google's: an http:// URL
//	           names an emulator (fake-gcs-server, "http://127.0.0.1:4443"),
//	           which is spoken to without credentials, as the client does for
//	           STORAGE_EMULATOR_HOST; an https:// URL names a private endpoint,
//	           spoken to with Application Default Credentials
//	max_conns  the most connections open to the service at once; default
//	           ten per CPU
//	timeout    the per-call timeout (handled by certcache.Open); default 10s
//
// An unknown or repeated parameter is an error that names it, and so is a
// user, a password or a port in the URL.
//
// For example, with fake-gcs-server listening on 127.0.0.1:4443,
//
//	gs://certs/prod?endpoint=http://127.0.0.1:4443
//
// stores the certificate of example.com as the object "prod/example.com" of
// bucket "certs", without credentials.
//
// # Credentials
//
// Credentials never go in the URL: they are Application Default
// Credentials, found as every Google client finds them —
// GOOGLE_APPLICATION_CREDENTIALS (a service account key or a workload
// identity federation file), the gcloud user's file
// (gcloud auth application-default login), or, on Google Cloud, the
// metadata server's service account. Open finds them when it builds the
// client, and fails with the library's message when there are none. With
// STORAGE_EMULATOR_HOST set (and no endpoint parameter) the client speaks
// to that emulator, without credentials, as cloud.google.com/go/storage
// does for every program.
//
// The permissions needed on the bucket are storage.objects.get,
// storage.objects.create, storage.objects.delete and storage.objects.list.
// The predefined role roles/storage.objectUser holds them (and a few more);
// a minimal custom role:
//
//	gcloud iam roles create certcache --project=PROJECT \
//	  --permissions=storage.objects.get,storage.objects.create,storage.objects.delete,storage.objects.list
//	gcloud storage buckets add-iam-policy-binding gs://my-bucket \
//	  --member=serviceAccount:SA@PROJECT.iam.gserviceaccount.com \
//	  --role=projects/PROJECT/roles/certcache
//
// storage.objects.list is not optional: a read of a missing object and of
// a missing bucket both answer 404, so a miss is confirmed by listing the
// object's name until a call has shown that the bucket exists (see
// Errors), and List and the leases' bookkeeping list too.
//
// # Keys
//
// A cache key becomes an object name under the prefix with the encoding of
// internal/keyname: the characters autocert uses ([A-Za-z0-9._+-]) stay as
// they are and every other byte is percent-encoded, so a key never
// contains a "/", no key escapes the prefix, and distinct keys never share
// an object. A name that would pass GCS's 1024-byte limit is shortened to a
// prefix of its encoding plus a SHA-256 of the key, and the whole key is
// kept in the object's metadata (certcache-key, base64url) for List. A
// prefix is at most 512 bytes of printable characters, without empty, "."
// or ".." segments.
//
// # Leases
//
// certcache.AcquireLease keeps a lease as an empty object named ".lease-"
// and the encoded lease name under the prefix (never a key's name: keys
// never begin with a dot), whose metadata holds the holder's token and the
// TTL. Every change is conditional on the object's generation:
// DoesNotExist (ifGenerationMatch=0) to create it, GenerationMatch to
// extend it, take over an expired one, or delete it on release, so that of
// many nodes exactly one wins. Expiry is judged by the store's clock,
// never the node's: a version was written at its update time (millisecond
// times, as GCS keeps them), and the store's time now is the creation time
// of a small clock object (".lease-NAME!RANDOM") written and deleted beside
// the lease when another holder's lease must be judged. A refresh compares
// the update time of the version it writes with that of the version it
// replaced, and gives the lease back if that was past its TTL. Leases need
// no permission beyond the four above.
//
// fake-gcs-server (v1.56.1), the emulator the tests run, keeps no update
// or creation time for an uploaded object: it reports none, or the time of
// each answer. The driver notices this from its first clock object (its
// reported time is absent or changes between two reads) and then dates
// every version by its generation, which that emulator makes from its
// clock in microseconds, after checking that the clock object's generation
// reads as a time near this machine's. On a store that keeps neither,
// leases fail with an error rather than expire by a guess. The emulator
// also ignores ifGenerationMatch on deletes; the driver's deletes also name
// the generation (which it honours, and which GCS honours as well), so a
// release never removes another holder's newer version there either.
// docs/gs.md has the design and the emulator's gaps in full.
//
// # Listing
//
// certcache.List reads the prefix with the objects iterator, 1000 objects
// a page, with the delimiter "/" so that nested prefixes stay out. Sizes
// are the objects'; times are their update times (zero from an emulator
// that keeps none).
//
// # Reads
//
// A client built from a URL reads objects through the JSON API
// (storage.WithJSONReads), as it makes every other call, rather than the
// library's default XML API; a client handed to New reads as it is set up.
//
// # Errors
//
// Only a missing object is a miss, and only once a call has shown that the
// bucket exists: GCS answers 404 both for a missing object and for a
// missing bucket, and a missing bucket is an error, never an empty cache.
// A miss lists the object's name to tell them apart unless a read, a
// write or a listing succeeded within the last minute; a miss is then one
// request. A bucket deleted within that minute makes a Get of a missing
// key a miss for the rest of it; with coordination on, the lease that an
// order needs (an object in the same bucket) then fails, so nothing is
// ordered.
// Refused credentials and missing permissions (401, 403) are errors that
// say so; network failures and 503, 504 and 429 answers match
// certcache.ErrUnavailable. A client built from a URL retries as the
// library does (408, 429, 5xx, resets; conditional writes too, since they
// are idempotent) but not a refused connection, so that a stopped store is
// reported at once rather than after the library's backoff. A client
// handed to New keeps its own retry settings. Deleting a missing object is
// not an error.
package gs

import (
	"errors"
	"fmt"
	"time"

	"github.com/certcache/certcache/internal/backendopts"

	"cloud.google.com/go/storage"
	"github.com/certcache/certcache"
)

// Scheme is the URL scheme this package registers.
const Scheme = "gs"

func init() {
	certcache.Register(Scheme, certcache.Backend{Name: "gs", Open: openURL})
}

// Options configure a GCS cache. The zero value (or nil) gives the defaults.
type Options struct {
	// Prefix is the object name prefix, a path such as "certs" or
	// "prod/certs" (a trailing slash is optional). If empty, objects are
	// stored at the bucket's root.
	Prefix string

	// Timeout bounds each call. If zero, certcache.DefaultTimeout.
	Timeout time.Duration

	// Cache configures what every backend shares: the Get timeout, the
	// circuit breaker, issuance coordination and its lease TTL, and the
	// OpenTelemetry providers and logger (see certcache.Options). The zero
	// value gives the defaults, as a URL without those parameters does.
	// Timeout above, when set, overrides Cache.Timeout.
	Cache certcache.Options
}

// New returns a Cache that stores objects in bucket through client. Close
// does not close client: it belongs to the caller. New does not contact
// the service.
func New(client *storage.Client, bucket string, o *Options) (certcache.Cache, error) {
	if client == nil {
		return nil, errors.New("certcache/gs: New: nil client")
	}
	var opts Options
	if o != nil {
		opts = *o
	}
	d, err := newDriver(client, bucket, opts.Prefix)
	if err != nil {
		return nil, fmt.Errorf("certcache/gs: New: %w", err)
	}
	return certcache.NewCache("gs", d, backendopts.Cache(opts.Cache, opts.Timeout)), nil
}
