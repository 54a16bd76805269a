package gs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	ccdriver "github.com/certcache/certcache/driver"

	"cloud.google.com/go/storage"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/backendopts"
	"github.com/certcache/certcache/internal/urlquery"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"
)

// emulatorEnv is the variable with which cloud.google.com/go/storage
// points every client at an emulator, without credentials.
const emulatorEnv = "STORAGE_EMULATOR_HOST"

// urlParams is what a gs:// URL says, before the client is built.
type urlParams struct {
	bucket   string
	prefix   string
	endpoint string // the JSON API's base URL with a scheme, or ""
	maxConns int
}

// parseURL reads u without touching the environment or the network.
func parseURL(u *url.URL) (*urlParams, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{certcache.ErrInvalidURL}, args...)...)
	}
	bucket, prefix, cerr := urlquery.Container(u, "bucket", "Application Default Credentials provide them (GOOGLE_APPLICATION_CREDENTIALS, the metadata server)")
	if cerr != nil {
		return nil, invalid("%v", cerr)
	}
	p := &urlParams{bucket: bucket, prefix: prefix}
	if err := checkBucket(p.bucket); err != nil {
		return nil, err
	}
	if _, err := cleanPrefix(p.prefix); err != nil {
		return nil, err
	}
	q := urlquery.Parse(u.RawQuery)
	endpoint := q.String("endpoint")
	if p.maxConns = q.Int("max_conns", backendopts.MaxConns()); p.maxConns == 0 {
		q.Fail("max_conns=0: want at least 1")
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	var err error
	if p.endpoint, err = parseEndpoint(endpoint); err != nil {
		return nil, err
	}
	return p, nil
}

// parseEndpoint checks the endpoint parameter: an http or https URL of a
// host, with no credentials, query or fragment. It never quotes a value
// that holds credentials.
func parseEndpoint(e string) (string, error) {
	if e == "" {
		return "", nil
	}
	shown := e
	if strings.Contains(e, "@") {
		shown = "(withheld: it holds credentials)"
	}
	invalid := func(why string) error {
		return fmt.Errorf("%w: endpoint=%q: %s", certcache.ErrInvalidURL, shown, why)
	}
	eu, err := url.Parse(e)
	switch {
	case err != nil:
		return "", invalid("not a URL")
	case eu.Scheme != "http" && eu.Scheme != "https":
		return "", invalid("want an http:// (emulator) or https:// URL")
	case eu.Host == "":
		return "", invalid("no host")
	case eu.User != nil:
		return "", invalid("credentials do not belong in the endpoint")
	case eu.RawQuery != "" || eu.Fragment != "":
		return "", invalid("no query or fragment allowed")
	case eu.Path != "" && eu.Path != "/":
		return "", invalid("want only a scheme and a host; the API's path (/storage/v1/) is added")
	}
	return eu.Scheme + "://" + eu.Host, nil
}

// openURL is the certcache.Backend Open func for gs://.
func openURL(ctx context.Context, u *url.URL) (ccdriver.Driver, error) {
	p, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	client, closeIdle, err := p.newClient(ctx)
	if err != nil {
		return nil, err
	}
	d, err := newDriver(client, p.bucket, p.prefix)
	if err != nil {
		client.Close()
		return nil, err
	}
	d.closeClient = func() error {
		err := client.Close()
		closeIdle()
		return err
	}
	return d, nil
}

// newClient builds the storage client: on our own transport, which bounds
// the connections and can close its idle ones, wrapped with Application
// Default Credentials unless the client speaks to an emulator. Its retries
// skip a refused connection (see refusedFailsFast).
func (p *urlParams) newClient(ctx context.Context) (*storage.Client, func(), error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxConnsPerHost = p.maxConns
	tr.MaxIdleConnsPerHost = p.maxConns
	emulator := strings.HasPrefix(p.endpoint, "http://") || (p.endpoint == "" && os.Getenv(emulatorEnv) != "")
	var opts []option.ClientOption
	if p.endpoint != "" {
		opts = append(opts, option.WithEndpoint(p.endpoint+"/storage/v1/"))
	}
	var rt http.RoundTripper = tr
	if emulator {
		// Plain HTTP carries no credentials: an emulator needs none, and
		// a token would travel in the clear.
		opts = append(opts, option.WithoutAuthentication())
	} else {
		var err error
		rt, err = htransport.NewTransport(ctx, tr, option.WithScopes(storage.ScopeReadWrite))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: Application Default Credentials: %w", certcache.ErrInvalidURL, err)
		}
	}
	// Reads through the JSON API, as every other call: the XML API's
	// object URLs (HOST/BUCKET/OBJECT) are routed by Host header on
	// fake-gcs-server, and a read through a proxy or a second address
	// there would find no object.
	opts = append(opts, option.WithHTTPClient(&http.Client{Transport: rt}), storage.WithJSONReads())
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: building the storage client: %w", certcache.ErrInvalidURL, err)
	}
	client.SetRetry(storage.WithErrorFunc(refusedFailsFast))
	return client, tr.CloseIdleConnections, nil
}

// refusedFailsFast is the library's retry rule (storage.ShouldRetry) less
// a refused connection: nothing listens at the address, so retrying only
// spends the call's timeout on backoff before reporting what the first
// attempt knew.
func refusedFailsFast(err error) bool {
	if isRefused(err) {
		return false
	}
	return storage.ShouldRetry(err)
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
