package s3

import (
	"context"
	"fmt"
	"net/url"

	ccdriver "github.com/certcache/certcache/driver"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/awsconf"
	"github.com/certcache/certcache/internal/urlquery"
)

// urlParams is what an s3:// URL says, before the SDK is involved.
type urlParams struct {
	bucket      string
	opts        Options
	aws         awsconf.Params // the endpoint with a scheme, or ""
	pathStyle   bool
	reqChecksum aws.RequestChecksumCalculation
	resChecksum aws.ResponseChecksumValidation
}

// parseURL reads u without touching the environment or the network.
func parseURL(u *url.URL) (*urlParams, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{certcache.ErrInvalidURL}, args...)...)
	}
	bucket, prefix, cerr := urlquery.Container(u, "bucket", awsconf.CredentialsHint)
	if cerr != nil {
		return nil, invalid("%v", cerr)
	}
	p := &urlParams{bucket: bucket}
	p.opts.Prefix = prefix

	q := urlquery.Parse(u.RawQuery)
	if q.Has("anonymous") {
		q.String("anonymous")
		q.Fail("anonymous is not offered: a certificate cache holds private keys, which a bucket readable without credentials would publish")
	}
	var plainHTTP bool
	p.aws, plainHTTP = awsconf.ReadParams(q)
	p.pathStyle = q.Bool("use_path_style", false)
	p.opts.SSE = types.ServerSideEncryption(q.Choice("sse", "", "AES256", "aws:kms"))
	p.opts.SSEKMSKeyID = q.String("sse_kms_key_id")
	switch q.Choice("request_checksum_calculation", "", "when_supported", "when_required") {
	case "when_supported":
		p.reqChecksum = aws.RequestChecksumCalculationWhenSupported
	case "when_required":
		p.reqChecksum = aws.RequestChecksumCalculationWhenRequired
	}
	switch q.Choice("response_checksum_validation", "", "when_supported", "when_required") {
	case "when_supported":
		p.resChecksum = aws.ResponseChecksumValidationWhenSupported
	case "when_required":
		p.resChecksum = aws.ResponseChecksumValidationWhenRequired
	}
	if err := awsconf.Finish(q, &p.aws, plainHTTP); err != nil {
		return nil, err
	}
	return p, nil
}

// openURL is the certcache.Backend Open func for s3://.
func openURL(ctx context.Context, u *url.URL) (ccdriver.Driver, error) {
	p, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	d, err := newDriver(nil, p.bucket, p.opts) // check the prefix and SSE first
	if err != nil {
		return nil, err
	}
	if d.client, d.closeIdle, err = p.newClient(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// newClient builds the S3 client from the SDK's default configuration chain,
// and a func that closes its idle connections. It reads the environment and
// the shared configuration files, nothing else.
func (p *urlParams) newClient(ctx context.Context) (*s3.Client, func(), error) {
	var extra []func(*config.LoadOptions) error
	if p.reqChecksum != 0 {
		extra = append(extra, config.WithRequestChecksumCalculation(p.reqChecksum))
	}
	if p.resChecksum != 0 {
		extra = append(extra, config.WithResponseChecksumValidation(p.resChecksum))
	}
	cfg, closeIdle, err := awsconf.Load(ctx, p.aws, extra...)
	if err != nil {
		return nil, nil, err
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if p.aws.Endpoint != "" {
			o.BaseEndpoint = aws.String(p.aws.Endpoint)
		}
		if p.pathStyle {
			o.UsePathStyle = true
		}
		// The SDK logs every Get of an object stored without a checksum
		// (by an upload with when_required, by a server that keeps none)
		// to stderr; a cache reads such objects on every handshake.
		o.DisableLogOutputChecksumValidationSkipped = true
		if o.Retryer != nil { // set by the SDK before our options run
			o.Retryer = awsconf.RefusedFailsFast(o.Retryer)
		}
	})
	return client, closeIdle, nil
}
