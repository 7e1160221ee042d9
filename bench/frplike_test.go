package main

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// TestFrpMessages: frp's framing (type byte, 8-byte big-endian length,
// JSON) round-trips, and a wrong type or an oversized length is refused.
func TestFrpMessages(t *testing.T) {
	type work struct{ RunID string }
	for _, tc := range []struct {
		name    string
		typ     byte
		want    byte
		raw     []byte // instead of a written message
		wantErr string
	}{
		{name: "new work conn", typ: frpNewWorkConn, want: frpNewWorkConn},
		{name: "start work conn", typ: frpStartWorkConn, want: frpStartWorkConn},
		{name: "wrong type", typ: frpLogin, want: frpNewWorkConn, wantErr: "message type"},
		{name: "too long", want: frpNewWorkConn, raw: binary.BigEndian.AppendUint64([]byte{frpNewWorkConn}, frpMaxMsgLength+1), wantErr: "message type"},
		{name: "cut short", want: frpNewWorkConn, raw: []byte{frpNewWorkConn, 0, 0}, wantErr: "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if tc.raw != nil {
				b.Write(tc.raw)
			} else if err := frpWrite(&b, tc.typ, work{RunID: "bench"}); err != nil {
				t.Fatal(err)
			}
			var got work
			err := frpRead(&b, tc.want, &got)
			switch {
			case tc.wantErr == "" && (err != nil || got.RunID != "bench"):
				t.Errorf("read %+v, %v", got, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one with %q", err, tc.wantErr)
			}
		})
	}
}
