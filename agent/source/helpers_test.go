package source

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/agent/breaker"
	"github.com/faultline-dev/faultline/internal/wire"
)

// recorder is a registry whose transitions are kept as "name:from>to".
type recorder struct {
	*breaker.Registry
	mu  sync.Mutex
	log []string
}

func newRecorder() *recorder {
	r := &recorder{}
	r.Registry = breaker.New("test-agent", func(tr wire.Transition) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.log = append(r.log, fmt.Sprintf("%s:%s>%s", tr.Breaker.Name, tr.From, tr.To))
	})
	return r
}

func (r *recorder) transitions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

// states lists "name=state" (with " stale" when stale) for every breaker.
func (r *recorder) states() []string {
	var out []string
	for _, b := range r.List() {
		s := b.Name + "=" + string(b.State)
		if b.Stale {
			s += " stale"
		}
		out = append(out, s)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// r4jExposition writes a Micrometer-style exposition with one breaker per entry of
// states (name -> resilience4j state label).
func r4jExposition(states map[string]string) string {
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# HELP resilience4j_circuitbreaker_state The states of the circuit breaker\n# TYPE resilience4j_circuitbreaker_state gauge\n")
	for _, n := range names {
		for _, s := range []string{"closed", "disabled", "forced_open", "half_open", "metrics_only", "open"} {
			v := 0
			if s == states[n] {
				v = 1
			}
			fmt.Fprintf(&b, "resilience4j_circuitbreaker_state{name=%q,state=%q,} %d.0\n", n, s, v)
		}
	}
	b.WriteString("# HELP resilience4j_circuitbreaker_failure_rate The failure rate of the circuit breaker\n# TYPE resilience4j_circuitbreaker_failure_rate gauge\n")
	for _, n := range names {
		fmt.Fprintf(&b, "resilience4j_circuitbreaker_failure_rate{name=%q,} -1.0\n", n)
	}
	b.WriteString("# HELP resilience4j_circuitbreaker_calls_seconds Total number of successful calls\n# TYPE resilience4j_circuitbreaker_calls_seconds summary\n")
	for _, n := range names {
		for _, k := range []string{"successful", "failed", "ignored"} {
			fmt.Fprintf(&b, "resilience4j_circuitbreaker_calls_seconds_count{kind=%q,name=%q,} 10.0\n", k, n)
			fmt.Fprintf(&b, "resilience4j_circuitbreaker_calls_seconds_sum{kind=%q,name=%q,} 0.25\n", k, n)
		}
	}
	b.WriteString("# HELP resilience4j_circuitbreaker_not_permitted_calls_total Total number of not permitted calls\n# TYPE resilience4j_circuitbreaker_not_permitted_calls_total counter\n")
	for _, n := range names {
		fmt.Fprintf(&b, "resilience4j_circuitbreaker_not_permitted_calls_total{kind=\"not_permitted\",name=%q,} 0.0\n", n)
	}
	return b.String()
}

func writeFile(name, text string) error { return os.WriteFile(name, []byte(text), 0o600) }
