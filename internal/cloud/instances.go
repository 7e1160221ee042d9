package cloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// Instances of one cloud on a shared store (scale-out, docs/scale-out.md):
// each writes its row in the store every InstanceBeat (Heartbeat) and reads
// the others'. An instance is gone when its row is removed (a clean stop)
// or when it missed instanceMissedBeats beats in a row.

// instanceMissedBeats is how many beats in a row an instance may miss
// before the others count it gone.
const instanceMissedBeats = 3

// DefaultInstanceBeat is how often an instance writes its heartbeat
// (Config.InstanceBeat), and InstanceGoneAfter how long after its last
// one the others count it gone.
const (
	DefaultInstanceBeat = 2 * time.Second
	InstanceGoneAfter   = instanceMissedBeats * DefaultInstanceBeat
)

// instanceForgetAfter is how long a silent instance's row is kept before
// any instance removes it (it is not counted alive meanwhile).
const instanceForgetAfter = time.Hour

// validateAdvertise checks --advertise: HOST:PORT at which connectors reach
// this instance directly ("" for none).
func validateAdvertise(a string) error {
	if a == "" {
		return nil
	}
	bad := func(why string) error {
		return problem.Newf(400, "bad_config", "give the HOST:PORT at which connectors reach this instance, for example --advertise cloud-1.example.com:443 or 10.0.0.11:443",
			"The advertised address %q is not usable: %s", a, why)
	}
	if len(a) > 255 {
		return bad("it is longer than 255 characters")
	}
	if strings.Contains(a, "://") || strings.ContainsAny(a, "/?#@ ") {
		return bad("it must be HOST:PORT only, without a scheme or path")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return bad("it is not HOST:PORT")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return bad("the port must be a number from 1 to 65535")
	}
	if host == "" {
		return bad("the host is missing")
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return bad("an unspecified address (0.0.0.0, ::) cannot be dialled")
	}
	return nil
}

// newInstanceID names this process in the store: the host name (cut to 40
// characters) and a random suffix, so that a restarted instance is a new
// one and two instances on one machine differ.
func newInstanceID() string {
	h, _ := os.Hostname()
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return -1
	}, h)
	if len(h) > 40 {
		h = h[:40]
	}
	if h == "" {
		h = "cloud"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return h + "-" + hex.EncodeToString(b)
}

// instances is what this instance knows of the others.
type instances struct {
	self store.Instance
	live atomic.Pointer[[]store.Instance] // sorted by id, self included

	mu   sync.Mutex
	seen map[string]*seenInstance // by id, self excluded
	// storeDown is set while the store cannot be reached (events 2974,
	// 2975: once each per outage).
	storeDown bool
	announced bool // event 2973 was written
}

// seenInstance is another instance as this one saw it: its last heartbeat
// value and when (on this clock) that value last changed, so that clocks
// apart between machines do not make an instance look dead or alive.
type seenInstance struct {
	row       store.Instance
	changedAt time.Time // local time
	alive     bool
}

// LiveInstances returns the instances alive now, this one included, by
// id (cached: no store read). Before the first heartbeat it is this
// instance alone.
func (s *Server) LiveInstances() []store.Instance {
	p := s.inst.live.Load()
	if p == nil {
		return []store.Instance{s.inst.self}
	}
	return slices.Clone(*p)
}

// InstanceID returns this instance's id in the store.
func (s *Server) InstanceID() string { return s.inst.self.ID }

// beat writes this instance's heartbeat every InstanceBeat and updates
// the list of live instances, until ctx is done; then it removes this
// instance's row (a clean stop: the others see it gone at once).
func (s *Server) beat(ctx context.Context) {
	t := time.NewTicker(s.cfg.InstanceBeat)
	defer t.Stop()
	for {
		s.beatOnce(ctx)
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := s.store.DeleteInstance(dctx, s.inst.self.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("removing this instance's row from the store failed; the others count it gone after missed heartbeats", "instance", s.inst.self.ID, "error", err.Error())
			}
			return
		case <-t.C:
		}
	}
}

// beatOnce writes one heartbeat and reads the others' rows.
func (s *Server) beatOnce(ctx context.Context) {
	now := time.Now()
	self := s.inst.self
	self.HeartbeatAt = now.UTC()
	err := s.store.Heartbeat(ctx, self)
	var rows []store.Instance
	if err == nil {
		rows, err = s.store.ListInstances(ctx, time.Time{})
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.storeFailed(err)
		return
	}
	s.storeOK()
	s.updateInstances(ctx, rows, now)
}

// storeFailed records that the store cannot be reached: event 2974 once
// per outage.
func (s *Server) storeFailed(err error) {
	s.inst.mu.Lock()
	was := s.inst.storeDown
	s.inst.storeDown = true
	s.inst.mu.Unlock()
	if was {
		return
	}
	s.events.Event(eventlog.StoreUnreachable, fmt.Sprintf("The store cannot be reached (%v): this instance keeps serving applications from its cached routing table and sessions; changes and new sign-ins wait for the store", err),
		"instance", s.inst.self.ID, "error", err.Error())
}

// storeOK records that the store answered: event 2975 after an outage.
func (s *Server) storeOK() {
	s.inst.mu.Lock()
	was := s.inst.storeDown
	s.inst.storeDown = false
	if was {
		// The others could not beat either: count from now.
		now := time.Now()
		for _, si := range s.inst.seen {
			si.changedAt = now
		}
	}
	s.inst.mu.Unlock()
	if !was {
		return
	}
	s.events.Event(eventlog.StoreBack, "The store is reachable again: this instance reloads its routing table and follows changes again", "instance", s.inst.self.ID)
	s.feed.connectors.Store(true)
	s.changed()
}

// updateInstances judges the rows read at now (this clock): an instance
// is alive while its heartbeat value changes at least every
// instanceMissedBeats beats; one seen for the first time is judged on its
// heartbeat time. It logs joins and departures (events 2970–2972) and
// removes rows silent for instanceForgetAfter. The first time (the first
// beat that reached the store) it logs this instance's arrival instead of
// the others' joins (event 2973).
func (s *Server) updateInstances(ctx context.Context, rows []store.Instance, now time.Time) {
	window := time.Duration(instanceMissedBeats) * s.cfg.InstanceBeat
	type change struct {
		in  store.Instance
		how eventlog.ID
	}
	var changes []change
	var forget []string
	s.inst.mu.Lock()
	first := !s.inst.announced
	s.inst.announced = true
	present := map[string]bool{}
	live := []store.Instance{s.inst.self}
	for _, r := range rows {
		if r.ID == s.inst.self.ID {
			continue
		}
		present[r.ID] = true
		si := s.inst.seen[r.ID]
		if si == nil {
			// First sight: trust its clock once.
			si = &seenInstance{row: r, changedAt: now}
			if now.Sub(r.HeartbeatAt) >= window {
				si.changedAt = now.Add(-now.Sub(r.HeartbeatAt))
			}
			s.inst.seen[r.ID] = si
		} else if !r.HeartbeatAt.Equal(si.row.HeartbeatAt) || r.Advertise != si.row.Advertise {
			si.changedAt = now
		}
		si.row = r
		alive := now.Sub(si.changedAt) < window
		switch {
		case alive && !si.alive:
			if !first {
				changes = append(changes, change{r, eventlog.InstanceJoined})
			}
		case !alive && si.alive:
			changes = append(changes, change{r, eventlog.InstanceLost})
		}
		si.alive = alive
		if alive {
			live = append(live, r)
		} else if now.Sub(si.changedAt) >= instanceForgetAfter {
			forget = append(forget, r.ID)
		}
	}
	for id, si := range s.inst.seen {
		if !present[id] {
			if si.alive {
				changes = append(changes, change{si.row, eventlog.InstanceStopped})
			}
			delete(s.inst.seen, id)
		}
	}
	s.inst.mu.Unlock()
	slices.SortFunc(live, func(a, b store.Instance) int { return strings.Compare(a.ID, b.ID) })
	s.inst.live.Store(&live)

	if first {
		others := make([]string, 0, len(live)-1)
		for _, in := range live {
			if in.ID != s.inst.self.ID {
				others = append(others, in.ID)
			}
		}
		adv := s.inst.self.Advertise
		if adv == "" {
			adv = "none"
		}
		s.events.Event(eventlog.InstanceAnnounced, fmt.Sprintf("This cloud instance %s is in the store (advertised address: %s); %d other instances are alive", s.inst.self.ID, adv, len(others)),
			"instance", s.inst.self.ID, "advertise", s.inst.self.Advertise, "others", strings.Join(others, ","))
	}
	for _, c := range changes {
		switch c.how {
		case eventlog.InstanceJoined:
			s.events.Event(c.how, fmt.Sprintf("Cloud instance %s joined (advertised address: %q)", c.in.ID, c.in.Advertise),
				"instance", c.in.ID, "advertise", c.in.Advertise)
		case eventlog.InstanceStopped:
			s.events.Event(c.how, fmt.Sprintf("Cloud instance %s stopped (it removed its row from the store)", c.in.ID),
				"instance", c.in.ID, "advertise", c.in.Advertise)
		case eventlog.InstanceLost:
			s.events.Event(c.how, fmt.Sprintf("Cloud instance %s missed %d heartbeats: it is counted gone (killed, cut off, or its clock stopped)", c.in.ID, instanceMissedBeats),
				"instance", c.in.ID, "advertise", c.in.Advertise, "last_heartbeat", c.in.HeartbeatAt.Format(time.RFC3339))
		}
	}
	for _, id := range forget {
		if err := s.store.DeleteInstance(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("removing a long-silent instance's row failed", "instance", id, "error", err.Error())
		}
	}
}

// openStore opens the data directory's store. A PostgreSQL server that
// cannot be reached is tried again, every second doubling to 30 s, until
// Config.StoreWait has passed or ctx is done (event 2976 once, then 2975
// when it comes); any other failure, or the end of the wait, is returned.
func (s *Server) openStore(ctx context.Context) (store.Store, int, error) {
	deadline := time.Now().Add(s.cfg.StoreWait)
	delay := time.Second
	waiting := false
	for {
		st, wrapped, err := datadir.OpenStoreCount(s.cfg.DataDir, s.settings, s.log)
		if err == nil {
			if waiting {
				s.events.Event(eventlog.StoreBack, "The store is reachable: the cloud starts", "instance", s.inst.self.ID)
			}
			return st, wrapped, nil
		}
		remaining := time.Until(deadline)
		if !errors.Is(err, datadir.ErrStoreUnreachable) || remaining <= 0 {
			return nil, 0, err
		}
		if !waiting {
			waiting = true
			s.events.Event(eventlog.StoreWaiting, fmt.Sprintf("%v; the cloud tries again until %s have passed (--store-wait)", err, humanDuration(s.cfg.StoreWait)),
				"error", err.Error(), "wait", s.cfg.StoreWait.String())
		}
		s.log.Warn("the store cannot be reached; trying again", "in", delay.String(), "error", err.Error())
		t := time.NewTimer(min(delay, remaining))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, err
		case <-t.C:
		}
		delay = min(2*delay, 30*time.Second)
	}
}
