package testenv

import (
	"context"
	"net/url"
	"testing"
	"time"
)

// PostgreSQL test users (see images/postgres/pg-start): the database
// "certcache" belongs to PostgresUser; PostgresLimitedUser may connect to it
// but create and read nothing.
const (
	PostgresUser            = "certcache"
	PostgresPassword        = "s3cr3t-pg-pw"
	PostgresLimitedUser     = "limited"
	PostgresLimitedPassword = "limited-pg-pw"
	PostgresSuperPassword   = "pg-super-pw" // of the superuser postgres
	// PostgresSpecialUser may create tables; its password needs escaping in a URL.
	PostgresSpecialUser     = "special"
	PostgresSpecialPassword = "p@ss:w/rd?#%&=() x"
)

// Postgres starts PostgreSQL (image "postgres": Debian's postgresql, run as
// the user postgres, initdb on first start) and returns it with the URL
// postgres://certcache:PASSWORD@127.0.0.1:PORT/certcache?sslmode=disable.
func Postgres(t testing.TB) (*Server, string) {
	t.Helper()
	s := Start(t, Spec{
		Image: "postgres",
		Cmd:   func(s *Server) []string { return []string{"pg-start", s.Port(0), s.Bind} },
		Ready: func(ctx context.Context, s *Server) error {
			_, err := s.TryExec("/usr/local/pgbin/pg_isready", "-q", "-h", "127.0.0.1", "-p", s.Port(0), "-d", "certcache")
			return err
		},
		StartupTimeout: 2 * time.Minute,
	})
	return s, PostgresUserURL(s, PostgresUser, PostgresPassword)
}

// PostgresTLS starts PostgreSQL serving TLS with a certificate for
// 127.0.0.1 and localhost issued by ca, accepting TCP logins only over TLS,
// and returns it with the URL of database certcache for PostgresUser,
// without an sslmode (the test adds it).
func PostgresTLS(t testing.TB, ca *CA) (*Server, string) {
	t.Helper()
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	s := Start(t, Spec{
		Image: "postgres",
		Files: map[string][]byte{"/tls/server.pem": cert, "/tls/server.key": key},
		Cmd:   func(s *Server) []string { return []string{"pg-start", s.Port(0), s.Bind, "tls"} },
		Ready: func(ctx context.Context, s *Server) error {
			_, err := s.TryExec("/usr/local/pgbin/pg_isready", "-q", "-h", "127.0.0.1", "-p", s.Port(0), "-d", "certcache")
			return err
		},
		StartupTimeout: 2 * time.Minute,
	})
	u := url.URL{Scheme: "postgres", User: url.UserPassword(PostgresUser, PostgresPassword), Host: s.Addr(0), Path: "/certcache"}
	return s, u.String()
}

// PostgresUserURL returns the URL of database certcache on s for a user.
func PostgresUserURL(s *Server, user, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: s.Addr(0), Path: "/certcache", RawQuery: "sslmode=disable"}
	return u.String()
}

// PostgresURL returns CERTCACHE_TEST_POSTGRES_URL if set, else the URL of a
// new PostgreSQL container.
func PostgresURL(t testing.TB) string {
	t.Helper()
	if u := ExternalURL("postgres"); u != "" {
		return u
	}
	_, u := Postgres(t)
	return u
}
