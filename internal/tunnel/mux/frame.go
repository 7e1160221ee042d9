package mux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame layout (9 bytes, then the payload):
//
//	length uint24 | type uint8 | flags uint8 | stream id uint32
//
// Frame types, flags and limits.
const (
	frameData   = 0 // payload: bytes of the stream; flagFin ends this direction
	frameOpen   = 1 // payload: the open message (Session.Open's msg), at most maxOpenPayload
	frameWindow = 2 // payload: uint32 increment of the receiver's window
	frameReset  = 3 // payload: uint32 code, then a UTF-8 message
	framePing   = 4 // payload: 8 bytes; flagAck in the answer

	flagFin = 1
	flagAck = 1

	headerLen       = 9
	maxPendingAcks  = 64
	maxFramePayload = 64 << 10 // payload bytes per frame
	maxOpenPayload  = 4 << 10
	maxResetText    = 1 << 10
)

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

// readFrame reads one frame into buf (which must hold maxFramePayload bytes
// of payload) and checks what does not depend on the session's state.
func readFrame(r io.Reader, hdr, buf []byte) (frameHeader, []byte, error) {
	if _, err := io.ReadFull(r, hdr[:headerLen]); err != nil {
		return frameHeader{}, nil, err
	}
	fh := parseHeader(hdr)
	if fh.Length > maxFramePayload {
		return fh, nil, fmt.Errorf("tunnel: frame of %d bytes exceeds the limit of %d", fh.Length, maxFramePayload)
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
