package main

import (
	"testing"
	"time"
)

// TestHeldAge: the age of the view a consumer holds grows between two answers, so a
// view received fresh but rarely is older, over time, than one received often.
func TestHeldAge(t *testing.T) {
	t0 := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	s := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	for _, tc := range []struct {
		name  string
		every time.Duration // between answers, from t0 until t0+8s
		age   time.Duration // of each answer when received
		want  time.Duration
	}{
		{"every second, half a second old", s(1), s(0.5), s(1)},
		{"every 8 s, fresh", s(8), 0, s(4)},
		{"four times a second, a second old", s(0.25), s(1), s(1.125)},
	} {
		var r ageRecorder
		r.start()
		for at := t0; at.Before(t0.Add(s(8))); at = at.Add(tc.every) {
			r.add(reading{at: at, age: tc.age})
		}
		got, held := r.stop(t0.Add(s(8)))
		if d := held - tc.want; d < -time.Millisecond || d > time.Millisecond || len(got) != int(s(8)/tc.every) {
			t.Errorf("%s: held %v from %d answers, want %v", tc.name, held, len(got), tc.want)
		}
	}
}
