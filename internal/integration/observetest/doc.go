// Package observetest checks certcache's OpenTelemetry instruments and log
// events against real servers (Redis from internal/integration/testenv, Pebble from
// internal/integration/acmetest). Its tests install the global providers once, with an
// SDK ManualReader and a span recorder, as an application would; they live
// in a package of their own so that no other package's tests run with a
// provider installed.
package observetest
