// Package problemtest checks, for tests, that an error is the
// problem.Problem a test expects.
//
// It is for tests only: nothing outside _test.go files imports it.
package problemtest

import (
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/problem"
)

// Want fails t unless err is a *problem.Problem with code and, when subs
// are given, a sentence (Error) containing each of them; it returns the
// Problem. what names the call in the failure.
func Want(t testing.TB, what string, err error, code string, subs ...string) *problem.Problem {
	t.Helper()
	p, ok := problem.As(err)
	if !ok {
		t.Fatalf("%s: error %v (%T), want a problem with code %q", what, err, err, code)
	}
	if p.Code != code {
		t.Fatalf("%s: code %q (%s), want %q", what, p.Code, p.Error(), code)
	}
	for _, s := range subs {
		if !strings.Contains(p.Error(), s) {
			t.Errorf("%s: %q does not mention %q", what, p.Error(), s)
		}
	}
	return p
}
