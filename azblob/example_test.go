package azblob_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/certcache/certcache"
	ccazblob "github.com/certcache/certcache/azblob"
	"golang.org/x/crypto/acme/autocert"
)

func Example() {
	ctx := context.Background()
	// Importing the package registers azblob://. Credentials come from the
	// environment (here, with none set, DefaultAzureCredential: a managed
	// or workload identity in Azure, the Azure CLI on a laptop). Open does
	// not contact the service.
	cache, err := certcache.Open(ctx, "azblob://certs/myapp?account=mystorageaccount&timeout=5s")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	// Serve with certcache.TLSConfig, so that a handshake for a name another
	// instance is ordering waits for it instead of failing.
	m := &autocert.Manager{Prompt: autocert.AcceptTOS, Cache: cache, HostPolicy: autocert.HostWhitelist("example.com")}
	srv := &http.Server{Addr: ":443", TLSConfig: certcache.TLSConfig(m, cache)}
	_ = srv // srv.ListenAndServeTLS("", "")
	fmt.Println("opened")
	// Output: opened
}

// Secrets never go in the URL; Open says where they go instead.
func Example_secretInURL() {
	_, err := certcache.Open(context.Background(), "azblob://certs?account=mystorageaccount&account_key=c2VjcmV0")
	fmt.Println(err)
	// Output: certcache/azblob: open: invalid cache URL: parameter account_key looks like a secret; secrets never go in the URL: set AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING instead
}

func ExampleNew() {
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	client, err := azblob.NewClient("https://mystorageaccount.blob.core.windows.net/", cred, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	cache, err := ccazblob.New(client, "certs", &ccazblob.Options{Prefix: "myapp", CreateContainer: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close() // leaves client usable
	fmt.Println("ready")
	// Output: ready
}
