package certcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/certcache/certcache/driver"

	"golang.org/x/crypto/acme/autocert"
)

// batchDriver is a driver.Driver with driver.GetManyDriver over a map, whose GetMany a
// test can make misbehave.
type batchDriver struct {
	plainStore
	calls  []int // the number of keys of each GetMany call
	fail   error // GetMany's error, after reporting what it found
	extra  bool  // also report indexes out of range, and one twice
	during func()
}

// plainStore is a map driver.Driver without optional capabilities.
type plainStore struct{ data map[string][]byte }

func (s *plainStore) Get(_ context.Context, key string) ([]byte, error) {
	v, ok := s.data[key]
	if !ok {
		return nil, autocert.ErrCacheMiss
	}
	return bytes.Clone(v), nil
}
func (s *plainStore) Put(_ context.Context, key string, v []byte) error {
	s.data[key] = bytes.Clone(v)
	return nil
}
func (s *plainStore) Delete(_ context.Context, key string) error { delete(s.data, key); return nil }
func (s *plainStore) Close() error                               { return nil }

func (d *batchDriver) GetMany(_ context.Context, keys []string, found func(int, []byte)) error {
	d.calls = append(d.calls, len(keys))
	for i, k := range keys {
		if v, ok := d.data[k]; ok {
			if len(v) == 0 {
				v = nil // a driver may report an empty value as nil
			}
			found(i, bytes.Clone(v))
			if d.extra {
				found(i, []byte("again"))
			}
		}
	}
	if d.extra {
		found(-1, []byte("x"))
		found(len(keys), []byte("x"))
	}
	if d.during != nil {
		d.during()
	}
	return d.fail
}

// TestGetManyPortable checks the portable layer's GetMany over a driver
// with driver.GetManyDriver and over one without.
func TestGetManyPortable(t *testing.T) {
	data := map[string][]byte{"empty": {}}
	var many []string
	for i := range 2234 {
		k := fmt.Sprintf("host-%04d.example", i)
		many = append(many, k)
		if i%2 == 0 {
			data[k] = []byte("v" + k)
		}
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, batched := range []bool{true, false} {
		for _, tc := range []struct {
			name      string
			keys      []string
			driver    func(d *batchDriver)
			ctx       func() (context.Context, context.CancelFunc)
			wantErr   error // nil: success
			wantCalls []int // batched only
		}{
			{name: "chunks", keys: many, wantCalls: []int{1000, 1000, 234}},
			{name: "duplicates and empty", keys: []string{"empty", "host-0000.example", "host-0000.example", "empty", "host-0001.example"}, wantCalls: []int{3}},
			{name: "no keys", keys: nil},
			{name: "invalid key", keys: []string{"a", "bad\nkey"}, wantErr: ErrInvalidKey},
			{name: "refused", keys: many[:3], driver: func(d *batchDriver) { d.fail = refused }, wantErr: ErrUnavailable},
			{name: "driver reports a miss", keys: many[:3], driver: func(d *batchDriver) { d.fail = fmt.Errorf("odd: %w", autocert.ErrCacheMiss) }, wantErr: errAny},
			{name: "driver reports extra", keys: many[:5], driver: func(d *batchDriver) { d.extra = true }},
			{name: "cancelled", keys: many[:3], wantErr: context.Canceled, ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			}},
		} {
			t.Run(fmt.Sprintf("%s/batched=%v", tc.name, batched), func(t *testing.T) {
				d := &batchDriver{plainStore: plainStore{data: data}}
				if tc.driver != nil {
					if !batched && tc.name != "refused" {
						t.Skip("a driver without driver.GetManyDriver has no batch to misbehave")
					}
					tc.driver(d)
				}
				var drv driver.Driver = d
				if !batched {
					drv = &d.plainStore
					if tc.name == "refused" {
						drv = &refusingStore{}
					}
				}
				c := NewCache("test", drv, &Options{DisableBreaker: true})
				defer c.Close()
				if got := readsInBatches(c); got != batched {
					t.Errorf("ReadsInBatches = %v, want %v", got, batched)
				}
				ctx, cancel := context.WithCancel(context.Background())
				if tc.ctx != nil {
					ctx, cancel = tc.ctx()
				}
				defer cancel()
				values, err := GetMany(ctx, c, tc.keys)
				if tc.wantErr != nil {
					if err == nil || values != nil || errors.Is(err, autocert.ErrCacheMiss) || (tc.wantErr != errAny && !errors.Is(err, tc.wantErr)) {
						t.Fatalf("GetMany = %d values, %v; want no values and an error matching %v, never a miss", len(values), err, tc.wantErr)
					}
					var e *Error
					if !errors.As(err, &e) || e.Backend != "test" {
						t.Errorf("GetMany error %v does not name the backend", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("GetMany: %v", err)
				}
				if len(values) != len(tc.keys) {
					t.Fatalf("%d values for %d keys", len(values), len(tc.keys))
				}
				for i, k := range tc.keys {
					want, ok := data[k]
					if got := values[i]; (got == nil) == ok || !bytes.Equal(got, want) {
						t.Errorf("values[%d] (%s) = %q (nil: %v), want %q (stored: %v)", i, k, got, got == nil, want, ok)
					}
				}
				if len(values) > 2 && len(tc.keys) == 5 && tc.keys[1] == tc.keys[2] && &values[1][0] == &values[2][0] {
					t.Errorf("a key asked twice shares one slice")
				}
				if batched && fmt.Sprint(d.calls) != fmt.Sprint(tc.wantCalls) && tc.wantCalls != nil {
					t.Errorf("driver calls of %v keys, want %v", d.calls, tc.wantCalls)
				}
			})
		}
	}
}

// errAny matches any error in TestGetManyPortable.
var errAny = errors.New("any error")

// refusingStore refuses every call, as a stopped server does.
type refusingStore struct{ plainStore }

func (*refusingStore) Get(context.Context, string) ([]byte, error) {
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
}

// TestGetManyAfterCallerGaveUp: a batch the driver answered after the
// caller's context ended is an error, not keys reported missing.
func TestGetManyAfterCallerGaveUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	d := &batchDriver{plainStore: plainStore{data: map[string][]byte{}}, during: cancel}
	c := NewCache("test", d, nil)
	defer c.Close()
	values, err := GetMany(ctx, c, []string{"a", "b"})
	if values != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("GetMany = %v, %v; want no values and context.Canceled", values, err)
	}
}

// TestGetManyOpensBreaker: a batch that finds the store unavailable opens
// the breaker, as a Get does.
func TestGetManyOpensBreaker(t *testing.T) {
	c := NewCache("test", &refusingBatch{}, nil)
	defer c.Close()
	if _, err := GetMany(context.Background(), c, []string{"a"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("GetMany = %v, want ErrUnavailable", err)
	}
	if _, err := c.Get(context.Background(), "a"); !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("Get after a failed GetMany = %v, want ErrCircuitOpen", err)
	}
}

// refusingBatch refuses every call, batches too.
type refusingBatch struct{ refusingStore }

func (*refusingBatch) GetMany(context.Context, []string, func(int, []byte)) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
}
