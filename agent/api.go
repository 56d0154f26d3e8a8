package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// mainHandler serves the read API, the stream, metrics, probes and memory cleanup.
func (a *agent) mainHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/snapshot", methods{http.MethodGet: a.getSnapshot})
	mux.Handle("/v1/stream", methods{http.MethodGet: a.getStream})
	mux.Handle("/metrics", methods{http.MethodGet: a.getMetrics})
	mux.Handle("/healthz", methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}})
	mux.Handle("/readyz", methods{http.MethodGet: a.getReady})
	mux.Handle("/v1/cleanup-memory", methods{http.MethodPost: a.cleanupMemory})
	mux.HandleFunc("/", notFound)
	return a.metrics.instrument("main", mux)
}

func (a *agent) getSnapshot(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.snapshot())
}

// getStream is GET /v1/stream: a snapshot (or what was missed since Last-Event-ID),
// then metrics every tick and circuit-breaker events as transitions are recorded.
func (a *agent) getStream(w http.ResponseWriter, r *http.Request) {
	a.hub.Serve(w, r, nil, func() ([]byte, error) { return json.Marshal(a.snapshot()) })
}

// getReady is ready once the first sample has been taken.
func (a *agent) getReady(w http.ResponseWriter, r *http.Request) {
	if a.latestSample() == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready: no sample taken yet"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
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
	if !a.authorize(w, r) {
		return
	}
	if _, ok := readJSONBody(w, r, 4<<10); !ok {
		return
	}
	start := time.Now()
	before := a.memory(r.Context())
	debug.FreeOSMemory()
	after := a.memory(r.Context())
	res := cleanupResult{Before: before, After: after, FreedBytes: int64(before.HeapBytes) - int64(after.HeapBytes),
		DurationMs: float64(time.Since(start).Microseconds()) / 1000}
	a.log.Info("memory cleanup", "freed_bytes", res.FreedBytes, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, res)
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

// authorize admits a mutating request from loopback (which includes kubectl
// port-forward) or with the configured bearer token, and never a cross-origin one from
// a browser. It answers the client itself when it refuses.
func (a *agent) authorize(w http.ResponseWriter, r *http.Request) bool {
	if origin := r.Header.Get("Origin"); origin != "" {
		if u, err := url.Parse(origin); err != nil || u.Host != r.Host {
			writeError(w, http.StatusForbidden, "cross-origin request from %q refused", origin)
			return false
		}
	}
	if auth := r.Header.Get("Authorization"); auth != "" && a.cfg.Token != "" {
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(token), []byte(a.cfg.Token)) == 1 {
			return true
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="faultline-agent"`)
		writeError(w, http.StatusUnauthorized, "Authorization: the bearer token is not the agent's token")
		return false
	}
	if isLoopback(r.RemoteAddr) {
		return true
	}
	if a.cfg.Token != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="faultline-agent"`)
		writeError(w, http.StatusUnauthorized, "Authorization: a bearer token is required from outside the pod")
		return false
	}
	writeError(w, http.StatusForbidden, "allowed only from loopback: no token is configured (--token)")
	return false
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
