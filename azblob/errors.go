package azblob

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/redact"
)

// azError is an SDK error with a message of our own: one line, no request
// URL query (where a SAS token travels), no secret. Its chain still holds
// the SDK's error, so errors.As finds *azcore.ResponseError and
// bloberror.HasCode works, and a certcache sentinel when one applies.
type azError struct {
	msg  string
	kind error // certcache.ErrUnavailable or nil
	err  error
}

func (e *azError) Error() string { return e.msg }

func (e *azError) Unwrap() []error {
	if e.kind != nil {
		return []error{e.kind, e.err}
	}
	return []error{e.err}
}

// wrap turns an SDK error into an azError. The chain keeps the cause, so
// errors.Is(err, context.DeadlineExceeded) and the like still hold.
func (d *driver) wrap(err error) error {
	if err == nil {
		return nil
	}
	e := &azError{err: err}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		e.msg = d.describe(re)
		switch {
		case re.StatusCode == http.StatusServiceUnavailable, re.StatusCode == http.StatusGatewayTimeout,
			bloberror.HasCode(err, bloberror.ServerBusy, bloberror.OperationTimedOut):
			e.kind = certcache.ErrUnavailable
		}
	} else {
		e.msg = err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			// net/http quotes the whole request URL, SAS token included.
			e.msg = strings.ReplaceAll(e.msg, ue.URL, withoutQuery(ue.URL))
		}
	}
	e.msg = redact.String(e.msg, d.secrets)
	return e
}

// describe says what an error response means, naming the container where
// the mistake is likely to be there.
func (d *driver) describe(re *azcore.ResponseError) string {
	code := re.ErrorCode
	if code == "" {
		code = http.StatusText(re.StatusCode)
	}
	msg := fmt.Sprintf("azure: %s (HTTP %d)", code, re.StatusCode)
	switch bloberror.Code(re.ErrorCode) {
	case bloberror.ContainerNotFound:
		msg += fmt.Sprintf(": container %q does not exist; create it, or add create_container=true to the URL (Options.CreateContainer)", d.container)
	case bloberror.AuthenticationFailed, bloberror.AuthorizationFailure, bloberror.AuthorizationPermissionMismatch,
		bloberror.InvalidAuthenticationInfo, bloberror.NoAuthenticationInformation:
		msg += ": the credentials were refused; check the account key, SAS token or identity and its role on the account"
	default:
		if re.StatusCode == http.StatusForbidden {
			msg += ": access denied"
		}
	}
	return msg
}

// withoutQuery returns rawURL without its query, which may hold a SAS token.
func withoutQuery(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(URL withheld)"
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	u.User = nil
	return u.String()
}

// isStatus reports whether err is an error response with HTTP status code.
func isStatus(err error, code int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}

// hasCode is bloberror.HasCode for one code, without its allocation
// (HasCode's errors.As target escapes, on every call, a nil error's too):
// a Get tests its error once on a hit and twice on a miss. It finds the
// first *azcore.ResponseError in err's chain or tree, in the order
// errors.As searches it.
func hasCode(err error, code bloberror.Code) bool {
	re := responseError(err)
	return re != nil && re.ErrorCode == string(code)
}

func responseError(err error) *azcore.ResponseError {
	switch e := err.(type) {
	case nil:
		return nil
	case *azcore.ResponseError:
		return e
	case interface{ Unwrap() error }:
		return responseError(e.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range e.Unwrap() {
			if re := responseError(e); re != nil {
				return re
			}
		}
	}
	return nil
}
