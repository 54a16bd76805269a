//go:build benchreport

package benchreport

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	_ "github.com/certcache/certcache/dynamodb"
	"github.com/certcache/certcache/internal/backendopts"
	"github.com/certcache/certcache/internal/integration/testenv"
)

// startDynamoDB starts dynalite with the bench table. The raw side is the
// SDK's GetItem and PutItem on the item the backend reads and writes
// (partition "/bench", sort key "k:" + the key), with ConsistentRead as the
// backend asks, on a client of the backend's settings.
func startDynamoDB(t *testing.T) setup {
	srv, endpoint := testenv.DynamoDB(t)
	return func(t *testing.T, ctx context.Context, value []byte) *bench {
		t.Cleanup(testenv.IsolateAWS())
		t.Setenv("AWS_ACCESS_KEY_ID", testenv.DynamoDBKeyID)
		t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.DynamoDBSecret)
		t.Setenv("AWS_CA_BUNDLE", "")
		tr := awshttp.NewBuildableClient().GetTransport()
		tr.MaxConnsPerHost = backendopts.MaxConns()
		hc := &http.Client{Transport: tr}
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"), config.WithHTTPClient(hc),
			func(o *config.LoadOptions) error {
				o.DefaultsModeOptions.IMDSClient = imds.New(imds.Options{ClientEnableState: imds.ClientDisabled})
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		client := awsddb.NewFromConfig(cfg, func(o *awsddb.Options) { o.BaseEndpoint = aws.String(endpoint) })
		ou := fmt.Sprintf("dynamodb://%s/bench?endpoint=%s", testenv.DynamoDBTable, endpoint)
		c := open(t, ctx, ou, value)
		key := func(k string) map[string]types.AttributeValue {
			return map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "/bench"}, "sk": &types.AttributeValueMemberS{Value: "k:" + k},
			}
		}
		return &bench{name: "dynamodb", raw: "aws-sdk-go-v2 DynamoDB client", ours: c, stopped: stoppedURL(t, ou, srv.Addr(0)),
			close: tr.CloseIdleConnections,
			rawOps: map[string]Op{
				"GetHit": func(ctx context.Context) error {
					out, err := client.GetItem(ctx, &awsddb.GetItemInput{TableName: aws.String(testenv.DynamoDBTable), Key: key(keyHit), ConsistentRead: aws.Bool(true)})
					if err != nil {
						return err
					}
					v, _ := out.Item["val"].(*types.AttributeValueMemberB)
					if v == nil {
						return checkHit(nil, fmt.Errorf("item %v has no value", out.Item), len(value))
					}
					return checkHit(v.Value, nil, len(value))
				},
				"GetMiss": func(ctx context.Context) error {
					out, err := client.GetItem(ctx, &awsddb.GetItemInput{TableName: aws.String(testenv.DynamoDBTable), Key: key(keyMiss), ConsistentRead: aws.Bool(true)})
					if err != nil {
						return err
					}
					if out.Item != nil {
						return fmt.Errorf("miss: found an item of %d attributes", len(out.Item))
					}
					return nil
				},
				"Put": func(ctx context.Context) error {
					item := key(keyPut)
					item["val"] = &types.AttributeValueMemberB{Value: value}
					item["size"] = &types.AttributeValueMemberN{Value: fmt.Sprint(len(value))}
					_, err := client.PutItem(ctx, &awsddb.PutItemInput{TableName: aws.String(testenv.DynamoDBTable), Item: item})
					return err
				},
			}}
	}
}
