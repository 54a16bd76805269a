package postgres

import (
	"context"
	"net/url"
	"testing"

	"github.com/certcache/certcache/internal/backendopts"
	"github.com/certcache/certcache/sql/internal/core"
)

// TestPostgresPoolSize: a postgres:// URL's pool holds up to
// ten connections per CPU, as the other backends' do,
// unless pool_max_conns says otherwise. Opening dials nothing.
func TestPostgresPoolSize(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  int32
	}{
		{"", int32(backendopts.MaxConns())},
		{"?pool_max_conns=3", 3},
		{"?pool_max_conns=500&table=t", 500},
	} {
		u, err := url.Parse("postgres://u:p@h/db" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		d, err := open(context.Background(), u)
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		if got := d.(*core.Driver).Conn.(pgConn).pool.Config().MaxConns; got != tc.want {
			t.Errorf("%q: MaxConns = %d, want %d", tc.query, got, tc.want)
		}
		d.Close()
	}
}
