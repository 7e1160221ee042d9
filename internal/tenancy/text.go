package tenancy

// Truncate shortens s to n bytes for a message, marking the cut with
// "…": a name or value a request gave is quoted this way in refusals and
// events, by this package, the admin API (cloud) and the offline commands
// (datadir) alike.
func Truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// DashIfEmpty is s, or "-" for nothing (a connector's unknown host name
// or a release's unknown platform, in event and message text).
func DashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
