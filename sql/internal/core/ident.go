package core

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/certcache/certcache"
)

// maxTableLen is the longest table name: PostgreSQL truncates identifiers
// beyond 63 bytes (MySQL allows 64), and a silently truncated name would
// share a table with another.
const maxTableLen = 63

// checkTable reports whether name may be used as a table name: 1 to 63
// bytes of ASCII letters, digits, '_' and '-', starting with a letter or
// '_'. A schema-qualified name ("s.t") is refused: choose the schema or
// database with the connection (PostgreSQL's search_path, MySQL's database).
// Nothing else reaches SQL, so no name can close its quotes and inject.
func CheckTable(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: table name is empty", certcache.ErrInvalidURL)
	case len(name) > maxTableLen:
		return fmt.Errorf("%w: table name is %d bytes, limit %d", certcache.ErrInvalidURL, len(name), maxTableLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && (c == '-' || '0' <= c && c <= '9')
		if !ok {
			return fmt.Errorf("%w: table name %q: want letters, digits, '_' and '-', starting with a letter or '_'", certcache.ErrInvalidURL, name)
		}
	}
	return nil
}

// quoteIdent quotes a checked name as an identifier with q as the quote
// character ('"' for PostgreSQL and SQLite, '`' for MySQL), doubling any
// quote inside, as both dialects define it.
func quoteIdent(name string, q byte) string {
	s := string(q)
	return s + strings.ReplaceAll(name, s, s+s) + s
}

// leaseSuffix ends the name of a cache table's lease table. checkTable
// never accepts a '$', so no cache table, of this namespace or of another,
// can have a lease table's name: leases and cache keys never share a table.
// PostgreSQL and MySQL even accept '$' in unquoted identifiers, so a person
// can type autocert_cache$leases in psql or mysql as it is.
const leaseSuffix = "$leases"

// leaseTable returns the name of the table that holds table's leases:
// table + "$leases" while that fits in maxTableLen bytes, and otherwise the
// first 39 bytes of table, '$', 16 hex digits of table's SHA-256 and
// "$leases" (63 bytes). The long form has two '$' and the short form one,
// so they never meet; two long tables share a lease table only if their
// first 39 bytes and 64 bits of their hashes agree.
func leaseTable(table string) string {
	if len(table)+len(leaseSuffix) <= maxTableLen {
		return table + leaseSuffix
	}
	sum := sha256.Sum256([]byte(table))
	h := hex.EncodeToString(sum[:8])
	return table[:maxTableLen-len(leaseSuffix)-1-len(h)] + "$" + h + leaseSuffix
}
