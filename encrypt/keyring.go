package encrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// ErrKey is wrapped by every error about loading or parsing a key.
var ErrKey = errors.New("bad encryption key")

// idLabel separates key ids from any other hash of the same key.
const idLabel = "certcache/encrypt key id v1\x00"

// Keyring holds the keys of an encrypting cache: the primary key, which
// seals every new value, and older keys, which only open values sealed
// before a rotation. A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	primary *aeadKey
	keys    []*aeadKey // primary first
}

type aeadKey struct {
	id   [idLen]byte
	aead cipher.AEAD
}

// NewKeyring returns a Keyring that seals with primary and opens with
// primary or any of older. Each key must be KeySize bytes; the keyring
// keeps no reference to the slices. Keys given twice are kept once.
func NewKeyring(primary []byte, older ...[]byte) (*Keyring, error) {
	kr := &Keyring{}
	for i, raw := range append([][]byte{primary}, older...) {
		if len(raw) != KeySize {
			what := "primary key"
			if i > 0 {
				what = fmt.Sprintf("older key #%d", i)
			}
			return nil, fmt.Errorf("%w: %s is %d bytes, want %d", ErrKey, what, len(raw), KeySize)
		}
		k, err := newAEADKey(raw)
		if err != nil {
			return nil, err
		}
		if kr.has(k.id) {
			continue
		}
		kr.keys = append(kr.keys, k)
	}
	kr.primary = kr.keys[0]
	return kr, nil
}

func newAEADKey(raw []byte) (*aeadKey, error) {
	b, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	a, err := cipher.NewGCMWithRandomNonce(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	k := &aeadKey{aead: a}
	k.id = keyID(raw)
	return k, nil
}

func keyID(raw []byte) [idLen]byte {
	h := sha256.New()
	h.Write([]byte(idLabel))
	h.Write(raw)
	var id [idLen]byte
	copy(id[:], h.Sum(nil))
	return id
}

// KeyID returns the id that sealed values carry for key, in hex: the first
// 8 bytes of SHA-256 over a fixed label and the key. Operators can match it
// with the ids that decryption errors name.
func KeyID(key []byte) string {
	id := keyID(key)
	return hex.EncodeToString(id[:])
}

// PrimaryID returns the id of the key that seals new values, in hex.
func (kr *Keyring) PrimaryID() string { return hex.EncodeToString(kr.primary.id[:]) }

// IDs returns the ids of every key in the keyring, primary first, in hex.
func (kr *Keyring) IDs() []string {
	ids := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		ids[i] = hex.EncodeToString(k.id[:])
	}
	return ids
}

func (kr *Keyring) has(id [idLen]byte) bool { return len(kr.byID(id)) > 0 }

// byID returns the keys with id: one, in practice.
func (kr *Keyring) byID(id [idLen]byte) []*aeadKey {
	var ks []*aeadKey
	for _, k := range kr.keys {
		if k.id == id {
			ks = append(ks, k)
		}
	}
	return ks
}

func (kr *Keyring) describe() string { return strings.Join(kr.IDs(), ", ") }

// LoadKeyring loads the primary key and older keys from references (see
// LoadKey) and returns their Keyring.
func LoadKeyring(primary string, older ...string) (*Keyring, error) {
	raws := make([][]byte, 0, 1+len(older))
	defer func() {
		for _, r := range raws {
			clear(r)
		}
	}()
	for _, ref := range append([]string{primary}, older...) {
		raw, err := LoadKey(ref)
		if err != nil {
			return nil, err
		}
		raws = append(raws, raw)
	}
	return NewKeyring(raws[0], raws[1:]...)
}

// LoadKey reads a key from where ref says:
//
//	env:NAME   the environment variable NAME
//	file:PATH  the file PATH
//
// The content is the key's 32 bytes, raw or in base64 (standard or URL
// alphabet, padded or not, surrounded by optional white space). 32
// printable characters are refused: that is a password or a hex string,
// not 256 random bits. Errors wrap
// ErrKey, name the variable or file, and never show the content. A ref in
// any other form is refused without repeating it, since it may be a key
// pasted where its location belongs.
func LoadKey(ref string) ([]byte, error) {
	source, where, ok := strings.Cut(ref, ":")
	if !ok || (source != "env" && source != "file") {
		return nil, fmt.Errorf("%w: a key reference must be env:NAME or file:PATH, naming where the key is, "+
			"not holding it (the value given is not shown)", ErrKey)
	}
	if where == "" {
		// Not "env:" in the message: certcache.Open redacts the value.
		return nil, fmt.Errorf("%w: the %s is missing", ErrKey, map[string]string{"env": "environment variable's name", "file": "file's path"}[source])
	}
	var content []byte
	var what string
	switch source {
	case "env":
		what = "environment variable " + where
		v, ok := os.LookupEnv(where)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not set", ErrKey, what)
		}
		content = []byte(v)
	case "file":
		what = "file " + where
		b, err := os.ReadFile(where)
		if err != nil {
			// The *PathError names the path and the cause, never content.
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		content = b
	}
	defer clear(content)
	raw, err := parseKey(content)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrKey, what, err)
	}
	return raw, nil
}

// parseKey accepts exactly KeySize raw bytes, or the base64 of KeySize
// bytes. Its errors describe lengths only.
func parseKey(b []byte) ([]byte, error) {
	if len(b) == KeySize {
		if isText(b) {
			// 32 random bytes are all printable with probability 1e-14:
			// this is a password or a hex string, not a key.
			return nil, fmt.Errorf("%d characters of text, not a raw key (a 256-bit key: openssl rand -base64 32)", len(b))
		}
		return bytes.Clone(b), nil
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return nil, errors.New("empty")
	}
	s := strings.TrimRight(string(t), "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		raw, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(raw) != KeySize {
			clear(raw)
			return nil, fmt.Errorf("base64 of %d bytes, want %d (a 256-bit key: openssl rand -base64 32)", len(raw), KeySize)
		}
		return raw, nil
	}
	return nil, fmt.Errorf("%d bytes that are neither a raw %d-byte key nor base64 (a 256-bit key: openssl rand -base64 32)", len(b), KeySize)
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
