package mux

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A Session multiplexes byte streams over one connection. Stream 0 exists
// from the start on both ends (the tunnel runs its HTTP/2 connection on
// it); the opener (the cloud) opens further streams, each a raw, ordered,
// flow-controlled byte stream, which the other end accepts.
//
// A writer frames and writes under one lock (a batching connection under
// the TLS gathers the system calls), one reader goroutine per session
// hands each frame's bytes to its stream, and a stream's reader wakes once
// per frame.
//
// All methods of a Session may be called at once from any goroutines.
type Session struct {
	conn   net.Conn
	opener bool // this end opens streams (the cloud)
	cfg    SessionConfig

	wmu  sync.Mutex
	wbuf []byte
	werr error

	stream0  *Stream
	mu       sync.Mutex
	streams  map[uint32]*Stream
	nextID   uint32 // next id this end opens
	peerMax  uint32 // highest id the peer opened
	accepts  chan *Stream
	pings    map[uint64]chan struct{}
	pingSeq  uint64
	closed   bool
	closeErr error

	done     chan struct{}
	lastRead atomic.Int64 // unix nanos of the last frame received
	// pendingAcks counts PING answers not written yet; a peer that sends
	// more than maxPendingAcks without reading is broken.
	pendingAcks atomic.Int32
	wg          sync.WaitGroup
	closeOnce   sync.Once
}

// SessionConfig tunes a Session.
type SessionConfig struct {
	// PingInterval is how long the connection may be silent before a PING
	// is sent; PingTimeout how long one may go unanswered before the
	// session closes. Defaults 10s and 5s.
	PingInterval, PingTimeout time.Duration
	// MaxStreams bounds the streams the peer may have open at once.
	// Default 4096.
	MaxStreams int
}

func (c SessionConfig) withDefaults() SessionConfig {
	if c.PingInterval <= 0 {
		c.PingInterval = 10 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 5 * time.Second
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 4096
	}
	return c
}

// NewSession starts a session on conn. opener is true at the cloud, which
// opens streams; the connector accepts them. The Session owns conn.
func NewSession(conn net.Conn, opener bool, cfg SessionConfig) *Session {
	s := &Session{
		conn:    conn,
		opener:  opener,
		cfg:     cfg.withDefaults(),
		wbuf:    make([]byte, 0, headerLen+maxFramePayload),
		streams: map[uint32]*Stream{},
		nextID:  1,
		pings:   map[uint64]chan struct{}{},
		done:    make(chan struct{}),
	}
	// The accepting end queues every stream it may have open (a burst of
	// OPENs, a thousand connections at once, must not find the queue full
	// while the acceptor is not scheduled); the opener accepts none.
	queue := 0
	if !opener {
		queue = s.cfg.MaxStreams + 1
	}
	s.accepts = make(chan *Stream, queue)
	s.lastRead.Store(time.Now().UnixNano())
	s.stream0 = newStream(s, 0, stream0Window)
	s.streams[0] = s.stream0
	s.wg.Add(2)
	go s.readLoop()
	go s.keepAlive()
	return s
}

// Stream0 returns stream 0, which carries the HTTP/2 connection.
func (s *Session) Stream0() *Stream { return s.stream0 }

// Done is closed once the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended (nil while it runs).
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}

// RemoteAddr is the peer's address.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// NumStreams is the number of streams open, stream 0 included.
func (s *Session) NumStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// Close ends the session and every stream at once.
func (s *Session) Close() error {
	s.shutdown(ErrSessionClosed)
	s.wg.Wait()
	return nil
}

func (s *Session) shutdown(err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.closeErr = err
		streams := s.streams
		s.streams = map[uint32]*Stream{}
		s.mu.Unlock()
		for _, st := range streams {
			st.fail(err)
		}
		close(s.done)
		s.conn.Close()
	})
}

// Open opens a stream whose open message is msg (at most 4 KiB). It does
// not wait for the peer: bytes may be written at once, and a refusal
// arrives as a StreamError on Read.
func (s *Session) Open(msg []byte) (*Stream, error) { return s.OpenWindow(msg, 0) }

// OpenWindow is Open with a receive window of window bytes (0: the
// protocol's 4 MiB), which grows while the stream is read, up to 4 MiB:
// the peer must have been told in msg (OpenMessage.Window), or it would
// send more than the window allows.
func (s *Session) OpenWindow(msg []byte, window int) (*Stream, error) {
	if !s.opener {
		return nil, errors.New("tunnel: only the cloud opens streams")
	}
	if len(msg) > maxOpenPayload {
		return nil, errors.New("tunnel: open message too large")
	}
	// The OPEN frames must leave in the order of their ids (the peer
	// refuses an id lower than one it saw): the id is taken under wmu.
	s.wmu.Lock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wmu.Unlock()
		return nil, ErrSessionClosed
	}
	id := s.nextID
	if id > 1<<31-2 {
		s.mu.Unlock()
		s.wmu.Unlock()
		return nil, ErrIDsExhausted
	}
	s.nextID += 2
	st := newStream(s, id, streamWindow)
	if window > 0 && window < streamWindow {
		st.window, st.initWindow, st.maxWindow = window, window, streamWindow
	}
	s.streams[id] = st
	s.mu.Unlock()
	err := s.writeFrameLocked(frameOpen, 0, id, msg)
	s.wmu.Unlock()
	if err != nil {
		st.remove()
		return nil, err
	}
	return st, nil
}

// SkipIDs makes id (odd, above every id opened so far) the next stream id
// this end opens. It is for tests that meet ErrIDsExhausted without
// opening a billion streams first.
func (s *Session) SkipIDs(id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id%2 == 1 && id > s.nextID {
		s.nextID = id
	}
}

// Accept waits for a stream opened by the peer and returns it with its
// open message.
func (s *Session) Accept() (*Stream, error) {
	select {
	case st := <-s.accepts:
		return st, nil
	case <-s.done:
		return nil, s.Err()
	}
}

// Ping sends a PING and waits for its answer.
func (s *Session) Ping(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	s.pingSeq++
	seq := s.pingSeq
	ch := make(chan struct{})
	s.pings[seq] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pings, seq)
		s.mu.Unlock()
	}()
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], seq)
	if err := s.writeFrame(framePing, 0, 0, p[:]); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-s.done:
		return s.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeFrame writes one frame. Writes are whole frames, in order.
func (s *Session) writeFrame(typ, flags byte, id uint32, payload []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeFrameLocked(typ, flags, id, payload)
}

func (s *Session) writeFrameLocked(typ, flags byte, id uint32, payload []byte) error {
	if s.werr != nil {
		return s.werr
	}
	b := s.wbuf[:headerLen]
	putHeader(b, len(payload), typ, flags, id)
	b = append(b, payload...)
	if _, err := s.conn.Write(b); err != nil {
		s.werr = err
		go s.shutdown(fmt.Errorf("tunnel: writing to the session failed: %w", err))
		return err
	}
	return nil
}

func (s *Session) readLoop() {
	defer s.wg.Done()
	br := bufio.NewReaderSize(s.conn, 64<<10)
	hdr := make([]byte, headerLen)
	buf := make([]byte, maxFramePayload)
	for {
		fh, p, err := readFrame(br, hdr, buf)
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("tunnel: the peer closed the connection: %w", io.ErrUnexpectedEOF)
			}
			s.shutdown(err)
			return
		}
		s.lastRead.Store(time.Now().UnixNano())
		if err := s.handle(fh, p); err != nil {
			s.shutdown(err)
			return
		}
	}
}

// handle applies one frame; an error ends the session.
func (s *Session) handle(fh frameHeader, p []byte) error {
	switch fh.Type {
	case framePing:
		if fh.Flags&flagAck == 0 {
			// The reader never waits on a write: the peer's reader may be
			// waiting for this end to read.
			if s.pendingAcks.Add(1) > maxPendingAcks {
				return errors.New("tunnel: the peer sends PINGs faster than it reads their answers")
			}
			ack := append([]byte(nil), p...)
			s.async(func() {
				s.writeFrame(framePing, flagAck, 0, ack)
				s.pendingAcks.Add(-1)
			})
			return nil
		}
		seq := binary.BigEndian.Uint64(p)
		s.mu.Lock()
		if ch := s.pings[seq]; ch != nil {
			close(ch)
			delete(s.pings, seq)
		}
		s.mu.Unlock()
		return nil
	case frameOpen:
		return s.handleOpen(fh, p)
	}
	s.mu.Lock()
	st := s.streams[fh.Stream]
	known := st != nil || s.isPast(fh.Stream)
	s.mu.Unlock()
	if !known {
		return fmt.Errorf("tunnel: frame for stream %d that was never opened", fh.Stream)
	}
	if st == nil {
		return nil // a stream closed here; its last frames are dropped
	}
	switch fh.Type {
	case frameData:
		if !st.deliver(p, fh.Flags&flagFin != 0) {
			return fmt.Errorf("tunnel: stream %d exceeded its flow-control window", fh.Stream)
		}
	case frameWindow:
		st.addWindow(int64(binary.BigEndian.Uint32(p)))
	case frameReset:
		msg := string(p[4:])
		st.fail(&StreamError{Code: binary.BigEndian.Uint32(p), Message: msg})
		st.remove()
	}
	return nil
}

// isPast reports whether id belongs to a stream that was opened and has
// since closed. Callers hold s.mu.
func (s *Session) isPast(id uint32) bool {
	if id == 0 {
		return true
	}
	if (id%2 == 1) == s.opener {
		return id < s.nextID
	}
	return id <= s.peerMax
}

func (s *Session) handleOpen(fh frameHeader, p []byte) error {
	s.mu.Lock()
	if s.opener || fh.Stream%2 == 0 || fh.Stream <= s.peerMax {
		s.mu.Unlock()
		return fmt.Errorf("tunnel: OPEN with an unexpected stream id %d", fh.Stream)
	}
	s.peerMax = fh.Stream
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	st := newStream(s, fh.Stream, streamWindow)
	st.open = append([]byte(nil), p...)
	full := len(s.streams) > s.cfg.MaxStreams
	if !full {
		s.streams[fh.Stream] = st
	}
	s.mu.Unlock()
	if full {
		s.async(func() { s.reset(fh.Stream, ResetRefused, "too many streams open on this tunnel") })
		return nil
	}
	select {
	case s.accepts <- st:
	default:
		st.remove()
		s.async(func() { s.reset(fh.Stream, ResetRefused, "the connector is not accepting streams fast enough") })
	}
	return nil
}

// async runs f in a goroutine that Close waits for. Only the read loop
// calls it (Close waits for the read loop too, so the count cannot be
// zero meanwhile).
func (s *Session) async(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Session) reset(id, code uint32, msg string) error {
	if len(msg) > maxResetText {
		msg = msg[:maxResetText]
	}
	p := make([]byte, 4, 4+len(msg))
	binary.BigEndian.PutUint32(p, code)
	p = append(p, msg...)
	return s.writeFrame(frameReset, 0, id, p)
}

// keepAlive pings a silent connection and ends a session whose peer stopped
// answering.
func (s *Session) keepAlive() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PingInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, s.lastRead.Load())) < s.cfg.PingInterval {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.PingTimeout)
		errc := make(chan error, 1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			errc <- s.Ping(ctx)
		}()
		var err error
		select {
		case err = <-errc:
		case <-ctx.Done():
			err = ctx.Err() // the PING may not even have been written
		}
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			s.shutdown(fmt.Errorf("tunnel: the peer did not answer a PING within %s", s.cfg.PingTimeout))
			return
		}
	}
}
