package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// An Alertmanager that fails its first two posts: delivery retries with backoff, the
// failures are visible in the status, and the alert arrives.
func TestNotifierRetriesAndReportsFailures(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var got []postable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/alerts" || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if calls.Add(1) <= 2 {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("alertmanager got bad JSON: %v", err)
		}
	}))
	defer srv.Close()
	n := NewNotifier(srv.URL, nil, hclog.NewNullLogger())
	n.BackoffBase, n.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx, func() []wire.Alert { return nil })
	n.Enqueue(wire.Alert{ID: "breaker-open/shop/cart/db", Rule: "breaker-open", State: wire.AlertFiring, Summary: "db open",
		Labels: map[string]string{"alertname": "breaker-open", "namespace": "shop"}, Started: wire.NewTime(time.Now())})
	testbin.Eventually(t, 5*time.Second, func() error {
		if st := n.Status(); st.Sent != 1 || st.Pending != 0 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	st := n.Status()
	if st.Failures != 2 || st.LastError != "" || st.LastSuccess.IsZero() || !st.Leader {
		t.Errorf("status = %+v; want 2 failures, cleared error, a success, leader", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Labels["alertname"] != "breaker-open" || got[0].Annotations["summary"] != "db open" || got[0].EndsAt != "" {
		t.Errorf("alertmanager received %+v", got)
	}
}

func TestNotifierDeliversOnlyAsLeader(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	var leader atomic.Bool
	n := NewNotifier(srv.URL, leader.Load, hclog.NewNullLogger())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx, func() []wire.Alert { return nil })
	n.Enqueue(wire.Alert{ID: "x", State: wire.AlertFiring})
	testbin.Eventually(t, 2*time.Second, func() error {
		if n.Status().Pending != 0 {
			return fmt.Errorf("pending not dropped")
		}
		return nil
	})
	leader.Store(true)
	n.Enqueue(wire.Alert{ID: "y", State: wire.AlertResolved, Resolved: wire.Ptr(wire.Now())})
	testbin.Eventually(t, 2*time.Second, func() error {
		if calls.Load() != 1 {
			return fmt.Errorf("alertmanager called %d times, want 1 (only once leader)", calls.Load())
		}
		return nil
	})
}
