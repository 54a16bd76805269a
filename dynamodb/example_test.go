package dynamodb_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

func Example() {
	ctx := context.Background()
	// Importing the package registers dynamodb://. Credentials come from
	// the AWS SDK's default chain; Open does not contact DynamoDB. The
	// table (partition key "pk", sort key "sk", both strings) must exist.
	cache, err := certcache.Open(ctx, "dynamodb://certcache/prod?region=eu-west-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist("example.com"),
		Cache:      cache,
	}
	srv := &http.Server{Addr: ":443", TLSConfig: certcache.TLSConfig(m, cache)}
	_ = srv // srv.ListenAndServeTLS("", "")
	var _ *tls.Config = srv.TLSConfig
	fmt.Println("opened")
	// Output: opened
}
