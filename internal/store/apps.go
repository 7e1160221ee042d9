package store

import (
	"encoding/json"
	"strings"
)

// Application types.
const (
	AppHTTP = "http" // a web application, published at its external host
	AppTCP  = "tcp"  // a network application (private access) over TCP
	AppUDP  = "udp"  // a network application over UDP
)

// IsNetwork reports whether a is a network application (tcp or udp): it
// has internal addresses, no external host and no internal URL.
func (a Application) IsNetwork() bool { return a.Type == AppTCP || a.Type == AppUDP }

// The columns of an application row that stores share the encoding of.
// A network application has no external host, but the column is unique
// and not null: its row keeps networkHostPrefix + its id there, which is
// never a DNS name, and reads back as "".
const networkHostPrefix = "#"

// HostColumn is what a store writes in an application's external_host
// column.
func HostColumn(a Application) string {
	if a.ExternalHost == "" {
		return networkHostPrefix + a.ID
	}
	return a.ExternalHost
}

// HostFromColumn is the ExternalHost of an application whose
// external_host column holds col.
func HostFromColumn(col string) string {
	if strings.HasPrefix(col, networkHostPrefix) {
		return ""
	}
	return col
}

// TypeColumn is what a store writes in an application's type column:
// "" is a web application.
func TypeColumn(a Application) string {
	if a.Type == "" {
		return AppHTTP
	}
	return a.Type
}

// AddressesColumn encodes an application's internal addresses (a JSON
// array).
func AddressesColumn(a Application) string {
	if len(a.InternalAddresses) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(a.InternalAddresses)
	return string(b)
}

// AddressesFromColumn decodes an internal_addresses column (nil for
// none).
func AddressesFromColumn(col string) ([]string, error) {
	var out []string
	if col == "" || col == "[]" {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(col), &out); err != nil {
		return nil, err
	}
	return out, nil
}
