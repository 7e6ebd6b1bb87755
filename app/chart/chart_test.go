package chart

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNiceTicks(t *testing.T) {
	for _, tt := range []struct {
		name      string
		lo, hi    float64
		n         int
		want      []float64
		wantLabel []string
	}{
		{"hours", 0, 5.3, 4, []float64{0, 2, 4, 6}, []string{"0", "2", "4", "6"}},
		{"exact top", 0, 6, 4, []float64{0, 2, 4, 6}, nil},
		{"percent", 0, 12, 4, []float64{0, 5, 10, 15}, nil},
		{"per day", 0, 0.8, 4, nil, []string{"0", "0.2", "0.4", "0.6", "0.8"}},
		{"float noise", 0, 0.3, 3, []float64{0, 0.1, 0.2, 0.30000000000000004}, []string{"0", "0.1", "0.2", "0.3"}},
		{"large", 0, 730, 4, []float64{0, 200, 400, 600, 800}, nil},
		{"few intervals", 0, 730, 2, nil, []string{"0", "500", "1000"}},
		{"all zero", 0, 0, 4, []float64{0, 0.5, 1}, []string{"0", "0.5", "1"}},
		{"positive only starts at zero", 3, 9, 5, []float64{0, 2, 4, 6, 8, 10}, nil},
		{"negative", -3, 5, 4, []float64{-5, 0, 5}, []string{"-5", "0", "5"}},
		{"one interval asked", -1, 1, 1, []float64{-1, 0, 1}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, step := NiceTicks(tt.lo, tt.hi, tt.n)
			if len(tt.want) > 0 && !slices.Equal(got, tt.want) {
				t.Errorf("NiceTicks(%v, %v, %d) = %v, want %v", tt.lo, tt.hi, tt.n, got, tt.want)
			}
			if len(got)-1 > max(tt.n, 2) {
				t.Errorf("%d intervals, want at most %d", len(got)-1, tt.n)
			}
			if got[0] > min(tt.lo, 0) || got[len(got)-1] < tt.hi {
				t.Errorf("ticks %v do not cover [%v, %v]", got, tt.lo, tt.hi)
			}
			if tt.wantLabel != nil {
				var labels []string
				for _, v := range got {
					labels = append(labels, FormatTick(v, step))
				}
				if !slices.Equal(labels, tt.wantLabel) {
					t.Errorf("labels %v, want %v", labels, tt.wantLabel)
				}
			}
		})
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", -0.01: "0", 12.34: "12.3", 12.36: "12.4", 100: "100", -4.26: "-4.3"} {
		if got := Num(v); got != want {
			t.Errorf("Num(%v) = %q, want %q", v, got, want)
		}
	}
}

var frame = Frame{Width: 300, Height: 120, Top: 10, Right: 10, Bottom: 10, Left: 40}

func TestTrend(t *testing.T) {
	s := func(label string, v float64) Sample { return Sample{Label: label, Value: v} }
	gap := func(label string) Sample { return Sample{Label: label, Missing: true} }
	for _, tt := range []struct {
		name    string
		samples []Sample
		// wantSegments are the segments' polylines.
		wantSegments []string
		wantY        []string // y tick labels
		wantX        []string // x tick labels
	}{
		{
			name:         "full",
			samples:      []Sample{s("1 Sep", 0), s("8 Sep", 2), s("15 Sep", 4)},
			wantSegments: []string{"40,110 165,60 290,10"},
			wantY:        []string{"0", "1", "2", "3", "4"},
			wantX:        []string{"1 Sep", "8 Sep", "15 Sep"},
		},
		{
			name:         "a gap breaks the line and is not a zero",
			samples:      []Sample{s("a", 4), s("b", 2), gap("c"), s("d", 3), s("e", 4)},
			wantSegments: []string{"40,10 102.5,60", "227.5,35 290,10"},
			wantX:        []string{"a", "c", "e"},
		},
		{
			name:         "lone points between gaps have no line",
			samples:      []Sample{gap("a"), s("b", 1), gap("c")},
			wantSegments: []string{"165,10"},
			wantY:        []string{"0", "0.5", "1"},
		},
		{
			name:    "nothing at all",
			samples: []Sample{gap("a"), gap("b")},
			wantY:   []string{"0", "0.5", "1"},
		},
		{
			name:         "one sample sits in the middle",
			samples:      []Sample{s("a", 1)},
			wantSegments: []string{"165,10"},
		},
		{
			name:    "many labels are thinned",
			samples: []Sample{s("1", 1), s("2", 1), s("3", 1), s("4", 1), s("5", 1), s("6", 1), s("7", 1)},
			wantX:   []string{"1", "4", "7"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := Trend(tt.samples, frame, 4, 3)
			if len(l.Points) != len(tt.samples) {
				t.Fatalf("%d points for %d samples", len(l.Points), len(tt.samples))
			}
			var segs []string
			for _, seg := range l.Segments {
				segs = append(segs, seg.Polyline())
				for _, p := range seg {
					if p.Missing {
						t.Errorf("segment %q holds a missing point", seg.Polyline())
					}
				}
			}
			if tt.wantSegments != nil && !slices.Equal(segs, tt.wantSegments) {
				t.Errorf("segments %q, want %q", segs, tt.wantSegments)
			}
			for i, p := range l.Points {
				if p.Missing != tt.samples[i].Missing {
					t.Errorf("point %d missing=%v", i, p.Missing)
				}
			}
			if tt.wantY != nil {
				var ys []string
				for _, tk := range l.YTicks {
					ys = append(ys, tk.Label)
				}
				if !slices.Equal(ys, tt.wantY) {
					t.Errorf("y ticks %q, want %q", ys, tt.wantY)
				}
				if l.YTicks[0].At != frame.PlotBottom() || l.YTicks[len(l.YTicks)-1].At != frame.PlotTop() {
					t.Errorf("y ticks span %v..%v, want the plot's bottom to top", l.YTicks[0].At, l.YTicks[len(l.YTicks)-1].At)
				}
			}
			if tt.wantX != nil {
				var xs []string
				for _, tk := range l.XTicks {
					xs = append(xs, tk.Label)
				}
				if !slices.Equal(xs, tt.wantX) {
					t.Errorf("x ticks %q, want %q", xs, tt.wantX)
				}
			}
		})
	}
}

func TestTimeTicks(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 0, 0, 0, 0, berlin) }
	for _, tt := range []struct {
		name     string
		from, to time.Time
		limit    int
		want     []string
	}{
		{"days", day(9, 1), day(9, 4), 7, []string{"1 Sep", "2 Sep", "3 Sep", "4 Sep"}},
		{"from mid-day starts at the next midnight", day(9, 1).Add(9 * time.Hour), day(9, 3), 7, []string{"2 Sep", "3 Sep"}},
		{"every other day", day(9, 1), day(9, 10), 5, []string{"1 Sep", "3 Sep", "5 Sep", "7 Sep", "9 Sep"}},
		// 1 Sep 2026 is a Tuesday.
		{"Mondays", day(9, 1), day(10, 1), 6, []string{"7 Sep", "14 Sep", "21 Sep", "28 Sep"}},
		{"months", day(9, 1), day(11, 30), 7, []string{"7 Sep", "21 Sep", "5 Oct", "19 Oct", "2 Nov", "16 Nov", "30 Nov"}},
		{"months across a year", day(9, 15), day(9, 15).AddDate(1, 0, 0), 6, []string{"Oct 2026", "Dec", "Feb 2027", "Apr", "Jun", "Aug"}},
		{"empty range", day(9, 1), day(9, 1), 6, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ticks := TimeTicks(tt.from, tt.to, tt.limit)
			var got []string
			for _, tk := range ticks {
				got = append(got, tk.Label)
				if h, m, _ := tk.At.Clock(); h != 0 || m != 0 {
					t.Errorf("tick %s is not at midnight", tk.At)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ticks %q, want %q", got, tt.want)
			}
		})
	}
	// Daylight saving ends on 25 Oct 2026 in Berlin; midnights stay midnights.
	for _, tk := range TimeTicks(day(10, 24), day(10, 27), 7) {
		if tk.At.Hour() != 0 {
			t.Errorf("tick across the DST change at %s", tk.At)
		}
	}
}

func TestLayOutTimeline(t *testing.T) {
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 10)
	f := Frame{Width: 600, Top: 4, Right: 20, Bottom: 24, Left: 100}
	tl := LayOutTimeline(from, to, [][]time.Time{
		{from, from.AddDate(0, 0, 5)},
		{to, from.Add(-time.Hour), to.Add(time.Hour)},
		nil,
	}, f, 20, 6)
	if tl.Frame.Height != 4+3*20+24 {
		t.Errorf("height %v, want lanes plus margins", tl.Frame.Height)
	}
	if len(tl.Lanes) != 3 || tl.Lanes[0].Y != 14 || tl.Lanes[1].Y != 34 || tl.Lanes[2].Y != 54 {
		t.Errorf("lanes %+v", tl.Lanes)
	}
	if want := []float64{100, 340}; !slices.Equal(tl.Lanes[0].Xs, want) {
		t.Errorf("first lane xs %v, want %v", tl.Lanes[0].Xs, want)
	}
	// Events outside the range are pinned to its edges.
	if want := []float64{580, 100, 580}; !slices.Equal(tl.Lanes[1].Xs, want) {
		t.Errorf("second lane xs %v, want %v", tl.Lanes[1].Xs, want)
	}
	if len(tl.Ticks) == 0 || tl.Ticks[0].At != 100 || tl.Ticks[0].Label != "1 Sep" {
		t.Errorf("ticks %+v", tl.Ticks)
	}
	// A range of no length puts everything at the start rather than dividing by zero.
	if xs := LayOutTimeline(from, from, [][]time.Time{{from}}, f, 20, 6).Lanes[0].Xs; xs[0] != 100 {
		t.Errorf("empty range x %v", xs)
	}
}

func TestDiamond(t *testing.T) {
	if got := Diamond(10, 20, 5); got != "M10,15L15,20L10,25L5,20Z" || !strings.HasSuffix(got, "Z") {
		t.Errorf("Diamond = %q", got)
	}
}
