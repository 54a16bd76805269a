package azblob

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"

	ccdriver "github.com/certcache/certcache/driver"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/backendopts"
	"github.com/certcache/certcache/internal/urlquery"
)

// maxPrefixLen bounds a prefix, leaving most of a blob name's 1024
// characters to the key.
const maxPrefixLen = 256

// config is what an azblob URL says.
type config struct {
	container string
	prefix    string // without the trailing "/"
	account   string // from the URL only; the environment may add one
	endpoint  string // the service URL, without a trailing "/"
	domain    string
	protocol  string
	create    bool
	maxConns  int
}

// openURL is the certcache.Backend Open func.
func openURL(_ context.Context, u *url.URL) (ccdriver.Driver, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	c, err := newClient(cfg, os.Getenv)
	if err != nil {
		return nil, err
	}
	d := newDriver(c.client, cfg.container, cfg.prefix, cfg.create)
	d.secrets, d.closeIdle = c.secrets, c.closeIdle
	return d, nil
}

func parseURL(u *url.URL) (*config, error) {
	if u.Opaque != "" {
		return nil, errors.New("want azblob://CONTAINER[/PREFIX]")
	}
	if u.User != nil {
		return nil, errors.New("an azblob URL holds no user or password: credentials come from the environment (see the package documentation)")
	}
	if u.Fragment != "" {
		return nil, errors.New("an azblob URL has no #fragment")
	}
	cfg := &config{container: u.Host, prefix: strings.Trim(u.Path, "/")}
	if err := checkContainer(cfg.container); err != nil {
		return nil, err
	}
	if err := checkPrefix(cfg.prefix); err != nil {
		return nil, err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("malformed query: %v", err)
	}
	if err := refuseSecrets(q); err != nil {
		return nil, err
	}
	if _, ok := q["prefix"]; ok {
		return nil, errors.New("parameter prefix: the prefix goes in the path, azblob://CONTAINER/PREFIX")
	}
	r := urlquery.New(q)
	cfg.account = r.String("account")
	if r.Has("storage_account") {
		if cfg.account != "" {
			return nil, errors.New("give account or storage_account, not both")
		}
		cfg.account = r.String("storage_account")
	}
	cfg.endpoint = r.String("endpoint")
	cfg.domain = r.String("domain")
	cfg.protocol = r.Choice("protocol", "", "https", "http")
	cfg.create = r.Bool("create_container", false)
	cfg.maxConns = r.Int("max_conns", backendopts.MaxConns())
	if cfg.maxConns == 0 {
		r.Fail("max_conns=0: want at least 1")
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if cfg.account != "" {
		if err := checkAccount(cfg.account); err != nil {
			return nil, err
		}
	}
	if cfg.endpoint != "" {
		if cfg.domain != "" || cfg.protocol != "" {
			return nil, errors.New("endpoint names the whole service URL: leave out domain and protocol")
		}
		ep, err := checkEndpoint(cfg.endpoint)
		if err != nil {
			return nil, err
		}
		cfg.endpoint = ep
	}
	if strings.ContainsAny(cfg.domain, "/\\@?# ") {
		return nil, fmt.Errorf("domain %q: want a host name such as blob.core.windows.net", cfg.domain)
	}
	return cfg, nil
}

// serviceURL returns the blob service URL for account: the endpoint if the
// URL names one, else PROTOCOL://ACCOUNT.DOMAIN, or PROTOCOL://DOMAIN/ACCOUNT
// for an emulator on 127.0.0.1 or localhost.
func (cfg *config) serviceURL(account string) (string, error) {
	if cfg.endpoint != "" {
		return cfg.endpoint, nil
	}
	if account == "" {
		return "", fmt.Errorf("%w: no storage account: add account=NAME to the URL or set %s", certcache.ErrInvalidURL, envAccount)
	}
	protocol, domain := cfg.protocol, cfg.domain
	if protocol == "" {
		protocol = "https"
	}
	if domain == "" {
		domain = "blob.core.windows.net"
	}
	if emulatorDomain(domain) {
		return protocol + "://" + domain + "/" + account, nil
	}
	return protocol + "://" + account + "." + domain, nil
}

func emulatorDomain(domain string) bool {
	return strings.HasPrefix(domain, "127.0.0.1") || strings.HasPrefix(domain, "localhost")
}

// sasFields are the parameter names of a SAS token; one in the URL means
// a token was pasted there.
var sasFields = map[string]bool{
	"sv": true, "ss": true, "srt": true, "sp": true, "se": true, "st": true, "spr": true, "sr": true,
	"si": true, "sig": true, "sdd": true, "skoid": true, "sktid": true, "skt": true, "ske": true,
	"sks": true, "skv": true, "saoid": true, "suoid": true, "scid": true,
}

// refuseSecrets refuses parameters that look like secrets, naming them but
// never their values.
func refuseSecrets(q url.Values) error {
	var names []string
	sas := false
	for name := range q {
		n := strings.ToLower(name)
		switch {
		case sasFields[n]:
			sas = true
			names = append(names, name)
		case strings.Contains(n, "key"), strings.Contains(n, "sig"), strings.Contains(n, "sas"),
			strings.Contains(n, "token"), strings.Contains(n, "secret"), strings.Contains(n, "password"),
			strings.Contains(n, "connection"), strings.Contains(n, "credential"):
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	what := "looks like a secret"
	if sas {
		what = "looks like a SAS token"
	}
	return fmt.Errorf("parameter %s %s; secrets never go in the URL: set %s, %s or %s instead",
		strings.Join(names, ", "), what, envKey, envSAS, envConnectionString)
}

// checkContainer enforces Azure's container naming rules, so that a typo
// is reported by Open rather than by the first call.
func checkContainer(name string) error {
	if name == "" {
		return errors.New("no container: want azblob://CONTAINER[/PREFIX]")
	}
	if name == "$root" || name == "$web" {
		return nil
	}
	ok := len(name) >= 3 && len(name) <= 63 && name[0] != '-' && name[len(name)-1] != '-' && !strings.Contains(name, "--")
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
	}
	if !ok {
		return fmt.Errorf("container %q: want 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit", name)
	}
	return nil
}

// checkPrefix allows "/"-separated segments of letters, digits and
// ._+=@,- that neither are "." or ".." nor end in a dot (Azure trims it).
func checkPrefix(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > maxPrefixLen {
		return fmt.Errorf("prefix is %d bytes, limit %d", len(p), maxPrefixLen)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || strings.HasSuffix(seg, ".") {
			return fmt.Errorf("prefix %q: empty segment or segment ending in a dot", p)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._+=@,-", c) >= 0) {
				return fmt.Errorf("prefix %q: character %q; use letters, digits and ._+=@,- in segments separated by /", p, c)
			}
		}
	}
	return nil
}

// checkAccount enforces Azure's account naming rule.
func checkAccount(name string) error {
	ok := len(name) >= 3 && len(name) <= 24
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
	}
	if !ok {
		return fmt.Errorf("account %q: want 3 to 24 lowercase letters and digits", name)
	}
	return nil
}

// checkEndpoint checks a service URL and returns it without a trailing
// slash.
func checkEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("endpoint %q: want an http or https URL such as https://ACCOUNT.blob.core.windows.net", withoutQuery(raw))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("endpoint %s: no user, query or fragment (a SAS token goes in %s)", withoutQuery(raw), envSAS)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}
