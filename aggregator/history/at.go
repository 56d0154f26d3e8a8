package history

import (
	"math"
	"time"
)

// Figures are an object's values at one instant, as At reads them.
type Figures struct {
	// Values holds one value per metric asked for; NaN where the metric has no point.
	Values []float64
	// Time is the point the values come from: the second of a one-second point, or the
	// start of the minute whose mean they are. Zero when no metric had a point.
	Time time.Time
	// Resolution is one second, or one minute for instants older than Fine (the values
	// are then the minute's means).
	Resolution time.Duration
}

// At reads the values of an object's metrics as they were at t: within Fine of now, the
// newest one-second point at or before t and at most maxGap older (a point is recorded
// at each broadcast, so the gap is the broadcast interval); before that, the mean of the
// minute holding t. It never interpolates.
func (s *Store) At(scope, obj string, metrics []string, t, now time.Time, maxGap time.Duration) Figures {
	f := Figures{Values: make([]float64, len(metrics)), Resolution: time.Second}
	for i := range f.Values {
		f.Values[i] = math.NaN()
	}
	coarse := t.Before(now.Add(-Fine))
	if coarse {
		f.Resolution = time.Minute
	}
	sec := t.Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[objectKey(scope, obj)]
	if o == nil {
		return f
	}
	var newest int64 = math.MinInt64
	for i, name := range metrics {
		m := o.metric(name)
		if m < 0 || o.metrics[m].lastSec == math.MinInt64 {
			continue
		}
		found, at := false, int64(0)
		if coarse {
			minute := sec / 60
			o.metrics[m].coarseFrom(minute*60-1, func(ms int64, v float64, _ *float64) {
				if ms/60000 == minute {
					f.Values[i], found, at = v, true, minute*60
				}
			})
		} else {
			from := sec - int64(maxGap/time.Second) - 1
			o.fine(m, from, func(ms int64, v float64, _ *float64) {
				if ms/1000 <= sec {
					f.Values[i], found, at = v, true, ms/1000
				}
			})
		}
		if found && at > newest {
			newest = at
		}
	}
	if newest != math.MinInt64 {
		f.Time = time.Unix(newest, 0).UTC()
	}
	return f
}
