// Package keyname maps cache keys to names in stores that give names meaning
// — file systems and object stores — so that no key escapes its directory or
// prefix and distinct keys never share a name.
//
// Encode keeps the characters autocert's keys are made of ([A-Za-z0-9._+-])
// and percent-encodes every other byte, so "example.com+rsa" stays as it is
// (a directory written by autocert.DirCache reads the same) while "a/b"
// becomes "a%2Fb" and "a%2Fb" becomes "a%252Fb". A leading dot is encoded
// too, so "." and ".." never appear. The encoding is injective. A name
// longer than the store allows is shortened to a prefix of the encoding plus
// "~" and the SHA-256 of the key; "~" never occurs in the plain form, so
// the two forms cannot collide.
package keyname

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

const hexDigits = "0123456789ABCDEF"

// hashedLen is the length of the "~<sha256 hex>" suffix of a shortened name.
const hashedLen = 1 + 2*sha256.Size

// MinMax is the smallest max Encode accepts.
const MinMax = hashedLen + 16

// Encode returns the name for key, at most max bytes long (max >= MinMax).
func Encode(key string, max int) string {
	if max < MinMax {
		panic("keyname: max too small")
	}
	if len(key) <= max && isPlain(key) {
		return key // the common case, without allocating
	}
	b := make([]byte, 0, len(key)+8)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if plain(c) && !(i == 0 && c == '.') {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	if len(b) <= max {
		return string(b)
	}
	cut := max - hashedLen
	// Do not cut inside a %XX escape.
	for i := cut - 2; i < cut; i++ {
		if i >= 0 && b[i] == '%' {
			cut = i
		}
	}
	sum := sha256.Sum256([]byte(key))
	b = append(b[:cut], '~')
	return string(hex.AppendEncode(b, sum[:]))
}

// isPlain reports whether Encode leaves key as it is.
func isPlain(key string) bool {
	for i := 0; i < len(key); i++ {
		if !plain(key[i]) || i == 0 && key[i] == '.' {
			return false
		}
	}
	return true
}

func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '+' || c == '-'
}

// Decode reverses Encode for a name Encode produced. For a name that Encode
// shortened (a key too long for max), the key cannot be recovered from the
// name: Decode returns hashed true and key holds only the decoded part
// before the digest; the caller must find the whole key elsewhere (object
// metadata, a side file). A name Encode cannot have produced (a stray file,
// a temporary file) is an error.
func Decode(name string) (key string, hashed bool, err error) {
	if name == "" || name[0] == '.' {
		return "", false, fmt.Errorf("keyname: %q is not an encoded key", name)
	}
	if i := strings.IndexByte(name, '~'); i >= 0 {
		if len(name)-i != hashedLen || !isHex(name[i+1:]) {
			return "", false, fmt.Errorf("keyname: %q is not an encoded key", name)
		}
		name, hashed = name[:i], true
	}
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '%' && i+2 < len(name) && unhex(name[i+1]) >= 0 && unhex(name[i+2]) >= 0:
			b = append(b, byte(unhex(name[i+1])<<4|unhex(name[i+2])))
			i += 2
		case plain(c):
			b = append(b, c)
		default:
			return "", false, fmt.Errorf("keyname: %q is not an encoded key", name)
		}
	}
	return string(b), hashed, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}
