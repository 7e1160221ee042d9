package eventlog

// Def documents one event id: the docs list Catalog, and code that writes
// an event uses an id from it.
type Def struct {
	ID      int
	Level   Level
	Area    string // what the event is about: "trust", "tunnel", ...
	Summary string // the message, without per-event detail
}

// Catalog lists every documented event id, in id order.
var Catalog = []Def{
	{ID: 1000, Level: LevelError, Area: "trust", Summary: "Connector re-registration failed: the connector trust certificate expired"},
}

// Lookup returns the documented event with this id.
func Lookup(id int) (Def, bool) {
	for _, d := range Catalog {
		if d.ID == id {
			return d, true
		}
	}
	return Def{}, false
}
