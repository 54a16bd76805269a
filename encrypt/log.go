package encrypt

import (
	"context"
	"log/slog"
	"time"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/lograte"
)

// decryptLogEvery bounds the log of values that fail to open to one line
// per interval per cache: a wrong key fails every Get, and autocert reads
// again on each handshake for a name it could not load.
const decryptLogEvery = 10 * time.Second

// decryptLog logs values that fail to open, at Error: a wrong or missing
// key, or a value altered in the store, needs a person. The logger is the
// one of the cache below (certcache.Options.Logger), else slog.Default().
// The line names the cache key and the error (which names key ids, never
// key material); never the value.
type decryptLog struct{ rate lograte.Limiter }

func (l *decryptLog) failed(ctx context.Context, inner certcache.Cache, key string, err error) {
	more, ok := l.rate.Allow(decryptLogEvery)
	if !ok {
		return
	}
	t := hook.TelemetryOf(inner)
	log := t.Logger
	if log == nil {
		log = slog.Default()
	}
	log.LogAttrs(ctx, slog.LevelError, "certcache/encrypt: a stored value failed to decrypt",
		slog.String("backend", t.Backend), slog.String("key", key),
		slog.Uint64("more_since_last_log", more), slog.Any("err", err))
}
