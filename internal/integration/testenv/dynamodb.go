package testenv

import (
	"context"
	"fmt"
	"io"
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

// DynamoDBTable is the table DynamoDB creates.
const DynamoDBTable = "certcache"

// DynamoDB starts dynalite (image "dynalite"), a DynamoDB emulator, with
// the table DynamoDBTable, and returns it with its endpoint,
// http://127.0.0.1:PORT. dynalite keeps its tables in memory, so Stop and
// Restart lose them: CreateDynamoDBTable makes it again, as an operator
// would.
func DynamoDB(t testing.TB) (*Server, string) {
	t.Helper()
	s := Start(t, Spec{
		Image: "dynalite",
		Ports: 1,
		Cmd:   func(s *Server) []string { return []string{s.Port(0), s.Bind} },
		Ready: dynamoDBReady,
	})
	endpoint := "http://" + s.Addr(0)
	CreateDynamoDBTable(t, endpoint, DynamoDBTable)
	return s, endpoint
}

// CreateDynamoDBTable creates table name on the dynalite at endpoint with
// the key schema the dynamodb backend documents: partition key "pk" and
// sort key "sk", both strings. The request is not signed for real: dynalite
// checks that a signature is there, not what it is.
func CreateDynamoDBTable(t testing.TB, endpoint, name string) {
	t.Helper()
	body := fmt.Sprintf(`{"TableName":%q,"BillingMode":"PAY_PER_REQUEST",`+
		`"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"S"}],`+
		`"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}]}`, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := dynamoDBCall(ctx, endpoint, "CreateTable", body)
	if err != nil {
		t.Fatalf("creating DynamoDB table %s: %v", name, err)
	}
	if resp != http.StatusOK {
		t.Fatalf("creating DynamoDB table %s: dynalite answered %d", name, resp)
	}
}

// dynamoDBCall posts a DynamoDB JSON request with a placeholder signature
// and returns the status.
func dynamoDBCall(ctx context.Context, endpoint, op, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+DynamoDBKeyID+"/20000101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// dynamoDBReady lists the tables: dynalite answers once it serves requests.
func dynamoDBReady(ctx context.Context, s *Server) error {
	status, err := dynamoDBCall(ctx, "http://"+s.Addr(0), "ListTables", "{}")
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("dynalite answered %d", status)
	}
	return err
}
