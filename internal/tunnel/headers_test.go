package tunnel

import (
	"net/http"
	"testing"
)

func TestIsProtocolHeader(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"Sallyport-App", true},
		{"sallyport-request-id", true},
		{"Sallyport_App", true},
		{"SALLYPORT_ERROR", true},
		{"sallyport_upgrade", true},
		{"Sallyport-", true},
		{"Sallyport", false},
		{"Sallyport-Assertion", false},
		{"sallyport_ASSERTION", false},
		{"Sallyport-Assertions", true},
		{"Sallyportx-App", false},
		{"X-Sallyport-App", false},
		{"Accept", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsProtocolHeader(tt.name); got != tt.want {
			t.Errorf("IsProtocolHeader(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	h := http.Header{"Sallyport_app": {"x"}, "sallyport-error": {"y"}, "Accept": {"*/*"}}
	StripProtocolHeaders(h)
	if len(h) != 1 || h.Get("Accept") == "" {
		t.Errorf("after StripProtocolHeaders: %v", h)
	}
}
