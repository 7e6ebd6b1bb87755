package loadtest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	ten := hundred[:10] // 1..10ms
	for _, c := range []struct {
		set  []time.Duration
		p    float64
		want time.Duration
	}{
		{hundred, 50, 50 * time.Millisecond},
		{hundred, 90, 90 * time.Millisecond},
		{hundred, 99, 99 * time.Millisecond},
		{hundred, 100, 100 * time.Millisecond},
		{hundred, 0.5, 1 * time.Millisecond},
		{ten, 50, 5 * time.Millisecond},
		{ten, 90, 9 * time.Millisecond},
		{ten, 99, 10 * time.Millisecond},
		{ten[:1], 99, 1 * time.Millisecond},
		{nil, 50, 0},
	} {
		if got := Percentile(c.set, c.p); got != c.want {
			t.Errorf("p%v of %d values = %v, want %v", c.p, len(c.set), got, c.want)
		}
	}
}

func TestReportFromSamples(t *testing.T) {
	from := time.Now()
	ms := time.Millisecond
	logs := []workerLog{
		{warmup: 3, lastDone: from.Add(1500 * ms), samples: []sample{
			{latency: 4 * ms, status: 200, label: "accepted"},
			{latency: 1 * ms, status: 200, label: "accepted"},
			{latency: 10 * ms, status: 503, label: "status 503", err: errors.New("status 503: retry later")},
		}},
		{warmup: 2, lastDone: from.Add(2 * time.Second), samples: []sample{
			{latency: 2 * ms, status: 200, label: "accepted"},
			{latency: 3 * ms, status: 200, label: "accepted"},
			{err: errors.New("connection reset")},
		}},
	}
	r := newReport(Config{Concurrency: 2, Duration: time.Second, Warmup: time.Second}, logs, from)
	if r.Sent != 6 || r.OK != 4 || r.Failed != 1 || r.TransportErrors != 1 || r.WarmupRequests != 5 {
		t.Errorf("sent %d ok %d failed %d transport %d warm-up %d", r.Sent, r.OK, r.Failed, r.TransportErrors, r.WarmupRequests)
	}
	// The window stretches to the last answer, 2s after the warm-up.
	if r.Window != 2*time.Second || r.Throughput != 2 {
		t.Errorf("window %v throughput %v, want 2s and 2/s", r.Window, r.Throughput)
	}
	want := Latency{P50: 3 * ms, P90: 10 * ms, P99: 10 * ms, Max: 10 * ms, Mean: 4 * ms}
	if r.Latency != want {
		t.Errorf("latency %+v, want %+v", r.Latency, want)
	}
	if r.Status[200] != 4 || r.Status[503] != 1 || r.Labels["accepted"] != 4 || r.Labels["status 503"] != 1 {
		t.Errorf("status %v labels %v", r.Status, r.Labels)
	}
	err := r.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"1 of 6 responses failed", "200: 4, 503: 1", "1 requests got no response"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}

	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"throughput   2.0/s", "p50 3.00ms", "p99 10.00ms", "200: 4, 503: 1", "accepted: 4", "transport errors 1", "transport: connection reset"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, text.String())
		}
	}

	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Sent       int                `json:"sent"`
		Throughput float64            `json:"throughput_per_second"`
		Latency    map[string]float64 `json:"latency_ms"`
		Status     map[string]int     `json:"status"`
		Errors     []ErrorCount       `json:"errors"`
	}
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	if got.Sent != 6 || got.Throughput != 2 || got.Latency["p99"] != 10 || got.Status["503"] != 1 || len(got.Errors) != 2 {
		t.Errorf("JSON: %s", js)
	}
}

func TestReportWithNothingMeasuredFails(t *testing.T) {
	r := newReport(Config{Concurrency: 1, Duration: time.Second}, []workerLog{{}}, time.Now())
	if r.Err() == nil {
		t.Error("an empty run passed")
	}
}

func TestCheckIngest(t *testing.T) {
	for _, c := range []struct {
		status  int
		body    string
		label   string
		wantErr string
	}{
		{200, `{"outcome":"accepted","event":"push"}`, "accepted", ""},
		{200, `{"outcome":"duplicate"}`, "duplicate", `outcome "duplicate"`},
		{401, `{"error":"the signature does not match this source's secret"}`, "status 401", "status 401: the signature does not match"},
		{502, `<html>bad gateway</html>`, "status 502", "status 502: Bad Gateway"},
	} {
		label, err := CheckIngest(c.status, []byte(c.body))
		if label != c.label {
			t.Errorf("%d %s: label %q, want %q", c.status, c.body, label, c.label)
		}
		if (err == nil) != (c.wantErr == "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%d %s: err %v, want %q", c.status, c.body, err, c.wantErr)
		}
	}
}
