package azblob

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
)

// TestShouldRetry: a refused connection is final; everything the SDK
// retries by default is still retried.
func TestShouldRetry(t *testing.T) {
	dialErr := func(errno syscall.Errno) error {
		return &url.Error{Op: "Get", URL: "http://127.0.0.1:1/acct", Err: &net.OpError{
			Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno),
		}}
	}
	for _, tc := range []struct {
		name   string
		status int
		err    error
		want   bool
	}{
		{"refused", 0, dialErr(syscall.ECONNREFUSED), false},
		{"reset", 0, dialErr(syscall.ECONNRESET), true},
		{"timeout", 0, &url.Error{Op: "Get", URL: "u", Err: os.ErrDeadlineExceeded}, true},
		{"other transport error", 0, errors.New("tls: handshake failure"), true},
		{"408", http.StatusRequestTimeout, nil, true},
		{"429", http.StatusTooManyRequests, nil, true},
		{"500", http.StatusInternalServerError, nil, true},
		{"502", http.StatusBadGateway, nil, true},
		{"503", http.StatusServiceUnavailable, nil, true},
		{"504", http.StatusGatewayTimeout, nil, true},
		{"200", http.StatusOK, nil, false},
		{"403", http.StatusForbidden, nil, false},
		{"404", http.StatusNotFound, nil, false},
		{"409", http.StatusConflict, nil, false},
		{"412", http.StatusPreconditionFailed, nil, false},
	} {
		var resp *http.Response
		if tc.err == nil {
			resp = &http.Response{StatusCode: tc.status}
		}
		if got := shouldRetry(resp, tc.err); got != tc.want {
			t.Errorf("%s: shouldRetry = %v, want %v", tc.name, got, tc.want)
		}
	}
}
