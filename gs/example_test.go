package gs_test

import (
	"context"
	"fmt"
	"net/http"

	"cloud.google.com/go/storage"
	"github.com/certcache/certcache"
	ccgs "github.com/certcache/certcache/gs"
	"golang.org/x/crypto/acme/autocert"
	"google.golang.org/api/option"
)

func Example() {
	ctx := context.Background()
	// Importing the package registers gs://. On Google Cloud the URL is
	// just gs://my-bucket/myapp, with Application Default Credentials;
	// here an emulator on this machine, spoken to without credentials.
	// Open does not contact the service.
	cache, err := certcache.Open(ctx, "gs://my-bucket/myapp?endpoint=http://127.0.0.1:4443&timeout=5s")
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
	// certcache.TLSConfig rather than m.TLSConfig(): a handshake for a
	// name another node of the fleet is ordering waits for its
	// certificate instead of failing.
	srv := &http.Server{Addr: ":443", TLSConfig: certcache.TLSConfig(m, cache)}
	_ = srv // srv.ListenAndServeTLS("", "")
	fmt.Println("ready")
	// Output: ready
}

// Credentials never go in the URL; Open says where they come from.
func Example_credentialsInURL() {
	_, err := certcache.Open(context.Background(), "gs://user:secret@my-bucket/myapp")
	fmt.Println(err)
	// Output: certcache/gs: open: invalid cache URL: credentials do not belong in the URL: Application Default Credentials provide them (GOOGLE_APPLICATION_CREDENTIALS, the metadata server)
}

func ExampleNew() {
	ctx := context.Background()
	// A client of your own: here on an emulator, as STORAGE_EMULATOR_HOST
	// would make it; storage.NewClient(ctx) alone uses Application Default
	// Credentials.
	client, err := storage.NewClient(ctx, option.WithEndpoint("http://127.0.0.1:4443/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	cache, err := ccgs.New(client, "my-bucket", &ccgs.Options{Prefix: "myapp"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close() // leaves client usable
	fmt.Println("ready")
	// Output: ready
}
