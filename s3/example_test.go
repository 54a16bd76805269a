package s3_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/certcache/certcache"
	ccs3 "github.com/certcache/certcache/s3"
)

func ExampleNew() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("eu-west-1"))
	if err != nil {
		fmt.Println(err)
		return
	}
	client := awss3.NewFromConfig(cfg)
	cache, err := ccs3.New(client, "my-bucket", &ccs3.Options{Prefix: "certs", SSE: types.ServerSideEncryptionAwsKms})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close() // leaves client usable
	fmt.Println("ready")
	// Output: ready
}

func Example() {
	// Importing the package registers s3://. Credentials come from the AWS
	// SDK's default chain. Open does not contact S3.
	cache, err := certcache.Open(context.Background(), "s3://my-bucket/certs?region=eu-west-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	// cache is an autocert.Manager's Cache; serve with certcache.TLSConfig.
	fmt.Println("opened")
	// Output: opened
}

func Example_minIO() {
	// A MinIO server on plain HTTP; the bucket is addressed in the path.
	cache, err := certcache.Open(context.Background(),
		"s3://certs/prod?endpoint=http://127.0.0.1:9000&use_path_style=true")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	fmt.Println("opened")
	// Output: opened
}

func Example_badParameter() {
	_, err := certcache.Open(context.Background(), "s3://my-bucket/certs?region=eu-west-1&ssetype=AES256")
	fmt.Println(err)
	// Output: certcache/s3: open: invalid cache URL: bad URL parameter: unknown parameter ssetype
}
