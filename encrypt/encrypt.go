// Package encrypt seals certcache values at rest with AES-256-GCM, above any
// backend. Everything autocert caches holds a private key (a certificate's,
// or the ACME account key under "acme_account+key"); with this package a
// bucket, table, Redis instance or backup holds only ciphertext.
//
// Importing the package lets every backend turn encryption on from its URL:
//
//	import _ "github.com/certcache/certcache/encrypt"
//
//	cache, err := certcache.Open(ctx, "redis://cache.internal:6379/0?encryption_key=env:CERTCACHE_KEY")
//
// Users who build caches in Go call New with a Keyring.
//
// # URLs
//
// These parameters are accepted by every backend's URL; certcache.Open
// removes them before the backend sees them and wraps the backend's cache:
//
//	encryption_key      where the primary key is: env:NAME (an environment
//	                    variable) or file:PATH (a file). Required to turn
//	                    encryption on. New values are sealed with this key.
//	encryption_keys     where older keys are, same forms, comma-separated or
//	                    repeated: values sealed with them still open. Needs
//	                    encryption_key.
//	encryption_migrate  true to read values stored in plaintext before
//	                    encryption was turned on (see Migration). Default false.
//
// A key is 32 bytes (AES-256), stored either raw (exactly 32 bytes, not all
// printable: 32 characters of text are a password, not a key) or in base64
// (standard or URL alphabet, padded or not; surrounding white space, such as
// a file's trailing newline, is ignored). Make one with
//
//	openssl rand -base64 32 > /etc/myapp/cache.key
//
// The URL names where the key is, never the key itself: a value that is not
// env:NAME or file:PATH is refused, and the error does not repeat it. Every
// encryption_keys value is split at commas, so a key file listed there
// must not have a comma in its path.
//
// For example,
//
//	redis://cache:6379/0?encryption_key=file:/run/secrets/k2&encryption_keys=file:/run/secrets/k1
//
// seals every Put with the key in /run/secrets/k2 and opens values sealed
// with either key; a value stored in plaintext is an error (no
// encryption_migrate).
//
// Keys are read once, when the cache is opened.
//
// # Rotation
//
// Sealed values name the key that sealed them, so a keyring may hold
// several keys. To rotate without a moment where some peer cannot read
// what another wrote:
//
//  1. add the new key as an older key on every peer
//     (encryption_key=OLD&encryption_keys=NEW): all peers now open both;
//  2. make it the primary on every peer (encryption_key=NEW&encryption_keys=OLD):
//     new values are sealed with it;
//  3. call Reseal for the names you know (at least "acme_account+key",
//     which autocert never rewrites), or wait until every certificate has
//     been renewed; then drop the old key.
//
// # Format
//
// A sealed value is
//
//	0x89 'C' 'C' 'E'   magic (4 bytes)
//	0x01               format version
//	key id             8 bytes
//	nonce              12 random bytes
//	ciphertext         as long as the value
//	tag                16 bytes
//
// so sealing adds Overhead (41) bytes. The AEAD's associated data is the
// header (magic, version, key id) followed by the cache key: a sealed value
// opens only under the cache key it was written for.
//
// The key id is the first 8 bytes of SHA-256 over a domain-separation label
// and the key. Derived ids need no configuration to keep in step across
// peers (every peer computes the same id from the same key, and a name
// given to two different keys by mistake cannot happen); 64 bits make an
// accidental clash among a handful of keys negligible, and even then
// opening tries every key with that id. The label keeps the id from
// matching any other hash of the key, and a hash of a 256-bit random key
// reveals nothing usable about it. Errors name key ids, never keys.
//
// Nonces are 96 random bits (crypto/cipher.NewGCMWithRandomNonce). A random
// nonce is safe for up to 2^32 seals per key; autocert writes a handful of
// values per domain every couple of months, many orders of magnitude
// fewer, so a nonce collision is not a practical concern.
//
// # Size limit
//
// The backends store values up to certcache.MaxValueSize bytes, and the
// sealed value is Overhead bytes longer than the plaintext. Through this
// package a Put of more than MaxValueSize (certcache.MaxValueSize less
// Overhead) bytes is refused with certcache.ErrTooLarge before anything is
// sent, so the limit is checked once, consistently, for every backend.
// Certificates are a few KiB, far below it.
//
// # Migration
//
// To switch a running deployment to encryption without losing its
// certificates, open with encryption_migrate=true (Options.Migrate). Get
// then returns a stored plaintext value as it is, and every Put seals, so
// each value is sealed the next time autocert writes it (a certificate at
// its renewal; the ACME account key is never rewritten by autocert: call
// Reseal for it, or for all known names, to finish sooner). Turn migration
// off once every value is sealed.
//
// Sealed and plaintext values are told apart by the first byte: every
// sealed value starts with 0x89, which no UTF-8 text starts with (it is a
// continuation byte), while everything autocert stores is text (PEM
// beginning "-----BEGIN", and HTTP-01 key authorizations). So:
//
//   - a value that starts with 0x89 is sealed: it opens, or Get fails with
//     ErrDecrypt; it is never returned as plaintext, migration or not;
//   - otherwise, with migration on, a value that is valid UTF-8 is
//     returned as plaintext;
//   - a value that is neither (binary data without the magic, such as a
//     sealed value whose first bytes were damaged) fails with ErrDecrypt;
//   - with migration off, any value without the magic fails with an error
//     matching both ErrDecrypt and ErrNotSealed.
//
// Migration mode trusts whatever plaintext a writer puts in the store, so
// leave it on only while migrating. Peers running without encryption cannot
// read sealed values (autocert takes a certificate it cannot parse for a
// miss and orders a new one), so switch every peer in one rollout.
//
// # Keys
//
// Cache keys are not encrypted: the backend stores and maps them exactly as
// without encryption, so store readers see the domain names. Each sealed
// value is bound to its cache key (see Format).
//
// # Errors
//
// A value that does not open — wrong key, a key missing from the keyring,
// tampering, truncation, a value moved from another cache key, an unknown
// format version — is an error matching ErrDecrypt, never
// autocert.ErrCacheMiss (a miss would make autocert order a new certificate
// over the one it cannot read) and never a panic. Such errors name the
// cause and the key id, never key material. Every other error is the
// backend's, passed through unchanged; a miss is still the bare
// autocert.ErrCacheMiss.
//
// # Threat model
//
// Protected:
//
//   - Confidentiality of values against anyone who can read the store or
//     its backups, snapshots and replicas but does not hold the key: they
//     see ciphertext.
//   - Integrity: a value altered, truncated, or written under another cache
//     key (say, swapping two domains' certificates, or copying the account
//     key's value to a domain) fails to open instead of being used.
//
// Not protected:
//
//   - A process that holds the key (every peer, anyone who can read its
//     environment or key file, or its memory) reads everything.
//   - Rollback: an older sealed value of the same cache key, replayed by
//     someone with write access, opens (autocert checks a certificate's
//     expiry, so a replayed certificate is at worst an old, valid one).
//   - Deletion, and denial of service by anyone who can write the store.
//   - Metadata: cache keys (domain names), which keys exist, when they
//     change, value sizes (a sealed value is exactly Overhead bytes longer
//     than the plaintext) and the key id in each value.
//   - Namespaces: the associated data is the cache key only, so a value
//     copied to the same cache key in another namespace (prefix, table,
//     directory) sealed with the same key opens there. Use distinct keys
//     for deployments that must not share values.
//   - With migration on, plaintext planted in the store is accepted.
package encrypt

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// Sentinels for errors.Is.
var (
	// ErrDecrypt means a stored value could not be opened: wrong or missing
	// key, tampering, truncation, a value moved from another cache key, an
	// unknown format, or a plaintext value without migration.
	ErrDecrypt = errors.New("cannot decrypt value")

	// ErrNotSealed means a stored value is not sealed, with migration off.
	// Errors that match it also match ErrDecrypt.
	ErrNotSealed = errors.New("value is not sealed")
)

// The sealed format (see the package documentation).
const (
	version   = 1
	idLen     = 8
	nonceLen  = 12
	tagLen    = 16
	headerLen = len(magic) + 1 + idLen
)

// Sizes.
const (
	// Overhead is how many bytes sealing adds to a value: the header
	// (magic, version, key id), the nonce and the tag.
	Overhead = headerLen + nonceLen + tagLen

	// MaxValueSize is the largest value a Put through this package
	// accepts: certcache.MaxValueSize less Overhead, so that the sealed
	// value fits every backend.
	MaxValueSize = certcache.MaxValueSize - Overhead
)

// magic starts every sealed value. 0x89 starts no UTF-8 text.
const magic = "\x89CCE"

// backendName names this layer in its own errors.
const backendName = "encrypt"

// Options configure New. The zero value (or nil) gives the defaults.
type Options struct {
	// Migrate makes Get return values stored in plaintext instead of
	// failing with ErrNotSealed; see the package documentation. Put always
	// seals. If false, a plaintext value is an error.
	Migrate bool
}

// New returns a Cache that seals each value with keyring's primary key
// before handing it to inner, and opens it with any of the keyring's keys
// after reading it. Close closes inner. inner must keep the certcache
// contract, in particular that Get returns a slice the caller owns (values
// are opened in place); every cache from certcache.Open and the backends'
// New funcs does.
func New(inner certcache.Cache, keyring *Keyring, o *Options) (certcache.Cache, error) {
	if inner == nil {
		return nil, errors.New("certcache/encrypt: New: nil cache")
	}
	if keyring == nil || keyring.primary == nil {
		return nil, errors.New("certcache/encrypt: New: nil or empty keyring")
	}
	c := &cache{inner: certcache.Uncoordinated(inner), kr: keyring}
	if o != nil {
		c.migrate = o.Migrate
	}
	// Coordination goes on top, where it sees opened values, as autocert
	// does: beneath, it would see sealed bytes it cannot judge.
	return hook.CoordinateAs(c, inner), nil
}

// cache is the wrapper New returns.
type cache struct {
	inner   certcache.Cache
	kr      *Keyring
	migrate bool
	log     decryptLog // values that fail to open (log.go)
}

var _ certcache.Cache = (*cache)(nil)

// Get implements autocert.Cache.
func (c *cache) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := c.inner.Get(ctx, key)
	if err != nil {
		return nil, err // a miss stays the bare sentinel
	}
	p, _, err := c.open(key, v)
	if err != nil {
		err = &certcache.Error{Backend: backendName, Op: "get", Key: key, Err: err}
		c.log.failed(ctx, c.inner, key, err)
		return nil, err
	}
	return p, nil
}

// Put implements autocert.Cache.
func (c *cache) Put(ctx context.Context, key string, data []byte) error {
	if len(data) > MaxValueSize {
		return &certcache.Error{Backend: backendName, Op: "put", Key: key, Err: fmt.Errorf(
			"%w: %d bytes, limit %d with encryption (certcache.MaxValueSize less %d bytes of sealing overhead)",
			certcache.ErrTooLarge, len(data), MaxValueSize, Overhead)}
	}
	return c.inner.Put(ctx, key, c.seal(key, data))
}

// Delete implements autocert.Cache.
func (c *cache) Delete(ctx context.Context, key string) error { return c.inner.Delete(ctx, key) }

// Close implements certcache.Cache. It closes the wrapped cache.
func (c *cache) Close() error { return c.inner.Close() }

// Unwrap returns the wrapped cache, which holds sealed values.
func (c *cache) Unwrap() certcache.Cache { return c.inner }

// seal returns the sealed form of p for cache key name.
func (c *cache) seal(name string, p []byte) []byte {
	k := c.kr.primary
	n := headerLen + nonceLen + len(p) + tagLen
	// One allocation: the sealed value, then its associated data, which
	// Seal requires not to overlap its output.
	buf := make([]byte, n+headerLen+len(name))
	copy(buf, magic)
	buf[len(magic)] = version
	copy(buf[len(magic)+1:], k.id[:])
	ad := buf[n:]
	copy(ad, buf[:headerLen])
	copy(ad[headerLen:], name)
	return k.aead.Seal(buf[:headerLen], nil, p, ad)
}

// additionalData binds a sealed value to its header and its cache key. The
// header has a fixed length, so the concatenation is unambiguous.
func additionalData(header []byte, name string) []byte {
	ad := make([]byte, 0, len(header)+len(name))
	ad = append(ad, header...)
	return append(ad, name...)
}

// open returns the plaintext of the stored value v of cache key name, and
// whether v was sealed with the primary key (false for plaintext).
func (c *cache) open(name string, v []byte) ([]byte, bool, error) {
	if len(v) == 0 || v[0] != magic[0] {
		switch {
		case !c.migrate:
			return nil, false, fmt.Errorf("%w: %w (stored before encryption was turned on? encryption_migrate=true reads plaintext values)", ErrDecrypt, ErrNotSealed)
		case !utf8.Valid(v):
			return nil, false, fmt.Errorf("%w: the value is neither sealed nor plaintext text (%d bytes without the sealed-value header)", ErrDecrypt, len(v))
		}
		return v, false, nil
	}
	if len(v) < headerLen || string(v[:len(magic)]) != magic {
		return nil, false, fmt.Errorf("%w: sealed value truncated or its header damaged (%d bytes)", ErrDecrypt, len(v))
	}
	if ver := v[len(magic)]; ver != version {
		return nil, false, fmt.Errorf("%w: unknown sealed format version %d (written by a newer certcache?)", ErrDecrypt, ver)
	}
	var id [idLen]byte
	copy(id[:], v[len(magic)+1:headerLen])
	if len(v) < Overhead {
		return nil, false, fmt.Errorf("%w: sealed value truncated (%d bytes, at least %d expected)", ErrDecrypt, len(v), Overhead)
	}
	keys := c.kr.byID(id)
	if len(keys) == 0 {
		return nil, false, fmt.Errorf("%w: sealed with key id %s, which is not in the keyring (keyring: %s; add the old key to encryption_keys)",
			ErrDecrypt, hex.EncodeToString(id[:]), c.kr.describe())
	}
	ad := additionalData(v[:headerLen], name)
	for i, k := range keys {
		// v is ours (Get returns an owned slice): open it in place, unless
		// another key with the same id may need the ciphertext after a
		// failure (a 64-bit id clash: in theory only).
		ct := v[headerLen:]
		if i < len(keys)-1 {
			ct = bytes.Clone(ct)
		}
		p, err := k.aead.Open(ct[:0], nil, ct, ad)
		if err == nil {
			return p, k == c.kr.primary, nil
		}
	}
	return nil, false, fmt.Errorf("%w: authentication failed with key id %s (the value was altered or truncated, or moved from another cache key)",
		ErrDecrypt, hex.EncodeToString(id[:]))
}

// Reseal rewrites the values of keys so that each is sealed with the
// primary key: values stored in plaintext (read in migration mode) and
// values sealed with an older key of the keyring. Values already sealed
// with the primary key and missing keys are left alone. c must be a cache
// from New or from certcache.Open with encryption_key, or a cache whose
// Unwrap method leads to one. It returns how many values it rewrote.
//
// autocert never rewrites "acme_account+key", so a migration or key
// rotation ends with Reseal(ctx, c, "acme_account+key", DOMAINS...). A Put
// by autocert between Reseal's read and write of the same key can be
// overwritten with the older value; run it when no renewal is due.
func Reseal(ctx context.Context, c certcache.Cache, keys ...string) (int, error) {
	e := find(c)
	if e == nil {
		return 0, errors.New("certcache/encrypt: Reseal: not an encrypting cache")
	}
	n := 0
	for _, key := range keys {
		v, err := e.inner.Get(ctx, key)
		if errors.Is(err, autocert.ErrCacheMiss) {
			continue
		}
		if err != nil {
			return n, err
		}
		p, primary, err := e.open(key, v)
		if err != nil {
			return n, &certcache.Error{Backend: backendName, Op: "get", Key: key, Err: err}
		}
		if primary {
			continue
		}
		if err := e.Put(ctx, key, p); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// find returns the encrypting cache c is or wraps, or nil. It follows
// Unwrap methods that return one cache (a wrapper) or several (a stack of
// tiers), depth first.
func find(c certcache.Cache) *cache {
	return findDepth(c, 0)
}

func findDepth(c certcache.Cache, depth int) *cache {
	if c == nil || depth > 16 {
		return nil
	}
	switch u := c.(type) {
	case *cache:
		return u
	case interface{ Unwrap() certcache.Cache }:
		return findDepth(u.Unwrap(), depth+1)
	case interface{ Unwrap() []certcache.Cache }:
		for _, t := range u.Unwrap() {
			if e := findDepth(t, depth+1); e != nil {
				return e
			}
		}
	}
	return nil
}
