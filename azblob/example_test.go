package azblob_test

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/certcache/certcache"
	ccazblob "github.com/certcache/certcache/azblob"
)

func Example() {
	// Importing the package registers azblob://. Credentials come from the
	// environment (with none set, DefaultAzureCredential: a managed or
	// workload identity in Azure, the Azure CLI on a laptop). Open does not
	// contact the service.
	cache, err := certcache.Open(context.Background(), "azblob://certs/myapp?account=mystorageaccount")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	// cache is an autocert.Manager's Cache; serve with certcache.TLSConfig.
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
