package sim

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// SVG layout.
const (
	svgW      = 900
	panelH    = 260
	padL      = 80
	padR      = 30
	padT      = 50
	gap       = 70
	svgH      = padT + 2*panelH + gap + 70
	plotW     = svgW - padL - padR
	colorP50  = "#1d70b8"
	colorP99  = "#d4351c"
	colorPush = "#00703c"
	colorAE   = "#912b88"
	colorRec  = "#505a5f"
)

// WriteSVG draws the report as a two-panel figure: time-to-visibility (p50
// and p99 to every up node, by publication window) over time, and bytes
// sent per node per second (push and anti-entropy) with recall, over time;
// fault windows are shaded in both. The output is deterministic.
func (r *Report) WriteSVG(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := &svgPlot{w: bw, tmax: math.Max(r.VirtualSecs, 1e-3)}
	sc := r.Scenario
	p.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	p.printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	title := fmt.Sprintf("Signpost sim — %s: %d nodes, fan-out %d, push %v, anti-entropy %v, seed %d",
		sc.Name, sc.Nodes, sc.Protocol.Fanout, sc.Protocol.PushInterval.D(), sc.Protocol.AntiEntropyInterval.D(), sc.Seed)
	if r.Partial {
		title += " (PARTIAL)"
	}
	p.text(padL, 22, "start", 15, title)

	// Panel 1: time to visibility.
	top1 := padT
	var ymax1 float64
	for _, s := range r.Series {
		ymax1 = math.Max(ymax1, s.TTVP99)
	}
	ymax1 = niceCeil(math.Max(ymax1/1000, 0.1))
	p.panel(top1, ymax1, r.Faults, "time to every up node (s), by publication time")
	var p50, p99 []pt
	for _, s := range r.Series {
		if s.Delivered > 0 {
			p50 = append(p50, pt{s.T, s.TTVP50 / 1000})
			p99 = append(p99, pt{s.T, s.TTVP99 / 1000})
		}
	}
	p.line(top1, ymax1, p99, colorP99, "")
	p.line(top1, ymax1, p50, colorP50, "")
	p.legend(top1, []string{"p50", "p99"}, []string{colorP50, colorP99})

	// Panel 2: bandwidth per node, and recall on a right-hand 0..1 scale.
	top2 := padT + panelH + gap
	var ymax2 float64
	for _, s := range r.Series {
		ymax2 = math.Max(ymax2, s.PushBps+s.AEBps)
	}
	ymax2 = niceCeil(math.Max(ymax2, 1))
	p.panel(top2, ymax2, r.Faults, "bytes sent per node per second")
	var push, ae, rec []pt
	for _, s := range r.Series {
		push = append(push, pt{s.T, s.PushBps})
		ae = append(ae, pt{s.T, s.AEBps})
		if s.Recall >= 0 {
			rec = append(rec, pt{s.T, s.Recall * ymax2})
		}
	}
	p.line(top2, ymax2, push, colorPush, "")
	p.line(top2, ymax2, ae, colorAE, "")
	p.line(top2, ymax2, rec, colorRec, "4 3")
	p.legend(top2, []string{"push", "anti-entropy", "recall (0–100 %, right)"}, []string{colorPush, colorAE, colorRec})
	x := float64(padL + plotW)
	p.text(x+4, float64(top2)+4, "start", 10, "100%")
	p.text(x+4, float64(top2+panelH)+4, "start", 10, "0%")
	p.text(padL+plotW/2, float64(top2+panelH+40), "middle", 12, "virtual time (s)")

	v := r.Visibility
	p.text(padL, svgH-12, "start", 11, fmt.Sprintf(
		"time to all nodes p50 %.2f s, p99 %.2f s; never delivered %.2f%%; %.0f B/node/s (memberlist broadcast: %.0f, ratio %.3f); shaded: faults",
		v.AllNodes.P50/1000, v.AllNodes.P99/1000, v.NeverFraction*100,
		r.Bandwidth.PushBytesPerNodeSec+r.Bandwidth.AEBytesPerNodeSec, r.Bandwidth.MemberlistBroadcastPerNodeSec, r.Bandwidth.RatioToMemberlist))
	p.printf("</svg>\n")
	if p.err != nil {
		return p.err
	}
	return bw.Flush()
}

type pt struct{ x, y float64 }

type svgPlot struct {
	w    *bufio.Writer
	tmax float64
	err  error
}

func (p *svgPlot) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *svgPlot) text(x, y float64, anchor string, size int, s string) {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	p.printf(`<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d">%s</text>`+"\n", x, y, anchor, size, b.String())
}

func (p *svgPlot) sx(t float64) float64 { return padL + t/p.tmax*plotW }

func sy(top int, ymax, v float64) float64 {
	return float64(top+panelH) - math.Min(v/ymax, 1.05)*panelH
}

func (p *svgPlot) panel(top int, ymax float64, faults []Fault, label string) {
	for _, f := range faults {
		x0, x1 := p.sx(f.From), p.sx(f.Until)
		if f.Kind == "bulk-import" {
			p.printf(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#f47738" stroke-width="2"/>`+"\n", x0, top, x0, top+panelH)
		} else {
			p.printf(`<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#f3f2f1" stroke="#b1b4b6"/>`+"\n", x0, top, math.Max(x1-x0, 1), panelH)
		}
		p.text(x0+3, float64(top)+12, "start", 10, f.Label)
	}
	p.printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#0b0c0c"/>`+"\n", padL, top, plotW, panelH)
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		y := sy(top, ymax, v)
		p.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dddddd"/>`+"\n", padL, y, padL+plotW, y)
		p.text(padL-6, y+4, "end", 10, trimFloat(v))
	}
	for i := 0; i <= 6; i++ {
		t := p.tmax * float64(i) / 6
		p.text(p.sx(t), float64(top+panelH+16), "middle", 10, trimFloat(t))
	}
	p.text(padL, float64(top)-8, "start", 12, label)
}

func (p *svgPlot) line(top int, ymax float64, pts []pt, color, dash string) {
	if len(pts) == 0 {
		return
	}
	var b strings.Builder
	for i, q := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", p.sx(q.x), sy(top, ymax, q.y))
	}
	extra := ""
	if dash != "" {
		extra = fmt.Sprintf(` stroke-dasharray="%s"`, dash)
	}
	p.printf(`<polyline fill="none" stroke="%s" stroke-width="1.8"%s points="%s"/>`+"\n", color, extra, b.String())
}

func (p *svgPlot) legend(top int, names, colors []string) {
	x := float64(padL + plotW - 10)
	for i := len(names) - 1; i >= 0; i-- {
		w := float64(len(names[i]))*6.5 + 30
		x -= w
		y := float64(top) + 18
		p.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", x, y-4, x+18, y-4, colors[i])
		p.text(x+22, y, "start", 11, names[i])
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*e {
			return m * e
		}
	}
	return 10 * e
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-0" {
		return "0"
	}
	return s
}
