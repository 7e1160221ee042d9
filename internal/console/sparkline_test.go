package console

import (
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// svgOf parses a sparkline: it must be one well-formed <svg> element with
// role=img, an aria-label equal to its <title>, no style attribute (the
// CSP blocks them), and its polyline's points inside the box.
type svgDoc struct {
	XMLName   xml.Name   `xml:"svg"`
	Role      string     `xml:"role,attr"`
	AriaLabel string     `xml:"aria-label,attr"`
	Title     string     `xml:"title"`
	Polyline  *svgPoints `xml:"polyline"`
}

type svgPoints struct {
	Points string `xml:"points,attr"`
}

func svgOf(t testing.TB, out string) (svgDoc, [][2]float64) {
	t.Helper()
	var doc svgDoc
	dec := xml.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("the sparkline is not well-formed SVG (%v):\n%s", err, out)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("the sparkline has more than one element:\n%s", out)
	}
	for tokens := xml.NewDecoder(strings.NewReader(out)); ; {
		tok, err := tokens.Token()
		if err != nil {
			break
		}
		if el, ok := tok.(xml.StartElement); ok {
			if el.Name.Local == "script" || el.Name.Local == "style" {
				t.Fatalf("the sparkline has a <%s> element:\n%s", el.Name.Local, out)
			}
			for _, a := range el.Attr {
				if a.Name.Local == "style" || strings.HasPrefix(a.Name.Local, "on") {
					t.Fatalf("the sparkline has a %s attribute, which the CSP blocks:\n%s", a.Name.Local, out)
				}
			}
		}
	}
	if doc.Role != "img" || doc.AriaLabel != doc.Title {
		t.Fatalf("the sparkline: role %q, aria-label %q, title %q; want img and a label equal to the title", doc.Role, doc.AriaLabel, doc.Title)
	}
	var pts [][2]float64
	if doc.Polyline == nil {
		return doc, nil
	}
	for _, p := range strings.Fields(doc.Polyline.Points) {
		xs, ys, ok := strings.Cut(p, ",")
		x, err1 := strconv.ParseFloat(xs, 64)
		y, err2 := strconv.ParseFloat(ys, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("point %q is not x,y:\n%s", p, out)
		}
		if x < 0 || x > sparkWidth || y < 0 || y > sparkHeight {
			t.Fatalf("point %q is outside the %dx%d box:\n%s", p, sparkWidth, sparkHeight, out)
		}
		pts = append(pts, [2]float64{x, y})
	}
	return doc, pts
}

func TestSparkline(t *testing.T) {
	bottom, topY := float64(sparkHeight-sparkPad), float64(sparkPad)
	for _, tc := range []struct {
		name   string
		values []float64
		top    float64
		label  string
		wantY  []float64 // the points' y, left to right
	}{
		{name: "empty", values: nil, label: "nothing"},
		{name: "one value", values: []float64{3}, label: "one", wantY: []float64{topY}},
		{name: "all zero stays at the bottom", values: []float64{0, 0, 0}, label: "zero", wantY: []float64{bottom, bottom, bottom}},
		{name: "scaled to the largest", values: []float64{0, 1, 2}, label: "up", wantY: []float64{bottom, 14, topY}},
		{name: "a fixed top", values: []float64{0, 0.5, 1}, top: 1, label: "rate", wantY: []float64{bottom, 14, topY}},
		{name: "over the top is cut", values: []float64{2}, top: 1, label: "cut", wantY: []float64{topY}},
		{name: "NaN, infinity and negatives count as 0", values: []float64{math.NaN(), math.Inf(1), -1, 4}, label: "odd",
			wantY: []float64{bottom, bottom, bottom, topY}},
		{name: "the label is escaped", values: []float64{1}, label: `<script>alert("x")</script> & "q"`, wantY: []float64{topY}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := string(sparkline(tc.values, tc.top, tc.label))
			doc, pts := svgOf(t, out)
			if doc.Title != tc.label {
				t.Errorf("title %q, want %q", doc.Title, tc.label)
			}
			if len(pts) != len(tc.wantY) {
				t.Fatalf("%d points, want %d:\n%s", len(pts), len(tc.wantY), out)
			}
			for i, want := range tc.wantY {
				if pts[i][1] != want {
					t.Errorf("point %d: y %v, want %v", i, pts[i][1], want)
				}
			}
			if len(pts) > 1 && (pts[0][0] != 0 || pts[len(pts)-1][0] != sparkWidth) {
				t.Errorf("the points span x %v to %v, want 0 to %d", pts[0][0], pts[len(pts)-1][0], sparkWidth)
			}
		})
	}
}

// FuzzSparkline: whatever the label and the values, the sparkline is one
// well-formed SVG element, its label comes back unchanged, and its points
// stay in the box.
func FuzzSparkline(f *testing.F) {
	f.Add("Requests per second", 1.5, 0.0, 3.0, 0.0)
	f.Add(`</title><script>x</script>`, math.Inf(1), math.NaN(), -2.0, 1.0)
	f.Add("\x00\xff]]>", 1e308, 1e-308, 0.0, -1.0)
	f.Fuzz(func(t *testing.T, label string, a, b, c, top float64) {
		if !xmlSafe(label) {
			t.Skip() // not text an XML parser accepts back; html/template escapes it in the page anyway
		}
		doc, pts := svgOf(t, string(sparkline([]float64{a, b, c}, top, label)))
		if doc.Title != label || len(pts) != 3 {
			t.Fatalf("title %q (want %q), %d points", doc.Title, label, len(pts))
		}
	})
}

// xmlSafe reports whether s is valid UTF-8 made only of characters XML
// allows, with no carriage return (a parser turns it into a newline).
func xmlSafe(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' || r == '\r' || (r < 0x20 && r != '\t' && r != '\n') || (r >= 0xFFFE && r <= 0xFFFF) {
			return false
		}
	}
	return true
}
