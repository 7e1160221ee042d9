package tunnel

import (
	"time"

	"github.com/sallyport/sallyport/internal/release"
)

// Control API paths for updates, served by the cloud on a ControlALPN
// connection (docs/protocol.md).
const (
	// ControlReleaseKey: GET → ReleaseKey (the cloud's release public key).
	ControlReleaseKey = "/v1/release-key"
	// ControlReleases: GET ?os=&arch= → Releases.
	ControlReleases = "/v1/releases"
	// ControlReleaseBinary: GET ?sha256=HEX → the release's binary.
	ControlReleaseBinary = "/v1/releases/binary"
	// ControlUpdateTurn: POST UpdateTurnRequest → UpdateTurn (409 when
	// another connector of the group holds the turn, or, unless the
	// request is manual, when the release was rolled back in the group);
	// DELETE ends it (?rolled_back=VERSION: the update was rolled back,
	// which halts that release in the group; only the holder of the
	// group's turn for that version may, and only for a published
	// version: 403 not_turn_holder, 404 release_unknown otherwise).
	ControlUpdateTurn = "/v1/update-turn"
)

// MaxReleases is the most releases one Releases answer lists.
const MaxReleases = 50

// ReleaseKey is the cloud's release public key.
type ReleaseKey struct {
	Key   string `json:"key"` // "ed25519:BASE64"
	KeyID string `json:"key_id"`
}

// Releases lists the signed manifests for the caller's OS and
// architecture, newest first.
type Releases struct {
	Releases []release.Signed `json:"releases"`
}

// UpdateTurnRequest asks for the group's update turn to install Version.
type UpdateTurnRequest struct {
	Version string `json:"version"`
	// Manual is set for 'connector update --apply': an administrator's
	// choice installs even a release halted in the group.
	Manual bool `json:"manual,omitempty"`
}

// UpdateTurn is a granted turn.
type UpdateTurn struct {
	Group     string    `json:"group"`
	ExpiresAt time.Time `json:"expires_at"`
}
