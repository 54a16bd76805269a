package dynamodb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	ccdriver "github.com/certcache/certcache/driver"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keyname"
	"golang.org/x/crypto/acme/autocert"
	"golang.org/x/sync/errgroup"
)

// Attribute names of the items this backend writes. pk and sk are the
// table's key schema (see the package documentation); the rest are
// ordinary attributes. Several are DynamoDB reserved words, so expressions
// always name them through ExpressionAttributeNames.
// ChunkSize is the largest value stored in one item, and the size of every
// chunk of a larger value (see the package documentation). DynamoDB caps an
// item at 400 KB (409,600 bytes), counting attribute names and values; with
// the longest partition key, sort key and key attribute (about 3 KB) an
// item of ChunkSize bytes of value stays below it.
const ChunkSize = 384 << 10

const (
	attrPK     = "pk"     // S: "/" + the prefix
	attrSK     = "sk"     // S: "k:", "c:" or "l:" and an encoded key or lease name
	attrValue  = "val"    // B: a value stored whole, or one chunk of it
	attrSize   = "size"   // N: the value's length in bytes
	attrKey    = "key"    // S: the whole key, on an item whose sk was shortened
	attrGen    = "gen"    // S: the generation of a chunked value's chunks
	attrChunks = "chunks" // N: how many chunks a chunked value has
)

// Sort key marks: a value's item, one chunk of a large value, a lease.
// keyname encodes keys and lease names with [A-Za-z0-9._+%~-] only, so
// the ":" after a mark never occurs in an encoded name, and the three kinds
// never share a sort key.
const (
	markKey   = "k:"
	markChunk = "c:"
	markLease = "l:"
)

const (
	// maxEncoded bounds an encoded key or lease name: DynamoDB's sort key
	// holds 1024 bytes, and a chunk's sort key adds the mark, ":", a
	// 16-digit generation, ":" and a 3-digit index to it.
	maxEncoded = 900
	// maxPrefixLen bounds a prefix: the partition key holds 2048 bytes.
	maxPrefixLen = 1024
	// maxChunks is how many chunks certcache.MaxValueSize takes.
	maxChunks = (certcache.MaxValueSize + ChunkSize - 1) / ChunkSize
	// chunkReaders is how many chunks Get reads at once.
	chunkReaders = 8
)

// tableName is DynamoDB's rule for table names.
var tableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// driver is the driver.Driver over a DynamoDB client.
type driver struct {
	client *dynamodb.Client
	table  string
	pk     types.AttributeValue // the partition of this namespace

	// closeIdle closes the idle connections of a client built from a URL;
	// nil for a client the user handed to New, which is theirs.
	closeIdle func()

	// Leases (lease.go): what this node has watched of other holders'
	// leases, and when its own were last written, by its monotonic clock.
	mu      sync.Mutex
	watched map[string]watch
	mine    map[string]held
}

var _ ccdriver.Driver = (*driver)(nil)

func newDriver(client *dynamodb.Client, table string, o Options) (*driver, error) {
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("%w: table %q: want 3 to 255 characters of A-Z, a-z, 0-9, '_', '-' and '.'", certcache.ErrInvalidURL, table)
	}
	prefix, err := cleanPrefix(o.Prefix)
	if err != nil {
		return nil, err
	}
	return &driver{client: client, table: table, pk: &types.AttributeValueMemberS{Value: "/" + prefix},
		watched: map[string]watch{}, mine: map[string]held{}}, nil
}

// cleanPrefix checks a prefix and returns it without a trailing slash.
func cleanPrefix(p string) (string, error) {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	if p == "" {
		return "", nil
	}
	if len(p) > maxPrefixLen {
		return "", fmt.Errorf("%w: prefix of %d bytes, limit %d", certcache.ErrInvalidURL, len(p), maxPrefixLen)
	}
	if err := certcache.ValidateKey(p); err != nil {
		return "", fmt.Errorf("%w: prefix %q: %s", certcache.ErrInvalidURL, p, err)
	}
	return p, nil
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func n(v int) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.Itoa(v)}
}

// itemKey is the primary key of the item whose sort key is sk.
func (d *driver) itemKey(sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: d.pk, attrSK: s(sk)}
}

// encoded is key or a lease name as sort keys hold it.
func encoded(name string) string { return keyname.Encode(name, maxEncoded) }

func chunkSK(enc, gen string, i int) string {
	return fmt.Sprintf("%s%s:%s:%03d", markChunk, enc, gen, i)
}

func (d *driver) Get(ctx context.Context, key string) ([]byte, error) {
	enc := encoded(key)
	// A chunked value whose chunks were replaced between reading its item
	// and its chunks is read again; a few rounds cover concurrent Puts.
	for range 3 {
		out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: &d.table, Key: d.itemKey(markKey + enc), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return nil, d.classify(err)
		}
		if out.Item == nil {
			return nil, autocert.ErrCacheMiss
		}
		if v, ok := out.Item[attrValue].(*types.AttributeValueMemberB); ok {
			return v.Value, nil
		}
		if z, ok := out.Item[attrSize].(*types.AttributeValueMemberN); ok && z.Value == "0" && out.Item[attrGen] == nil {
			return []byte{}, nil // an empty value has no val attribute (see Put)
		}
		gen, chunks, size, err := chunked(out.Item)
		if err != nil {
			return nil, fmt.Errorf("item %q: %w", markKey+enc, err)
		}
		data, whole, err := d.readChunks(ctx, enc, gen, chunks, size)
		if err != nil || whole {
			return data, err
		}
	}
	return nil, fmt.Errorf("item %q: its chunks were replaced on every read", markKey+enc)
}

// chunked reads the generation, chunk count and size of a chunked value's
// item.
func chunked(item map[string]types.AttributeValue) (gen string, chunks, size int, err error) {
	g, ok1 := item[attrGen].(*types.AttributeValueMemberS)
	c, ok2 := item[attrChunks].(*types.AttributeValueMemberN)
	z, ok3 := item[attrSize].(*types.AttributeValueMemberN)
	if !ok1 || !ok2 || !ok3 {
		return "", 0, 0, errors.New("neither a value nor a chunked value (written by something other than certcache?)")
	}
	chunks, err1 := strconv.Atoi(c.Value)
	size, err2 := strconv.Atoi(z.Value)
	if err1 != nil || err2 != nil || chunks < 1 || chunks > maxChunks || size < 0 || size > chunks*ChunkSize {
		return "", 0, 0, fmt.Errorf("bad chunk count %q or size %q", c.Value, z.Value)
	}
	return g.Value, chunks, size, nil
}

// readChunks reads the chunks of generation gen, a few at a time. whole
// is false if they are not all there: the value was replaced or deleted
// meanwhile, and its item must be read again.
func (d *driver) readChunks(ctx context.Context, enc, gen string, chunks, size int) (data []byte, whole bool, err error) {
	parts := make([][]byte, chunks)
	var (
		g       errgroup.Group
		missing atomic.Bool
	)
	g.SetLimit(chunkReaders)
	for i := range chunks {
		g.Go(func() error {
			out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: &d.table, Key: d.itemKey(chunkSK(enc, gen, i)), ConsistentRead: aws.Bool(true),
			})
			if err != nil {
				return d.classify(err)
			}
			v, ok := out.Item[attrValue].(*types.AttributeValueMemberB)
			if !ok {
				missing.Store(true)
				return nil
			}
			parts[i] = v.Value
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, false, err
	}
	if missing.Load() {
		return nil, false, nil
	}
	data = make([]byte, 0, size)
	for _, p := range parts {
		data = append(data, p...)
	}
	return data, len(data) == size, nil
}

// Put writes a value of up to ChunkSize bytes as one item. A larger value
// is written as chunks of a new generation first, and then as an item
// that names the generation: the item's write is atomic, so a reader sees
// the old value or the new one, whole. The chunks of the value replaced
// are deleted after. A Put that fails may leave chunks no item names.
func (d *driver) Put(ctx context.Context, key string, data []byte) error {
	enc := encoded(key)
	item := d.itemKey(markKey + enc)
	item[attrSize] = n(len(data))
	if enc != encodedWhole(key) {
		item[attrKey] = s(key) // shortened: List reads the key from here
	}
	var gen string
	chunks := (len(data) + ChunkSize - 1) / ChunkSize
	switch {
	case len(data) == 0:
		// No val attribute: DynamoDB stores an empty binary, but dynalite
		// refuses one, and size 0 says as much.
	case len(data) <= ChunkSize:
		item[attrValue] = &types.AttributeValueMemberB{Value: data}
	default:
		gen = newGen()
		for i := range chunks {
			c := d.itemKey(chunkSK(enc, gen, i))
			c[attrValue] = &types.AttributeValueMemberB{Value: data[i*ChunkSize : min(len(data), (i+1)*ChunkSize)]}
			if _, err := d.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &d.table, Item: c}); err != nil {
				d.deleteChunks(ctx, enc, gen, i+1)
				return d.classify(fmt.Errorf("writing chunk %d of %d: %w", i+1, chunks, err))
			}
		}
		item[attrGen] = s(gen)
		item[attrChunks] = n(chunks)
	}
	out, err := d.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &d.table, Item: item, ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		// The write may have landed all the same (a timeout, a lost
		// answer), so the new chunks stay: deleting them could leave the
		// item naming chunks that are gone.
		return d.classify(err)
	}
	if old := out.Attributes; old == nil || !sameGen(old, gen) {
		// Not when the SDK retried our own write after a lost answer and
		// read back the item its first attempt wrote.
		d.dropChunks(ctx, enc, old)
	}
	return nil
}

// sameGen reports whether item is a chunked value of generation gen.
func sameGen(item map[string]types.AttributeValue, gen string) bool {
	g, ok := item[attrGen].(*types.AttributeValueMemberS)
	return ok && gen != "" && g.Value == gen
}

func (d *driver) Delete(ctx context.Context, key string) error {
	enc := encoded(key)
	out, err := d.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &d.table, Key: d.itemKey(markKey + enc), ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return d.classify(err)
	}
	d.dropChunks(ctx, enc, out.Attributes)
	return nil
}

// dropChunks deletes the chunks of old, the item a Put or Delete replaced,
// if it was a chunked value. Its failure leaves unreachable chunks behind
// but loses nothing: the Put or Delete itself has landed.
func (d *driver) dropChunks(ctx context.Context, enc string, old map[string]types.AttributeValue) {
	if old == nil || old[attrGen] == nil {
		return
	}
	if gen, chunks, _, err := chunked(old); err == nil {
		d.deleteChunks(ctx, enc, gen, chunks)
	}
}

// deleteChunks deletes the first count chunks of generation gen.
func (d *driver) deleteChunks(ctx context.Context, enc, gen string, count int) {
	for i := range count {
		if _, err := d.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &d.table, Key: d.itemKey(chunkSK(enc, gen, i))}); err != nil {
			return
		}
	}
}

// newGen returns a random 16-digit generation.
func newGen() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Close closes the idle connections of a client built from a URL, so that
// a closed cache leaves no sockets or goroutines behind.
func (d *driver) Close() error {
	if d.closeIdle != nil {
		d.closeIdle()
	}
	return nil
}

// isConditionFailed reports whether a conditional write failed its
// condition.
func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

// classify marks unavailability — 503 answers and throttling that the
// SDK's retries did not outlast — and names the table when it is missing;
// network errors are classified by certcache itself.
func (d *driver) classify(err error) error {
	var (
		re *awshttp.ResponseError
		nf *types.ResourceNotFoundException
		ae smithy.APIError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nf):
		return fmt.Errorf("table %q does not exist (create it with partition key %q and sort key %q, both strings): %w", d.table, attrPK, attrSK, err)
	case errors.As(err, &re) && re.HTTPStatusCode() == http.StatusServiceUnavailable:
		return fmt.Errorf("%w: %w", certcache.ErrUnavailable, err)
	case errors.As(err, &ae):
		switch ae.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded":
			return fmt.Errorf("%w: %w", certcache.ErrUnavailable, err)
		}
	}
	return err
}

// encodedWhole is name encoded but never shortened: encoded(name) differs
// from it exactly when the sort key had to be shortened.
func encodedWhole(name string) string { return keyname.Encode(name, 1<<30) }

// usedNames keeps the placeholders of names that expr uses: DynamoDB
// refuses an expression attribute name it does not use.
func usedNames(expr string, names map[string]string) map[string]string {
	used := map[string]string{}
	for ph, name := range names {
		if strings.Contains(expr, ph) {
			used[ph] = name
		}
	}
	return used
}

// nilIfEmpty: DynamoDB refuses an empty map of expression attribute values.
func nilIfEmpty(vals map[string]types.AttributeValue) map[string]types.AttributeValue {
	if len(vals) == 0 {
		return nil
	}
	return vals
}
