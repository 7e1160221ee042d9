package eventlog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFormatTable(t *testing.T) {
	events := []Event{
		{ID: 1000, Level: LevelError, Source: "connector", Time: t0, Message: "trust expired",
			Fields: map[string]string{"thumbprint": "ab:cd", "connector_id": "c-1", "note": "two words", "empty": ""}},
		{ID: 7, Level: LevelInformation, Source: "cloud", Time: t0.Add(time.Minute), Message: "evil\x1b[2Jline\nbreak\u202eflip"},
	}
	var buf bytes.Buffer
	if err := FormatTable(&buf, events); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want header and 2 rows:\n%s", len(lines), buf.String())
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "TIME LEVEL ID SOURCE MESSAGE" {
		t.Errorf("header = %q", lines[0])
	}
	tests := []struct {
		line int
		want []string
	}{
		{1, []string{t0.Local().Format(time.RFC3339), "error", "1000", "connector",
			`trust expired  connector_id=c-1  empty=""  note="two words"  thumbprint=ab:cd`}},
		{2, []string{t0.Add(time.Minute).Local().Format(time.RFC3339), "information", "7", "cloud", "evil?[2Jline break?flip"}},
	}
	for _, tt := range tests {
		for _, w := range tt.want {
			if !strings.Contains(lines[tt.line], w) {
				t.Errorf("row %d = %q, want it to contain %q", tt.line, lines[tt.line], w)
			}
		}
	}
	if strings.ContainsAny(buf.String(), "\x1b\u202e") {
		t.Error("control characters reached the table")
	}
}

func TestFormatJSON(t *testing.T) {
	tests := []struct {
		name   string
		events []Event
	}{
		{"none", nil},
		{"some", []Event{
			{ID: 1, Level: LevelWarning, Source: "cloud", Time: t0, Message: "a <b>", Fields: map[string]string{"k": "v"}},
			{ID: 2, Level: LevelError, Source: "cloud", Time: t0, Message: "c"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := FormatJSON(&buf, tt.events); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(buf.String(), "[") {
				t.Fatalf("not an array: %s", buf.String())
			}
			var back []Event
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			if len(back) != len(tt.events) {
				t.Fatalf("round trip gave %d events, want %d", len(back), len(tt.events))
			}
			for i := range back {
				if back[i].ID != tt.events[i].ID || back[i].Message != tt.events[i].Message || !back[i].Time.Equal(tt.events[i].Time) {
					t.Errorf("event %d: got %+v, want %+v", i, back[i], tt.events[i])
				}
			}
		})
	}
}
