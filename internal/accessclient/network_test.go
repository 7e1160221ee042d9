package accessclient

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/socks5"
	"github.com/sallyport/sallyport/internal/tunnel"
)

// TestNetworkCloud: the commands find the one network sign-in kept on the
// machine, and say what to do when there is none or several.
func TestNetworkCloud(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir}
	if _, err := networkCloud(o); err == nil || !strings.Contains(err.Error(), "not signed in to any cloud's network") || !strings.Contains(err.Error(), "--user NAME@DOMAIN") {
		t.Fatalf("no sign-in: %v", err)
	}
	app := saved{App: "https://web.example.com/", TokenURL: "https://cloud.example.com/oauth/token", AccessToken: "spa_x", AccessExpires: time.Now().Add(time.Hour)}
	if err := save(dir, "web.example.com", &app); err != nil {
		t.Fatal(err)
	}
	if _, err := networkCloud(o); err == nil {
		t.Fatal("an application's sign-in was taken for a network sign-in")
	}
	net1 := app
	net1.App, net1.Network = "https://cloud.example.com/", true
	save(dir, "cloud.example.com", &net1)
	if got, err := networkCloud(o); err != nil || got != "https://cloud.example.com/" {
		t.Fatalf("one network sign-in: %q, %v", got, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "cloud.example.com.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the token file: %v %v, want 0600", st, err)
	}
	net2 := net1
	net2.App = "https://other.example.com/"
	save(dir, "other.example.com", &net2)
	if _, err := networkCloud(o); err == nil || !strings.Contains(err.Error(), "--cloud") {
		t.Fatalf("two network sign-ins: %v", err)
	}
	// An application's token is no network sign-in.
	_, _, err := networkToken(t.Context(), &Options{Dir: dir, AppURL: "https://web.example.com/"})
	if p, ok := problem.As(err); !ok || p.Code != "not_signed_in" || !strings.Contains(err.Error(), "one web application only") {
		t.Fatalf("an application's token for a stream: %v", err)
	}
	_, _, err = networkToken(t.Context(), &Options{Dir: dir, AppURL: "https://none.example.com/"})
	if p, ok := problem.As(err); !ok || p.Code != "not_signed_in" || !strings.Contains(err.Error(), "access login https://none.example.com/ --user NAME@DOMAIN") {
		t.Fatalf("no sign-in at that cloud: %v", err)
	}
}

// TestRefusalCodes: each refusal of the cloud is an exit status and a
// SOCKS5 reply.
func TestRefusalCodes(t *testing.T) {
	tests := []struct {
		code   string
		status int
		reply  byte
	}{
		{tunnel.AccessNotSignedIn, 401, socks5.ReplyNotAllowed},
		{tunnel.AccessNotAssigned, 403, socks5.ReplyNotAllowed},
		{tunnel.AccessNotCovered, 403, socks5.ReplyNotAllowed},
		{tunnel.AccessNoApp, 404, socks5.ReplyNotAllowed},
		{tunnel.AccessNoConnector, 502, socks5.ReplyNetworkUnreachable},
		{tunnel.AccessRefused, 502, socks5.ReplyConnectionRefused},
		{tunnel.AccessUnreachable, 502, socks5.ReplyHostUnreachable},
		{tunnel.AccessRateLimited, 429, socks5.ReplyGeneralFailure},
	}
	for _, tt := range tests {
		if got := refusalStatus(tt.code); got != tt.status {
			t.Errorf("%s: status %d, want %d", tt.code, got, tt.status)
		}
		if got := socksReply(problem.New(refusalStatus(tt.code), tt.code, "", "x")); got != tt.reply {
			t.Errorf("%s: SOCKS reply %d, want %d", tt.code, got, tt.reply)
		}
	}
	if got := socksReply(errors.New("other")); got != socks5.ReplyGeneralFailure {
		t.Errorf("another error: reply %d", got)
	}
}
