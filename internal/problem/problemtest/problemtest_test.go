package problemtest

import (
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/sallyport/sallyport/internal/problem"
)

// fakeT records what Want fails with; Fatalf ends the goroutine as
// testing's does.
type fakeT struct {
	testing.TB
	fatal  string
	errors []string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWant(t *testing.T) {
	p := problem.New(400, "bad_name", "use another name", "The name is taken")
	tests := []struct {
		name   string
		err    error
		code   string
		subs   []string
		fatal  string
		errors int
	}{
		{"the problem", p, "bad_name", nil, "", 0},
		{"wrapped, with its words", fmt.Errorf("adding: %w", p), "bad_name", []string{"is taken", "another name"}, "", 0},
		{"a word missing", p, "bad_name", []string{"is taken", "nowhere"}, "", 1},
		{"another code", p, "no_name", nil, `call: code "bad_name" (The name is taken; use another name.), want "no_name"`, 0},
		{"not a problem", errors.New("plain"), "bad_name", nil, `call: error plain (*errors.errorString), want a problem with code "bad_name"`, 0},
		{"no error", nil, "bad_name", nil, `call: error <nil> (<nil>), want a problem with code "bad_name"`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeT{}
			var got *problem.Problem
			done := make(chan struct{})
			go func() {
				defer close(done)
				got = Want(f, "call", tc.err, tc.code, tc.subs...)
			}()
			<-done
			if f.fatal != tc.fatal {
				t.Errorf("fatal %q, want %q", f.fatal, tc.fatal)
			}
			if len(f.errors) != tc.errors {
				t.Errorf("errors %q, want %d", f.errors, tc.errors)
			}
			if tc.fatal == "" && got != p {
				t.Errorf("returned %v, want the problem", got)
			}
		})
	}
}
