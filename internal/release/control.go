package release

import (
	"time"
)

// The update control API: paths and messages, served by the cloud on a
// control connection (tunnel.ControlALPN) to registered connectors
// (docs/protocol.md §14).
const (
	// PathKey: GET → KeyMessage (the cloud's release public key).
	PathKey = "/v1/release-key"
	// PathList: GET ?os=&arch= → List.
	PathList = "/v1/releases"
	// PathBinary: GET ?sha256=HEX → the release's binary.
	PathBinary = "/v1/releases/binary"
	// PathUpdateTurn: POST TurnRequest → Turn (409 when
	// another connector of the group holds the turn, or, unless the
	// request is manual, when the release was rolled back in the group);
	// DELETE ends it (?rolled_back=VERSION: the update was rolled back,
	// which halts that release in the group; only the holder of the
	// group's turn for that version may, and only for a published
	// version: 403 not_turn_holder, 404 release_unknown otherwise).
	PathUpdateTurn = "/v1/update-turn"
)

// MaxListed is the most releases one List answer lists.
const MaxListed = 50

// KeyMessage is the cloud's release public key.
type KeyMessage struct {
	Key   string `json:"key"` // "ed25519:BASE64"
	KeyID string `json:"key_id"`
}

// List lists the signed manifests for the caller's OS and
// architecture, newest first.
type List struct {
	Releases []Signed `json:"releases"`
}

// TurnRequest asks for the group's update turn to install Version.
type TurnRequest struct {
	Version string `json:"version"`
	// Manual is set for 'connector update --apply': an administrator's
	// choice installs even a release halted in the group.
	Manual bool `json:"manual,omitempty"`
}

// Turn is a granted turn.
type Turn struct {
	Group     string    `json:"group"`
	ExpiresAt time.Time `json:"expires_at"`
}
