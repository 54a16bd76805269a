package certcache

import (
	"github.com/certcache/certcache/driver"
	"github.com/certcache/certcache/internal/hook"
	redactpkg "github.com/certcache/certcache/internal/redact"

	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Backend describes a backend to Register.
type Backend struct {
	// Name is the backend's name in error messages ("certcache/<Name>: …").
	Name string

	// Open opens a driver for u, whose query holds only the backend's own
	// parameters; it must reject one it does not know, and should not
	// contact the server.
	Open func(ctx context.Context, u *url.URL) (driver.Driver, error)
}

var registry struct {
	mu       sync.RWMutex
	backends map[string]Backend
	wrappers []hook.Wrapper
	params   map[string]bool // every wrapper parameter
}

// Register makes a backend available to Open under scheme; backend
// packages call it from init. It panics, as database/sql.Register does, if
// scheme is taken or b lacks Name or Open.
func Register(scheme string, b Backend) {
	scheme = strings.ToLower(scheme)
	if scheme == "" || b.Name == "" || b.Open == nil {
		panic("certcache: Register needs a scheme, a Name and an Open func")
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if _, dup := registry.backends[scheme]; dup {
		panic("certcache: Register called twice for scheme " + scheme)
	}
	if registry.backends == nil {
		registry.backends = make(map[string]Backend)
	}
	registry.backends[scheme] = b
}

// registerWrapper is hook.RegisterWrapper. It panics if one of w's
// parameters is already taken, or is one of the parameters every backend
// shares (timeout, get_timeout, breaker, breaker_probe, …).
func registerWrapper(w hook.Wrapper) {
	if w.Wrap == nil || len(w.Params) == 0 {
		panic("certcache: a wrapper needs Params and a Wrap func")
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.params == nil {
		registry.params = map[string]bool{paramTimeout: true, paramGetTimeout: true, paramBreaker: true, paramBreakerProbe: true, paramCoordinate: true, paramLeaseTTL: true, paramRenewBefore: true}
	}
	for _, p := range w.Params {
		if registry.params[p] {
			panic("certcache: wrapper parameter " + p + " is already taken")
		}
		registry.params[p] = true
	}
	registry.wrappers = append(registry.wrappers, w)
	sort.SliceStable(registry.wrappers, func(i, j int) bool { return registry.wrappers[i].Rank < registry.wrappers[j].Rank })
}

// Schemes returns the registered schemes, sorted.
func Schemes() []string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	s := make([]string, 0, len(registry.backends))
	for k := range registry.backends {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// knownPackages names the package that registers a well-known scheme, for
// the "forgotten import?" hint.
var knownPackages = map[string]string{
	"redis": "redis", "rediss": "redis", "redis+sentinel": "redis", "rediss+sentinel": "redis",
	"redis+cluster": "redis", "rediss+cluster": "redis",
	"s3":       "s3",
	"azblob":   "azblob",
	"dynamodb": "dynamodb",
	"postgres": "sql/postgres", "postgresql": "sql/postgres", "mysql": "sql/mysql", "sqlite": "sql/sqlite",
}

// knownParams names the package that handles a well-known wrapper parameter.
var knownParams = map[string]string{
	"memory": "layered", "memory_ttl": "layered", "memory_max_entries": "layered", "memory_max_bytes": "layered", "memory_preload": "layered",
	"encryption_key": "encrypt", "encryption_keys": "encrypt", "encryption_migrate": "encrypt",
}

// The parameters every backend shares, handled by takeCommonParams.
const (
	paramTimeout      = "timeout"
	paramGetTimeout   = "get_timeout"
	paramBreaker      = "breaker"
	paramBreakerProbe = "breaker_probe"
	paramCoordinate   = "coordinate"
	paramLeaseTTL     = "lease_ttl"
	paramRenewBefore  = "renew_before"
)

// Open opens the cache that rawURL names. It checks the URL and builds the
// client but does not contact the server, so an application can start while
// its store is down. Its errors wrap ErrInvalidURL and never quote a password.
func Open(ctx context.Context, rawURL string) (Cache, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	registry.mu.RLock()
	b, ok := registry.backends[u.Scheme]
	wrappers := slices.Clone(registry.wrappers)
	registry.mu.RUnlock()
	if !ok {
		return nil, unknownScheme(u.Scheme)
	}
	secrets := urlSecrets(u)
	fail := func(err error) error { return newError(b.Name, "open", "", redact(err, secrets)) }

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fail(fmt.Errorf("%w: malformed query: %v", ErrInvalidURL, err))
	}
	opts, err := takeCommonParams(q)
	if err != nil {
		return nil, fail(err)
	}
	wrapParams := make([]url.Values, len(wrappers))
	for i, w := range wrappers {
		for _, p := range w.Params {
			if vs, ok := q[p]; ok {
				if wrapParams[i] == nil {
					wrapParams[i] = url.Values{}
				}
				wrapParams[i][p] = vs
				delete(q, p)
			}
		}
	}
	for p := range q {
		if pkg, ok := knownParams[p]; ok {
			return nil, fail(fmt.Errorf("%w: parameter %s needs package github.com/certcache/certcache/%s (forgotten import?)", ErrInvalidURL, p, pkg))
		}
	}

	bu := *u // the backend gets a copy without our parameters
	bu.RawQuery = q.Encode()
	d, err := b.Open(ctx, &bu)
	if err != nil {
		return nil, fail(err)
	}
	if err := refusesCoordination(d, opts); err != nil {
		d.Close()
		return nil, fail(err)
	}
	p := newPortable(b.Name, d, opts, secrets)
	var c Cache = p
	for i, w := range wrappers {
		if wrapParams[i] == nil {
			continue
		}
		wc, err := w.Wrap(ctx, c, wrapParams[i])
		if err != nil {
			c.Close()
			return nil, fail(err)
		}
		c = wc
	}
	// Coordination goes on top of everything, so that it sees the values
	// as autocert does (opened, whatever the front holds).
	return coordinate(c, p, opts), nil
}

// takeCommonParams removes the parameters every backend shares from q.
func takeCommonParams(q url.Values) (*Options, error) {
	o := &Options{}
	var err error
	if o.Timeout, err = takeDuration(q, paramTimeout); err != nil {
		return nil, err
	}
	if o.GetTimeout, err = takeDuration(q, paramGetTimeout); err != nil {
		return nil, err
	}
	if err := takeBreakerParams(q, o); err != nil {
		return nil, err
	}
	on, set, err := takeParam(q, paramCoordinate)
	if err != nil {
		return nil, err
	}
	if set {
		b, perr := strconv.ParseBool(on)
		if perr != nil {
			return nil, fmt.Errorf("%w: parameter %s=%q: want true or false", ErrInvalidURL, paramCoordinate, on)
		}
		o.DisableCoordination = !b
	}
	if o.LeaseTTL, err = takeDuration(q, paramLeaseTTL); err != nil {
		return nil, err
	}
	if o.LeaseTTL > 0 && o.LeaseTTL < minLeaseTTL {
		return nil, fmt.Errorf("%w: parameter %s=%v: at least %v", ErrInvalidURL, paramLeaseTTL, o.LeaseTTL, minLeaseTTL)
	}
	if o.DisableCoordination && o.LeaseTTL > 0 {
		return nil, fmt.Errorf("%w: parameter %s with %s=false: coordination that is off takes no leases", ErrInvalidURL, paramLeaseTTL, paramCoordinate)
	}
	if o.RenewBefore, err = takeDuration(q, paramRenewBefore); err != nil {
		return nil, err
	}
	if o.DisableCoordination && o.RenewBefore > 0 {
		return nil, fmt.Errorf("%w: parameter %s with %s=false: coordination that is off does not renew", ErrInvalidURL, paramRenewBefore, paramCoordinate)
	}
	return o, nil
}

// takeBreakerParams removes breaker and breaker_probe from q into o.
func takeBreakerParams(q url.Values, o *Options) error {
	on, set, err := takeParam(q, paramBreaker)
	if err != nil {
		return err
	}
	if set {
		b, perr := strconv.ParseBool(on)
		if perr != nil {
			return fmt.Errorf("%w: parameter %s=%q: want true or false", ErrInvalidURL, paramBreaker, on)
		}
		o.DisableBreaker = !b
	}
	if o.BreakerProbeInterval, err = takeDuration(q, paramBreakerProbe); err != nil {
		return err
	}
	if o.DisableBreaker && o.BreakerProbeInterval > 0 {
		return fmt.Errorf("%w: parameter %s with %s=false: a breaker that is off does not probe", ErrInvalidURL, paramBreakerProbe, paramBreaker)
	}
	return nil
}

// takeParam removes name from q and returns its value; set is false if q
// does not have it. A repeated parameter is an error.
func takeParam(q url.Values, name string) (v string, set bool, err error) {
	vs, ok := q[name]
	if !ok {
		return "", false, nil
	}
	delete(q, name)
	if len(vs) != 1 {
		return "", false, fmt.Errorf("%w: parameter %s given %d times", ErrInvalidURL, name, len(vs))
	}
	return vs[0], true, nil
}

// takeDuration removes name from q and parses it as a positive duration; 0
// if q does not have it.
func takeDuration(q url.Values, name string) (time.Duration, error) {
	v, set, err := takeParam(q, name)
	if err != nil || !set {
		return 0, err
	}
	d, perr := time.ParseDuration(v)
	if perr != nil || d <= 0 {
		return 0, fmt.Errorf("%w: parameter %s=%q: want a positive duration such as 5s", ErrInvalidURL, name, v)
	}
	return d, nil
}

// parseURL parses rawURL without ever putting its password in an error:
// url.Parse quotes the whole input in its errors.
func parseURL(rawURL string) (*url.URL, error) {
	if rawURL == "" {
		return nil, newError("", "open", "", fmt.Errorf("%w: empty URL", ErrInvalidURL))
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		msg := "malformed URL"
		if ue, ok := err.(*url.Error); ok && !strings.Contains(rawURL, "@") {
			msg += ": " + ue.Err.Error()
		} else if ok {
			msg += " (details withheld: the URL holds credentials)"
		}
		return nil, newError("", "open", "", fmt.Errorf("%w: %s", ErrInvalidURL, msg))
	}
	if u.Scheme == "" {
		return nil, newError("", "open", "", fmt.Errorf("%w: no scheme (want e.g. redis://, s3://, file://)", ErrInvalidURL))
	}
	return u, nil
}

func unknownScheme(scheme string) error {
	hint := ""
	if pkg, ok := knownPackages[scheme]; ok {
		hint = fmt.Sprintf(" (forgotten import _ %q?)", "github.com/certcache/certcache/"+pkg)
	}
	return newError("", "open", "", fmt.Errorf("%w: unknown scheme %q%s; registered: %s",
		ErrInvalidURL, scheme, hint, strings.Join(Schemes(), ", ")))
}

// secretParam reports whether a query parameter's value is a secret by its
// name: password, sentinel_password, account_key, sas_token, secret, …, but
// not the name of one (sse_kms_key_id, key_name).
func secretParam(name string) bool {
	name = strings.ToLower(name)
	if strings.HasSuffix(name, "_id") || strings.HasSuffix(name, "_name") {
		return false
	}
	for _, w := range []string{"password", "secret", "key", "token", "sig", "credential"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// urlSecrets returns the strings of u that must never appear in an error:
// the password and the values of secret-looking parameters, raw and escaped.
func urlSecrets(u *url.URL) []string {
	var raw []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			raw = append(raw, p)
		}
	}
	if q, err := url.ParseQuery(u.RawQuery); err == nil {
		for k, vs := range q {
			if secretParam(k) {
				raw = append(raw, vs...)
			}
		}
	}
	var out []string
	for _, s := range raw {
		if s == "" {
			continue
		}
		out = append(out, s)
		for _, e := range []string{url.QueryEscape(s), url.PathEscape(s), url.UserPassword("", s).String()[1:]} {
			if e != s {
				out = append(out, e)
			}
		}
	}
	return out
}

// redactedError hides secrets in its message but keeps the chain, so that
// errors.Is and errors.As still see the cause.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err with every secret in its message replaced. SDKs quote
// URLs and DSNs in their errors; this is the one place that stops it.
func redact(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	if red := redactpkg.String(msg, secrets); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}
