package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/faultline-dev/faultline/internal/httpx"
)

// mainHandler serves the read API, the stream, metrics, probes and memory cleanup.
func (a *agent) mainHandler() http.Handler {
	return a.metrics.instrument("main", a.guard.Handler("main", a.mainRoutes()))
}

func (a *agent) mainRoutes() *httpx.Mux {
	mux := httpx.NewMux()
	mux.Get("/v1/snapshot", a.getSnapshot)
	mux.Get("/v1/stream", a.getStream)
	mux.Get("/metrics", a.getMetrics)
	mux.Get("/healthz", a.health.Handler(nil))
	mux.Get("/readyz", a.getReady)
	mux.Mutate(a.guard, "/v1/cleanup-memory", map[string]http.HandlerFunc{http.MethodPost: a.cleanupMemory})
	return mux
}

func (a *agent) getSnapshot(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, a.snapshot())
}

// getStream is GET /v1/stream: a snapshot (or what was missed since Last-Event-ID),
// then metrics every tick and circuit-breaker events as transitions are recorded.
func (a *agent) getStream(w http.ResponseWriter, r *http.Request) {
	a.hub.Serve(w, r, nil, func() ([]byte, error) { return json.Marshal(a.snapshot()) })
}

// getReady is ready once the first sample has been taken.
func (a *agent) getReady(w http.ResponseWriter, r *http.Request) {
	if a.latestSample() == nil {
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready: no sample taken yet"})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// memoryFigures is the agent's memory before or after a cleanup.
type memoryFigures struct {
	// HeapBytes is heap memory held from the operating system (in use or free but not
	// yet returned).
	HeapBytes uint64 `json:"heap_bytes"`
	// HeapInUseBytes is heap memory in use by objects, live or not yet collected.
	HeapInUseBytes uint64 `json:"heap_in_use_bytes"`
	// RSSBytes is the resident set size; absent when it cannot be read.
	RSSBytes *uint64 `json:"rss_bytes,omitempty"`
}

type cleanupResult struct {
	Before     memoryFigures `json:"before"`
	After      memoryFigures `json:"after"`
	FreedBytes int64         `json:"freed_bytes"` // heap_bytes before less after
	DurationMs float64       `json:"duration_ms"`
}

// cleanupMemory is POST /v1/cleanup-memory: a forced garbage collection that returns as
// much memory as possible to the operating system.
func (a *agent) cleanupMemory(w http.ResponseWriter, r *http.Request) {
	if err := httpx.ObjectOrEmpty(httpx.Body(r)); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	start := time.Now()
	before := a.memory(r.Context())
	debug.FreeOSMemory()
	after := a.memory(r.Context())
	res := cleanupResult{Before: before, After: after, FreedBytes: int64(before.HeapBytes) - int64(after.HeapBytes),
		DurationMs: float64(time.Since(start).Microseconds()) / 1000}
	a.log.Info("memory cleanup", "freed_bytes", res.FreedBytes, "remote", r.RemoteAddr)
	httpx.WriteJSON(w, http.StatusOK, res)
}

func (a *agent) memory(ctx context.Context) memoryFigures {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f := memoryFigures{HeapBytes: ms.HeapSys - ms.HeapReleased, HeapInUseBytes: ms.HeapInuse}
	if m, err := (&process.Process{Pid: int32(os.Getpid())}).MemoryInfoWithContext(ctx); err == nil {
		f.RSSBytes = &m.RSS
	}
	return f
}
