package h2

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"

	"github.com/sallyport/sallyport/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testWait = testnet.Wait

// serveH2 serves HTTP/2 with ServeConn on the server end of a new
// connection and returns a ClientConn on the other.
func serveH2(t *testing.T) *ClientConn {
	t.Helper()
	c, s := testnet.Pair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ServeConn(context.Background(), s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}), nil, ServerConfig{MaxConcurrentStreams: 8})
	}()
	cc, err := NewClientConn(c, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		s.Close()
		<-done
	})
	return cc
}

// rawServer answers the client's preface and settings on the server end
// of a new connection and calls onHeaders for each request's HEADERS (and
// closes the connection if it says so): a server that misbehaves on
// purpose, as a real one may.
func rawServer(t *testing.T, settings []http2.Setting, onHeaders func(fr *http2.Framer, stream uint32) (hangUp bool)) *ClientConn {
	t.Helper()
	c, s := testnet.Pair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.Close()
		if _, err := io.ReadFull(s, make([]byte, len(http2.ClientPreface))); err != nil {
			return
		}
		fr := http2.NewFramer(s, s)
		if fr.WriteSettings(settings...) != nil {
			return
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.HeadersFrame:
				if onHeaders(fr, f.StreamID) {
					return
				}
			}
		}
	}()
	cc, err := NewClientConn(c, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		<-done
	})
	return cc
}

func get(t *testing.T, cc *ClientConn, body io.Reader) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	req, _ := http.NewRequestWithContext(ctx, method, "https://connector.test/", body)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// TestNotSent makes each error NotSent knows on a real HTTP/2 connection
// (so that a change of x/net's errors or their texts fails here), and
// some that must not count as not sent.
func TestNotSent(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func(t *testing.T) error
		want bool
	}{
		{"the server refused the stream (REFUSED_STREAM)", func(t *testing.T) error {
			cc := rawServer(t, nil, func(fr *http2.Framer, id uint32) bool {
				return fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) != nil
			})
			return get(t, cc, nil)
		}, true},
		{"the server cancelled the stream (CANCEL)", func(t *testing.T) error {
			cc := rawServer(t, nil, func(fr *http2.Framer, id uint32) bool { return fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil })
			return get(t, cc, nil)
		}, false},
		{"a graceful GOAWAY below the stream", func(t *testing.T) error {
			cc := rawServer(t, nil, func(fr *http2.Framer, id uint32) bool { return fr.WriteGoAway(0, http2.ErrCodeNo, nil) != nil })
			return get(t, cc, nil)
		}, true},
		{"a GOAWAY with an error on the first stream", func(t *testing.T) error {
			cc := rawServer(t, nil, func(fr *http2.Framer, id uint32) bool { return fr.WriteGoAway(0, http2.ErrCodeProtocol, nil) != nil })
			return get(t, cc, nil)
		}, false},
		{"closed before any stream", func(t *testing.T) error {
			cc := serveH2(t)
			cc.Close()
			return get(t, cc, nil)
		}, true},
		{"closed after a stream", func(t *testing.T) error {
			cc := serveH2(t)
			if err := get(t, cc, nil); err != nil {
				t.Fatalf("first request: %v", err)
			}
			cc.Close()
			return get(t, cc, nil)
		}, true},
		{"the connection ended after the response head", func(t *testing.T) error {
			cc := rawServer(t, nil, func(fr *http2.Framer, id uint32) bool {
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x88}, EndHeaders: true}) // :status 200
				return true
			})
			return get(t, cc, nil)
		}, false},
		{"the connection ended while the body waited for window", func(t *testing.T) error {
			cc := rawServer(t, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}, func(fr *http2.Framer, id uint32) bool {
				return true
			})
			// The head has left: not "not sent". (x/net's
			// errClientConnClosed, met by a body writer waiting for window
			// on a closed connection, never reaches RoundTrip here: the
			// stream fails with the connection's error first.)
			return get(t, cc, strings.NewReader("a body that waits for window"))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err(t)
			if err == nil {
				t.Fatal("RoundTrip succeeded")
			}
			if got := NotSent(err); got != tc.want {
				t.Errorf("NotSent(%q) = %v, want %v", err, got, tc.want)
			}
		})
	}
}

// TestShutdownSendsGoAway: an http.Server configured with a Server sends
// GOAWAY on the connections that Server serves when it shuts down, and
// the client connection says it takes no new request (OnUnusable,
// Closing): the connector's drain depends on both.
func TestShutdownSendsGoAway(t *testing.T) {
	c, s := testnet.Pair(t)
	srv := NewServer(ServerConfig{})
	base := &http.Server{}
	if err := srv.Configure(base); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeConn(context.Background(), s, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), base)
	}()
	unusable := make(chan struct{})
	cc, err := NewClientConn(c, ClientConfig{OnUnusable: func() { close(unusable) }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cc.Close()
		s.Close()
		<-done
	}()
	if err := get(t, cc, nil); err != nil {
		t.Fatalf("request before shutdown: %v", err)
	}
	if cc.Closing() {
		t.Fatal("Closing before shutdown")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	base.Shutdown(ctx)
	select {
	case <-unusable:
	case <-ctx.Done():
		t.Fatal("OnUnusable was not called after the server's shutdown")
	}
	// x/net tells the pool (OnUnusable) just before it records the
	// GOAWAY, so Closing follows a moment later.
	testnet.WaitUntil(t, "Closing after GOAWAY", cc.Closing)
	if err := get(t, cc, nil); !NotSent(err) {
		t.Errorf("request after GOAWAY: %v, want a not-sent error", err)
	}
}
