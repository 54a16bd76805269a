package certmagicstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/caddyserver/certmagic"
	"github.com/certcache/certcache/certmagicstore"
)

// Open a store by URL and make it CertMagic's storage. Any certcache URL
// works once its backend is imported (redis://, postgres://, s3://, …);
// mem:// keeps the example self-contained.
func ExampleOpen() {
	ctx := context.Background()
	storage, err := certmagicstore.Open(ctx, "mem://example", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer storage.Close()

	certmagic.Default.Storage = storage // before certmagic.HTTPS, ManageSync, …

	// What CertMagic does with it: files under directories…
	storage.Store(ctx, "certificates/acme/example.com/example.com.crt", []byte("PEM"))
	storage.Store(ctx, "certificates/acme/example.com/example.com.key", []byte("PEM"))
	keys, _ := storage.List(ctx, "certificates/acme", false)
	fmt.Println(keys)
	info, _ := storage.Stat(ctx, "certificates/acme")
	fmt.Println(info.IsTerminal)

	// …and a lock held for the length of an order, on every node that
	// opens the same URL.
	if err := storage.Lock(ctx, "issue_cert_example.com"); err != nil {
		log.Fatal(err)
	}
	defer storage.Unlock(ctx, "issue_cert_example.com")
	// Output:
	// [certificates/acme/example.com]
	// false
}
