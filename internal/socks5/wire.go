package socks5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// Protocol constants (RFC 1928).
const (
	version5 = 0x05

	methodNoAuth       = 0x00
	methodNoAcceptable = 0xFF

	cmdConnect      = 0x01
	cmdBind         = 0x02
	cmdUDPAssociate = 0x03

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04
)

// Reply codes (RFC 1928 §6).
const (
	ReplySucceeded           byte = 0x00
	ReplyGeneralFailure      byte = 0x01
	ReplyNotAllowed          byte = 0x02 // connection not allowed by ruleset
	ReplyNetworkUnreachable  byte = 0x03
	ReplyHostUnreachable     byte = 0x04
	ReplyConnectionRefused   byte = 0x05
	ReplyTTLExpired          byte = 0x06
	ReplyCommandNotSupported byte = 0x07
	ReplyAddressNotSupported byte = 0x08
)

// MaxDomain is the longest domain name a request carries (its length is
// one byte).
const MaxDomain = 255

// Addr is a destination of a request: a domain name, as the client gave
// it (never resolved here), or an IP address; and a port.
type Addr struct {
	Name string     // the domain name, "" for an IP address
	IP   netip.Addr // the IP address when Name is ""
	Port uint16
}

// Host is the name, or the IP address in text (IPv6 without brackets).
func (a Addr) Host() string {
	if a.Name != "" {
		return a.Name
	}
	return a.IP.String()
}

// String is HOST:PORT ([IPV6]:PORT).
func (a Addr) String() string {
	h := a.Host()
	if a.Name == "" && a.IP.Is6() {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(int(a.Port))
}

// request is a client's request (RFC 1928 §4).
type request struct {
	cmd byte
	dst Addr
}

// errVersion: not SOCKS version 5; the connection is closed without an
// answer.
var errVersion = errors.New("not a SOCKS5 client (version byte is not 5)")

// replyError is a malformed request: the reply code to answer with.
type replyError struct {
	code byte
	msg  string
}

func (e *replyError) Error() string { return e.msg }

// readRequest reads a request: VER CMD RSV ATYP DST.ADDR DST.PORT.
func readRequest(r io.Reader) (request, error) {
	var h [3]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return request{}, err
	}
	if h[0] != version5 {
		return request{}, errVersion
	}
	dst, err := readAddr(r)
	if err != nil {
		return request{}, err
	}
	return request{cmd: h[1], dst: dst}, nil
}

// readAddr reads ATYP DST.ADDR DST.PORT from a stream.
func readAddr(r io.Reader) (Addr, error) {
	var t [1]byte
	if _, err := io.ReadFull(r, t[:]); err != nil {
		return Addr{}, err
	}
	var n int
	switch t[0] {
	case atypIPv4:
		n = 4
	case atypIPv6:
		n = 16
	case atypDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return Addr{}, err
		}
		b := make([]byte, 1+int(l[0])+2)
		b[0] = l[0]
		if _, err := io.ReadFull(r, b[1:]); err != nil {
			return Addr{}, err
		}
		a, _, err := parseAddrBody(atypDomain, b)
		return a, err
	default:
		return Addr{}, &replyError{ReplyAddressNotSupported, fmt.Sprintf("address type %d is not supported", t[0])}
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(r, b); err != nil {
		return Addr{}, err
	}
	a, _, err := parseAddrBody(t[0], b)
	return a, err
}

// parseAddr parses ATYP DST.ADDR DST.PORT at the start of b, returning
// the bytes it took.
func parseAddr(b []byte) (Addr, int, error) {
	if len(b) < 1 {
		return Addr{}, 0, errShort
	}
	a, n, err := parseAddrBody(b[0], b[1:])
	return a, n + 1, err
}

var errShort = errors.New("the address is cut short")

// parseAddrBody parses DST.ADDR DST.PORT of type atyp.
func parseAddrBody(atyp byte, b []byte) (Addr, int, error) {
	var a Addr
	var n int
	switch atyp {
	case atypIPv4:
		if len(b) < 4+2 {
			return Addr{}, 0, errShort
		}
		a.IP, n = netip.AddrFrom4([4]byte(b[:4])), 4
	case atypIPv6:
		if len(b) < 16+2 {
			return Addr{}, 0, errShort
		}
		a.IP, n = netip.AddrFrom16([16]byte(b[:16])).Unmap(), 16
	case atypDomain:
		if len(b) < 1 || len(b) < 1+int(b[0])+2 {
			return Addr{}, 0, errShort
		}
		name := string(b[1 : 1+int(b[0])])
		if err := checkName(name); err != nil {
			return Addr{}, 0, err
		}
		if ip, err := netip.ParseAddr(name); err == nil && ip.Zone() == "" {
			a.IP = ip.Unmap() // an IP in text: it is checked as an IP
		} else {
			a.Name = name
		}
		n = 1 + int(b[0])
	default:
		return Addr{}, 0, &replyError{ReplyAddressNotSupported, fmt.Sprintf("address type %d is not supported", atyp)}
	}
	a.Port = binary.BigEndian.Uint16(b[n:])
	return a, n + 2, nil
}

// checkName refuses a domain name that no DNS name can be: empty, or with
// a byte other than a letter, digit, '-', '_', '.' or ':' (an IPv6
// address in text).
func checkName(name string) error {
	if name == "" {
		return &replyError{ReplyHostUnreachable, "the domain name is empty"}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return &replyError{ReplyHostUnreachable, fmt.Sprintf("the domain name has the byte 0x%02x, which no DNS name has", c)}
		}
	}
	return nil
}

// appendAddr appends ATYP ADDR PORT.
func appendAddr(b []byte, a Addr) []byte {
	switch {
	case a.Name != "":
		b = append(b, atypDomain, byte(len(a.Name)))
		b = append(b, a.Name...)
	case a.IP.Is4():
		b = append(b, atypIPv4)
		b = append(b, a.IP.AsSlice()...)
	case a.IP.Is6():
		b = append(b, atypIPv6)
		b = append(b, a.IP.AsSlice()...)
	default:
		b = append(b, atypIPv4, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(b, a.Port)
}

// appendReply appends a reply: VER REP RSV ATYP BND.ADDR BND.PORT.
func appendReply(b []byte, code byte, bnd Addr) []byte {
	return appendAddr(append(b, version5, code, 0), bnd)
}

// udpHeader is the header of a datagram relayed for UDP ASSOCIATE
// (RFC 1928 §7): RSV(2) FRAG ATYP DST.ADDR DST.PORT, then the data.
type udpHeader struct {
	frag byte
	dst  Addr
}

// parseUDP parses a relayed datagram: its header and its data (a slice
// of b).
func parseUDP(b []byte) (udpHeader, []byte, error) {
	if len(b) < 4 {
		return udpHeader{}, nil, errShort
	}
	if b[0] != 0 || b[1] != 0 {
		return udpHeader{}, nil, errors.New("the reserved bytes of the UDP header are not zero")
	}
	a, n, err := parseAddr(b[3:])
	if err != nil {
		return udpHeader{}, nil, err
	}
	return udpHeader{frag: b[2], dst: a}, b[3+n:], nil
}

// appendUDP appends the header of a datagram from (or to) dst and its
// data.
func appendUDP(b []byte, dst Addr, data []byte) []byte {
	b = appendAddr(append(b, 0, 0, 0), dst)
	return append(b, data...)
}
