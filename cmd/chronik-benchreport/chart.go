package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var systemColors = map[string]color.Color{
	"kfake":      color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff},
	"standalone": color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"cluster":    color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// systemsIn lists the systems of the report in a fixed order.
func (r Report) systemsIn() []string {
	var out []string
	for _, s := range []string{"kfake", "standalone", "cluster"} {
		for _, p := range r.Points {
			if p.System == s {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// WriteChart draws two panels side by side: maximum throughput and p99
// latency at 50% load, one bar per system in each acks × size group.
// Latency is on a linear scale: gonum's bars start at 0, which a log
// scale cannot show.
func (r Report) WriteChart(path string) error {
	var groups []string
	type key struct {
		acks string
		size int
	}
	var keys []key
	for _, acks := range r.acksValues() {
		for _, size := range r.sizes() {
			groups = append(groups, fmt.Sprintf("acks=%s %s", acks, sizeLabel(size)))
			keys = append(keys, key{acks, size})
		}
	}
	systems := r.systemsIn()
	if len(systems) == 0 {
		return fmt.Errorf("chart: no points")
	}
	through, latency := plot.New(), plot.New()
	through.Title.Text = "Maximum throughput"
	through.Y.Label.Text = "messages/s"
	latency.Title.Text = "p99 latency at 50% of maximum"
	latency.Y.Label.Text = "ms"
	barWidth := vg.Points(22)
	for i, sys := range systems {
		var msgs, p99 plotter.Values
		for _, k := range keys {
			p, _ := r.point(sys, k.acks, k.size)
			msgs = append(msgs, p.Max.MsgsPerSec)
			p99 = append(p99, p.Half.LatencyP99)
		}
		offset := barWidth * vg.Length(float64(i)-float64(len(systems)-1)/2)
		for _, panel := range []struct {
			p  *plot.Plot
			vs plotter.Values
		}{{through, msgs}, {latency, p99}} {
			bars, err := plotter.NewBarChart(panel.vs, barWidth)
			if err != nil {
				return fmt.Errorf("chart: %w", err)
			}
			bars.Color = systemColors[sys]
			bars.LineStyle.Width = 0
			bars.Offset = offset
			panel.p.Add(bars)
			panel.p.Legend.Add(sys, bars)
		}
	}
	for _, p := range []*plot.Plot{through, latency} {
		p.NominalX(groups...)
		p.Legend.Top = true
		// Room at both ends, so the outer groups' bars and the legend
		// stay clear of the axes.
		p.X.Padding = vg.Points(60)
		p.X.Min, p.X.Max = -0.6, float64(len(groups))-0.4
		p.Add(plotter.NewGrid())
	}
	img := vgimg.New(vg.Points(1100), vg.Points(420))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(20), PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{{through, latency}}, tiles, dc)
	through.Draw(canvases[0][0])
	latency.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("chart %s: %w", path, err)
	}
	return f.Close()
}
