package breaker

import (
	"sync"
	"testing"

	"github.com/faultline-dev/faultline/internal/wire"
)

// TestTransitionsReachTheListenerInOrder: with many writers racing on one breaker, the
// listener sees a chain in which every transition starts where the previous one ended,
// so a stream built from it never shows a breaker in a state it has left.
func TestTransitionsReachTheListenerInOrder(t *testing.T) {
	var mu sync.Mutex
	var got []wire.Transition
	r := New("a1", func(tr wire.Transition) {
		mu.Lock()
		got = append(got, tr)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				state := wire.StateClosed
				if (i+w)%2 == 0 {
					state = wire.StateOpen
				}
				r.Upsert(wire.Breaker{Name: "db", State: state, Source: "push"})
			}
		}()
	}
	wg.Wait()
	for i := 1; i < len(got); i++ {
		if got[i].From != got[i-1].To {
			t.Fatalf("transition %d goes %s>%s after one that ended in %s", i, got[i].From, got[i].To, got[i-1].To)
		}
	}
	if b, _ := r.Get("db"); len(got) == 0 || got[len(got)-1].To != b.State {
		t.Fatalf("last transition does not end in the recorded state %s", b.State)
	}
}
