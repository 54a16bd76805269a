package dynamodb_test

import (
	"context"
	"fmt"

	"github.com/certcache/certcache"
)

func Example() {
	// Importing the package registers dynamodb://. Credentials come from the
	// AWS SDK's default chain. Open does not contact DynamoDB; the table
	// (partition key "pk", sort key "sk", both strings) must exist.
	cache, err := certcache.Open(context.Background(), "dynamodb://certcache/prod?region=eu-west-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	// cache is an autocert.Manager's Cache; serve with certcache.TLSConfig.
	fmt.Println("opened")
	// Output: opened
}
