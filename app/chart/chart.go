// Package chart computes the geometry of Keyline's charts: where each point,
// line, dot and axis tick goes in an SVG drawing. The pages draw the charts
// as inline SVG on the server, so they are readable without JavaScript, need
// no chart library from a CDN (the pages' Content-Security-Policy allows
// neither inline scripts nor other origins' code) and survive export. This
// package does the arithmetic, in plain numbers and strings; the templates
// only place elements where it says.
package chart

import (
	"math"
	"strconv"
	"time"
)

// Frame is a drawing's size in SVG user units (its viewBox) and the margins
// that hold the axes' labels around the plot area.
type Frame struct {
	Width, Height            float64
	Top, Right, Bottom, Left float64
}

// PlotLeft is the x of the plot area's left edge.
func (f Frame) PlotLeft() float64 { return f.Left }

// PlotRight is the x of the plot area's right edge.
func (f Frame) PlotRight() float64 { return f.Width - f.Right }

// PlotTop is the y of the plot area's top edge.
func (f Frame) PlotTop() float64 { return f.Top }

// PlotBottom is the y of the plot area's bottom edge.
func (f Frame) PlotBottom() float64 { return f.Height - f.Bottom }

// ViewBox is the value of the svg element's viewBox attribute; with it and
// no fixed size the drawing scales to the width CSS gives it.
func (f Frame) ViewBox() string { return "0 0 " + Num(f.Width) + " " + Num(f.Height) }

// Sample is one period of a series.
type Sample struct {
	Label string
	Value float64
	// Missing marks a period without data: the line breaks there. It is
	// never drawn as zero, since zero is a value (no failures, no wait).
	Missing bool
}

// Point is a sample placed in the frame.
type Point struct {
	X, Y    float64
	Missing bool // Y is meaningless; nothing is drawn at this point
}

// Segment is a run of consecutive samples that have data, drawn as one line.
type Segment []Point

// Polyline is the segment as a polyline's points attribute: "10,20 30,5".
func (s Segment) Polyline() string {
	b := make([]byte, 0, len(s)*12)
	for i, p := range s {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, Num(p.X)...)
		b = append(b, ',')
		b = append(b, Num(p.Y)...)
	}
	return string(b)
}

// Tick is one labelled mark on an axis.
type Tick struct {
	At    float64 // x for the time or category axis, y for the value axis
	Label string
}

// Line is a series laid out as a line chart.
type Line struct {
	Frame Frame
	// Points has one entry per sample, in order, missing ones included so
	// indexes match the samples.
	Points []Point
	// Segments are the lines to draw; a segment of one point is a lone dot
	// between gaps and has no line.
	Segments []Segment
	// YTicks run from the bottom up; the first is the baseline.
	YTicks []Tick
	// XTicks label some samples: all of them when they fit, else every
	// k-th so the labels do not overlap.
	XTicks []Tick
}

// Trend lays out samples as a line chart in f, with the value axis from zero
// (or below, for negative values) to a nice number above the largest value,
// at most yTicks intervals, and at most xLabels labels on the category axis.
func Trend(samples []Sample, f Frame, yTicks, xLabels int) Line {
	lo, hi := 0.0, 0.0
	for _, s := range samples {
		if !s.Missing {
			lo, hi = min(lo, s.Value), max(hi, s.Value)
		}
	}
	values, step := NiceTicks(lo, hi, yTicks)
	bottom, top := values[0], values[len(values)-1]
	x0, x1 := f.PlotLeft(), f.PlotRight()
	y0, y1 := f.PlotBottom(), f.PlotTop()
	y := func(v float64) float64 { return y0 - (v-bottom)/(top-bottom)*(y0-y1) }

	l := Line{Frame: f, Points: make([]Point, len(samples))}
	var seg Segment
	for i, s := range samples {
		p := Point{X: x0 + (x1-x0)/2, Missing: s.Missing}
		if len(samples) > 1 {
			p.X = x0 + float64(i)*(x1-x0)/float64(len(samples)-1)
		}
		if !s.Missing {
			p.Y = y(s.Value)
			seg = append(seg, p)
		} else if len(seg) > 0 {
			l.Segments, seg = append(l.Segments, seg), nil
		}
		l.Points[i] = p
	}
	if len(seg) > 0 {
		l.Segments = append(l.Segments, seg)
	}
	for _, v := range values {
		l.YTicks = append(l.YTicks, Tick{At: y(v), Label: FormatTick(v, step)})
	}
	every := 1
	if xLabels > 0 && len(samples) > xLabels {
		every = (len(samples) + xLabels - 1) / xLabels
	}
	for i := 0; i < len(samples); i += every {
		l.XTicks = append(l.XTicks, Tick{At: l.Points[i].X, Label: samples[i].Label})
	}
	return l
}

// NiceTicks returns the tick values of an axis covering [lo, hi] in at most
// n intervals (n < 2 counts as 2), each a step of 1, 2 or 5 times a power of
// ten, so labels read 0, 2, 4, 6 rather than 0, 1.77, 3.53, 5.3. The axis
// always includes zero, and an empty range becomes [0, 1].
func NiceTicks(lo, hi float64, n int) (values []float64, step float64) {
	// Two intervals always suffice (one each side of zero), so the search
	// below ends.
	n = max(n, 2)
	lo, hi = min(lo, 0), max(hi, 0)
	if !(hi-lo > 0) || math.IsInf(hi-lo, 0) {
		lo, hi = 0, 1
	}
	// The epsilon keeps float noise (0.3/0.1 = 2.9999999999999996) from
	// adding an interval.
	const eps = 1e-9
	for p := math.Pow(10, math.Floor(math.Log10((hi-lo)/float64(n)))); ; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			step = p * m
			first, last := math.Floor(lo/step+eps), math.Ceil(hi/step-eps)
			if last-first <= float64(n) {
				for k := first; k <= last; k++ {
					values = append(values, k*step)
				}
				return values, step
			}
		}
	}
}

// FormatTick writes a tick value with no more decimals than its step needs,
// which also hides float noise: 0.30000000000000004 with a step of 0.1 is
// "0.3", and 4 with a step of 2 is "4".
func FormatTick(v, step float64) string {
	decimals := 0
	if step > 0 && step < 1 {
		decimals = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	scale := math.Pow(10, float64(decimals))
	v = math.Round(v*scale) / scale
	if v == 0 {
		return "0" // not "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// Num writes a coordinate for an SVG attribute, to a tenth of a unit, which
// is finer than any screen shows at the sizes Keyline draws.
func Num(v float64) string {
	v = math.Round(v*10) / 10
	if v == 0 {
		return "0" // not "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// Diamond is a path of a diamond centred on (x, y) with radius r: a second
// dot shape, so a failure differs from a success by more than colour.
func Diamond(x, y, r float64) string {
	return "M" + Num(x) + "," + Num(y-r) + "L" + Num(x+r) + "," + Num(y) + "L" + Num(x) + "," + Num(y+r) + "L" + Num(x-r) + "," + Num(y) + "Z"
}

// Timeline is events over time laid out in lanes, one above the other.
type Timeline struct {
	Frame Frame
	// Lanes has one entry per input lane, top to bottom.
	Lanes []Lane
	// Ticks mark calendar days, weeks or months along the time axis.
	Ticks []Tick
}

// Lane is one lane of a timeline.
type Lane struct {
	Y  float64   // the lane's centre line
	Xs []float64 // one per event, in input order
}

// LayOutTimeline places the events of each lane between from and to: time
// runs left to right across the plot area, and lanes are laneHeight apart,
// so the frame's Height is ignored and computed. Events outside the range
// are pinned to its edge rather than drawn outside the plot. Ticks fall on
// midnights, Mondays or firsts of months in from's location, at most
// maxTicks of them.
func LayOutTimeline(from, to time.Time, lanes [][]time.Time, f Frame, laneHeight float64, maxTicks int) Timeline {
	f.Height = f.Top + float64(len(lanes))*laneHeight + f.Bottom
	x0, x1 := f.PlotLeft(), f.PlotRight()
	span := to.Sub(from)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return x0
		}
		r := float64(t.Sub(from)) / float64(span)
		return x0 + min(max(r, 0), 1)*(x1-x0)
	}
	tl := Timeline{Frame: f, Lanes: make([]Lane, len(lanes))}
	for i, events := range lanes {
		l := Lane{Y: f.Top + (float64(i)+0.5)*laneHeight, Xs: make([]float64, len(events))}
		for j, t := range events {
			l.Xs[j] = x(t)
		}
		tl.Lanes[i] = l
	}
	for _, t := range TimeTicks(from, to, maxTicks) {
		tl.Ticks = append(tl.Ticks, Tick{At: x(t.At), Label: t.Label})
	}
	return tl
}

// TimeTick is a labelled instant on a time axis.
type TimeTick struct {
	At    time.Time
	Label string // "7 Sep"; for months "Sep", or "Sep 2026" at the first tick and a new year
}

// tickUnit is a calendar step: a number of days (from Mondays when monday
// is set) or of months.
type tickUnit struct {
	days, months int
	monday       bool
}

var tickUnits = []tickUnit{
	{days: 1}, {days: 2},
	{days: 7, monday: true}, {days: 14, monday: true}, {days: 28, monday: true},
	{months: 1}, {months: 2}, {months: 3}, {months: 6}, {months: 12},
}

// TimeTicks returns calendar ticks in [from, to], in from's location: the
// finest of days, Mondays or firsts of months that needs at most limit ticks
// (limit < 1 counts as 1), or none when even yearly ticks are too many.
// Calendar arithmetic keeps ticks on midnight across daylight-saving
// changes.
func TimeTicks(from, to time.Time, limit int) []TimeTick {
	if !to.After(from) {
		return nil
	}
	limit = max(limit, 1)
	for _, u := range tickUnits {
		var ticks []TimeTick
		var prev time.Time
		for t := u.first(from); !t.After(to) && len(ticks) <= limit; prev, t = t, u.next(t) {
			ticks = append(ticks, TimeTick{At: t, Label: u.label(t, prev)})
		}
		if len(ticks) <= limit {
			return ticks
		}
	}
	return nil
}

// first is the unit's first boundary at or after from.
func (u tickUnit) first(from time.Time) time.Time {
	y, m, d := from.Date()
	if u.months > 0 {
		t := time.Date(y, m, 1, 0, 0, 0, 0, from.Location())
		if t.Before(from) {
			t = t.AddDate(0, 1, 0)
		}
		return t
	}
	t := time.Date(y, m, d, 0, 0, 0, 0, from.Location())
	if t.Before(from) {
		t = t.AddDate(0, 0, 1)
	}
	if u.monday {
		t = t.AddDate(0, 0, (8-int(t.Weekday()))%7)
	}
	return t
}

func (u tickUnit) next(t time.Time) time.Time {
	return t.AddDate(0, u.months, u.days)
}

// label names a day by its date and a month by its name, with the year on
// the first tick and wherever the year changes.
func (u tickUnit) label(t, prev time.Time) string {
	if u.months == 0 {
		return t.Format("2 Jan")
	}
	if prev.IsZero() || prev.Year() != t.Year() {
		return t.Format("Jan 2006")
	}
	return t.Format("Jan")
}
