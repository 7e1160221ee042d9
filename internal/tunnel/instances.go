package tunnel

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
)

// maxInstanceID bounds an instance id, and maxAdvertise an advertise
// address, in an Instances message.
const (
	maxInstanceID = 64
	maxAdvertise  = 255
)

// ParseInstances reads and checks an Instances message from the cloud: at
// most MaxInstances entries, each with an id and a HOST:PORT advertise
// address, no id twice. The connector dials what it lists, so a bad entry
// refuses the whole message.
func ParseInstances(r io.Reader) (Instances, error) {
	var m Instances
	if err := json.NewDecoder(io.LimitReader(r, MaxControlBody)).Decode(&m); err != nil {
		return Instances{}, fmt.Errorf("the instances list is not valid JSON")
	}
	if len(m.Instances) > MaxInstances {
		return Instances{}, fmt.Errorf("the instances list has %d entries, more than %d", len(m.Instances), MaxInstances)
	}
	if len(m.Self) > maxInstanceID {
		return Instances{}, fmt.Errorf("the instance id of the sender is longer than %d characters", maxInstanceID)
	}
	seen := make(map[string]bool, len(m.Instances))
	for _, in := range m.Instances {
		if in.ID == "" || len(in.ID) > maxInstanceID {
			return Instances{}, fmt.Errorf("an instance has an empty id or one longer than %d characters", maxInstanceID)
		}
		if seen[in.ID] {
			return Instances{}, fmt.Errorf("instance %s is listed twice", in.ID)
		}
		seen[in.ID] = true
		if err := checkAdvertise(in.Advertise); err != nil {
			return Instances{}, fmt.Errorf("instance %s: %w", in.ID, err)
		}
	}
	if m.Instances == nil {
		m.Instances = []Instance{}
	}
	return m, nil
}

// checkAdvertise checks a HOST:PORT address.
func checkAdvertise(a string) error {
	if len(a) > maxAdvertise {
		return fmt.Errorf("its advertise address is longer than %d characters", maxAdvertise)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("its advertise address %q is not HOST:PORT", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("its advertise address %q has no valid port", a)
	}
	return nil
}
