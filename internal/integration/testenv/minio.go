package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"
)

// Root credentials of every MinIO test server. The password is a secret the
// tests check no error reveals; tests hand both to the AWS SDK through
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, as a deployment would.
const (
	MinIOUser     = "certcache-root"
	MinIOPassword = "minio-s3cr3t-0f9a27c1"
)

// MinIO starts a MinIO server (image "minio") with no bucket and returns it
// with its S3 endpoint, http://127.0.0.1:PORT. The server's data lives in the
// container, so it survives Stop and Restart.
//
// Inside the container, mc reaches the server under the alias "local":
//
//	s.Exec(t, "mc", "mb", "local/mybucket")
func MinIO(t testing.TB) (*Server, string) {
	t.Helper()
	return minio(t, nil, nil)
}

// MinIOKMSKey is the name of the KMS key of a server started by MinIOKMS.
const MinIOKMSKey = "certcache-test-key"

// MinIOKMS is MinIO with a built-in KMS key, MinIOKMSKey, so that objects can
// be stored with server-side encryption (SSE-S3 and SSE-KMS).
func MinIOKMS(t testing.TB) (*Server, string) {
	t.Helper()
	return minio(t, map[string]string{
		// NAME:base64 of 32 bytes; a fixed test key, protecting nothing.
		"MINIO_KMS_SECRET_KEY": MinIOKMSKey + ":" + base64.StdEncoding.EncodeToString([]byte("certcache-test-kms-key-32-bytes!")),
	}, nil)
}

// MinIOTLS is MinIO serving HTTPS only, with a certificate for 127.0.0.1
// and localhost issued by ca. It returns the server with its endpoint,
// https://127.0.0.1:PORT.
func MinIOTLS(t testing.TB, ca *CA) (*Server, string) {
	t.Helper()
	return minio(t, nil, ca)
}

func minio(t testing.TB, extraEnv map[string]string, ca *CA) (*Server, string) {
	t.Helper()
	scheme := "http"
	var files map[string][]byte
	if ca != nil {
		scheme = "https"
		cert, key := ca.Issue(t, "127.0.0.1", "localhost")
		files = map[string][]byte{"/tmp/certs/public.crt": cert, "/tmp/certs/private.key": key, "/tmp/certs/CAs/ca.pem": ca.PEM}
		extraEnv = map[string]string{"SSL_CERT_FILE": "/tmp/certs/CAs/ca.pem"} // for mc in the container
	}
	s := Start(t, Spec{
		Image: "minio",
		Ports: 2, // S3 API, then the web console (bound so it takes no random port)
		Files: files,
		Cmd: func(s *Server) []string {
			cmd := []string{"minio", "server", "/tmp/data", "--quiet",
				"--address", s.Bind + ":" + s.Port(0), "--console-address", s.Bind + ":" + s.Port(1)}
			if ca != nil {
				cmd = append(cmd, "--certs-dir", "/tmp/certs")
			}
			return cmd
		},
		Env: func(s *Server) map[string]string {
			env := map[string]string{
				"MINIO_ROOT_USER":     MinIOUser,
				"MINIO_ROOT_PASSWORD": MinIOPassword,
				"MINIO_BROWSER":       "off",
				"MINIO_UPDATE":        "off",
				// mc in the container talks to this server as "local".
				"MC_HOST_local": fmt.Sprintf("%s://%s:%s@127.0.0.1:%s", scheme, MinIOUser, MinIOPassword, s.Port(0)),
			}
			maps.Copy(env, extraEnv)
			return env
		},
		Ready:          func(ctx context.Context, s *Server) error { return minioReady(ctx, s, ca) },
		StartupTimeout: 2 * time.Minute,
	})
	return s, scheme + "://" + s.Addr(0)
}

// minioReady asks MinIO's readiness probe, which answers 200 once the server
// serves S3 requests.
func minioReady(ctx context.Context, s *Server, ca *CA) error {
	scheme, client := "http", http.DefaultClient
	if ca != nil {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(ca.PEM)
		scheme = "https"
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		defer client.CloseIdleConnections()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+s.Addr(0)+"/minio/health/ready", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readiness probe answered %s", resp.Status)
	}
	return nil
}
