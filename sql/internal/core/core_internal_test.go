package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	sqlcache "github.com/certcache/certcache/sql"
	"golang.org/x/crypto/acme/autocert"
)

// scriptConn answers exec with its errors in turn, then nil.
type scriptConn struct {
	errs  []error
	calls int
}

func (c *scriptConn) Value(context.Context, string, []any) ([]byte, error) { return nil, nil }
func (c *scriptConn) Close() error                                         { return nil }
func (c *scriptConn) Exec(context.Context, string, ...any) (int64, error) {
	c.calls++
	if len(c.errs) == 0 {
		return 1, nil
	}
	err := c.errs[0]
	c.errs = c.errs[1:]
	return 0, err
}
func (c *scriptConn) Query(context.Context, string, []any, func(func(...any) error) error) error {
	return errors.New("scriptConn: query")
}

// TestDeadlockRetry: a statement the server rolled back as a deadlock victim
// runs again (the conformance suite's concurrent upserts and deletes of one
// key meet such deadlocks now and then), a bounded number of times; other
// errors are not retried.
func TestDeadlockRetry(t *testing.T) {
	deadlock := errors.New("deadlock found")
	denied := errors.New("denied")
	dialect := &Dialect{
		Name: "test", Quote: '"', Put: "PUT", Param: func(int) string { return "?" }, List: "%[5]s",
		NoTable:    func(error) bool { return false },
		CreateRace: func(error) bool { return false },
		Classify:   func(err error) error { return err },
		Retry:      func(err error) bool { return err == deadlock }, //nolint:errorlint // the test's own value
	}
	for _, tc := range []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   error
	}{
		{"TwoDeadlocks", []error{deadlock, deadlock}, 3, nil},
		{"Endless", []error{deadlock, deadlock, deadlock, deadlock, deadlock, deadlock, deadlock}, MaxRetries, deadlock},
		{"Denied", []error{denied, denied}, 1, denied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &scriptConn{errs: tc.errs}
			dr, err := NewDriver(dialect, c, "", false)
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

// TestKeyRange: every valid key that begins with the prefix lies in the
// range keyRange returns, whose bounds are valid UTF-8 (PostgreSQL text);
// a prefix no valid key can begin with gives no range.
func TestKeyRange(t *testing.T) {
	for _, tc := range []struct {
		prefix, lo, hi string
		ok             bool
	}{
		{"", "", "", true},
		{"a", "a", "b", true},
		{"a%_\\", "a%_\\", "a%_]", true},
		{"é", "é", "ê", true},
		{"a\U0010FFFF", "a\U0010FFFF", "b", true},
		{"\U0010FFFF\U0010FFFF", "\U0010FFFF\U0010FFFF", "", true},
		{"x\uD7FF", "x\uD7FF", "x\uE000", true},
		{"ab\xc3", "ab", "ac", true}, // é cut short
		{"\xe2\x82", "", "", true},   // € cut short
		{"a\xff", "", "", false},     // never in UTF-8
		{"a\xc3(", "", "", false},    // a broken character, not a short one
		{"a\x00", "", "", false},     // control characters are refused in keys
		{"a\u0085b", "", "", false},  // C1 control
		{"~", "~", "\x7f", true},     // the bound need not be a valid key
		{"a.example+rsa", "a.example+rsa", "a.example+rsb", true},
	} {
		lo, hi, ok := keyRange(tc.prefix)
		if lo != tc.lo || hi != tc.hi || ok != tc.ok {
			t.Errorf("keyRange(%q) = %q, %q, %v; want %q, %q, %v", tc.prefix, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}

	// Every prefix of every key, cut at every byte, against every key.
	runes := []rune{'a', 'b', '%', '_', '\\', '~', 0xa0, 'é', 0x7ff, 0x800, 0xd7ff, 0xe000, 0xffff, 0x10000, 0x10ffff}
	var keys []string
	for _, r1 := range runes {
		for _, r2 := range runes {
			keys = append(keys, string([]rune{r1, r2}), string([]rune{r1, r2, 'a'}))
		}
	}
	for _, k := range keys {
		for n := 0; n <= len(k); n++ {
			p := k[:n]
			lo, hi, ok := keyRange(p)
			if !ok || !utf8.ValidString(lo) || !utf8.ValidString(hi) {
				t.Fatalf("keyRange(%q) = %q, %q, %v", p, lo, hi, ok)
			}
			for _, other := range keys {
				if strings.HasPrefix(other, p) && (other < lo || hi != "" && other >= hi) {
					t.Errorf("key %q begins with %q but is outside [%q, %q)", other, p, lo, hi)
				}
			}
		}
	}
}

// TestLeaseTable: a lease table's name fits every server's identifier
// limit, is one no cache table can have (checkTable refuses it), and is
// distinct for distinct cache tables, long ones included.
func TestLeaseTable(t *testing.T) {
	seen := map[string]string{}
	long := strings.Repeat("t", 50)
	var tables []string
	for n := 1; n <= maxTableLen; n++ {
		tables = append(tables, strings.Repeat("t", n), strings.Repeat("u", n-1)+"x")
	}
	for i := 0; i < 100; i++ {
		tables = append(tables, fmt.Sprintf("%s%013d", long, i)) // 63 bytes, the first 50 alike
	}
	for _, table := range tables {
		if err := CheckTable(table); err != nil {
			t.Fatalf("test table %q: %v", table, err)
		}
		l := leaseTable(table)
		if len(l) > maxTableLen {
			t.Errorf("leaseTable(%q) = %q, %d bytes", table, l, len(l))
		}
		if CheckTable(l) == nil {
			t.Errorf("leaseTable(%q) = %q, which a cache table may be called", table, l)
		}
		if other, dup := seen[l]; dup {
			t.Errorf("leaseTable(%q) = leaseTable(%q) = %q", table, other, l)
		}
		seen[l] = table
	}
	if got := leaseTable(sqlcache.DefaultTable); got != "autocert_cache$leases" {
		t.Errorf("leaseTable(%q) = %q", sqlcache.DefaultTable, got)
	}
}

// valueConn answers Value with its errors in turn, then a miss.
type valueConn struct {
	scriptConn
	errs []error
}

func (c *valueConn) Value(context.Context, string, []any) ([]byte, error) {
	if len(c.errs) == 0 {
		return nil, autocert.ErrCacheMiss
	}
	err := c.errs[0]
	c.errs = c.errs[1:]
	return nil, err
}

// TestGetMiss: a miss is the bare sentinel, without the dialect's error
// checks (which cost allocations on the path autocert takes most), also
// when the table had to be created first.
func TestGetMiss(t *testing.T) {
	noTable := errors.New("no such table")
	for _, tc := range []struct {
		name      string
		errs      []error
		wantAsked int // calls of NoTable, Retry and Classify
	}{
		{"Miss", nil, 0},
		{"MissAfterCreate", []error{noTable}, 2}, // Retry and NoTable of noTable
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := 0
			dialect := &Dialect{
				Name: "test", Quote: '"', Get: "GET", Param: func(int) string { return "?" }, List: "%[5]s",
				NoTable:    func(err error) bool { asked++; return err == noTable }, //nolint:errorlint // the test's own value
				CreateRace: func(error) bool { return false },
				Classify:   func(err error) error { asked++; return err },
				Retry:      func(error) bool { asked++; return false },
			}
			dr, err := NewDriver(dialect, &valueConn{errs: tc.errs}, "", false)
			if err != nil {
				t.Fatal(err)
			}
			v, err := dr.Get(context.Background(), "example.com")
			if err != autocert.ErrCacheMiss || v != nil { //nolint:errorlint // the contract: the bare sentinel
				t.Errorf("Get = %q, %v; want the bare autocert.ErrCacheMiss", v, err)
			}
			if asked != tc.wantAsked {
				t.Errorf("the dialect was asked %d times about errors, want %d", asked, tc.wantAsked)
			}
		})
	}
}
