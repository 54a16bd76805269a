// Package redis is certcache's Redis backend, on github.com/redis/go-redis/v9.
// Importing it registers the redis://, rediss://, redis+sentinel://,
// rediss+sentinel://, redis+cluster:// and rediss+cluster:// schemes with
// certcache.Open:
//
//	import _ "github.com/certcache/certcache/redis"
//
//	cache, err := certcache.Open(ctx, "redis://:PASSWORD@cache.internal:6379/0?prefix=myapp")
//
// Users who already hold a client call New.
//
// # URLs
//
// A single server (rediss:// for TLS), as go-redis's ParseURL reads it:
//
//	redis://[USER[:PASSWORD]@]HOST[:PORT][/DB][?PARAMS]
//
// Sentinel: the URL names one sentinel, addr adds more, master_name is
// required. The URL's user and password are the sentinels'; the master's
// come from the username and password parameters (go-redis's
// ParseFailoverURL):
//
//	redis+sentinel://[USER[:PASSWORD]@]SENTINEL:26379[/DB]?master_name=mymaster&addr=SENTINEL2:26379
//
// Cluster: the URL names one node, addr adds more (go-redis's
// ParseClusterURL):
//
//	redis+cluster://[USER[:PASSWORD]@]NODE:6379?addr=NODE2:6379&addr=NODE3:6379
//
// Replicas: read_only, route_by_latency and route_randomly (cluster) and
// replica_only (sentinel) read from replicas, which may not yet have a
// certificate just stored on the master; issuance coordination, which
// reads a certificate again after taking its lease, would then order it
// twice. certcache.Open refuses them unless coordinate=false, and New
// refuses such a cluster client unless Options.Cache.DisableCoordination.
// Sentinel URLs cannot route reads (route_by_latency, route_randomly).
//
// Parameters of certcache (every scheme):
//
//	prefix       the key namespace; keys are stored as PREFIX:KEY. Default "certcache".
//	tls_ca_file  a PEM file of CA certificates that verify the server (rediss only);
//	             default: the system roots
//	timeout      the per-call timeout (handled by certcache.Open); default 10s
//	maint_notifications
//	             disabled (the default), auto or enabled: go-redis's maintenance
//	             notifications (Redis Cloud and Redis Software's smart client
//	             handoff); not on redis+sentinel. go-redis's own default, auto,
//	             costs every client's first connection a round trip.
//
// Every other parameter is go-redis's own (dial_timeout, read_timeout,
// pool_size, max_retries, client_name, protocol, skip_verify, …, spelled in
// snake case); an unknown or repeated parameter is an error that names it.
// Clients built from a URL honour each call's context
// (ContextTimeoutEnabled), so the per-call timeout bounds a stuck server.
//
// # Keys
//
// Redis keys are binary-safe, so a cache key is stored as it is after the
// prefix and the colon: no key can leave the prefix, and distinct keys never
// collide. Namespaces nest: the prefix "a:b" lies inside the key space of
// the prefix "a", so give unrelated deployments prefixes that are not
// colon-extensions of each other.
//
// # Leases
//
// The cache implements driver.LeaseDriver. The lease called NAME is the
// string key
//
//	PREFIX "\x00lease:" NAME
//
// holding the holder's token, with Redis's own expiry (PX): the server's
// clock decides when a lease ends. Prefixes, keys and lease names never hold
// a NUL byte, so no lease key equals a cache key of any namespace, and
// leases of different namespaces never collide. Acquiring is SET NX PX in a
// script that also lets the holder re-acquire (extending its lease);
// refreshing and releasing are scripts that compare the token before
// PEXPIRE or DEL. Each script touches the lease key alone, so it runs on a
// single server, through Sentinel, and on the cluster node that owns the
// key's slot. Replication is asynchronous: a failover in the second after
// an acquisition may lose the lease, as it may lose a Put.
//
// certcache.ListLeases (certcache leases) SCANs the lease keys on every
// node, with the time left from PTTL; Redis deletes an expired lease, so
// none is listed, and certcache.BreakLease without force never deletes one
// (a lease key that exists has not expired); with force it is a DEL.
//
// # Listing
//
// The cache implements driver.ListDriver with SCAN … MATCH PREFIX:* TYPE
// string, 16,384 keys of the keyspace examined a page, on every master of a
// cluster (or shard of a ring) in turn, and a pipelined STRLEN per page for
// the sizes (on a single server, in one round trip with the next page's
// SCAN); it needs Redis 6.0 or later (SCAN's TYPE). It implements
// driver.KeyListDriver with the same SCANs alone, one round trip a page,
// which a memory front's preload uses. Glob characters (* ? [ ] \) in the
// prefixes are escaped, so a namespace never lists another's keys; lease
// keys are never listed. Redis keeps no write time, so ModTime is zero.
// SCAN lists every key that exists from the start of a listing to its end,
// but it may list a key twice if the keyspace shrinks or a cluster moves
// slots meanwhile; keys written or deleted during a listing may or may not
// appear. A listing of the prefix "a" includes the keys of the nested
// namespace "a:b", as Get through "a" reads them.
//
// # Changes
//
// The cache implements driver.WatchDriver: Put and Delete publish the
// key on the pub/sub channel PREFIX ":\x00changes" in the write's round
// trip (on a cluster or a ring, just after it), and each Cache subscribes
// once, so that waiters for a certificate another node orders wake when it
// is stored. Pub/sub needs no server setting (keyspace notifications would
// need CONFIG SET, which managed Redis refuses). A proxy that does not
// deliver pub/sub is found at subscription and leaves waiters polling.
//
// # Unreachable servers
//
// A refused connection (nothing listens: the server is stopped) is reported
// at once, as an error matching certcache.ErrUnavailable, instead of after
// go-redis's retries (about 1.7 s by default). Clients opened from a URL
// dial once per attempt (sentinel and cluster URLs may set dialer_retries;
// go-redis's default is 5) and do not retry a refusal; timeouts, resets and
// unreachable networks are still retried max_retries times. A client given
// to New keeps its own settings.
//
// # Errors
//
// Only a missing key (go-redis's redis.Nil) is a miss. Connection failures,
// timeouts, authentication errors (WRONGPASS, NOAUTH), a read-only replica
// and every other failure are errors that are never autocert.ErrCacheMiss;
// connection failures and pool timeouts match certcache.ErrUnavailable.
package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/certcache/certcache"
	ccdriver "github.com/certcache/certcache/driver"
	"github.com/certcache/certcache/internal/keymemo"
	"github.com/certcache/certcache/internal/urlquery"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"golang.org/x/crypto/acme/autocert"
)

// DefaultPrefix is the key namespace when none is given.
const DefaultPrefix = "certcache"

// maxPrefixLen bounds a prefix; Redis keys may be far longer, but a prefix
// that long is a mistake.
const maxPrefixLen = 256

func init() {
	for _, s := range []string{"redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"} {
		certcache.Register(s, certcache.Backend{Name: "redis", Open: openURL})
	}
}

// Options configure a Redis cache. The zero value (or nil) gives the
// defaults.
type Options struct {
	// Prefix is the key namespace: keys are stored as Prefix + ":" + key.
	// If empty, DefaultPrefix.
	Prefix string

	// Timeout bounds each call. If zero, certcache.DefaultTimeout. The
	// client must have ContextTimeoutEnabled for a call to a stuck server to
	// end at the timeout rather than at the client's own read timeout.
	Timeout time.Duration

	// Cache configures what every backend shares: the Get timeout, the
	// circuit breaker, issuance coordination and its lease TTL, and the
	// OpenTelemetry providers and logger (see certcache.Options). The zero
	// value gives the defaults, as a URL without those parameters does.
	// Timeout above, when set, overrides Cache.Timeout.
	Cache certcache.Options
}

// New returns a Cache that stores values through client, which may be a
// *redis.Client, *redis.ClusterClient, failover client or Ring. Close does
// not close client: it belongs to the caller, and so do its dial and retry
// settings: New leaves them as they are, so a refused connection takes as
// long to report as go-redis's retries of it (see Unreachable servers).
func New(client goredis.UniversalClient, o *Options) (certcache.Cache, error) {
	if client == nil {
		return nil, errors.New("certcache/redis: New: nil client")
	}
	var opts Options
	if o != nil {
		opts = *o
	}
	d, err := newDriver(client, opts.Prefix, false)
	if err != nil {
		return nil, fmt.Errorf("certcache/redis: New: %w", err)
	}
	co := opts.Cache // a copy: the caller's Options are never changed
	if cc, ok := client.(*goredis.ClusterClient); ok && !co.DisableCoordination {
		if r := clusterReplicaReads(cc.Options()); r != "" {
			return nil, fmt.Errorf("certcache/redis: New: the cluster client reads from replicas (%s), which may not yet have a certificate just stored on the master, so issuance cannot be coordinated: read from masters, or set Options.Cache.DisableCoordination", strings.TrimSuffix(r, "=true"))
		}
	}
	if opts.Timeout > 0 {
		co.Timeout = opts.Timeout
	}
	return certcache.NewCache("redis", d, &co), nil
}

// driver is the driver.Driver over a go-redis client.
type driver struct {
	client    goredis.UniversalClient
	prefix    string // with the trailing colon
	ownClient bool   // opened from a URL: Close closes it

	replicaReads string // see ReplicaReads

	names keymemo.Memo[any] // each key's name, boxed as a command argument
}

var _ ccdriver.Driver = (*driver)(nil)

func newDriver(client goredis.UniversalClient, prefix string, own bool) (*driver, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	return &driver{client: client, prefix: prefix + ":", ownClient: own}, nil
}

func checkPrefix(p string) error {
	if len(p) > maxPrefixLen {
		return fmt.Errorf("%w: prefix is %d bytes, limit %d", certcache.ErrInvalidURL, len(p), maxPrefixLen)
	}
	if err := certcache.ValidateKey(p); err != nil {
		return fmt.Errorf("%w: prefix %q: %v", certcache.ErrInvalidURL, p, err)
	}
	return nil
}

func (d *driver) Get(ctx context.Context, key string) ([]byte, error) {
	// client.Get(ctx, d.prefix+key), with the name made once per key.
	cmd := goredis.NewStringCmd(ctx, "get", d.names.Get(key, d.name))
	_ = d.client.Process(ctx, cmd)
	v, err := cmd.Bytes()
	if err == goredis.Nil { //nolint:errorlint // go-redis returns the bare sentinel
		return nil, autocert.ErrCacheMiss
	}
	return v, classify(err)
}

// name is key's name in Redis.
func (d *driver) name(key string) any { return d.prefix + key }

// Put and Delete publish the key they wrote (see watch.go).
func (d *driver) Put(ctx context.Context, key string, data []byte) error {
	return d.write(ctx, key, func(p goredis.Pipeliner) goredis.Cmder { return p.Set(ctx, d.prefix+key, data, 0) })
}

func (d *driver) Delete(ctx context.Context, key string) error {
	return d.write(ctx, key, func(p goredis.Pipeliner) goredis.Cmder { return p.Del(ctx, d.prefix+key) })
}

func (d *driver) Close() error {
	if !d.ownClient {
		return nil
	}
	return d.client.Close()
}

// classify marks go-redis's pool errors as unavailability; network errors
// are classified by certcache itself.
func classify(err error) error {
	if errors.Is(err, goredis.ErrPoolTimeout) || errors.Is(err, goredis.ErrPoolExhausted) {
		return fmt.Errorf("%w: %w", certcache.ErrUnavailable, err)
	}
	return err
}

// openURL is the certcache.Backend Open func for every scheme.
func openURL(_ context.Context, u *url.URL) (ccdriver.Driver, error) {
	q := urlquery.Parse(u.RawQuery)
	prefix := DefaultPrefix
	if q.Has("prefix") {
		prefix = q.String("prefix")
		if prefix == "" {
			q.Fail("prefix is empty (leave it out for the default %q)", DefaultPrefix)
		}
	}
	caFile := q.String("tls_ca_file")
	maint := maintnotifications.ModeDisabled
	if q.Has("maint_notifications") {
		switch m := maintnotifications.Mode(q.String("maint_notifications")); m {
		case maintnotifications.ModeDisabled, maintnotifications.ModeAuto, maintnotifications.ModeEnabled:
			maint = m
		default:
			q.Fail("maint_notifications must be disabled, auto or enabled")
		}
	}
	if err := q.ReadErr(); err != nil {
		return nil, fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	scheme, mode, _ := strings.Cut(u.Scheme, "+")
	if caFile != "" && scheme != "rediss" {
		return nil, fmt.Errorf("%w: tls_ca_file needs a rediss scheme", certcache.ErrInvalidURL)
	}
	if maint != maintnotifications.ModeDisabled && mode == "sentinel" {
		return nil, fmt.Errorf("%w: maint_notifications needs redis:// or redis+cluster://: go-redis's failover client has none", certcache.ErrInvalidURL)
	}
	// go-redis parses what is left, with the plain redis or rediss scheme.
	gu := *u
	gu.Scheme = scheme
	gu.RawQuery = q.Remaining().Encode()
	client, replicas, err := newClient(mode, gu.String(), caFile, maint)
	if err != nil {
		return nil, err
	}
	d, err := newDriver(client, prefix, true)
	if err != nil {
		client.Close()
		return nil, err
	}
	d.replicaReads = replicas
	return d, nil
}

// newClient returns the client for a URL, and the parameter that sends its
// reads to replicas, if one does.
func newClient(mode, rawURL, caFile string, maint maintnotifications.Mode) (_ goredis.UniversalClient, replicas string, _ error) {
	c, err := newClientFor(mode, rawURL, caFile, maint, &replicas)
	return c, replicas, err
}

// newClientFor builds the client for a URL. The first Get of a node, or of
// a restarted node's preload, waits for a connection to open, so each
// client leaves out what go-redis would add to that in round trips of
// their own after HELLO (10 ms each behind 10 ms of latency):
//   - DisableIdentity: go-redis would name itself to each new connection
//     (CLIENT SETINFO LIB-NAME and LIB-VER, which CLIENT LIST shows);
//   - maint (maint_notifications, default disabled): go-redis's default,
//     auto, sends CLIENT MAINT_NOTIFICATIONS on a client's first connection,
//     and on every connection of a server that accepts it.
func newClientFor(mode, rawURL, caFile string, maint maintnotifications.Mode, replicas *string) (goredis.UniversalClient, error) {
	badURL := func(err error) error {
		// go-redis's messages name the parameter, not its value; the caller
		// redacts secrets all the same.
		msg := strings.TrimPrefix(err.Error(), "redis: ")
		msg = strings.Replace(msg, "unexpected option:", "unknown parameter", 1)
		return fmt.Errorf("%w: %s", certcache.ErrInvalidURL, msg)
	}
	switch mode {
	case "":
		o, err := goredis.ParseURL(rawURL)
		if err != nil {
			return nil, badURL(err)
		}
		if err := setCA(o.TLSConfig, caFile); err != nil {
			return nil, err
		}
		o.ContextTimeoutEnabled = true
		o.DisableIdentity = true // see newClientFor
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maint}
		if o.DialerRetries == 0 {
			o.DialerRetries = defaultDialerRetries
		}
		c := goredis.NewClient(o)
		failFast(c)
		return c, nil
	case "sentinel":
		o, err := goredis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, badURL(err)
		}
		if o.MasterName == "" {
			return nil, fmt.Errorf("%w: redis+sentinel needs master_name", certcache.ErrInvalidURL)
		}
		// go-redis's failover client panics on these: only its failover
		// cluster client, which certcache does not build, routes reads.
		if o.RouteByLatency || o.RouteRandomly {
			return nil, fmt.Errorf("%w: route_by_latency and route_randomly need redis+cluster; redis+sentinel reads from the master", certcache.ErrInvalidURL)
		}
		if o.ReplicaOnly {
			*replicas = "replica_only=true"
		}
		if err := setCA(o.TLSConfig, caFile); err != nil {
			return nil, err
		}
		o.ContextTimeoutEnabled = true
		o.DisableIdentity = true // see newClientFor
		if o.DialerRetries == 0 {
			o.DialerRetries = defaultDialerRetries
		}
		o.Dialer = failoverDialer(o)
		return goredis.NewFailoverClient(o), nil
	case "cluster":
		o, err := goredis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, badURL(err)
		}
		*replicas = clusterReplicaReads(o)
		if err := setCA(o.TLSConfig, caFile); err != nil {
			return nil, err
		}
		o.ContextTimeoutEnabled = true
		o.DisableIdentity = true // see newClientFor
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maint}
		if o.DialerRetries == 0 {
			o.DialerRetries = defaultDialerRetries
		}
		c := goredis.NewClusterClient(o)
		failFast(c)
		return c, nil
	}
	return nil, fmt.Errorf("%w: unknown redis scheme variant %q", certcache.ErrInvalidURL, mode)
}

// clusterReplicaReads names the setting of o that sends reads to replicas,
// as the URL spells it, or returns "".
func clusterReplicaReads(o *goredis.ClusterOptions) string {
	switch {
	case o.RouteByLatency:
		return "route_by_latency=true"
	case o.RouteRandomly:
		return "route_randomly=true"
	case o.ReadOnly:
		return "read_only=true"
	}
	return ""
}

// ReplicaReads names the URL parameter that sends the driver's reads to
// replicas, or returns "": certcache.Open refuses a URL with one unless
// coordinate=false, since coordination's re-read after taking a lease may
// miss a certificate just stored on the master.
func (d *driver) ReplicaReads() string { return d.replicaReads }

// setCA makes cfg trust only the CA certificates in file.
func setCA(cfg *tls.Config, file string) error {
	if file == "" || cfg == nil {
		return nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%w: tls_ca_file: %v", certcache.ErrInvalidURL, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%w: tls_ca_file %s holds no PEM certificate", certcache.ErrInvalidURL, file)
	}
	cfg.RootCAs = pool
	return nil
}
