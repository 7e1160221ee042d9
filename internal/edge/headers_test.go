package edge

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// cgiName is a header name as a CGI, WSGI, PHP or Rack server reads it:
// upper case, '-' as '_'.
func cgiName(k string) string { return strings.ToUpper(strings.ReplaceAll(k, "-", "_")) }

func TestProtectedHeader(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"X-Forwarded-For", true},
		{"X_forwarded_for", true},
		{"x_FORWARDED_host", true},
		{"X-Forwarded-Prefix", true},
		{"X-Forwarded", false}, // not a prefix match of "x-forwarded-"
		{"Forwarded", true},
		{"forwarded_for", true},
		{"X-Real-IP", true},
		{"X_Real_Ip", true},
		{"Sallyport-App", true},
		{"Sallyport_app", true},
		{"SALLYPORT_REQUEST_ID", true},
		{"sallyport-anything", true},
		{"X-Original-URL", true},
		{"X_Rewrite_Url", true},
		{"X-Original-Host", true},
		{"X-Host", true},
		{"True-Client-IP", true},
		{"Client_IP", true},
		{"X-Client-IP", true},
		{"X-Cluster-Client-IP", true},
		{"CF-Connecting-IP", true},
		{"Accept", false},
		{"Cookie", false},
		{"X-Request-Id", false},
		{"Sallyport", false},
		{"X-Sallyport-App", true},
		{"X-Sallyport-User", true},
		{"x_sallyport_groups", true},
		{"Sallyport-Assertion", true},
		{"Authorization", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := protectedHeader(tt.name); got != tt.want {
			t.Errorf("protectedHeader(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestForwardHeaders: whatever the client sent, the backend gets each
// header the edge vouches for once, with the edge's value, and no
// variant of a protected name.
func TestForwardHeaders(t *testing.T) {
	tests := []struct {
		name       string
		in         http.Header
		remoteAddr string
		host       string
		wantHost   string
		wantIP     string
	}{
		{"plain", http.Header{"Accept": {"*/*"}}, "203.0.113.9:5555", "web-contoso.sallyport.test", "web-contoso.sallyport.test", "203.0.113.9"},
		{"forged everything", http.Header{
			"X_forwarded_for": {"10.0.0.1"}, "X-Forwarded-For": {"10.0.0.2"}, "x-real-ip": {"10.0.0.3"}, "X_Real_Ip": {"10.0.0.4"},
			"Sallyport_app": {"a_forged"}, "SALLYPORT-REQUEST-ID": {"r"}, "Forwarded": {"for=10.0.0.5"}, "X-Original-Url": {"/admin"},
			"X_forwarded_host": {"evil.example"}, "True-Client-Ip": {"10.0.0.6"}, "Cookie": {"a=b"},
		}, "203.0.113.9:5555", "Web-Contoso.Sallyport.Test.:8443", "web-contoso.sallyport.test", "203.0.113.9"},
		{"IPv6 client", http.Header{}, "[2001:db8::1]:443", "web-contoso.sallyport.test", "web-contoso.sallyport.test", "2001:db8::1"},
		{"no client address", http.Header{"X-Real-Ip": {"10.0.0.3"}}, "pipe", "web-contoso.sallyport.test", "web-contoso.sallyport.test", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			forwardHeaders(h, tt.remoteAddr, tt.host, "a_1", "rid")
			want := map[string]string{"X-Forwarded-Host": tt.wantHost, "X-Forwarded-Proto": "https",
				tunnel.HeaderApp: "a_1", tunnel.HeaderRequestID: "rid"}
			if tt.wantIP != "" {
				want["X-Forwarded-For"], want["X-Real-Ip"] = tt.wantIP, tt.wantIP
			}
			checkForwarded(t, h, want)
			if tt.in.Get("Cookie") != "" && h.Get("Cookie") != tt.in.Get("Cookie") {
				t.Errorf("an ordinary header was dropped: %v", h)
			}
		})
	}
}

// checkForwarded checks the invariant of forwardHeaders: the names in want
// are there once with want's value, and nothing else maps to a protected
// name — read as any server reads it.
func checkForwarded(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	seen := map[string]string{} // CGI name → header name
	for k, v := range h {
		if other, dup := seen[cgiName(k)]; dup {
			t.Errorf("%q and %q are the same variable to a CGI server", k, other)
		}
		seen[cgiName(k)] = k
		if !protectedHeader(k) {
			continue
		}
		w, ok := want[k]
		if !ok {
			t.Errorf("protected header %q = %q reached the backend", k, v)
		} else if len(v) != 1 || v[0] != w {
			t.Errorf("%s = %q, want [%q]", k, v, w)
		}
	}
	for k := range want {
		if len(h[k]) != 1 {
			t.Errorf("%s missing: %v", k, h)
		}
	}
}

func FuzzHeaderFilter(f *testing.F) {
	f.Add("X_forwarded_for\nSallyport_app\nX-Real-IP\nAccept", "10.0.0.1", "203.0.113.9:5555", "Web.Example.:443")
	f.Add("forwarded\nX-FORWARDED-HOST\nsallyport-request-id", "x", "[::1]:1", "a.b")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, names, value, remoteAddr, host string) {
		h := http.Header{}
		for _, n := range strings.Split(names, "\n") {
			h[n] = append(h[n], value)
		}
		forwardHeaders(h, remoteAddr, host, "a_1", "rid")
		want := map[string]string{"X-Forwarded-Proto": "https", tunnel.HeaderApp: "a_1", tunnel.HeaderRequestID: "rid"}
		if nh, ok := NormalizeHost(host); ok {
			want["X-Forwarded-Host"] = nh
		}
		if len(h["X-Forwarded-For"]) > 0 {
			want["X-Forwarded-For"] = h["X-Forwarded-For"][0]
			want["X-Real-Ip"] = want["X-Forwarded-For"]
			if !strings.HasPrefix(remoteAddr, want["X-Forwarded-For"]) && !strings.HasPrefix(remoteAddr, "["+want["X-Forwarded-For"]) {
				t.Errorf("X-Forwarded-For %q is not the client's address %q", want["X-Forwarded-For"], remoteAddr)
			}
		}
		for k, v := range h {
			if !protectedHeader(k) {
				continue
			}
			if w, ok := want[k]; !ok || len(v) != 1 || v[0] != w {
				t.Fatalf("after filtering, %q = %q (want %q, edge's own: %v)", k, v, w, ok)
			}
		}
		for k := range want {
			if len(h[k]) != 1 {
				t.Fatalf("%s missing after filtering %q", k, names)
			}
		}
	})
}

// TestHeaderHygieneRealBackend: a client's underscore and case variants of
// the forwarded headers, X-Real-IP and Sallyport-* never reach a real
// backend over HTTP; it gets the edge's own, once.
func TestHeaderHygieneRealBackend(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(r.Header)
	}))
	defer backend.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	d := dispatchFunc(func(_ *App, r *http.Request) (*http.Response, error) {
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host = "http", strings.TrimPrefix(backend.URL, "http://")
		return tr.RoundTrip(out)
	})
	edgeSrv := httptest.NewServer(New(Config{Routes: routes{testApp.ExternalHost: testApp}, Dispatcher: d}))
	defer edgeSrv.Close()

	req, _ := http.NewRequest("GET", edgeSrv.URL+"/", nil)
	req.Host = "WEB-contoso.sallyport.test.:8443"
	for k, v := range map[string]string{"X_forwarded_for": "10.0.0.1", "Sallyport_app": "a_forged", "X-Real-IP": "10.0.0.3",
		"x_real_ip": "10.0.0.4", "X_Forwarded_Host": "evil.example", "X-Original-URL": "/admin", "SALLYPORT-UPGRADE": "websocket", "X-Kept": "yes"} {
		req.Header[k] = []string{v} // as written, not canonicalised
	}
	resp, err := edgeSrv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var got http.Header
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%s: %s", resp.Status, body)
	}
	checkForwarded(t, got, map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1",
		"X-Forwarded-Host": "web-contoso.sallyport.test", "X-Forwarded-Proto": "https", tunnel.HeaderApp: "a_1",
		tunnel.HeaderRequestID: resp.Header.Get(tunnel.HeaderRequestID)})
	if got.Get("X-Kept") != "yes" {
		t.Errorf("an ordinary header was lost: %v", got)
	}
}
