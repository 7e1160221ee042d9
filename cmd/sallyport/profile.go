package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
)

// SALLYPORT_CPU_PROFILE=DIR makes the process write a CPU profile of its
// whole run into DIR (named after the command and the process id), for
// the bench (bench/README.md, "-tcp -profile"). Not a user-facing setting.
func startCPUProfile() (stop func()) {
	dir := os.Getenv("SALLYPORT_CPU_PROFILE")
	if dir == "" {
		return func() {}
	}
	words := []string{}
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-") || len(words) == 2 {
			break
		}
		words = append(words, a)
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", strings.Join(words, "-"), os.Getpid())))
	if err != nil {
		fmt.Fprintf(os.Stderr, "sallyport: cannot write the CPU profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
