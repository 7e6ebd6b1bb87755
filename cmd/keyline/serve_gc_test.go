package main

import (
	"runtime/debug"
	"testing"
)

func TestSetGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	for _, tt := range []struct {
		name string
		env  map[string]string
		want int
	}{
		{"GOGC unset: Keyline's default", map[string]string{"KEYLINE_ADDR": ":8080"}, defaultGCPercent},
		{"GOGC set: the runtime's reading of it stands", map[string]string{"GOGC": "100"}, 100},
		{"GOGC set empty: still the operator's", map[string]string{"GOGC": ""}, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(100) // what the runtime made of GOGC at start
			setGCPercent(tt.env)
			if got := debug.SetGCPercent(100); got != tt.want {
				t.Errorf("GC percent %d, want %d", got, tt.want)
			}
		})
	}
}
