package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Cleanup scopes.
const (
	ScopeAggregator = "aggregator"
	ScopeCluster    = "cluster"
)

// Cleanup frees the aggregator's memory and, for the cluster scope, asks every connected
// agent to free its own (POST /v1/cleanup-memory), reporting each agent's answer.
type Cleanup struct {
	// Agents returns the connected agents' base URLs by key.
	Agents func() map[string]string
	// Token is sent to agents as a bearer token; agents accept mutating calls from
	// outside their pod only with it.
	Token  string
	Client *http.Client
	// Parallel bounds the agents asked at once (default 32).
	Parallel int
}

// MemoryResult is one process's cleanup.
type MemoryResult struct {
	HeapBefore uint64  `json:"heap_in_use_before_bytes"`
	HeapAfter  uint64  `json:"heap_in_use_after_bytes"`
	Released   uint64  `json:"released_to_os_bytes"`
	DurationMs float64 `json:"duration_ms"`
}

// AgentCleanup is one agent's answer.
type AgentCleanup struct {
	Agent  string          `json:"agent"`
	URL    string          `json:"url"`
	OK     bool            `json:"ok"`
	Status int             `json:"status,omitempty"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// CleanupResult is the answer to POST /api/v1/performance/cleanup-memory.
type CleanupResult struct {
	V          int            `json:"v"`
	Time       wire.Time      `json:"time"`
	Scope      string         `json:"scope"`
	Aggregator MemoryResult   `json:"aggregator"`
	Agents     []AgentCleanup `json:"agents,omitempty"`
	AgentsOK   int            `json:"agents_ok"`
	AgentsFail int            `json:"agents_failed"`
}

// FreeMemory runs a garbage collection and returns freed memory to the OS.
func FreeMemory() MemoryResult {
	start := time.Now()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	debug.FreeOSMemory()
	runtime.ReadMemStats(&after)
	r := MemoryResult{HeapBefore: before.HeapInuse, HeapAfter: after.HeapInuse, DurationMs: wire.Ms(time.Since(start))}
	if after.HeapReleased > before.HeapReleased {
		r.Released = after.HeapReleased - before.HeapReleased
	}
	return r
}

// Run performs the cleanup for scope.
func (c *Cleanup) Run(ctx context.Context, scope string) CleanupResult {
	res := CleanupResult{V: wire.Version, Time: wire.Now(), Scope: scope, Aggregator: FreeMemory()}
	if scope != ScopeCluster || c.Agents == nil {
		return res
	}
	agents := c.Agents()
	keys := make([]string, 0, len(agents))
	for k := range agents {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	res.Agents = make([]AgentCleanup, len(keys))
	par := c.Parallel
	if par <= 0 {
		par = 32
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res.Agents[i] = c.one(ctx, k, agents[k])
		}()
	}
	wg.Wait()
	for _, a := range res.Agents {
		if a.OK {
			res.AgentsOK++
		} else {
			res.AgentsFail++
		}
	}
	return res
}

func (c *Cleanup) one(ctx context.Context, key, base string) AgentCleanup {
	out := AgentCleanup{Agent: key, URL: base}
	client := c.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/v1/cleanup-memory", bytes.NewReader([]byte("{}")))
	if err != nil {
		out.Error = err.Error()
		return out
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		out.Error = "unavailable: " + err.Error()
		return out
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	out.Status = resp.StatusCode
	if json.Valid(body) {
		out.Result = body
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(body))
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		out.Error = fmt.Sprintf("agent answered %d: %s", resp.StatusCode, msg)
		return out
	}
	out.OK = true
	return out
}
