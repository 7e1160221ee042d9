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

// Info is the build's description as 'sallyport version --json' prints it.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	Go        string `json:"go"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// Get describes this build.
func Get() Info {
	commit, date := commitAndDate()
	return Info{Version: Version, Commit: commit, BuildDate: date, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
}

func commitAndDate() (string, string) {
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
	return commit, date
}

// String is the one-line description printed by 'sallyport version'.
func String() string {
	commit, date := commitAndDate()
	return fmt.Sprintf("sallyport %s (commit %s, built %s, %s, %s/%s)", Version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
