package dynamodb

import (
	"context"
	"fmt"
	"net/url"

	ccdriver "github.com/certcache/certcache/driver"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/awsconf"
	"github.com/certcache/certcache/internal/urlquery"
)

// urlParams is what a dynamodb:// URL says, before the SDK is involved.
type urlParams struct {
	table string
	opts  Options
	aws   awsconf.Params // the endpoint with a scheme, or ""
}

// parseURL reads u without touching the environment or the network.
func parseURL(u *url.URL) (*urlParams, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{certcache.ErrInvalidURL}, args...)...)
	}
	table, prefix, cerr := urlquery.Container(u, "table", awsconf.CredentialsHint)
	if cerr != nil {
		return nil, invalid("%v", cerr)
	}
	p := &urlParams{table: table}
	p.opts.Prefix = prefix

	q := urlquery.Parse(u.RawQuery)
	var plainHTTP bool
	p.aws, plainHTTP = awsconf.ReadParams(q)
	if err := awsconf.Finish(q, &p.aws, plainHTTP); err != nil {
		return nil, err
	}
	return p, nil
}

// openURL is the certcache.Backend Open func for dynamodb://.
func openURL(ctx context.Context, u *url.URL) (ccdriver.Driver, error) {
	p, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	d, err := newDriver(nil, p.table, p.opts) // check the table and prefix first
	if err != nil {
		return nil, err
	}
	cfg, closeIdle, err := awsconf.Load(ctx, p.aws)
	if err != nil {
		return nil, err
	}
	d.client = dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if p.aws.Endpoint != "" {
			o.BaseEndpoint = aws.String(p.aws.Endpoint)
		}
		if o.Retryer != nil { // set by the SDK before our options run
			o.Retryer = awsconf.RefusedFailsFast(o.Retryer)
		}
	})
	d.closeIdle = closeIdle
	return d, nil
}
