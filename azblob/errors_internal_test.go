package azblob

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/certcache/certcache"
)

// TestHasCode: hasCode answers as bloberror.HasCode for errors as the
// driver sees them (the SDK's, wrapped, in an azError's tree, joined),
// without allocating (but for what an azError's Unwrap makes).
func TestHasCode(t *testing.T) {
	notFound := &azcore.ResponseError{ErrorCode: string(bloberror.BlobNotFound), StatusCode: 404}
	noContainer := &azcore.ResponseError{ErrorCode: string(bloberror.ContainerNotFound), StatusCode: 404}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"Nil", nil},
		{"Other", context.DeadlineExceeded},
		{"ResponseError", notFound},
		{"OtherCode", noContainer},
		{"Wrapped", fmt.Errorf("get: %w", notFound)},
		{"AzError", &azError{msg: "m", kind: certcache.ErrUnavailable, err: notFound}},
		{"JoinedFirstWins", errors.Join(context.Canceled, noContainer, notFound)},
		{"JoinedWrapped", errors.Join(context.Canceled, fmt.Errorf("x: %w", notFound))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, code := range []bloberror.Code{bloberror.BlobNotFound, bloberror.ContainerNotFound} {
				if got, want := hasCode(tc.err, code), bloberror.HasCode(tc.err, code); got != want {
					t.Errorf("hasCode(%v, %s) = %v, bloberror.HasCode says %v", tc.err, code, got, want)
				}
			}
			if _, ok := tc.err.(*azError); ok {
				return
			}
			if n := testing.AllocsPerRun(100, func() { hasCode(tc.err, bloberror.BlobNotFound) }); n != 0 {
				t.Errorf("hasCode allocates %v times", n)
			}
		})
	}
}
