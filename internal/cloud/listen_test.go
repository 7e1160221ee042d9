package cloud

import (
	"net"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/problem"
)

// TestListenProblem: 'cloud serve --listen' failures name their true
// cause and step, through the server's Listen (issue 20, defect 5: a
// missing port was told to stop the program using that port).
func TestListenProblem(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s := newTestServer(t)
	tests := []struct {
		name, listen string
		step, not    string
	}{
		{"missing port", "18445", "give --listen as HOST:PORT or :PORT", "stop the program"},
		{"port in use", busy.Addr().String(), "stop the program using that port", "HOST:PORT or :PORT"},
		{"not an address of this machine", "192.0.2.1:18445", "an address of this machine", "stop the program"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.cfg.Listen = tt.listen
			ln, err := s.Listen()
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%q) succeeded", tt.listen)
			}
			p, ok := problem.As(err)
			if !ok || p.Code != "listen" || !strings.Contains(p.Message, "The cloud cannot listen on "+tt.listen) {
				t.Fatalf("Listen(%q) = %v, want a listen problem naming the address", tt.listen, err)
			}
			if !strings.Contains(p.Step, tt.step) || strings.Contains(p.Step, tt.not) {
				t.Errorf("Listen(%q) step %q, want it to say %q and not %q", tt.listen, p.Step, tt.step, tt.not)
			}
		})
	}
}
