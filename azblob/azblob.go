// Package azblob is certcache's Azure Blob Storage backend, on
// github.com/Azure/azure-sdk-for-go/sdk/storage/azblob. Importing it
// registers the azblob:// scheme with certcache.Open:
//
//	import _ "github.com/certcache/certcache/azblob"
//
//	cache, err := certcache.Open(ctx, "azblob://certs/myapp?account=mystorageaccount")
//
// Users who already hold a client call New.
//
// # URLs
//
//	azblob://CONTAINER[/PREFIX][?PARAMS]
//
// CONTAINER is the blob container (3 to 63 lowercase letters, digits and
// single hyphens). PREFIX, optional, is a blob-name prefix of one or more
// path segments ("myapp", "prod/myapp"): every blob of the cache is named
// under PREFIX/. Parameters:
//
//	account           the storage account name; default AZURE_STORAGE_ACCOUNT.
//	                  storage_account (Go CDK's name) is accepted too.
//	endpoint          the blob service URL, e.g. Azurite's
//	                  http://127.0.0.1:10000/devstoreaccount1 or a private
//	                  endpoint; default https://ACCOUNT.blob.core.windows.net
//	domain            the service domain instead of blob.core.windows.net
//	                  (sovereign clouds: blob.core.chinacloudapi.cn, …); a
//	                  domain starting with 127.0.0.1 or localhost puts the
//	                  account in the path, as emulators want (as Go CDK does)
//	protocol          https (default) or http, with domain
//	create_container  true: create the container on first use if it is
//	                  missing (needs the right to create containers);
//	                  default false, and a missing container is an error
//	max_conns         the most connections open to the service at once;
//	                  default ten per CPU
//	timeout           the per-call timeout (handled by certcache.Open); default 10s
//
// An unknown or repeated parameter is an error that names it. Open does not
// contact the service.
//
// # Credentials
//
// Secrets never go in the URL: a parameter that looks like one (key, sig,
// sas_token, connection_string, the fields of a SAS token, …) is refused
// with an error that names the environment variable to use instead. Open
// takes the first of these that is set:
//
//  1. AZURE_STORAGE_CONNECTION_STRING: a connection string names the
//     account, its endpoint and its key or SAS; the URL may then not name
//     account, endpoint, domain or protocol.
//  2. AZURE_STORAGE_KEY: the account's shared key, for the account of the
//     URL or AZURE_STORAGE_ACCOUNT (which must agree when both are set).
//  3. AZURE_STORAGE_SAS_TOKEN: a SAS token added to every request.
//  4. Otherwise azidentity's DefaultAzureCredential: environment service
//     principal, workload identity, managed identity, Azure CLI, … (HTTPS
//     endpoints only).
//
// Keys and tokens never appear in error messages.
//
// # Keys
//
// A cache key becomes a blob name under the prefix with
// internal/keyname.Encode: autocert's keys ([A-Za-z0-9._+-]) stay as they
// are, so "example.com+rsa" is stored as PREFIX/example.com+rsa, and every
// other byte is percent-encoded ("a/b" becomes a%2Fb), so no key reaches
// outside the prefix and distinct keys never share a blob. A final dot is
// encoded too (Azure advises against names ending in a dot), and a name
// that would pass Azure's 1024-character limit is shortened with a hash
// (the key is then kept in the blob's metadata, for List).
//
// # Leases
//
// certcache.AcquireLease works on this backend. A lease is an empty blob
// PREFIX/~lease/NAME (NAME encoded as keys are; no key and no other
// cache's prefix can reach "~lease/") whose metadata holds the holder's
// token and the TTL. It is created with a conditional Put Blob
// (If-None-Match: *) and taken over, once expired, or extended with one
// conditioned on the ETag read (If-Match), so that of two nodes racing for
// it exactly one wins. Azure's own blob leases are not used: they last 15
// to 60 seconds or forever, not an arbitrary TTL.
//
// Expiry is judged by the service's clock, never the node's: the blob's
// Last-Modified and the answer's Date, and, within the two seconds that
// those whole-second dates leave uncertain, the times of blob snapshots
// (each lease write is followed by a snapshot that dates it to the
// sub-second, and the judge takes one to read the time now). A lease
// therefore lasts its TTL, and never less. Releasing a lease deletes its
// blob and snapshots. Leases need the rights to create, read, write,
// delete and list blobs in the container (the judge lists a lease's
// snapshots): a SAS needs permissions c, r, w, d and l, as List does l.
//
// # Listing
//
// certcache.List lists the blobs directly under PREFIX/, 1,000 a request,
// with the delimiter "/", so that leases and the blobs of a cache whose
// prefix extends this one's stay out of the listing at the service. The
// prefix of the listing goes to the service in its encoded form where the
// encoding allows; keys are decoded exactly, sizes are the blobs' lengths
// and times their Last-Modified. A key whose blob name had to be shortened
// (see Keys) is recorded in the blob's metadata by Put, since the name no
// longer spells it; a blob with a shortened name written before that
// record existed makes List fail, naming the blob, rather than leave the
// key out (Put the key again to record it).
//
// # Retries
//
// A client built from a URL keeps the SDK's retries (three, with
// exponential backoff) for throttling (429), server errors (500, 502,
// 503, 504, 408), resets and timeouts, but not for a refused connection:
// nothing listens at the address, so the retries only spent about 8.5 s
// of the call's timeout before reporting what the first attempt knew. A
// stopped store on this machine is now reported in about a millisecond.
// A client passed to New keeps its own options.
//
// # Errors
//
// Only a missing blob (BlobNotFound) is a miss. A missing container
// (ContainerNotFound, unless create_container=true), a refused credential
// (AuthenticationFailed, AuthorizationFailure, HTTP 403), an unreachable
// service and every other failure are errors that are never
// autocert.ErrCacheMiss; network failures, timeouts and HTTP 503 match
// certcache.ErrUnavailable. Errors keep the SDK's *azcore.ResponseError in
// their chain, so bloberror.HasCode works on them.
package azblob

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certcache/certcache/internal/backendopts"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/certcache/certcache"
)

// Scheme is the URL scheme the package registers.
const Scheme = "azblob"

func init() {
	certcache.Register(Scheme, certcache.Backend{Name: "azblob", Open: openURL})
}

// Options configure an Azure Blob cache. The zero value (or nil) gives the
// defaults.
type Options struct {
	// Prefix is a blob-name prefix of one or more "/"-separated segments
	// ("myapp", "prod/myapp"): the cache's blobs are named Prefix + "/" +
	// the encoded key. Segments hold letters, digits and ._+=@,- and do not
	// end in a dot. If empty, blobs are named at the container's root.
	Prefix string

	// Timeout bounds each call. If zero, certcache.DefaultTimeout.
	Timeout time.Duration

	// CreateContainer creates the container on first use if it is missing.
	// If false, a missing container is an error.
	CreateContainer bool

	// Cache configures what every backend shares: the Get timeout, the
	// circuit breaker, issuance coordination and its lease TTL, and the
	// OpenTelemetry providers and logger (see certcache.Options). The zero
	// value gives the defaults, as a URL without those parameters does.
	// Timeout above, when set, overrides Cache.Timeout.
	Cache certcache.Options
}

// New returns a Cache that stores values as blobs in container through
// client. Close does not close client: it belongs to the caller.
func New(client *azblob.Client, container string, o *Options) (certcache.Cache, error) {
	if client == nil {
		return nil, errors.New("certcache/azblob: New: nil client")
	}
	var opts Options
	if o != nil {
		opts = *o
	}
	if err := checkContainer(container); err != nil {
		return nil, fmt.Errorf("certcache/azblob: New: %w", err)
	}
	opts.Prefix = strings.Trim(opts.Prefix, "/")
	if err := checkPrefix(opts.Prefix); err != nil {
		return nil, fmt.Errorf("certcache/azblob: New: %w", err)
	}
	d := newDriver(client, container, opts.Prefix, opts.CreateContainer)
	return certcache.NewCache("azblob", d, backendopts.Cache(opts.Cache, opts.Timeout)), nil
}
