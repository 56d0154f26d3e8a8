package breaker

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/internal/wire"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestTransitions(t *testing.T) {
	var got []string
	r := New("a1", func(tr wire.Transition) { got = append(got, string(tr.From)+">"+string(tr.To)) })
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r.now = c.now
	for _, s := range []wire.BreakerState{"closed", "closed", "open", "open", "half_open", "closed"} {
		c.t = c.t.Add(time.Second)
		if _, err := r.Upsert(wire.Breaker{Name: "db", State: s, Source: "push"}); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{">closed", "closed>open", "open>half_open", "half_open>closed"}, got); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
	b, _ := r.Get("db")
	if want := time.Date(2026, 1, 1, 0, 0, 6, 0, time.UTC); !b.Since.Equal(want) {
		t.Errorf("since = %v, want the time of the last transition %v", b.Since, want)
	}
}

func TestSinceKeptWhileStateHolds(t *testing.T) {
	r := New("a1", nil)
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r.now = c.now
	r.Upsert(wire.Breaker{Name: "db", State: "open", Source: "push"})
	c.t = c.t.Add(time.Minute)
	r.Upsert(wire.Breaker{Name: "db", State: "open", Source: "push"})
	b, _ := r.Get("db")
	if !b.Since.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || !b.LastSeen.Equal(c.t) {
		t.Errorf("since = %v, last seen = %v", b.Since, b.LastSeen)
	}
}

func TestRateFromCounters(t *testing.T) {
	r := New("a1", nil)
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r.now = c.now
	r.Upsert(wire.Breaker{Name: "db", State: "closed", Calls: wire.Calls{Succeeded: 10}})
	c.t = c.t.Add(2 * time.Second)
	r.Upsert(wire.Breaker{Name: "db", State: "closed", Calls: wire.Calls{Succeeded: 20, Failed: 6}})
	b, _ := r.Get("db")
	if b.RatePerSec == nil || *b.RatePerSec != 8 {
		t.Errorf("rate = %v, want 8/s", b.RatePerSec)
	}
}

func TestStale(t *testing.T) {
	r := New("a1", nil)
	r.Upsert(wire.Breaker{Name: "a", State: "closed", Source: "prometheus"})
	r.Upsert(wire.Breaker{Name: "b", State: "closed", Source: "push"})
	if n := r.MarkStale("prometheus"); n != 1 {
		t.Fatalf("marked %d, want 1", n)
	}
	a, _ := r.Get("a")
	b, _ := r.Get("b")
	if !a.Stale || b.Stale {
		t.Errorf("stale: a=%v b=%v; want true false", a.Stale, b.Stale)
	}
	r.Upsert(wire.Breaker{Name: "a", State: "closed", Source: "prometheus"})
	if a, _ := r.Get("a"); a.Stale {
		t.Error("a fresh report did not clear stale")
	}
}

func TestCheck(t *testing.T) {
	nan := 0.0
	nan = nan / nan
	tests := []struct {
		b    wire.Breaker
		want string
	}{
		{wire.Breaker{Name: "", State: "open"}, "name:"},
		{wire.Breaker{Name: "..", State: "open"}, "name:"},
		{wire.Breaker{Name: "db", State: "open", RatePerSec: wire.Ptr(1.7e308)}, "rate_per_sec:"},
		{wire.Breaker{Name: strings.Repeat("x", 201), State: "open"}, "name:"},
		{wire.Breaker{Name: "db", State: "sideways"}, "state:"},
		{wire.Breaker{Name: "db", State: "open", FailureRate: wire.Ptr(-1.0)}, "failure_rate:"},
		{wire.Breaker{Name: "db", State: "open", SlowCallRate: &nan}, "slow_call_rate:"},
		{wire.Breaker{Name: "db", State: "open", RatePerSec: wire.Ptr(-2.0)}, "rate_per_sec:"},
	}
	r := New("a1", nil)
	for _, tt := range tests {
		if _, err := r.Upsert(tt.b); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Upsert(%+v) = %v, want an error about %s", tt.b, err, tt.want)
		}
	}
	if r.Len() != 0 {
		t.Errorf("bad reports were stored: %d breakers", r.Len())
	}
}

func TestStaleExcept(t *testing.T) {
	r := New("a1", nil)
	for _, name := range []string{"a", "b"} {
		r.Upsert(wire.Breaker{Name: name, State: "closed", Source: "prometheus"})
	}
	r.Upsert(wire.Breaker{Name: "c", State: "closed", Source: "push"})
	if n := r.MarkStaleExcept("prometheus", map[string]bool{"a": true}); n != 1 {
		t.Fatalf("marked %d, want 1 (b)", n)
	}
	got := map[string]bool{}
	for _, b := range r.List() {
		got[b.Name] = b.Stale
	}
	if diff := cmp.Diff(map[string]bool{"a": false, "b": true, "c": false}, got); diff != "" {
		t.Errorf("stale by name (-want +got):\n%s", diff)
	}
}
