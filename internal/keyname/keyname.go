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

func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '+' || c == '-'
}
