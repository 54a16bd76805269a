package testenv

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Credentials the DynamoDB tests hand to the AWS SDK. dynalite checks that
// requests are signed but not with which key, so the secret protects
// nothing; the tests still check that no error reveals it.
const (
	DynamoDBKeyID  = "certcache-test"
	DynamoDBSecret = "dynalite-s3cr3t-7c2e41b9"
)

// DynamoDB starts dynalite (image "dynalite"), a DynamoDB emulator, and
// returns it with its endpoint, http://127.0.0.1:PORT. It holds no table:
// the tests create theirs, as a deployment would. dynalite keeps its tables
// in memory, so Stop and Restart lose them.
func DynamoDB(t testing.TB) (*Server, string) {
	t.Helper()
	s := Start(t, Spec{
		Image: "dynalite",
		Ports: 1,
		Cmd:   func(s *Server) []string { return []string{s.Port(0), s.Bind} },
		Ready: dynamoDBReady,
	})
	return s, "http://" + s.Addr(0)
}

// dynamoDBReady asks for the list of tables, unsigned: dynalite answers
// with a JSON error once it serves requests.
func dynamoDBReady(ctx context.Context, s *Server) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.Addr(0)+"/", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-amz-json") {
		return fmt.Errorf("dynalite answered %s, %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return nil
}
