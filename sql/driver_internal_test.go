package sqlcache

import (
	"context"
	"errors"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// scriptConn answers exec with its errors in turn, then nil.
type scriptConn struct {
	errs  []error
	calls int
}

func (c *scriptConn) value(context.Context, string, string) ([]byte, error) { return nil, nil }
func (c *scriptConn) close() error                                          { return nil }
func (c *scriptConn) exec(context.Context, string, ...any) error {
	c.calls++
	if len(c.errs) == 0 {
		return nil
	}
	err := c.errs[0]
	c.errs = c.errs[1:]
	return err
}

// TestDeadlockRetry: a statement InnoDB rolled back as a deadlock victim
// runs again (the conformance suite's concurrent upserts and deletes of one
// key meet such deadlocks now and then), a bounded number of times; other
// errors are not retried.
func TestDeadlockRetry(t *testing.T) {
	deadlock := &mysql.MySQLError{Number: 1213, Message: "Deadlock found"}
	denied := &mysql.MySQLError{Number: 1142, Message: "denied"}
	for _, tc := range []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   error
	}{
		{"TwoDeadlocks", []error{deadlock, deadlock}, 3, nil},
		{"Endless", []error{deadlock, deadlock, deadlock, deadlock, deadlock, deadlock, deadlock}, maxRetries, deadlock},
		{"Denied", []error{denied, denied}, 1, denied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &scriptConn{errs: tc.errs}
			dr, err := newDriver(mysqlDialect, c, "", false)
			if err != nil {
				t.Fatal(err)
			}
			err = dr.Put(context.Background(), "example.com", []byte("v"))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Put = %v, want %v", err, tc.wantErr)
			}
			if c.calls != tc.wantCalls {
				t.Errorf("%d statements ran, want %d", c.calls, tc.wantCalls)
			}
		})
	}
}
