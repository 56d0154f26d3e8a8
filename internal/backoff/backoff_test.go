package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{Base: 250 * time.Millisecond, Max: 30 * time.Second}
	for n := 0; n < 40; n++ {
		d := p.Delay(n)
		hi := min(250*time.Millisecond<<min(n, 20), 30*time.Second)
		if d < hi/2 || d > hi {
			t.Errorf("Delay(%d) = %v, want within [%v, %v]", n, d, hi/2, hi)
		}
	}
}

// Delays drawn for the same attempt differ: clients that failed together spread out.
func TestDelayJitters(t *testing.T) {
	p := Policy{Base: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[p.Delay(3)] = true
	}
	if len(seen) < 2 {
		t.Errorf("20 delays of attempt 3 are all %v", seen)
	}
}
