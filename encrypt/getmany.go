package encrypt

import (
	"context"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache"
)

var _ hook.ManyGetter = (*cache)(nil)

// GetMany implements hook.ManyGetter: the sealed values are read from
// the wrapped cache in batches (certcache.GetMany) and opened one by one.
// A value that does not open fails the whole call, as it fails Get.
func (c *cache) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	values, err := certcache.GetMany(ctx, c.inner, keys)
	if err != nil {
		return nil, err
	}
	for i, v := range values {
		if v == nil {
			continue // missing
		}
		p, _, err := c.open(keys[i], v)
		if err != nil {
			err = &certcache.Error{Backend: backendName, Op: "get many", Key: keys[i], Err: err}
			c.log.failed(ctx, c.inner, keys[i], err)
			return nil, err
		}
		values[i] = p
	}
	return values, nil
}
