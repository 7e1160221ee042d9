package edge

import "time"

// Limits bound what the edge accepts from the internet. Zero fields take
// the defaults of DefaultLimits.
type Limits struct {
	// MaxHeaderCount is the most request header fields (default 256).
	MaxHeaderCount int
	// MaxHeaderBytes is the most bytes of request header names and values (default 64 KiB).
	MaxHeaderBytes int
	// MaxURLLength is the longest request target (path and query, default 8192).
	MaxURLLength int
	// AppRate and AppBurst limit requests per second to one application
	// (default 5000/s, burst 10000).
	AppRate  float64
	AppBurst int
	// TenantRate and TenantBurst limit requests per second to all the
	// applications of one tenant (default 10000/s, burst 20000).
	TenantRate  float64
	TenantBurst int
	// RetryAfter is what a 429 asks clients to wait (default 1s).
	RetryAfter time.Duration
}
