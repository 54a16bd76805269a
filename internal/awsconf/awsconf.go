// Package awsconf is what certcache's AWS backends (s3, dynamodb) share in
// building an SDK client from a URL: the endpoint parameter's checks, the
// default configuration chain loaded without touching the network, a
// transport whose idle connections Close can close, and a retryer that
// reports a refused connection at once.
package awsconf

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/backendopts"
	"github.com/certcache/certcache/internal/urlquery"
)

// EndpointRegion is the signing region when an endpoint is set and nothing
// names a region: what MinIO, dynalite and most compatible servers expect.
const EndpointRegion = "us-east-1"

// CredentialsHint says where an AWS backend's credentials come from, for
// the error that refuses them in a URL.
const CredentialsHint = "the AWS SDK's default chain provides them (AWS_ACCESS_KEY_ID, AWS_PROFILE, a role)"

// ReadParams reads the parameters every AWS backend's URL takes: region,
// profile, endpoint and disable_https. The backend reads its own next,
// then calls Finish.
func ReadParams(q *urlquery.Reader) (p Params, plainHTTP bool) {
	if q.Has("region") {
		if p.Region = q.String("region"); p.Region == "" {
			q.Fail("region is empty")
		}
	}
	p.Endpoint = q.String("endpoint")
	plainHTTP = q.Bool("disable_https", false)
	if q.Has("profile") {
		if p.Profile = q.String("profile"); p.Profile == "" {
			q.Fail("profile is empty")
		}
	}
	return p, plainHTTP
}

// Finish reads max_conns into p (default ten per CPU, at least 1), ends q,
// and checks p's endpoint, giving it a scheme: the last steps of reading an
// AWS backend's URL.
func Finish(q *urlquery.Reader, p *Params, plainHTTP bool) error {
	if p.MaxConns = q.Int("max_conns", backendopts.MaxConns()); p.MaxConns == 0 {
		q.Fail("max_conns=0: want at least 1")
	}
	if err := q.Err(); err != nil {
		return fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	ep, err := ParseEndpoint(p.Endpoint, plainHTTP)
	p.Endpoint = ep
	return err
}

// ParseEndpoint checks the endpoint parameter and gives it a scheme: https,
// or http with plainHTTP (disable_https), which needs an endpoint.
func ParseEndpoint(e string, plainHTTP bool) (string, error) {
	shown := e // quoted in errors, unless it holds a password
	if strings.Contains(e, "@") {
		shown = "(withheld: it holds credentials)"
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: endpoint=%q: "+format, append([]any{certcache.ErrInvalidURL, shown}, args...)...)
	}
	if e == "" {
		if plainHTTP {
			return "", fmt.Errorf("%w: disable_https needs endpoint (AWS itself is reached over HTTPS only)", certcache.ErrInvalidURL)
		}
		return "", nil
	}
	withScheme := e
	if !strings.Contains(e, "://") {
		withScheme = "https://" + e
		if plainHTTP {
			withScheme = "http://" + e
		}
	}
	eu, err := url.Parse(withScheme)
	if err != nil {
		return "", invalid("not a URL")
	}
	switch {
	case eu.Scheme != "http" && eu.Scheme != "https":
		return "", invalid("want an http or https URL")
	case eu.Host == "":
		return "", invalid("no host")
	case eu.User != nil:
		return "", invalid("credentials do not belong in the endpoint")
	case eu.RawQuery != "" || eu.Fragment != "":
		return "", invalid("no query or fragment allowed")
	case plainHTTP && eu.Scheme == "https":
		return "", invalid("disable_https=true contradicts the https scheme")
	}
	return withScheme, nil
}

// Params are what a URL says of the SDK's configuration.
type Params struct {
	Region   string // "" for the SDK's
	Profile  string // "" for the SDK's
	Endpoint string // "" for AWS; a region is then required
	MaxConns int    // the most connections to the server at once
}

// Load loads the SDK's default configuration chain with p and extra
// options, reading the environment and the shared configuration files,
// nothing else. It returns the configuration and a func that closes the
// idle connections of its HTTP client.
func Load(ctx context.Context, p Params, extra ...func(*config.LoadOptions) error) (aws.Config, func(), error) {
	loadOpts := []func(*config.LoadOptions) error{
		func(o *config.LoadOptions) error {
			// AWS_DEFAULTS_MODE=auto asks the instance metadata service
			// for its region while loading; a disabled client answers at
			// once, so loading stays local.
			o.DefaultsModeOptions.IMDSClient = imds.New(imds.Options{ClientEnableState: imds.ClientDisabled})
			return nil
		},
		// A stuck server must not collect a connection per waiting caller.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxConnsPerHost = p.MaxConns
		})),
	}
	if p.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(p.Region))
	}
	if p.Profile != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(p.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, append(loadOpts, extra...)...)
	if err != nil {
		var noProfile config.SharedConfigProfileNotExistError
		if errors.As(err, &noProfile) {
			return aws.Config{}, nil, fmt.Errorf("%w: profile %q is not in the shared configuration files", certcache.ErrInvalidURL, noProfile.Profile)
		}
		return aws.Config{}, nil, fmt.Errorf("%w: loading AWS configuration: %w", certcache.ErrInvalidURL, err)
	}
	// Fix the transport the SDK built from ours (with a CA bundle, say) so
	// that Close can close its idle connections; a BuildableClient keeps
	// its transport to itself. Like the SDK's client, ours follows no
	// redirect.
	closeIdle := func() {}
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		tr := bc.GetTransport()
		cfg.HTTPClient = &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		closeIdle = tr.CloseIdleConnections
	}
	if cfg.Region == "" {
		if p.Endpoint == "" && cfg.BaseEndpoint == nil {
			return aws.Config{}, nil, fmt.Errorf("%w: no region: set region= in the URL, AWS_REGION, or the profile's region", certcache.ErrInvalidURL)
		}
		cfg.Region = EndpointRegion
	}
	return cfg, closeIdle, nil
}

// RefusedFailsFast wraps the SDK's retryer so that a refused connection is
// not retried. The SDK retries it on purpose ("the service may not yet be
// running on the port"), with backoff: with the default three attempts, a
// stopped server took about 3.4 s to report, and a cache whose store is down
// should say so at once (the caller, autocert, retries on the next
// handshake anyway). Everything else — throttling, 5xx answers, reset
// connections, timeouts — is retried as the SDK is configured to.
func RefusedFailsFast(r aws.Retryer) aws.RetryerV2 {
	v2, ok := r.(aws.RetryerV2)
	if !ok {
		v2 = retryerV2{r}
	}
	return refusedFailsFast{v2}
}

type refusedFailsFast struct {
	aws.RetryerV2
}

// IsErrorRetryable answers false for a refused connection, and asks the
// wrapped retryer otherwise.
func (r refusedFailsFast) IsErrorRetryable(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	return r.RetryerV2.IsErrorRetryable(err)
}

// retryerV2 lifts a retryer without GetAttemptToken, as the SDK's own
// wrappers do.
type retryerV2 struct {
	aws.Retryer
}

// GetAttemptToken takes the older retryer's token, which cannot wait.
func (r retryerV2) GetAttemptToken(context.Context) (func(error) error, error) {
	return r.GetInitialToken(), nil
}
