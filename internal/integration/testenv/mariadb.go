package testenv

import (
	"context"
	"net/url"
	"testing"
	"time"
)

// MariaDB test users (see images/mariadb/init.sql): MariaDBUser owns the
// database "certcache"; MariaDBLimitedUser may connect to it and read one
// unrelated table only.
const (
	MariaDBUser            = "certcache"
	MariaDBPassword        = "s3cr3t-my-pw"
	MariaDBLimitedUser     = "limited"
	MariaDBLimitedPassword = "limited-my-pw"
	// MariaDBSpecialUser owns certcache too; its password needs escaping in a URL.
	MariaDBSpecialUser     = "special"
	MariaDBSpecialPassword = "p@ss:w/rd?#%&=() x"
)

// MariaDB starts MariaDB (image "mariadb": Debian's mariadb-server, with
// max_allowed_packet=64M) and returns it with the URL
// mysql://certcache:PASSWORD@127.0.0.1:PORT/certcache.
func MariaDB(t testing.TB) (*Server, string) {
	t.Helper()
	s := Start(t, Spec{
		Image: "mariadb",
		Cmd:   func(s *Server) []string { return []string{"mariadb-start", s.Port(0), s.Bind} },
		Ready: func(ctx context.Context, s *Server) error {
			_, err := s.TryExec("mariadb", "-h", "127.0.0.1", "-P", s.Port(0), "-u", MariaDBUser,
				"-p"+MariaDBPassword, "-e", "SELECT 1", "certcache")
			return err
		},
		StartupTimeout: 2 * time.Minute,
	})
	return s, MariaDBUserURL(s, MariaDBUser, MariaDBPassword)
}

// MariaDBUserURL returns the URL of database certcache on s for a user.
func MariaDBUserURL(s *Server, user, password string) string {
	u := url.URL{Scheme: "mysql", User: url.UserPassword(user, password), Host: s.Addr(0), Path: "/certcache"}
	return u.String()
}

// MariaDBURL returns CERTCACHE_TEST_MARIADB_URL if set, else the URL of a
// new MariaDB container.
func MariaDBURL(t testing.TB) string {
	t.Helper()
	if u := ExternalURL("mariadb"); u != "" {
		return u
	}
	_, u := MariaDB(t)
	return u
}
