// Package metrics keeps counters and gauges and writes them in the
// Prometheus text exposition format for /metrics. Each component registers
// its own series on the Registry it is handed; there is no global registry.
package metrics
