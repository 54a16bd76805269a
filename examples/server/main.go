// Command server is a complete HTTPS server on autocert whose certificates,
// account key and HTTP-01 tokens live in a certcache cache, so that any
// number of instances behind a load balancer share them.
//
//	CERT_CACHE_URL=redis://cache:6379/0 DOMAINS=example.com,www.example.com server
//
// It answers "hello" over HTTPS on :443 and, on :80, HTTP-01 challenges (on
// any instance: the token comes from the cache) with a redirect to HTTPS for
// everything else.
//
// Configuration, from the environment or flags:
//
//	CERT_CACHE_URL                       the cache, any certcache URL (required): file://,
//	                                     mem:// and the schemes of the backend packages
//	                                     imported below, with their parameters
//	DOMAINS, -domains                    comma-separated names to obtain certificates for
//	ACME_EMAIL, -email                   contact address given to the CA (optional)
//	ACME_DIRECTORY_URL, -acme-directory  the CA's directory; default Let's Encrypt
//	                                     production (try its staging directory first)
//	-http, -https                        listen addresses; default :80 and :443
//	METRICS_ADDR, -metrics               where to serve Prometheus metrics on /metrics
//	                                     (e.g. 127.0.0.1:9090); default: none
//
// With METRICS_ADDR, the cache's OpenTelemetry metrics (docs/telemetry.md:
// calls, latencies, the breaker, the memory front,
// order leases, certificate expiry) are exported through the OpenTelemetry
// Prometheus exporter, with the Go runtime's own metrics beside them. Keep
// the address private: metrics name the certificates' domains.
//
// See Dockerfile for a scratch image.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/certcache/certcache"
	_ "github.com/certcache/certcache/azblob"  // azblob://
	_ "github.com/certcache/certcache/encrypt" // ?encryption_key=env:NAME: values sealed at rest
	_ "github.com/certcache/certcache/gs"      // gs://
	_ "github.com/certcache/certcache/layered" // ?memory=true: an in-process front
	_ "github.com/certcache/certcache/redis"   // redis://, rediss://, redis+sentinel://, redis+cluster://
	_ "github.com/certcache/certcache/s3"      // s3://
	_ "github.com/certcache/certcache/sql/mysql"
	_ "github.com/certcache/certcache/sql/postgres"
	_ "github.com/certcache/certcache/sql/sqlite"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

func main() {
	domains := flag.String("domains", os.Getenv("DOMAINS"), "comma-separated domain names (env DOMAINS)")
	email := flag.String("email", os.Getenv("ACME_EMAIL"), "contact email for the CA (env ACME_EMAIL)")
	directory := flag.String("acme-directory", os.Getenv("ACME_DIRECTORY_URL"), "ACME directory URL; default Let's Encrypt (env ACME_DIRECTORY_URL)")
	httpAddr := flag.String("http", ":80", "listen address for HTTP-01 and the redirect to HTTPS")
	httpsAddr := flag.String("https", ":443", "listen address for HTTPS")
	metricsAddr := flag.String("metrics", os.Getenv("METRICS_ADDR"), "listen address for Prometheus metrics on /metrics; default none (env METRICS_ADDR)")
	flag.Parse()

	names := splitList(*domains)
	cacheURL := os.Getenv("CERT_CACHE_URL")
	if len(names) == 0 || cacheURL == "" {
		log.Fatal("server: set CERT_CACHE_URL and DOMAINS (or -domains)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var metricsSrv *http.Server
	if *metricsAddr != "" {
		// The cache reports to the global MeterProvider (a cache opened
		// by URL always does); installing one is all it takes.
		var err error
		metricsSrv, err = serveMetrics(*metricsAddr)
		if err != nil {
			log.Fatal(err)
		}
	}

	// Open checks the URL but does not contact the store: the server starts
	// even if the store is down, and handshakes fail (without ordering
	// certificates) until it is back. Its errors never show a password.
	cache, err := certcache.Open(ctx, cacheURL)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(names...),
		Cache:      cache,
		Email:      *email,
	}
	if *directory != "" {
		m.Client = &acme.Client{DirectoryURL: *directory}
	}

	httpSrv := &http.Server{
		Addr:              *httpAddr,
		Handler:           m.HTTPHandler(nil), // HTTP-01, else redirect to HTTPS
		ReadHeaderTimeout: 10 * time.Second,
	}
	httpsSrv := &http.Server{
		Addr: *httpsAddr,
		// certcache.TLSConfig is m.TLSConfig() whose handshakes, for a
		// name another instance is ordering, wait for that certificate
		// instead of failing (see certcache.ErrIssuing).
		TLSConfig: certcache.TLSConfig(m, cache),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s over HTTPS\n", r.Host)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}

	errc := make(chan error, 3)
	go func() { errc <- httpSrv.ListenAndServe() }()
	go func() { errc <- httpsSrv.ListenAndServeTLS("", "") }()
	if metricsSrv != nil {
		go func() { errc <- metricsSrv.ListenAndServe() }()
		log.Printf("server: Prometheus metrics on http://%s/metrics", *metricsAddr)
	}
	log.Printf("server: serving %s on %s (HTTPS) and %s (HTTP-01, redirect); cache %s://",
		strings.Join(names, ", "), *httpsAddr, *httpAddr, scheme(cacheURL))

	select {
	case err := <-errc:
		log.Print(err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	httpsSrv.Shutdown(shutdown)
	httpSrv.Shutdown(shutdown)
	if metricsSrv != nil {
		metricsSrv.Shutdown(shutdown)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
	}
}

// serveMetrics installs an OpenTelemetry MeterProvider that the Prometheus
// exporter reads, and returns the server of /metrics on addr (not started).
// The exporter registers with Prometheus's default registry, which also
// holds the Go runtime and process collectors.
func serveMetrics(addr string) (*http.Server, error) {
	exporter, err := otelprom.New()
	if err != nil {
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	return &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// scheme returns the URL's scheme only: the rest may hold a password.
func scheme(rawURL string) string {
	s, _, _ := strings.Cut(rawURL, ":")
	return s
}
