package history

import (
	"math"
	"testing"
	"time"
)

func TestAtReadsThePointInForce(t *testing.T) {
	s := New(Options{Retention: time.Hour})
	obj := "shop/cart-1"
	// One point a second for 40 minutes, but none from 30:10 to 30:14.
	for i := 0; i < 40*60; i++ {
		if i >= 30*60+10 && i < 30*60+15 {
			continue
		}
		s.Record(t0.Add(time.Duration(i)*time.Second), []Sample{{"pod:" + obj + ":cpu_cores", float64(i%60) / 100}})
	}
	now := t0.Add(40 * time.Minute)
	metrics := []string{"cpu_cores", "memory_bytes"}
	f := s.At(ScopePod, obj, metrics, t0.Add(30*time.Minute+12*time.Second+500*time.Millisecond), now, 8*time.Second)
	if f.Values[0] != 0.09 || !math.IsNaN(f.Values[1]) || !f.Time.Equal(t0.Add(30*time.Minute+9*time.Second)) || f.Resolution != time.Second {
		t.Errorf("in a gap: %+v, want the point of 30:09 (0.09), no memory, one-second resolution", f)
	}
	if f := s.At(ScopePod, obj, metrics, t0.Add(30*time.Minute+12*time.Second), now, time.Second); !math.IsNaN(f.Values[0]) || !f.Time.IsZero() {
		t.Errorf("a gap longer than maxGap: %+v, want no value", f)
	}
	f = s.At(ScopePod, obj, metrics, t0.Add(10*time.Minute+30*time.Second), now, time.Second)
	if f.Resolution != time.Minute || !f.Time.Equal(t0.Add(10*time.Minute)) || math.Abs(f.Values[0]-0.295) > 0.001 {
		t.Errorf("older than 15 minutes: %+v, want the mean of minute 10 (0.295)", f)
	}
	if f := s.At(ScopePod, "shop/none", metrics, now, now, time.Second); !math.IsNaN(f.Values[0]) {
		t.Errorf("unknown object: %+v", f)
	}
}
