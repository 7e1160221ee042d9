package tunnel

// Headers the protocol uses. The cloud removes every header starting with
// HeaderPrefix from requests it receives from the internet before adding
// its own, so a client can never forge them.
const (
	HeaderPrefix    = "Sallyport-"
	HeaderApp       = "Sallyport-App"        // application id a proxied request is for
	HeaderRequestID = "Sallyport-Request-Id" // correlates cloud and connector logs
	HeaderError     = "Sallyport-Error"      // error code of a response made by the connector itself
	HeaderUpgrade   = "Sallyport-Upgrade"    // upgrade protocol (e.g. "websocket") of an upgrade stream
	// HeaderConnector names, inside the cloud only, the connector that
	// answered (for session affinity); it never crosses the tunnel.
	HeaderConnector = "Sallyport-Connector"
	// HeaderAssertion is the signed identity of a pre-authenticated
	// request's user, for the backend (docs/identity.md): it starts with
	// HeaderPrefix (so the cloud removes a client's copies) but is not a
	// protocol header, and the connector passes it on.
	HeaderAssertion = "Sallyport-Assertion"
)

// IsProtocolHeader reports whether a header named name belongs to the
// protocol: its name starts with HeaderPrefix in any case, '_' read as
// '-' (servers that map header names to variables, such as CGI or WSGI,
// read 'Sallyport_App' as 'Sallyport-App'). Such headers never come from
// a client or a backend.
func IsProtocolHeader(name string) bool {
	if len(name) == len(HeaderAssertion) && headerNameIs(name, HeaderAssertion) {
		return false
	}
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

// headerNameIs reports whether name is want in any case, '_' read as '-'.
func headerNameIs(name, want string) bool {
	for i := 0; i < len(want); i++ {
		c, w := name[i], want[i]
		if c == '_' {
			c = '-'
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= w && w <= 'Z' {
			w += 'a' - 'A'
		}
		if c != w {
			return false
		}
	}
	return true
}
