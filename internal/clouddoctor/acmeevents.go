package clouddoctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
)

// acmeEventsWithin is how far back the acme-orders step reads the event
// log: a day covers certmagic's retries of a failing order.
const acmeEventsWithin = 24 * time.Hour

// checkACMEOrders reports the ACME orders that failed in the last day
// (events 2986) for hosts that obtained no certificate since (2985): the
// last failure's sentence of each, which says what to do.
func (r *runner) checkACMEOrders(_ context.Context, s *Step) {
	path := filepath.Join(r.o.DataDir, datadir.EventsFile)
	s.Checked = fmt.Sprintf("events %d and %d of the last 24 hours in %s", eventlog.ACMECertObtained, eventlog.ACMECertFailed, path)
	evs, err := eventlog.Read(path, eventlog.Filter{Since: r.o.Now().Add(-acmeEventsWithin),
		IDs: []eventlog.ID{eventlog.ACMECertObtained, eventlog.ACMECertFailed}})
	if errors.Is(err, fs.ErrNotExist) {
		s.set(Pass, "no event log yet, so no failed order", "")
		return
	}
	if err != nil {
		s.set(Warn, fmt.Sprintf("The event log cannot be read (%v)", err), "check the data directory's permissions")
		return
	}
	failed := map[string]string{} // host → the last failure's sentence
	for _, e := range evs {       // oldest first
		host := e.Fields["host"]
		if e.ID == eventlog.ACMECertObtained {
			delete(failed, host)
		} else {
			failed[host] = e.Message
		}
	}
	if len(failed) == 0 {
		s.set(Pass, "no ACME order failed in the last 24 hours (or the certificate was obtained since)", "")
		return
	}
	hosts := make([]string, 0, len(failed))
	for h := range failed {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	msgs := make([]string, len(hosts))
	for i, h := range hosts {
		msgs[i] = failed[h]
	}
	s.set(Warn, strings.Join(msgs, "; "), fmt.Sprintf("do what each sentence says; the next handshake for the host orders again (the edge serves the next certificate in line meanwhile): %d host(s) without their ACME certificate", len(hosts)))
}
