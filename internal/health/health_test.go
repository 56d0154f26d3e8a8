package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestStuckAndRecovered(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New(func() time.Time { return now })
	sampler := m.Beat("sampler", "sample", 3*time.Second)
	loop := m.Beat("event loop 1", "turn", time.Second)
	waiting := ""
	m.Add(func(time.Time) string { return waiting })
	get := func() (int, map[string]any) {
		w := httptest.NewRecorder()
		m.Handler(map[string]string{"version": "v1"}).ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		return w.Code, body
	}
	if code, body := get(); code != 200 || body["version"] != "v1" {
		t.Errorf("fresh: %d %v", code, body)
	}
	now = now.Add(2 * time.Second)
	loop.Tick()
	if code, _ := get(); code != 200 {
		t.Errorf("within every allowance: %d", code)
	}
	now = now.Add(1500 * time.Millisecond)
	waiting = "store: reports wait unapplied for 12s"
	code, body := get()
	want := []any{"event loop 1: no turn for 1.5s (expected within 1s)", "sampler: no sample for 3.5s (expected within 3s)", "store: reports wait unapplied for 12s"}
	if diff := cmp.Diff(want, body["stuck"]); code != http.StatusServiceUnavailable || diff != "" {
		t.Errorf("stuck: %d (-want +got):\n%s", code, diff)
	}
	sampler.Tick()
	loop.Stop()
	waiting = ""
	if code, body := get(); code != 200 {
		t.Errorf("after the sampler went round again and the loop ended: %d %v", code, body)
	}
	sampler.Within(time.Millisecond)
	now = now.Add(time.Second)
	if got := m.Stuck(); len(got) != 1 {
		t.Errorf("a narrowed allowance: %v", got)
	}
}
