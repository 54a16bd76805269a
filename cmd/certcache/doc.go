// Command certcache looks after what autocert keeps in a certcache cache:
// it lists, inspects, copies and deletes keys, and reports certificates
// that are about to expire, on any backend, from its URL.
//
//	go install github.com/certcache/certcache/cmd/certcache@latest
//
//	certcache ls URL                       every key, its kind, and for a certificate its names, expiry, issuer and key type
//	certcache inspect URL KEY              a certificate's chain and key type; checks the key matches the leaf
//	certcache cp SRC DST                   copy every key from one cache to another (migrate from autocert.DirCache)
//	certcache rm URL KEY...                delete keys
//	certcache leases URL                   the leases (locks) held in the store: name, holder, expiry by the store's clock
//	certcache unlock [-force] URL NAME      break a lease that expired, or with -force one that has not
//	certcache expiring URL [-within 21d]   certificates expiring within the window; exit status 1 if any
//	certcache demo                         a real ACME issuance against Pebble, inside the process
//
// Every backend and wrapper is linked in, so any certcache URL works:
// file:///var/lib/autocert (a directory written by autocert.DirCache),
// redis://…, postgres://…, mysql://…, sqlite://…, s3://…, azblob://…, dynamodb://…, gs://…, with
// memory=… and encryption_key=… parameters. A memory front in a URL is
// looked through: the command reads and writes the store itself.
//
// Flags may come before or after the arguments; -h on any command prints
// its usage. -json makes ls, inspect, cp, rm, leases and expiring print JSON for
// scripts. Exit status: 0 for success, 1 for a failure (and for expiring,
// for a certificate found in the window), 2 for a usage error. Errors go to
// standard error.
//
// # Keys and kinds
//
// autocert stores a certificate under its domain name ("example.com"), the
// RSA certificate it keeps for clients without ECDSA under "example.com+rsa",
// its ACME account key under "acme_account+key" (older versions:
// "acme_account.key") and challenge tokens under "…+token" and "…+http-01".
// A certificate's value is its private key in PEM followed by the chain in
// PEM, leaf first. ls and inspect parse it as autocert does and report what
// autocert would refuse (expired, a key that does not match the leaf, names
// that do not cover the domain) instead of failing; the private key is never
// printed.
//
// # Copying
//
// cp lists the source as a stream and copies each key whose value differs
// in the destination, then reads it back from the destination to verify it.
// Values are copied as the caches present them: each URL is opened as
// given, so a source with encryption_key=… is decrypted on the way and a
// destination with encryption_key=… seals what it stores. Two URLs with the
// same key therefore hold the same plaintext under fresh ciphertext. A key
// that already holds the same value is skipped, so a copy that was
// interrupted is finished by running it again. Nothing is ever deleted from
// either side; a key that fails (the destination is down, its value cannot
// be read) is reported and the exit status is 1.
//
// # Demo
//
// demo runs a real ACME issuance on this machine, with nothing to set up:
// Pebble, Let's Encrypt's ACME test server, runs inside the process (see
// internal/integration/acmetest); autocert obtains a certificate from it into a
// certcache cache; the demo serves HTTPS with that certificate on a loopback
// port, fetches a page over TLS verified against Pebble's root, and prints
// the certificate and where it is cached. Run it again: the certificate is
// served from the cache and Pebble sees zero new orders.
//
//	go run ./cmd/certcache demo [-cache URL] [-domain NAME] [-v]
//
// The cache defaults to the directory certcache-demo in the system's
// temporary directory (file://…); -cache picks any certcache URL, such as
// redis://127.0.0.1:6379/0. Nothing listens on ports 80 or 443: Pebble's
// validation authority connects back to the demo's own loopback ports, and a
// small DNS server inside the process resolves every name to 127.0.0.1.
package main
