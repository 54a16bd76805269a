package benchreport

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math"
	"time"
)

// WriteChart writes an SVG chart of the rows at concurrency conc: for each
// backend and operation, a bar of ours' p50 beside a bar of the raw call's,
// on a logarithmic time axis (the backends span four orders of magnitude),
// and the p50 ratio at the right, red where it is above TargetRatio.
func WriteChart(w io.Writer, rows []Row, conc int, title string) error {
	var sel []Row
	for _, r := range rows {
		if r.Conc == conc && r.Ours.P50 > 0 && r.RawS.P50 > 0 {
			sel = append(sel, r)
		}
	}
	const (
		width    = 980
		labelW   = 230 // left column: backend and op
		plotL    = labelW + 10
		plotR    = 780
		ratioX   = 850
		ratioTX  = 935
		top      = 78
		groupH   = 30
		barH     = 11
		fontSize = 12
	)
	height := top + len(sel)*groupH + 40
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range sel {
		for _, d := range []time.Duration{r.Ours.P50, r.RawS.P50} {
			lo, hi = math.Min(lo, float64(d)), math.Max(hi, float64(d))
		}
	}
	if len(sel) == 0 {
		lo, hi = 100, 1e6
	}
	decLo, decHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if decHi == decLo {
		decHi++
	}
	x := func(ns float64) float64 {
		return plotL + (math.Log10(ns)-decLo)/(decHi-decLo)*(plotR-plotL)
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="%d">`+"\n",
		width, height, width, height, fontSize)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	// Legend.
	fmt.Fprintf(&b, `<rect x="10" y="34" width="14" height="%d" fill="#1f6feb"/><text x="30" y="44">certcache (ours)</text>`+"\n", barH)
	fmt.Fprintf(&b, `<rect x="150" y="34" width="14" height="%d" fill="#9aa4ad"/><text x="170" y="44">raw SDK / driver call on the same server</text>`+"\n", barH)
	fmt.Fprintf(&b, `<text x="%d" y="44" text-anchor="middle" font-weight="bold">p50 ratio</text>`+"\n", ratioX)
	fmt.Fprintf(&b, `<text x="%d" y="38" text-anchor="middle" font-size="10" fill="#57606a">ratio to raw</text>`+"\n", ratioTX)
	fmt.Fprintf(&b, `<text x="%d" y="50" text-anchor="middle" font-size="10" fill="#57606a">+ same timeout</text>`+"\n", ratioTX)
	// Axis: a line per decade, labelled.
	for d := decLo; d <= decHi; d++ {
		ns := math.Pow(10, d)
		xx := x(ns)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#d0d7de"/>`+"\n", xx, top-8, xx, top+len(sel)*groupH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#57606a">%s</text>`+"\n", xx, top-12, axisLabel(ns))
	}
	prev := ""
	for i, r := range sel {
		y := top + i*groupH
		if r.Backend != prev && i > 0 {
			fmt.Fprintf(&b, `<line x1="10" y1="%d" x2="%d" y2="%d" stroke="#8c959f"/>`+"\n", y-2, width-10, y-2)
		}
		label := r.Op
		if r.Backend != prev {
			label = r.Backend + " · " + r.Op
		}
		prev = r.Backend
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW, y+barH+4, html.EscapeString(label))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-size="9" fill="#57606a">vs %s</text>`+"\n", labelW, y+barH+15, html.EscapeString(r.Raw))
		for j, s := range []struct {
			d     time.Duration
			color string
		}{{r.Ours.P50, "#1f6feb"}, {r.RawS.P50, "#9aa4ad"}} {
			by := y + 2 + j*(barH+2)
			xe := x(float64(s.d))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", plotL, by, math.Max(1, xe-plotL), barH, s.color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" fill="#24292f">%s</text>`+"\n", xe+4, by+barH-1, fmtDur(s.d))
		}
		ratio := r.Ratio()
		color := "#1a7f37"
		if ratio > TargetRatio {
			color = "#cf222e"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-weight="bold" fill="%s">%.2f×</text>`+"\n", ratioX, y+barH+6, color, ratio)
		if tr := r.TimeoutRatio(); !math.IsNaN(tr) {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#57606a">%.2f×</text>`+"\n", ratioTX, y+barH+6, tr)
		}
	}
	fmt.Fprintf(&b, `<text x="10" y="%d" fill="#57606a" font-size="11">p50 latency, log scale; ratio = ours p50 / raw p50 (target ≤ %.2f, green); grey: ours / the raw call under the same per-call context.WithTimeout; concurrency %d</text>`+"\n",
		top+len(sel)*groupH+24, TargetRatio, conc)
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func axisLabel(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.0f ms", ns/1e6)
	}
	return fmt.Sprintf("%.0f s", ns/1e9)
}
