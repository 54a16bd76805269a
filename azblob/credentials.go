package azblob

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/backendopts"
	"github.com/certcache/certcache/internal/redact"
)

// The environment variables Azure's tools use for storage credentials.
const (
	envConnectionString = "AZURE_STORAGE_CONNECTION_STRING"
	envAccount          = "AZURE_STORAGE_ACCOUNT"
	envKey              = "AZURE_STORAGE_KEY"
	envSAS              = "AZURE_STORAGE_SAS_TOKEN"
)

// client is an SDK client built from a URL and the environment.
type client struct {
	client    *azblob.Client
	secrets   []string // what no error may show
	closeIdle func()
}

// newClient builds the client for cfg with the first credential the
// environment offers (see the package documentation). It does not contact
// the service.
func newClient(cfg *config, getenv func(string) string) (*client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // the default 2 would redial under concurrent calls
	// A stuck service must not collect a connection per waiting caller.
	tr.MaxConnsPerHost = cfg.maxConns
	if tr.MaxConnsPerHost == 0 {
		tr.MaxConnsPerHost = backendopts.MaxConns()
	}
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	opts := &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: &http.Client{Transport: tr},
		Telemetry: policy.TelemetryOptions{ApplicationID: "certcache"},
		Retry:     policy.RetryOptions{ShouldRetry: shouldRetry},
	}}
	c := &client{closeIdle: tr.CloseIdleConnections}
	var err error

	if cs := getenv(envConnectionString); cs != "" {
		c.secrets = connectionStringSecrets(cs)
		for name, v := range map[string]string{"account": cfg.account, "endpoint": cfg.endpoint, "domain": cfg.domain, "protocol": cfg.protocol} {
			if v != "" {
				return nil, fmt.Errorf("%w: %s is set and names the account and its endpoint: leave %s out of the URL", certcache.ErrInvalidURL, envConnectionString, name)
			}
		}
		c.client, err = azblob.NewClientFromConnectionString(cs, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", envConnectionString, redact.String(err.Error(), c.secrets))
		}
		return c, nil
	}

	account := cfg.account
	if env := getenv(envAccount); account == "" {
		account = env
	} else if env != "" && env != account && getenv(envKey) != "" {
		return nil, fmt.Errorf("%w: the URL names account %q but %s=%q, whose key is %s", certcache.ErrInvalidURL, account, envAccount, env, envKey)
	}

	if key := getenv(envKey); key != "" {
		c.secrets = []string{key}
		if account == "" {
			return nil, fmt.Errorf("%w: %s needs the account name: add account=NAME to the URL or set %s", certcache.ErrInvalidURL, envKey, envAccount)
		}
		svc, err := cfg.serviceURL(account)
		if err != nil {
			return nil, err
		}
		cred, err := azblob.NewSharedKeyCredential(account, key)
		if err != nil {
			return nil, fmt.Errorf("%s is not a base64 account key", envKey)
		}
		c.client, err = azblob.NewClientWithSharedKeyCredential(svc, cred, opts)
		return c, err
	}

	svc, err := cfg.serviceURL(account)
	if err != nil {
		return nil, err
	}

	if sas := strings.TrimPrefix(getenv(envSAS), "?"); sas != "" {
		c.secrets = sasSecrets(sas)
		if _, err := url.ParseQuery(sas); err != nil {
			return nil, fmt.Errorf("%s is not a SAS token (want sv=…&sig=…)", envSAS)
		}
		c.client, err = azblob.NewClientWithNoCredential(svc+"?"+sas, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", envSAS, redact.String(err.Error(), c.secrets))
		}
		return c, nil
	}

	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("no storage credential: %s, %s and %s are unset, and DefaultAzureCredential failed: %w",
			envConnectionString, envKey, envSAS, err)
	}
	c.client, err = azblob.NewClient(svc, cred, opts)
	return c, err
}

// retryStatusCodes are the statuses azcore retries by default (408, 429,
// 500, 502, 503, 504; see policy.RetryOptions.StatusCodes): a ShouldRetry
// func replaces that list, so shouldRetry keeps it.
var retryStatusCodes = []int{
	http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
}

// shouldRetry is azcore's retry decision with one exception: a refused
// connection is not retried. azcore retries every transport error three
// times with backoff (0.8 s, 2.4 s, 5.6 s), so a stopped store took about
// 8.5 s to report, most of a TLS handshake's patience, although a refusal
// is immediate and certain: nothing listens at the address, and the
// request never reached a server, so it left no side effect to make safe
// either. The caller (autocert, or the next handshake) tries again later.
// Throttling (429), server errors (5xx), resets and timeouts of a store that
// does answer keep the SDK's retries.
func shouldRetry(resp *http.Response, err error) bool {
	if err != nil {
		return !errors.Is(err, syscall.ECONNREFUSED)
	}
	return runtime.HasStatusCode(resp, retryStatusCodes...)
}

// connectionStringSecrets returns the secret parts of a connection string
// (AccountKey=…;SharedAccessSignature=…).
func connectionStringSecrets(cs string) []string {
	secrets := []string{cs}
	for _, part := range strings.Split(cs, ";") {
		k, v, _ := strings.Cut(part, "=")
		switch strings.TrimSpace(k) {
		case "AccountKey":
			secrets = append(secrets, v)
		case "SharedAccessSignature":
			secrets = append(secrets, sasSecrets(v)...)
		}
	}
	return secrets
}

// sasSecrets returns a SAS token and its signature, raw and escaped.
func sasSecrets(sas string) []string {
	secrets := []string{sas}
	if q, err := url.ParseQuery(strings.TrimPrefix(sas, "?")); err == nil {
		for _, sig := range q["sig"] {
			secrets = append(secrets, sig, url.QueryEscape(sig))
		}
	}
	return secrets
}
