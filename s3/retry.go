package s3

import (
	"context"
	"errors"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// refusedFailsFast wraps the SDK's retryer so that a refused connection is
// not retried. The SDK retries it on purpose ("the service may not yet be
// running on the port"), with backoff: with the default three attempts, a
// stopped server took about 3.4 s to report, and a cache whose store is down
// should say so at once (the caller, autocert, retries on the next
// handshake anyway). Everything else — throttling, 5xx answers, reset
// connections, timeouts — is retried as the SDK is configured to.
type refusedFailsFast struct {
	aws.RetryerV2
}

func newRefusedFailsFast(r aws.Retryer) aws.RetryerV2 {
	v2, ok := r.(aws.RetryerV2)
	if !ok {
		v2 = retryerV2{r}
	}
	return refusedFailsFast{v2}
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
