// Package problem is the one error type shown to people: at the CLI, in the
// admin API and on the edge's error pages. A Problem carries a stable code,
// an HTTP status, a public message (what failed and why) and the
// recommended step. Internal detail goes in Err, which is logged but never
// shown.
//
// Wording rule: Message says what failed and why, Step says what to do;
// Error() joins them into one sentence. Neither ends with a period.
package problem

import (
	"errors"
	"fmt"
	"net/http"
)

// Problem is an error meant for a user.
type Problem struct {
	Code    string // stable, machine-readable, e.g. "registration_denied"
	Status  int    // HTTP status when served over HTTP
	Message string // what failed and why
	Step    string // recommended next step; may be empty
	Err     error  // internal cause: logged, never shown
}

// New returns a Problem. Its arguments come in the same order as Newf's:
// status, code, step, then the message last (Newf formats it).
func New(status int, code, step, message string) *Problem {
	return &Problem{Code: code, Status: status, Message: message, Step: step}
}

// Newf is New with a formatted message.
func Newf(status int, code, step, format string, args ...any) *Problem {
	return &Problem{Code: code, Status: status, Message: fmt.Sprintf(format, args...), Step: step}
}

// Wrap returns a copy of p with err as its internal cause.
func (p *Problem) Wrap(err error) *Problem {
	c := *p
	c.Err = err
	return &c
}

// Error is the public sentence: message, then the step.
func (p *Problem) Error() string {
	if p.Step == "" {
		return p.Message + "."
	}
	return p.Message + "; " + p.Step + "."
}

// Unwrap returns the internal cause.
func (p *Problem) Unwrap() error { return p.Err }

// As returns the Problem in err's chain, if any.
func As(err error) (*Problem, bool) {
	var p *Problem
	if errors.As(err, &p) {
		return p, true
	}
	return nil, false
}

// Public returns the Problem to show for err: err's own Problem when it has
// one, else a generic internal error that reveals nothing of err.
func Public(err error) *Problem {
	if p, ok := As(err); ok {
		return p
	}
	return &Problem{
		Code:    "internal",
		Status:  http.StatusInternalServerError,
		Message: "The request failed because of an internal error in Sallyport",
		Step:    "retry, and if it keeps failing look for the request id in the cloud service's log",
		Err:     err,
	}
}
