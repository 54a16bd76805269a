package redis

import (
	"context"

	ccdriver "github.com/certcache/certcache/driver"

	goredis "github.com/redis/go-redis/v9"
)

var _ ccdriver.GetManyDriver = (*driver)(nil)

// GetMany implements driver.GetManyDriver with MGET: one command on a
// single server or through Sentinel. A cluster answers MGET only for keys
// of one hash slot, so there the keys are grouped by slot, one MGET per
// slot, all in one pipeline (go-redis sends each node its slots' commands
// at once, and follows redirections). A ring shards by key, so there each
// key is a GET in one pipeline.
//
// MGET reads a key holding another type than a string (nothing this
// package writes) as missing, where GET fails with WRONGTYPE; List does
// not list such keys either.
func (d *driver) GetMany(ctx context.Context, keys []string, found func(i int, value []byte)) error {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = d.prefix + k
	}
	switch c := d.client.(type) {
	case *goredis.ClusterClient:
		return d.mgetBySlot(ctx, c, full, found)
	case *goredis.Ring:
		return d.getEach(ctx, c, full, found)
	}
	vals, err := d.client.MGet(ctx, full...).Result()
	if err != nil {
		return classify(err)
	}
	report(vals, nil, found)
	return nil
}

// mgetBySlot sends one MGET per hash slot, in one pipeline.
func (d *driver) mgetBySlot(ctx context.Context, c *goredis.ClusterClient, full []string, found func(int, []byte)) error {
	var (
		slots   = map[uint16]int{} // slot → its group in idx
		idx     [][]int            // each group's indexes into full
		members [][]string         // and their keys
	)
	for i, k := range full {
		s := hashSlot(k)
		g, ok := slots[s]
		if !ok {
			g = len(idx)
			slots[s] = g
			idx, members = append(idx, nil), append(members, nil)
		}
		idx[g] = append(idx[g], i)
		members[g] = append(members[g], k)
	}
	cmds := make([]*goredis.SliceCmd, len(members))
	if _, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for g, ks := range members {
			cmds[g] = p.MGet(ctx, ks...)
		}
		return nil
	}); err != nil {
		return classify(err)
	}
	for g, cmd := range cmds {
		report(cmd.Val(), idx[g], found)
	}
	return nil
}

// getEach sends one GET per key, in one pipeline.
func (d *driver) getEach(ctx context.Context, c goredis.Cmdable, full []string, found func(int, []byte)) error {
	cmds := make([]*goredis.StringCmd, len(full))
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range full {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && err != goredis.Nil { //nolint:errorlint // go-redis returns the bare sentinel
		return classify(err)
	}
	for i, cmd := range cmds {
		if v, err := cmd.Bytes(); err == nil {
			found(i, v)
		} else if err != goredis.Nil { //nolint:errorlint // as above
			return classify(err)
		}
	}
	return nil
}

// report calls found for each value MGET returned (nil for a missing key,
// a string otherwise); idx maps its positions to found's, nil meaning the
// same.
func report(vals []any, idx []int, found func(int, []byte)) {
	for j, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		i := j
		if idx != nil {
			i = idx[j]
		}
		found(i, []byte(s))
	}
}

// hashSlot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of the
// key, or of its hash tag (the bytes between the first "{" and the next
// "}", if not empty), modulo 16384.
func hashSlot(key string) uint16 {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						key = key[i+1 : j]
					}
					break
				}
			}
			break
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}
