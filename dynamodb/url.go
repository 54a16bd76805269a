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
	table    string
	opts     Options
	region   string
	endpoint string // with a scheme, or ""
	profile  string
	maxConns int
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
	if q.Has("region") {
		if p.region = q.String("region"); p.region == "" {
			q.Fail("region is empty")
		}
	}
	endpoint := q.String("endpoint")
	plainHTTP := q.Bool("disable_https", false)
	if q.Has("profile") {
		if p.profile = q.String("profile"); p.profile == "" {
			q.Fail("profile is empty")
		}
	}
	var err error
	if p.maxConns, p.endpoint, err = awsconf.Finish(q, endpoint, plainHTTP); err != nil {
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
	cfg, closeIdle, err := awsconf.Load(ctx, awsconf.Params{Region: p.region, Profile: p.profile, Endpoint: p.endpoint, MaxConns: p.maxConns})
	if err != nil {
		return nil, err
	}
	d.client = dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if p.endpoint != "" {
			o.BaseEndpoint = aws.String(p.endpoint)
		}
		if o.Retryer != nil { // set by the SDK before our options run
			o.Retryer = awsconf.RefusedFailsFast(o.Retryer)
		}
	})
	d.closeIdle = closeIdle
	return d, nil
}
