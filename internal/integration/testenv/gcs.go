package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
)

// FakeGCS starts fake-gcs-server (image "fake-gcs"), an emulator of Google
// Cloud Storage's JSON API, and returns it with its endpoint,
// http://127.0.0.1:PORT. It serves plain HTTP without authentication, as a
// client pointed at it with STORAGE_EMULATOR_HOST (or certcache's
// endpoint=) expects, and keeps objects in memory. The buckets named are
// created once the server answers, and again after every Restart, which
// loses the objects: readiness is the buckets' creation.
//
// -public-host is the server's own address, so that the client's reads
// (GET http://HOST/BUCKET/OBJECT, the XML API's form) are routed as
// downloads and not as requests for a bucket named after the host.
func FakeGCS(t testing.TB, buckets ...string) (*Server, string) {
	t.Helper()
	return fakeGCS(t, []string{"-backend", "memory"}, buckets)
}

// FakeGCSDurable is FakeGCS with the objects in files on the container's
// disk, so that they survive Stop and Restart, for tests of an outage
// that must lose nothing. That backend of fake-gcs-server falls shorter
// of GCS than the memory one: an object name's segments are file names
// (at most 255 bytes), and a replaced object is briefly missing to
// readers; the conformance suite runs on FakeGCS.
func FakeGCSDurable(t testing.TB, buckets ...string) (*Server, string) {
	t.Helper()
	return fakeGCS(t, []string{"-backend", "filesystem", "-filesystem-root", "/tmp/data"}, buckets)
}

func fakeGCS(t testing.TB, backend, buckets []string) (*Server, string) {
	t.Helper()
	s := Start(t, Spec{
		Image: "fake-gcs",
		Cmd: func(s *Server) []string {
			return append([]string{"-scheme", "http", "-host", s.Bind, "-port", s.Port(0),
				"-public-host", "127.0.0.1:" + s.Port(0), "-log-level", "error"}, backend...)
		},
		Ready: func(ctx context.Context, s *Server) error {
			for _, b := range buckets {
				if err := createGCSBucket(ctx, "http://"+s.Addr(0), b); err != nil {
					return err
				}
			}
			if len(buckets) == 0 {
				return dialAll(ctx, s)
			}
			return nil
		},
	})
	return s, "http://" + s.Addr(0)
}

// createGCSBucket creates bucket through the JSON API; one that exists
// already is fine.
func createGCSBucket(ctx context.Context, endpoint, bucket string) error {
	body := fmt.Sprintf(`{"name":%q}`, bucket)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/storage/v1/b?project=test", bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict {
		return fmt.Errorf("creating bucket %q: %s", bucket, resp.Status)
	}
	return nil
}
