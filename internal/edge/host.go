package edge

import (
	"net"
	"strings"
)

// MaxHostLength is the longest host name accepted (RFC 1035).
const MaxHostLength = 253

// NormalizeHost returns the lower-case host name of an untrusted Host
// header or TLS server name, without port or trailing dot, and whether it
// is a syntactically valid DNS name or IP address.
func NormalizeHost(h string) (string, bool) {
	if h == "" || len(h) > MaxHostLength+7 {
		return "", false
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" || len(h) > MaxHostLength {
		return "", false
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.String(), true
	}
	return h, ValidDNSName(h)
}

// ValidDNSName reports whether h (lower case) is a DNS name made of
// letters, digits and hyphens, labels of 1 to 63 characters not starting
// or ending with a hyphen.
func ValidDNSName(h string) bool {
	if h == "" || len(h) > MaxHostLength {
		return false
	}
	for len(h) > 0 {
		label := h
		if i := strings.IndexByte(h, '.'); i >= 0 {
			label, h = h[:i], h[i+1:]
			if h == "" {
				return false // empty last label
			}
		} else {
			h = ""
		}
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
