// Package metrictest reads what an OpenTelemetry SDK reader collected as
// a flat map, for tests that check certcache's instruments.
package metrictest

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Flatten returns every data point of rm: sums and gauges under
// Series(name, attributes…), histograms as their count and sum under
// "name_count{…}" and "name_sum{…}".
func Flatten(rm metricdata.ResourceMetrics) map[string]float64 {
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name+"_count", p.Attributes)] = float64(p.Count)
					out[key(m.Name+"_sum", p.Attributes)] = p.Sum
				}
			}
		}
	}
	return out
}

// Series names a data point as Flatten does: the metric's name and its
// attributes, given as key, value pairs, encoded as the SDK encodes them.
func Series(name string, kv ...string) string {
	attrs := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	return key(name, attribute.NewSet(attrs...))
}

func key(name string, s attribute.Set) string {
	return name + "{" + s.Encoded(attribute.DefaultEncoder()) + "}"
}
