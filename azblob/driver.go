package azblob

import (
	"context"
	"strings"
	"sync"
	"time"

	ccdriver "github.com/certcache/certcache/driver"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/certcache/certcache/internal/keymemo"
	"github.com/certcache/certcache/internal/keyname"
	"github.com/certcache/certcache/internal/readall"
	"golang.org/x/crypto/acme/autocert"
)

// maxBlobName is Azure's limit on a blob name, in characters; names here
// are ASCII, so bytes.
const maxBlobName = 1024

// driver is the driver.Driver over an azblob client and one container.
type driver struct {
	client    *azblob.Client
	cc        *container.Client // client's client for container
	container string
	prefix    string // "" or ending in "/"
	maxName   int    // the longest encoded key that fits after prefix
	create    bool   // create the container when it is missing
	listPage  int32  // blobs per List request

	createMu sync.Mutex
	creating *creation // the creation of the container under way, if any

	// blobs holds each key's blob client for Get: the client's
	// DownloadStream builds a container client and a blob client per
	// call (their URLs joined and escaped), about nine allocations.
	blobs keymemo.Memo[*blob.Client]

	// snapshots holds, per lease blob, the snapshot this driver took of
	// the version it last wrote, to delete when it writes the next.
	snapshots sync.Map

	// Set for a client built from a URL: secrets no error may show, and a
	// func that closes the client's idle connections.
	secrets   []string
	closeIdle func()
}

var (
	_ ccdriver.Driver      = (*driver)(nil)
	_ ccdriver.LeaseDriver = (*driver)(nil)
	_ ccdriver.ListDriver  = (*driver)(nil)
)

func newDriver(client *azblob.Client, container, prefix string, create bool) *driver {
	if prefix != "" {
		prefix += "/"
	}
	// Two bytes stay free for the escape of a final dot (see blobName).
	return &driver{
		client: client, cc: client.ServiceClient().NewContainerClient(container), container: container,
		prefix: prefix, maxName: maxBlobName - len(prefix) - 2, create: create,
		listPage: defaultListPage,
	}
}

// blobName maps key to its blob: keyname.Encode under the prefix. Azure
// advises against names that end in a dot (some paths of the service trim
// it), so a final "." becomes "%2E". That keeps names distinct: Encode
// writes "%2E" only for a dot at the start of a key, so an encoded name
// ending in "%2E" is "%2E" itself (the key "."), which no key ending in a
// dot maps to.
func (d *driver) blobName(key string) string {
	return d.prefix + encodeName(key, d.maxName)
}

// newBlobClient returns the client of key's blob.
func (d *driver) newBlobClient(key string) *blob.Client {
	return d.cc.NewBlobClient(d.blobName(key))
}

// encodeName is keyname.Encode with a final dot escaped (see blobName).
func encodeName(s string, max int) string {
	name := keyname.Encode(s, max)
	if name[len(name)-1] == '.' {
		name = name[:len(name)-1] + "%2E"
	}
	return name
}

// shortened reports whether an encoded name is keyname's shortened form,
// "<start of the encoding>~<SHA-256 of the key>", from which the key
// cannot be decoded; "~" never occurs in the plain form.
func shortened(name string) bool { return strings.IndexByte(name, '~') >= 0 }

// keyMeta is the metadata that records the key of a blob whose name is
// shortened, percent-encoded (metadata values are ASCII header values), so
// that List can name the key. Other blobs carry no metadata: their names
// decode to their keys.
const keyMeta = "certcachekey"

// putOptions returns the upload options for the blob name of key: nil, or
// the key in metadata when name is shortened.
func putOptions(key, name string) *azblob.UploadBufferOptions {
	if !shortened(name) {
		return nil
	}
	return &azblob.UploadBufferOptions{Metadata: map[string]*string{keyMeta: ptr(escapeAll(key))}}
}

// escapeAll is keyname's plain percent-encoding of s, never shortened.
func escapeAll(s string) string {
	return keyname.Encode(s, max(3*len(s), keyname.MinMax))
}

func (d *driver) Get(ctx context.Context, key string) ([]byte, error) {
	var resp azblob.DownloadStreamResponse
	bc := d.blobs.Get(key, d.newBlobClient)
	err := d.inContainer(ctx, func() (err error) {
		resp, err = bc.DownloadStream(ctx, nil)
		return err
	})
	if hasCode(err, bloberror.BlobNotFound) {
		return nil, autocert.ErrCacheMiss
	}
	if err != nil {
		return nil, d.wrap(err)
	}
	defer resp.Body.Close()
	size := int64(-1)
	if resp.ContentLength != nil {
		size = *resp.ContentLength
	}
	data, err := readall.Sized(resp.Body, size)
	if err != nil {
		return nil, d.wrap(err)
	}
	return data, nil
}

func (d *driver) Put(ctx context.Context, key string, data []byte) error {
	return d.wrap(d.inContainer(ctx, func() error {
		// A value this small is one Put Blob request, which replaces the
		// blob atomically: readers see the old value or the new one.
		name := d.blobName(key)
		_, err := d.client.UploadBuffer(ctx, d.container, name, data, putOptions(key, name))
		return err
	}))
}

var deleteOptions = &azblob.DeleteBlobOptions{DeleteSnapshots: ptr(blob.DeleteSnapshotsOptionTypeInclude)}

func (d *driver) Delete(ctx context.Context, key string) error {
	err := d.inContainer(ctx, func() error {
		_, err := d.client.DeleteBlob(ctx, d.container, d.blobName(key), deleteOptions)
		return err
	})
	if hasCode(err, bloberror.BlobNotFound) {
		return nil
	}
	return d.wrap(err)
}

func (d *driver) Close() error {
	if d.closeIdle != nil {
		d.closeIdle()
	}
	return nil
}

// inContainer runs op. With create set, a missing container is created and
// op runs once more, so creation costs nothing while the container exists
// and happens on first use, never in Open.
func (d *driver) inContainer(ctx context.Context, op func() error) error {
	err := op()
	if err == nil || !d.create || !hasCode(err, bloberror.ContainerNotFound) {
		return err
	}
	if err := d.createContainer(ctx); err != nil {
		return err
	}
	return op()
}

// createTimeout bounds the creation of the container, which no single
// caller's context bounds (see createContainer).
const createTimeout = 30 * time.Second

// creation is one attempt to create the container, shared by the callers
// that found it missing meanwhile.
type creation struct {
	done chan struct{}
	err  error
}

// createContainer creates the container once for all the callers that
// find it missing at the same time: a burst of first calls (a fleet
// starting, autocert's first handshakes) would otherwise send as many
// creations, each but one refused, and the service, busy with them, would
// answer all of them late. The creation is detached from the first
// caller's context, so that a caller who gives up does not fail the
// others; each caller waits at most as long as its own context allows.
func (d *driver) createContainer(ctx context.Context) error {
	d.createMu.Lock()
	c := d.creating
	if c == nil {
		c = &creation{done: make(chan struct{})}
		d.creating = c
		go func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
			_, err := d.client.CreateContainer(cctx, d.container, nil)
			cancel()
			if hasCode(err, bloberror.ContainerAlreadyExists) {
				err = nil
			}
			c.err = err
			d.createMu.Lock()
			d.creating = nil
			d.createMu.Unlock()
			close(c.done)
		}()
	}
	d.createMu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func ptr[T any](v T) *T { return &v }
