package wiretest

import (
	"testing"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Filled messages have no zero field and pass the wire's checks, so that tests can send
// them through every hop.
func TestFilledIsCompleteAndValid(t *testing.T) {
	snap := Filled[wire.Snapshot](1)
	if z := Zero(snap); len(z) != 0 {
		t.Errorf("zero fields in a filled snapshot: %v", z)
	}
	if err := wire.CheckSnapshot(&snap); err != nil {
		t.Errorf("a filled snapshot fails the wire's checks: %v", err)
	}
	tr := Filled[wire.Transition](2)
	tr.To = tr.Breaker.State
	if err := wire.CheckTransition(&tr); err != nil {
		t.Errorf("a filled transition fails the wire's checks: %v", err)
	}
	if a, b := Filled[wire.Breaker](1), Filled[wire.Breaker](2); a.Name == b.Name || *a.RatePerSec == *b.RatePerSec {
		t.Error("two seeds give the same values")
	}
	if z := Zero(wire.Breaker{Name: "x"}); len(z) < 5 {
		t.Errorf("Zero found only %v in a mostly empty breaker", z)
	}
}
