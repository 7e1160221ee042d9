// Package version holds the build's version, set at link time:
//
//	go build -ldflags "-X github.com/sallyport/sallyport/internal/version.Version=1.2.3 ..."
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by -ldflags -X at build time.
var (
	Version = "0.1.0-dev"
	Commit  = ""
	Date    = ""
)

// String is the one-line description printed by 'sallyport version'.
func String() string {
	commit := Commit
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	date := Date
	if date == "" {
		date = "unknown"
	}
	return fmt.Sprintf("sallyport %s (commit %s, built %s, %s, %s/%s)", Version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
