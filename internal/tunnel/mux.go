package tunnel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A Session multiplexes byte streams over one connection (protocol
// version 2 of the tunnel, docs/protocol.md §15). Stream 0 exists from the
// start on both ends and carries the HTTP/2 connection of version 1
// (control messages, upgraded connections); the cloud opens further
// streams, each a raw, ordered, flow-controlled byte stream (a relay).
//
// The design keeps the per-byte and per-request cost low: a writer frames
// and writes under one lock (the BatchConn under the TLS gathers the
// system calls), one reader goroutine per session hands each frame's
// bytes to its stream, and a stream's reader wakes once per frame.
//
// Frame layout (9 bytes, then the payload):
//
//	length uint24 | type uint8 | flags uint8 | stream id uint32
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

// Frame types and flags.
const (
	frameData   = 0 // payload: bytes of the stream; flagFin ends this direction
	frameOpen   = 1 // payload: the open message (OpenHeader), at most maxOpenPayload
	frameWindow = 2 // payload: uint32 increment of the receiver's window
	frameReset  = 3 // payload: uint32 code, then a UTF-8 message
	framePing   = 4 // payload: 8 bytes; flagAck in the answer

	flagFin = 1
	flagAck = 1

	muxHeaderLen   = 9
	maxPendingAcks = 64
	muxMaxFrame    = 64 << 10 // payload bytes per frame
	maxOpenPayload = 4 << 10
	maxResetText   = 1 << 10

	// Windows: how many bytes a stream's sender may have unread at the
	// receiver. Stream 0 carries the HTTP/2 connection, whose own flow
	// control bounds it further.
	relayWindow   = streamWindow
	stream0Window = connWindow

	// RelayInitialWindow is the receive window the cloud opens a relay
	// stream with when the connector honours the open message's window
	// (OpenMessage.Window): small, so that a stream whose client does not
	// read holds little at the cloud; it grows while the stream is read
	// (Stream.autoTune), up to relayWindow.
	RelayInitialWindow = 16 << 10

	// ClientConnWindowBudget bounds how far the relay windows of the
	// requests of one client connection grow altogether beyond their first
	// windows, at the cloud; TotalWindowBudget bounds it for all client
	// connections together. A stream that meets a spent budget keeps its
	// window (slower, never stopped).
	ClientConnWindowBudget = 8 << 20
	TotalWindowBudget      = 512 << 20
)

// Reset codes.
const (
	ResetCancel      = 0 // the sender closed the stream before its end
	ResetRefused     = 1 // the stream was not accepted (too many, unknown kind, draining)
	ResetProtocol    = 2 // the peer broke the protocol on this stream
	ResetUnsupported = 3 // the open message asks for something this end cannot do
)

// ErrSessionClosed is returned for operations on a closed session.
var ErrSessionClosed = errors.New("tunnel: session closed")

// ErrIDsExhausted is returned by Open once a session has opened all the
// stream ids it may (2³⁰): the session must be replaced by a new one.
var ErrIDsExhausted = errors.New("tunnel: stream ids exhausted on this session")

// StreamError is how a stream ended by a RESET from the peer.
type StreamError struct {
	Code    uint32
	Message string
}

func (e *StreamError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("tunnel: stream reset by the peer (code %d)", e.Code)
	}
	return "tunnel: stream reset by the peer: " + e.Message
}

// NewSession starts a session on conn. opener is true at the cloud, which
// opens streams; the connector accepts them. The Session owns conn.
func NewSession(conn net.Conn, opener bool, cfg SessionConfig) *Session {
	s := &Session{
		conn:    conn,
		opener:  opener,
		cfg:     cfg.withDefaults(),
		wbuf:    make([]byte, 0, muxHeaderLen+muxMaxFrame),
		streams: map[uint32]*Stream{},
		nextID:  1,
		accepts: make(chan *Stream, 256),
		pings:   map[uint64]chan struct{}{},
		done:    make(chan struct{}),
	}
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
	st := newStream(s, id, relayWindow)
	if window > 0 && window < relayWindow {
		st.window, st.initWindow, st.maxWindow = window, window, relayWindow
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
	b := s.wbuf[:muxHeaderLen]
	putHeader(b, len(payload), typ, flags, id)
	b = append(b, payload...)
	if _, err := s.conn.Write(b); err != nil {
		s.werr = err
		go s.shutdown(fmt.Errorf("tunnel: writing to the session failed: %w", err))
		return err
	}
	return nil
}

func putHeader(b []byte, n int, typ, flags byte, id uint32) {
	b[0], b[1], b[2] = byte(n>>16), byte(n>>8), byte(n)
	b[3], b[4] = typ, flags
	binary.BigEndian.PutUint32(b[5:9], id)
}

// frameHeader is a decoded frame header.
type frameHeader struct {
	Length int
	Type   byte
	Flags  byte
	Stream uint32
}

func parseHeader(b []byte) frameHeader {
	return frameHeader{
		Length: int(b[0])<<16 | int(b[1])<<8 | int(b[2]),
		Type:   b[3], Flags: b[4],
		Stream: binary.BigEndian.Uint32(b[5:9]) & (1<<31 - 1),
	}
}

// readFrame reads one frame into buf (which must hold muxMaxFrame bytes
// of payload) and checks what does not depend on the session's state.
func readFrame(r io.Reader, hdr, buf []byte) (frameHeader, []byte, error) {
	if _, err := io.ReadFull(r, hdr[:muxHeaderLen]); err != nil {
		return frameHeader{}, nil, err
	}
	fh := parseHeader(hdr)
	if fh.Length > muxMaxFrame {
		return fh, nil, fmt.Errorf("tunnel: frame of %d bytes exceeds the limit of %d", fh.Length, muxMaxFrame)
	}
	p := buf[:fh.Length]
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fh, nil, err
	}
	switch fh.Type {
	case frameWindow:
		if len(p) != 4 || binary.BigEndian.Uint32(p) == 0 || binary.BigEndian.Uint32(p) > 1<<30 {
			return fh, nil, errors.New("tunnel: bad WINDOW frame")
		}
	case framePing:
		if len(p) != 8 || fh.Stream != 0 {
			return fh, nil, errors.New("tunnel: bad PING frame")
		}
	case frameReset:
		if len(p) < 4 || len(p) > 4+maxResetText {
			return fh, nil, errors.New("tunnel: bad RESET frame")
		}
	case frameOpen:
		if len(p) > maxOpenPayload || fh.Stream == 0 {
			return fh, nil, errors.New("tunnel: bad OPEN frame")
		}
	case frameData:
	default:
		return fh, nil, fmt.Errorf("tunnel: unknown frame type %d", fh.Type)
	}
	return fh, p, nil
}

func (s *Session) readLoop() {
	defer s.wg.Done()
	br := bufio.NewReaderSize(s.conn, 64<<10)
	hdr := make([]byte, muxHeaderLen)
	buf := make([]byte, muxMaxFrame)
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
	st := newStream(s, fh.Stream, relayWindow)
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

// Stream is one byte stream of a Session. It is a net.Conn; Close ends
// both directions (a RESET if the stream had not ended cleanly), CloseWrite
// only this end's.
type Stream struct {
	s    *Session
	id   uint32
	open []byte // the open message, at the accepting end

	mu      sync.Mutex
	q       [][]byte // received, unread: q[0][qr:], q[1], …; pooled chunks
	qr      int
	unread  int // bytes in q not read yet
	unacked int // bytes read but not yet returned to the sender's window
	window  int // what the receiver allows: the limit of len(buf)-r
	sendWin int64
	// Auto-tuning of the receive window (maxWindow > 0, see autoTune);
	// budget, if set, pays for what it grew beyond its start.
	maxWindow  int
	initWindow int
	readRun    int  // bytes read since the window last grew
	starved    bool // the reader waited for data after reading some
	// readerWaits, if set (by tests, before the stream is used), is
	// called each time Read is about to wait for data, without st.mu.
	readerWaits func()
	grown       int // bytes of window taken from budget
	budget      *WindowBudget
	rfin        bool // the peer sent FIN
	wfin        bool // this end sent FIN
	err         error
	removed     bool
	rdl, wdl    time.Time

	rwake chan struct{} // data, FIN, error or deadline for the reader
	wwake chan struct{} // window, error or deadline for the writer
	done  chan struct{} // closed when the stream fails or is closed
	once  sync.Once

	ctx    context.Context
	cancel context.CancelFunc
}

func newStream(s *Session, id uint32, window int) *Stream {
	return &Stream{s: s, id: id, window: window, sendWin: int64(window),
		rwake: make(chan struct{}, 1), wwake: make(chan struct{}, 1), done: make(chan struct{})}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Context is done once the stream is closed or reset, or its session ends.
func (st *Stream) Context() context.Context {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ctx == nil {
		st.ctx, st.cancel = context.WithCancel(context.Background())
		select {
		case <-st.done:
			st.cancel()
		default:
		}
	}
	return st.ctx
}

// ended reports whether the stream has been closed or reset.
func (st *Stream) ended() bool {
	select {
	case <-st.done:
		return true
	default:
		return false
	}
}

// OpenMessage is the message the opener sent with the stream.
func (st *Stream) OpenMessage() []byte { return st.open }

// ID is the stream's id.
func (st *Stream) ID() uint32 { return st.id }

// Done is closed once the stream is closed or reset, or its session ends.
func (st *Stream) Done() <-chan struct{} { return st.done }

// deliver appends received bytes; false if they exceed the window.
func (st *Stream) deliver(p []byte, fin bool) bool {
	st.mu.Lock()
	if st.err != nil || st.rfin {
		st.mu.Unlock()
		return true // closed here: dropped
	}
	if st.unread+len(p) > st.window {
		st.mu.Unlock()
		return false
	}
	st.unread += len(p)
	for len(p) > 0 {
		if n := len(st.q); n > 0 {
			last := st.q[n-1]
			if room := cap(last) - len(last); room > 0 {
				k := min(room, len(p))
				st.q[n-1] = append(last, p[:k]...)
				p = p[k:]
				continue
			}
		}
		st.q = append(st.q, getChunk(st.window))
	}
	if fin {
		st.rfin = true
	}
	both := st.rfin && st.wfin
	st.mu.Unlock()
	wake(st.rwake)
	if both {
		st.remove()
	}
	return true
}

func (st *Stream) addWindow(n int64) {
	st.mu.Lock()
	st.sendWin += n
	st.mu.Unlock()
	wake(st.wwake)
}

// fail ends the stream with err (first error wins) and wakes its users.
//
// The error, Done and the Context change together under the stream's lock:
// whoever sees the error also sees Done closed and the Context done.
// (Functions the Context's end starts run in goroutines of their own.)
func (st *Stream) fail(err error) {
	st.mu.Lock()
	if st.err == nil {
		st.err = err
	}
	st.once.Do(func() { close(st.done) })
	if st.cancel != nil {
		st.cancel()
	}
	b, grown := st.budget, st.grown
	st.budget, st.grown = nil, 0
	st.mu.Unlock()
	b.give(grown)
	wake(st.rwake)
	wake(st.wwake)
}

// remove forgets the stream at its session.
func (st *Stream) remove() {
	st.mu.Lock()
	already := st.removed
	st.removed = true
	st.mu.Unlock()
	if already {
		return
	}
	st.s.mu.Lock()
	if st.s.streams[st.id] == st {
		delete(st.s.streams, st.id)
	}
	st.s.mu.Unlock()
}

var errDeadline = os.ErrDeadlineExceeded

// Read reads received bytes; io.EOF once the peer closed its direction.
func (st *Stream) Read(p []byte) (int, error) {
	for {
		st.mu.Lock()
		if st.unread > 0 {
			n := 0
			for n < len(p) && len(st.q) > 0 {
				c := st.q[0]
				k := copy(p[n:], c[st.qr:])
				n += k
				st.qr += k
				if st.qr < len(c) || len(st.q) == 1 {
					break // p is full, or this is the chunk being filled
				}
				putChunk(c)
				st.q[0] = nil
				st.q, st.qr = st.q[1:], 0
			}
			st.unread -= n
			if st.unread == 0 && len(st.q) == 1 {
				putChunk(st.q[0]) // an idle stream holds no buffer
				st.q[0] = nil
				st.q, st.qr = st.q[:0], 0
			}
			st.unacked += n
			var credit int
			if st.maxWindow > 0 {
				credit += st.autoTune(n)
			}
			if st.unacked >= st.window/4 || (st.unread == 0 && st.unacked >= 16<<10) {
				credit, st.unacked = credit+st.unacked, 0
			}
			open := st.err == nil && !st.rfin
			st.mu.Unlock()
			if credit > 0 && open {
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], uint32(credit))
				st.s.writeFrame(frameWindow, 0, st.id, b[:])
			}
			return n, nil
		}
		if st.rfin {
			st.mu.Unlock()
			return 0, io.EOF
		}
		if st.err != nil {
			err := st.err
			st.mu.Unlock()
			return 0, err
		}
		if len(p) == 0 {
			st.mu.Unlock()
			return 0, nil
		}
		if st.readRun > 0 {
			st.starved = true
		}
		dl, waits := st.rdl, st.readerWaits
		st.mu.Unlock()
		if waits != nil {
			waits()
		}
		if err := waitWake(st.rwake, dl); err != nil {
			return 0, err
		}
	}
}

// autoTune grows the window after the reader read n bytes (st.mu held)
// and returns the credit the growth adds: fourfold, once the reader has
// read a whole window since the last growth, emptied the buffer, and
// waited for data meanwhile (it is faster than the window lets the sender
// be). A reader that stopped — a response whose client does not read —
// never waits, so its stream keeps its window.
func (st *Stream) autoTune(n int) int {
	st.readRun += n
	if st.unread > 0 || !st.starved || st.readRun < st.window || st.window >= st.maxWindow || st.err != nil {
		return 0
	}
	add := st.budget.take(min(3*st.window, st.maxWindow-st.window))
	st.starved = false
	st.window += add
	st.grown += add
	st.readRun = 0
	return add
}

// SetBudget makes budget pay for the stream's window growth from now on,
// and gives what the previous budget paid back to it (nil: growth is not
// bounded by a budget).
func (st *Stream) SetBudget(b *WindowBudget) {
	st.mu.Lock()
	old, grown := st.budget, st.grown
	st.budget = b
	if old != b {
		st.grown = 0
	}
	st.mu.Unlock()
	if old != b {
		old.give(grown)
	}
}

// Grown reports whether the stream's receive window grew beyond the one it
// was opened with.
func (st *Stream) Grown() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.maxWindow > 0 && st.window > st.initWindow
}

// SetSendWindow sets the window the peer opened the stream with (the
// acceptor, from the open message), before anything was written.
func (st *Stream) SetSendWindow(n int) {
	if n <= 0 || n >= relayWindow {
		return
	}
	st.mu.Lock()
	st.sendWin -= int64(relayWindow - n)
	st.mu.Unlock()
}

// A WindowBudget bounds how far the receive windows of the streams it pays
// for may grow altogether: the cloud gives one to each client connection
// (with a parent shared by all), so that the streams of a client that
// stops reading hold no more than it at the cloud. The nil budget is
// unbounded.
type WindowBudget struct {
	left   atomic.Int64
	parent *WindowBudget
}

// NewWindowBudget returns a budget of n bytes, each also taken from parent
// (if not nil).
func NewWindowBudget(n int64, parent *WindowBudget) *WindowBudget {
	b := &WindowBudget{parent: parent}
	b.left.Store(n)
	return b
}

// take takes up to n bytes (what is left, if less) and returns how many
// it took.
func (b *WindowBudget) take(n int) int {
	if b == nil || n <= 0 {
		return n
	}
	for {
		left := b.left.Load()
		k := min(int64(n), left)
		if k <= 0 {
			return 0
		}
		if b.left.CompareAndSwap(left, left-k) {
			if b.parent != nil {
				got := int64(b.parent.take(int(k)))
				if got < k {
					b.left.Add(k - got)
				}
				k = got
			}
			return int(k)
		}
	}
}

// give returns n bytes taken earlier.
func (b *WindowBudget) give(n int) {
	if b == nil || n <= 0 {
		return
	}
	b.left.Add(int64(n))
	b.parent.give(n)
}

// Left is what is left of the budget.
func (b *WindowBudget) Left() int64 { return b.left.Load() }

// Received bytes wait in chunks of one frame's size, from a pool: a busy
// stream holds at most its window (plus one chunk), an idle one nothing.
// A stream with a small window (a relay stream at the cloud before it
// grew) takes small chunks, so that a stream nobody reads holds little.
const (
	chunkSize      = muxMaxFrame
	smallChunkSize = RelayInitialWindow
)

var (
	chunks      = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}
	smallChunks = sync.Pool{New: func() any { b := make([]byte, 0, smallChunkSize); return &b }}
)

func getChunk(window int) []byte {
	if window <= smallChunkSize {
		return (*smallChunks.Get().(*[]byte))[:0]
	}
	return (*chunks.Get().(*[]byte))[:0]
}

func putChunk(c []byte) {
	switch cap(c) {
	case chunkSize:
		c = c[:0]
		chunks.Put(&c)
	case smallChunkSize:
		c = c[:0]
		smallChunks.Put(&c)
	}
}

// waitWake waits for ch, or until deadline dl (zero: none).
func waitWake(ch chan struct{}, dl time.Time) error {
	if dl.IsZero() {
		<-ch
		return nil
	}
	d := time.Until(dl)
	if d <= 0 {
		return errDeadline
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return errDeadline
	}
}

// Write sends p, waiting for window as needed.
func (st *Stream) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		st.mu.Lock()
		if st.err != nil {
			err := st.err
			st.mu.Unlock()
			return written, err
		}
		if st.wfin {
			st.mu.Unlock()
			return written, errors.New("tunnel: write after CloseWrite")
		}
		if st.sendWin <= 0 {
			dl := st.wdl
			st.mu.Unlock()
			if err := waitWake(st.wwake, dl); err != nil {
				return written, err
			}
			continue
		}
		n := min(int64(len(p)), st.sendWin, muxMaxFrame)
		st.sendWin -= n
		st.mu.Unlock()
		if err := st.s.writeFrame(frameData, 0, st.id, p[:n]); err != nil {
			return written, err
		}
		written += int(n)
		p = p[n:]
	}
	return written, nil
}

// CloseWrite ends this end's direction (FIN); reading goes on.
func (st *Stream) CloseWrite() error {
	st.mu.Lock()
	if st.wfin || st.err != nil {
		st.mu.Unlock()
		return nil
	}
	st.wfin = true
	both := st.rfin
	st.mu.Unlock()
	err := st.s.writeFrame(frameData, flagFin, st.id, nil)
	if both {
		st.remove()
	}
	return err
}

// Close ends the stream: at once, with a RESET to the peer, unless both
// directions had ended.
func (st *Stream) Close() error {
	return st.CloseWithCode(ResetCancel, "")
}

// CloseWithCode is Close with the RESET's code and message.
func (st *Stream) CloseWithCode(code uint32, msg string) error {
	if st.id == 0 {
		// Stream 0 lives as long as its session; closing it ends this
		// end's direction, which the peer's HTTP/2 reads as the end of the
		// connection.
		err := st.CloseWrite()
		st.fail(net.ErrClosed)
		return err
	}
	st.mu.Lock()
	clean := st.rfin && st.wfin
	had := st.err
	st.mu.Unlock()
	st.fail(net.ErrClosed)
	st.remove()
	if clean || had != nil {
		return nil
	}
	return st.s.reset(st.id, code, msg)
}

// LocalAddr and RemoteAddr are the session connection's.
func (st *Stream) LocalAddr() net.Addr  { return st.s.conn.LocalAddr() }
func (st *Stream) RemoteAddr() net.Addr { return st.s.conn.RemoteAddr() }

// SetDeadline sets both deadlines.
func (st *Stream) SetDeadline(t time.Time) error {
	st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
}

// SetReadDeadline bounds Reads from now on, including one waiting now.
func (st *Stream) SetReadDeadline(t time.Time) error {
	st.mu.Lock()
	st.rdl = t
	st.mu.Unlock()
	wake(st.rwake) // a waiting Read looks at the new deadline
	return nil
}

// SetWriteDeadline bounds Writes waiting for window.
func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.mu.Lock()
	st.wdl = t
	st.mu.Unlock()
	wake(st.wwake)
	return nil
}
