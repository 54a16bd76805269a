package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/certcache/certcache/internal/certkey"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// certJSON describes one certificate of a chain.
type certJSON struct {
	Subject            string    `json:"subject"`
	DNSNames           []string  `json:"dns_names,omitempty"`
	IPAddresses        []string  `json:"ip_addresses,omitempty"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	Issuer             string    `json:"issuer"`
	Serial             string    `json:"serial"` // hex, as browsers show it
	KeyType            string    `json:"key_type"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	IsCA               bool      `json:"is_ca"`
}

// inspection is what inspect reports about one key. It never holds the
// private key: only its type and whether it matches the leaf.
type inspection struct {
	Key   string `json:"key"`
	Kind  kind   `json:"kind"`
	Size  int    `json:"size"` // of the value as the cache returns it (opened, if encrypted)
	Valid bool   `json:"valid"`
	// For a certificate value (or any value in that format).
	PrivateKeyType    string     `json:"private_key_type,omitempty"`
	PrivateKeyMatches *bool      `json:"private_key_matches_leaf,omitempty"`
	Chain             []certJSON `json:"chain,omitempty"`
	// For an account key: the RFC 7638 thumbprint of its public key, which
	// names the account without revealing the key.
	AccountThumbprint string `json:"account_key_thumbprint,omitempty"`
	// For other values: the PEM block types found, in order.
	PEMBlocks []string `json:"pem_blocks,omitempty"`
	// Problems is what autocert (or a TLS client) would refuse.
	Problems []string `json:"problems,omitempty"`
}

// inspect describes data stored under key at now.
func inspect(key string, data []byte, now time.Time) *inspection {
	in := &inspection{Key: key, Size: len(data)}
	k, _ := classify(key)
	in.Kind = k
	switch {
	case k == kindAccountKey:
		signer, err := certkey.ParseAccountKey(data)
		if err != nil {
			in.Problems = append(in.Problems, "not an account key: "+err.Error())
			break
		}
		in.PrivateKeyType = certkey.KeyType(signer.Public())
		if tp, err := acme.JWKThumbprint(signer.Public()); err == nil {
			in.AccountThumbprint = tp
		}
	default:
		v, err := certkey.Parse(data)
		if err != nil {
			if k.isCert() {
				in.Problems = append(in.Problems, err.Error())
			}
			in.PEMBlocks, in.Chain = pemSummary(data)
			break
		}
		in.PrivateKeyType = v.KeyType
		matches := v.KeyMatches()
		in.PrivateKeyMatches = &matches
		for _, c := range v.Chain {
			in.Chain = append(in.Chain, describeCert(c))
		}
		if k.isCert() {
			in.Problems = append(in.Problems, v.Problems(key, now)...)
		} else if !matches {
			in.Problems = append(in.Problems, "the private key does not match the leaf")
		}
		// Each certificate must be signed by the next, or clients that
		// do not fetch intermediates fail to build a chain.
		for i := 0; i+1 < len(v.Chain); i++ {
			if err := v.Chain[i].CheckSignatureFrom(v.Chain[i+1]); err != nil {
				in.Problems = append(in.Problems, fmt.Sprintf("certificate %d is not signed by certificate %d: %v", i, i+1, err))
			}
		}
	}
	in.Valid = len(in.Problems) == 0
	return in
}

// pemSummary lists the PEM block types in data and describes the
// certificates among them, without decoding anything else.
func pemSummary(data []byte) (types []string, certs []certJSON) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return types, certs
		}
		types = append(types, b.Type)
		if b.Type == "CERTIFICATE" {
			if c, err := x509.ParseCertificate(b.Bytes); err == nil {
				certs = append(certs, describeCert(c))
			}
		}
	}
}

func describeCert(c *x509.Certificate) certJSON {
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	return certJSON{
		Subject:            c.Subject.String(),
		DNSNames:           c.DNSNames,
		IPAddresses:        ips,
		NotBefore:          c.NotBefore.UTC(),
		NotAfter:           c.NotAfter.UTC(),
		Issuer:             c.Issuer.String(),
		Serial:             colonHex(c.SerialNumber.Bytes()),
		KeyType:            certkey.KeyType(c.PublicKey),
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
		IsCA:               c.IsCA,
	}
}

// colonHex formats b as browsers show serial numbers: 04:a1:…
func colonHex(b []byte) string {
	h := hex.EncodeToString(b)
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// runInspect is the inspect command.
func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("inspect", "[-json] URL KEY",
		"Shows what the cache holds under KEY. For a certificate (KEY is a domain, or\n"+
			"DOMAIN+rsa): the chain, each certificate's subject, DNS names, validity, issuer\n"+
			"and serial, and the private key's type, checking that it matches the leaf and\n"+
			"everything else autocert checks. For the account key: its type and thumbprint.\n"+
			"The private key itself is never printed.\n"+
			"Exit status 1 if the key is missing or unreadable, or a check fails.", stdout, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, code, ok := parseArgs(fs, args, 2, 2)
	if !ok {
		return code
	}
	c, closer, err := openCache(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "certcache inspect: %v\n", err)
		return exitFail
	}
	defer closer.Close()
	key := pos[1]
	data, err := c.Get(ctx, key)
	if err == autocert.ErrCacheMiss {
		fmt.Fprintf(stderr, "certcache inspect: %q: no such key\n", key)
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(stderr, "certcache inspect: %v\n", err)
		return exitFail
	}
	now := time.Now()
	in := inspect(key, data, now)
	code = exitOK
	if !in.Valid {
		code = exitFail
	}
	if *asJSON {
		if err := writeJSON(stdout, in); err != nil {
			fmt.Fprintf(stderr, "certcache inspect: %v\n", err)
			return exitFail
		}
		return code
	}
	printInspection(stdout, in, now)
	return code
}

func printInspection(w io.Writer, in *inspection, now time.Time) {
	fmt.Fprintf(w, "key          %s\n", in.Key)
	fmt.Fprintf(w, "kind         %s\n", in.Kind)
	fmt.Fprintf(w, "size         %d bytes\n", in.Size)
	if in.PrivateKeyType != "" {
		line := in.PrivateKeyType
		if in.PrivateKeyMatches != nil {
			if *in.PrivateKeyMatches {
				line += ", matches the leaf"
			} else {
				line += ", DOES NOT match the leaf"
			}
		}
		fmt.Fprintf(w, "private key  %s (not shown)\n", line)
	}
	if in.AccountThumbprint != "" {
		fmt.Fprintf(w, "thumbprint   %s\n", in.AccountThumbprint)
	}
	if len(in.PEMBlocks) > 0 {
		fmt.Fprintf(w, "PEM blocks   %s\n", strings.Join(in.PEMBlocks, ", "))
	}
	for i, c := range in.Chain {
		role := "intermediate"
		switch {
		case i == 0 && in.PrivateKeyType != "":
			role = "leaf"
		case c.IsCA && c.Subject == c.Issuer:
			role = "root"
		case !c.IsCA:
			role = "certificate"
		}
		fmt.Fprintf(w, "\ncertificate %d (%s)\n", i, role)
		fmt.Fprintf(w, "  subject      %s\n", c.Subject)
		if len(c.DNSNames) > 0 {
			fmt.Fprintf(w, "  DNS names    %s\n", strings.Join(c.DNSNames, ", "))
		}
		if len(c.IPAddresses) > 0 {
			fmt.Fprintf(w, "  IP addresses %s\n", strings.Join(c.IPAddresses, ", "))
		}
		fmt.Fprintf(w, "  not before   %s\n", c.NotBefore.Format(time.RFC3339))
		fmt.Fprintf(w, "  not after    %s (%s)\n", c.NotAfter.Format(time.RFC3339), until(c.NotAfter, now))
		fmt.Fprintf(w, "  issuer       %s\n", c.Issuer)
		fmt.Fprintf(w, "  serial       %s\n", c.Serial)
		fmt.Fprintf(w, "  key          %s\n", c.KeyType)
		fmt.Fprintf(w, "  signature    %s\n", c.SignatureAlgorithm)
	}
	fmt.Fprintln(w)
	if in.Valid {
		if in.Kind.isCert() {
			fmt.Fprintf(w, "ok: valid now, covers the domain, the key matches the leaf, the chain links up\n")
		} else {
			fmt.Fprintf(w, "ok\n")
		}
		return
	}
	fmt.Fprintf(w, "problems:\n")
	for _, p := range in.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}
