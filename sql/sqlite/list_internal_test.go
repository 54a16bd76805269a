package sqlite

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"testing"

	"github.com/certcache/certcache/sql/internal/core"
)

// countConn counts the queries a conn runs.
type countConn struct {
	core.Conn
	queries int
}

func (c *countConn) Query(ctx context.Context, q string, args []any, row func(func(...any) error) error) error {
	c.queries++
	return c.Conn.Query(ctx, q, args, row)
}

// TestListPages: a listing reads core.ListPage keys a statement, continuing
// after the last key (no key twice, none left out), stops reading when the
// caller stops, and ends with the context's error when it ends.
func TestListPages(t *testing.T) {
	ctx := context.Background()
	d, err := open(ctx, &url.URL{Scheme: "sqlite", Path: filepath.Join(t.TempDir(), "pages.db")})
	if err != nil {
		t.Fatal(err)
	}
	dr := d.(*core.Driver)
	defer dr.Close()
	cc := &countConn{Conn: dr.Conn}
	dr.Conn = cc
	// 2P+1 keys under "k" (three pages), P under "j" (a full last page,
	// which needs one more statement to see the end), and "other".
	const p = core.ListPage
	const n = 2*p + 1
	put := func(k string) {
		if err := dr.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	want, full := make([]string, n), make([]string, p)
	for i := range want {
		want[i] = fmt.Sprintf("k%05d", i)
		put(want[i])
	}
	for i := range full {
		full[i] = fmt.Sprintf("j%05d", i)
		put(full[i])
	}
	if err := dr.Put(ctx, "other", nil); err != nil {
		t.Fatal(err)
	}
	statements := func(keys int) int { return keys/p + 1 } // the last page is short, maybe empty
	for _, tc := range []struct {
		prefix  string
		stop    int // stop ranging after this many keys; 0: never
		want    []string
		queries int
	}{
		{"k", 0, want, statements(n)},
		{"", 0, append(append(full[:p:p], want...), "other"), statements(n + p + 1)},
		{"j", 0, full, 2},
		{want[n-1], 0, want[n-1:], 1},
		{"k", 1, want[:1], 1},
		{"k", p + 1, want[:p+1], 2},
	} {
		cc.queries = 0
		var got []string
		for e, err := range dr.List(ctx, tc.prefix) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Size != int64(len(e.Key)) && e.Key != "other" || e.ModTime.IsZero() {
				t.Errorf("%+v: wrong size or no time", e)
			}
			got = append(got, e.Key)
			if len(got) == tc.stop {
				break
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) stopped at %d: %d keys, want %d", tc.prefix, tc.stop, len(got), len(tc.want))
		}
		if cc.queries != tc.queries {
			t.Errorf("List(%q) stopped at %d: %d statements, want %d", tc.prefix, tc.stop, cc.queries, tc.queries)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var last error
	seen := 0
	for _, err := range dr.List(cctx, "k") {
		if err != nil {
			last = err
			continue
		}
		if seen++; seen == core.ListPage {
			cancel()
		}
	}
	if seen != core.ListPage || !errors.Is(last, context.Canceled) {
		t.Errorf("cancelled after %d keys: listed %d, ended with %v", core.ListPage, seen, last)
	}
}
