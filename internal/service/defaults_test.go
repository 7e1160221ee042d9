package service_test

import (
	"testing"

	"github.com/sallyport/sallyport/internal/service"
	"github.com/sallyport/sallyport/internal/statedir"
	"github.com/sallyport/sallyport/internal/updater"
)

// The service package does not import the connector (whose updater imports
// the service package); these tests keep the two in step.
func TestDefaultsFollowTheConnector(t *testing.T) {
	if got, want := service.DefaultOptions().StateDir, statedir.DefaultDir(); got != want {
		t.Errorf("default state directory %q, the connector's is %q", got, want)
	}
	if service.RegisteredFile != statedir.TrustFile {
		t.Errorf("install looks for %q to know the connector is registered; registration writes %q", service.RegisteredFile, statedir.TrustFile)
	}
}

func TestUpdaterDirFollowsTheUpdater(t *testing.T) {
	for _, dir := range []string{service.DefaultOptions().StateDir, "/srv/site a/conn", "/srv/conn/"} {
		o := service.Options{StateDir: dir}
		if got, want := o.UpdaterDir(), updater.DefaultDir(dir); got != want {
			t.Errorf("install prepares %q for the updater of %q; the updater uses %q", got, dir, want)
		}
	}
}
