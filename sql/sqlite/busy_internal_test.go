package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

// TestSQLiteBusy: the retry predicate knows a real SQLITE_BUSY from
// modernc's driver (a connection without busy_timeout meeting another's
// exclusive transaction) and nothing else.
func TestSQLiteBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	ctx := context.Background()
	a, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.Exec(`CREATE TABLE t (k TEXT)`); err != nil {
		t.Fatal(err)
	}
	tx, err := a.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO t VALUES ('x')`); err != nil {
		t.Fatal(err)
	}
	_, err = b.Exec(`INSERT INTO t VALUES ('y')`)
	if err == nil {
		t.Fatal("a second writer got in during another's write transaction")
	}
	if !sqliteBusy(err) {
		t.Errorf("sqliteBusy(%v) = false, want true", err)
	}
	if !sqliteBusy(fmt.Errorf("get: %w", err)) {
		t.Errorf("sqliteBusy of a wrapped SQLITE_BUSY = false")
	}
	if _, err := b.Exec(`SELECT * FROM missing`); err == nil || sqliteBusy(err) {
		t.Errorf("sqliteBusy(%v) = true for a missing table", err)
	}
	if sqliteBusy(errors.New("database is locked")) || sqliteBusy(nil) {
		t.Error("sqliteBusy matched an error without a code")
	}
}
