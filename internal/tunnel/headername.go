package tunnel

// IsProtocolHeader reports whether a header named name belongs to the
// protocol: its name starts with HeaderPrefix in any case, '_' read as
// '-' (servers that map header names to variables, such as CGI or WSGI,
// read 'Sallyport_App' as 'Sallyport-App'). Such headers never come from
// a client or a backend.
func IsProtocolHeader(name string) bool {
	const p = "sallyport-"
	if len(name) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := name[i]
		if c == '_' {
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// StripProtocolHeaders deletes every protocol header from h.
func StripProtocolHeaders(h map[string][]string) {
	for k := range h {
		if IsProtocolHeader(k) {
			delete(h, k)
		}
	}
}
