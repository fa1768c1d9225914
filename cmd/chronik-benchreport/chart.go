package main

import (
	"fmt"
	"image/color"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// chartSystems are the systems drawn, in order, each Chronik system next
// to its Kafka references. kfake, which writes nothing, is left to the
// tables: it is a bound, not a server to compare with.
var chartSystems = []struct {
	name  string
	color color.Color
}{
	{"standalone", color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}},
	{"kafka", color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}},
	{"kafka-flush", color.RGBA{R: 0x98, G: 0xdf, B: 0x8a, A: 0xff}},
	{"cluster", color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}},
	{"kafka-cluster", color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}},
	{"kafka-cluster-flush", color.RGBA{R: 0xff, G: 0x98, B: 0x96, A: 0xff}},
}

// WriteChart draws two panels, one above the other: maximum throughput and
// p99 latency at 50% load, one bar per system in each acks × size group.
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
	var systems []int
	for i, sys := range chartSystems {
		if r.hasSystem(sys.name) {
			systems = append(systems, i)
		}
	}
	if len(systems) == 0 {
		return fmt.Errorf("chart: no points of %v", r.systemsIn())
	}
	through, latency := plot.New(), plot.New()
	through.Title.Text = "Maximum throughput"
	through.Y.Label.Text = "messages/s"
	latency.Title.Text = "p99 latency at 50% of maximum"
	latency.Y.Label.Text = "ms"
	barWidth := vg.Points(22)
	var maxMsgs, maxP99 float64
	for i, sysIndex := range systems {
		sys := chartSystems[sysIndex]
		var msgs, p99 plotter.Values
		for _, k := range keys {
			p, _ := r.point(sys.name, k.acks, k.size)
			msgs = append(msgs, p.Max.MsgsPerSec)
			p99 = append(p99, p.Half.LatencyP99)
			maxMsgs, maxP99 = max(maxMsgs, p.Max.MsgsPerSec), max(maxP99, p.Half.LatencyP99)
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
			bars.Color = sys.color
			bars.LineStyle.Width = 0
			bars.Offset = offset
			panel.p.Add(bars)
			panel.p.Legend.Add(sys.name, bars)
		}
	}
	// Headroom above the highest bar keeps the legend (top right) off the
	// bars.
	through.Y.Max, latency.Y.Max = maxMsgs*1.35, maxP99*1.35
	through.Y.Tick.Marker = wholeTicks{}
	for _, p := range []*plot.Plot{through, latency} {
		p.NominalX(groups...)
		p.Legend.Top = true
		p.X.Padding = vg.Points(4)
		// Room at both ends, so the outer groups' bars stay clear of the
		// axes.
		p.X.Min, p.X.Max = -0.6, float64(len(groups))-0.4
		p.Add(plotter.NewGrid())
	}
	img := vgimg.New(vg.Points(1100), vg.Points(840))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(20), PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{{through}, {latency}}, tiles, dc)
	through.Draw(canvases[0][0])
	latency.Draw(canvases[1][0])
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

// wholeTicks are gonum's default ticks labelled without decimals (message
// rates are whole numbers; a Y range ending off a round number otherwise
// gets ".00" labels).
type wholeTicks struct{}

func (wholeTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'f', 0, 64)
		}
	}
	return ticks
}
