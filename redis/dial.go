package redis

import (
	"context"
	"errors"
	"net"
	"syscall"

	"github.com/certcache/certcache"
	goredis "github.com/redis/go-redis/v9"
)

// A refused connection means nothing listens at the address: the server is
// stopped or restarting, which takes seconds, not the fraction of a second
// go-redis spends retrying. By default it dials five times 100 ms apart
// (DialerRetries) for each of its four attempts at a command (MaxRetries),
// so a stopped server took about 1.7 s to report. Clients opened from a URL
// therefore dial once per attempt (dialer_retries defaults to 1 here) and
// report a refusal at once: refusedHook hides the refusal from go-redis's
// retry test. Other dial failures (a timeout, an unreachable network, a
// reset) are still retried MaxRetries times with go-redis's backoff.

// defaultDialerRetries is DialerRetries for clients opened from a URL that
// does not set dialer_retries: go-redis's command retries already redial,
// so a second loop of retries inside each dial only multiplies the wait.
const defaultDialerRetries = 1

// refusedHook is a go-redis hook that makes a refused dial final.
type refusedHook struct{}

var _ goredis.Hook = refusedHook{}

// DialHook turns a refused dial's error into a *refusedError.
func (refusedHook) DialHook(next goredis.DialHook) goredis.DialHook { return refuseFast(next) }

// refuseFast wraps a dialer so that a refused dial fails with a
// *refusedError.
func refuseFast(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			return nil, &refusedError{err: err}
		}
		return conn, err
	}
}

// ProcessHook leaves commands alone.
func (refusedHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

// ProcessPipelineHook leaves pipelines alone.
func (refusedHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// refusedError is a refused dial. go-redis retries any error that unwraps
// to a *net.OpError or a net.Error, so refusedError has no Unwrap; instead
// errors.Is finds certcache.ErrUnavailable and whatever the dial error
// matches (syscall.ECONNREFUSED), and its message is the dial error's.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }

// Is reports whether target is certcache.ErrUnavailable or matches the dial
// error.
func (e *refusedError) Is(target error) bool {
	return target == certcache.ErrUnavailable || errors.Is(e.err, target)
}

// failFast applies the dial policy above to a client made from a URL. A
// failover client is handled before it is made, by failoverDialer.
func failFast(c goredis.UniversalClient) {
	switch c := c.(type) {
	case *goredis.ClusterClient:
		// A cluster client dials through its node clients, made as the
		// cluster is discovered; no node exists before the first command.
		c.OnNewNode(func(n *goredis.Client) { n.AddHook(refusedHook{}) })
	default:
		c.AddHook(refusedHook{})
	}
}

// failoverDialer is the Dialer of a failover client made from a URL. Such a
// client asks the sentinels for the master through sentinel clients of its
// own, which take no hooks but use the failover options' Dialer, as does
// the dial of the master; so the policy goes into the Dialer, which dials
// as go-redis's default would (the same timeout, TLS and keep-alive).
func failoverDialer(o *goredis.FailoverOptions) goredis.DialHook {
	return refuseFast(goredis.NewDialer(&goredis.Options{DialTimeout: max(o.DialTimeout, 0), TLSConfig: o.TLSConfig}))
}
