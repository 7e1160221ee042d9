package eventlog_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sallyport/sallyport/internal/eventlog"
)

// The equivalent of `Get-EventLog application -EntryType Error -Newest 1`.
func Example() {
	dir, err := os.MkdirTemp("", "eventlog")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "events.jsonl")

	log, err := eventlog.Open(eventlog.Config{
		Path:   path,
		Source: "connector",
		Now:    func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	log.Event(eventlog.ConnectorStarted, "The connector started", "version", "1.0.0")
	log.Event(eventlog.TrustExpired, "Connector re-registration failed: the connector trust certificate expired. "+
		"Run 'sallyport connector register' on this machine to register the connector again.",
		"connector_id", "c-42")
	log.Close()

	events, err := eventlog.Read(path, eventlog.Filter{MinLevel: eventlog.LevelError, Newest: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	eventlog.FormatJSON(os.Stdout, events)
	// Output:
	// [
	//   {
	//     "id": 1000,
	//     "level": "error",
	//     "source": "connector",
	//     "time": "2026-03-01T12:00:00Z",
	//     "message": "Connector re-registration failed: the connector trust certificate expired. Run 'sallyport connector register' on this machine to register the connector again.",
	//     "fields": {
	//       "connector_id": "c-42"
	//     }
	//   }
	// ]
}
