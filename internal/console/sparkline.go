package console

import (
	"html/template"
	"math"
	"strconv"
	"strings"
)

// The overview's small charts: inline SVG drawn here, on the server, so
// that the page needs no chart library and no script. Only presentation
// attributes (stroke, fill), never a style attribute: the console's CSP
// (style-src 'self') would block it.

// Sparkline sizes, in SVG user units (and CSS pixels).
const (
	sparkWidth  = 120
	sparkHeight = 28
	sparkPad    = 2 // keeps the stroke inside the box
)

// sparkline draws values (oldest first) as a line chart, scaled from 0 to
// top (to the largest value when top is 0). label says in words what the
// chart shows, for screen readers (aria-label and the SVG's title) and
// as the tooltip. Values that are not finite or below 0 count as 0.
func sparkline(values []float64, top float64, label string) template.HTML {
	if top <= 0 || math.IsNaN(top) || math.IsInf(top, 0) {
		top = 0
		for _, v := range values {
			if finite(v) && v > top {
				top = v
			}
		}
	}
	lbl := template.HTMLEscapeString(label)
	var b strings.Builder
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" class="spark" role="img" width="`)
	b.WriteString(strconv.Itoa(sparkWidth))
	b.WriteString(`" height="`)
	b.WriteString(strconv.Itoa(sparkHeight))
	b.WriteString(`" viewBox="0 0 `)
	b.WriteString(strconv.Itoa(sparkWidth) + " " + strconv.Itoa(sparkHeight))
	b.WriteString(`" aria-label="`)
	b.WriteString(lbl)
	b.WriteString(`"><title>`)
	b.WriteString(lbl)
	b.WriteString(`</title>`)
	// The baseline, so that an empty hour still shows as a chart.
	b.WriteString(`<line x1="0" y1="` + coord(sparkHeight-sparkPad) + `" x2="` + strconv.Itoa(sparkWidth) + `" y2="` + coord(sparkHeight-sparkPad) + `" stroke="#c4c8ce" stroke-width="1"/>`)
	if len(values) > 0 {
		b.WriteString(`<polyline fill="none" stroke="#1a5fb4" stroke-width="1.5" stroke-linejoin="round" points="`)
		step := 0.0
		if len(values) > 1 {
			step = float64(sparkWidth) / float64(len(values)-1)
		}
		for i, v := range values {
			if !finite(v) || v < 0 {
				v = 0
			}
			y := float64(sparkHeight - sparkPad)
			if top > 0 {
				y -= math.Min(v/top, 1) * float64(sparkHeight-2*sparkPad)
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(coord(float64(i)*step) + "," + coord(y))
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// coord formats a coordinate with at most one decimal.
func coord[T float64 | int](v T) string {
	return strconv.FormatFloat(math.Round(float64(v)*10)/10, 'f', -1, 64)
}
