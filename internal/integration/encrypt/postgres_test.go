package encrypt_test

import (
	"context"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/encrypt"
	"github.com/certcache/certcache/internal/integration/testenv"
	_ "github.com/certcache/certcache/sql/mysql"
	_ "github.com/certcache/certcache/sql/postgres"
	_ "github.com/certcache/certcache/sql/sqlite"
	"github.com/jackc/pgx/v5"
)

// TestConformancePostgres runs the suite through the wrapper over a real
// PostgreSQL server (a table per namespace), turned on from the URL alone.
func TestConformancePostgres(t *testing.T) {
	key := newKey(t)
	ref := b64File(t, key)
	base := testenv.PostgresURL(t)
	drivertest.Run(t, drivertest.Harness{
		SealedSizes: true, // listed sizes count the sealing overhead (encrypt.Overhead)
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), base+"&table="+ns+"&timeout=20s&encryption_key="+ref)
		},
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			return certcache.Open(context.Background(),
				"postgres://certcache:"+testenv.PostgresPassword+"@"+testenv.ClosedAddr(t)+"/certcache?sslmode=disable&connect_timeout=1&timeout=3s&encryption_key="+ref)
		},
		BrokenIsUnavailable: true,
		Outage:              testenv.OutageOn(testenv.Postgres, func(u string) string { return u + "&table=outage&timeout=5s&encryption_key=" + ref }),
		Timeout:             20 * time.Second,
		Secrets:             append(keySecrets(key), testenv.PostgresPassword),
	})
}

// TestPostgresAtRest reads the table's rows with pgx directly after Puts
// through the wrapper: no PEM, only sealed values.
func TestPostgresAtRest(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	_, u := testenv.Postgres(t)
	c, err := certcache.Open(ctx, u+"&table=atrest&encryption_key="+b64File(t, key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v := drivertest.CertValue()
	for _, name := range []string{"example.com", "acme_account+key"} {
		if err := c.Put(ctx, name, v); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT "key", "value" FROM atrest ORDER BY "key"`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var name string
		var stored []byte
		if err := rows.Scan(&name, &stored); err != nil {
			t.Fatal(err)
		}
		checkSealed(t, stored, v, encrypt.KeyID(key))
		n++
	}
	if err := rows.Err(); err != nil || n != 2 {
		t.Fatalf("read %d rows, %v; want 2", n, err)
	}
	// No row anywhere in the table holds PEM, whatever its key.
	var plain int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM atrest WHERE position('\x2d2d2d2d2d424547494e'::bytea in "value") > 0`).Scan(&plain); err != nil || plain != 0 {
		t.Errorf("rows holding -----BEGIN: %d, %v", plain, err)
	}
	// Tampering in the database is caught.
	if _, err := conn.Exec(ctx, `UPDATE atrest SET "value" = set_byte("value", 30, get_byte("value", 30) # 1) WHERE "key" = 'example.com'`); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, "example.com")
	wantDecryptErr(t, "row altered in PostgreSQL", err, keySecrets(key))
}
