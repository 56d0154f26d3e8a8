package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSecondOfWork is what the agent does each second in the footprint scenario
// (BenchmarkFootprint in cmd/faultline-agent): one batch of 50 breaker reports through
// the ingest handler, one sample with its metrics event, fanned out to one subscriber.
func BenchmarkSecondOfWork(b *testing.B) {
	a := newAgent(testConfig(), nullLogger(), func(k string) string { return testEnv[k] })
	h := a.ingestHandler()
	sub := a.hub.Subscribe("", nil)
	defer a.hub.Unsubscribe(sub)
	go func() {
		for range sub.C {
		}
	}()
	ctx := context.Background()
	tick := 0
	batch := func() string {
		var body strings.Builder
		body.WriteString("[")
		for i := range 50 {
			if i > 0 {
				body.WriteString(",")
			}
			fmt.Fprintf(&body, `{"name":"breaker-%02d","state":"closed","failure_rate":%d,"calls":{"succeeded":%d,"failed":%d}}`, i, i%10, tick*20+i, tick)
		}
		body.WriteString("]")
		return body.String()
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		tick++
		r := httptest.NewRequest(http.MethodPost, "/v1/breakers", strings.NewReader(batch()))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("POST: %d %s", w.Code, w.Body)
		}
		a.tick(ctx)
	}
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is this process's CPU time (user + system), garbage collection included.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
