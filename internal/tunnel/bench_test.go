package tunnel

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
)

// The relay's benchmarks: a connector (ServeSession) and a cloud (Client)
// joined by a version 2 tunnel over TLS on loopback, as the services run
// it. bench/ measures the whole product; these measure the tunnel alone,
// so that a change to it can be weighed with go test -bench.

// BenchmarkRelayRoundTrip is one small GET relayed and answered (13-byte
// body), on a relay stream kept between requests.
func BenchmarkRelayRoundTrip(b *testing.B) {
	env := startRelay(b, relayHandler(), ServerConfig{})
	ctx := context.Background()
	b.SetBytes(int64(len(smallBody)))
	b.ReportAllocs()
	for b.Loop() {
		resp, err := env.c.RoundTrip(relayReq(b, ctx, http.MethodGet, "/small", nil))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(smallBody)) {
			b.Fatalf("read %d bytes, %v", n, err)
		}
	}
}

// BenchmarkRelayLargeBody sends a 4 MiB request body to a handler that
// echoes it as it arrives, and reads the echo: 8 MiB through the relay
// per operation, both directions at once.
func BenchmarkRelayLargeBody(b *testing.B) {
	const size = 4 << 20
	env := startRelay(b, relayHandler(), ServerConfig{})
	ctx := context.Background()
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	b.SetBytes(2 * size)
	b.ReportAllocs()
	for b.Loop() {
		req := relayReq(b, ctx, http.MethodPost, "/echo", bytes.NewReader(body))
		resp, err := env.c.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size {
			b.Fatalf("echoed %d bytes, %v; want %d", n, err, size)
		}
	}
}
