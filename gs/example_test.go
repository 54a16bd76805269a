package gs_test

import (
	"context"
	"fmt"

	"cloud.google.com/go/storage"
	"github.com/certcache/certcache"
	ccgs "github.com/certcache/certcache/gs"
	"google.golang.org/api/option"
)

func Example() {
	// Importing the package registers gs://. On Google Cloud the URL is just
	// gs://my-bucket/myapp, with Application Default Credentials; here an
	// emulator, spoken to without credentials. Open does not contact it.
	cache, err := certcache.Open(context.Background(), "gs://my-bucket/myapp?endpoint=http://127.0.0.1:4443")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	// cache is an autocert.Manager's Cache; serve with certcache.TLSConfig.
	fmt.Println("opened")
	// Output: opened
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
