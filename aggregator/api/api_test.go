package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/broadcast"
	"github.com/faultline-dev/faultline/aggregator/fleet"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/optimize"
	"github.com/faultline-dev/faultline/aggregator/rewind"
	"github.com/faultline-dev/faultline/aggregator/suggest"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/httpx"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// engine is the fleet the test reports into and the broadcaster of its view.
type engine struct {
	*fleet.Fleet
	*broadcast.Broadcaster
}

// state is what the API reads.
type state struct {
	*broadcast.Broadcaster
	*suggest.Keeper
	*optimize.Optimizer
}

func newHandler(t *testing.T, token string) (http.Handler, engine) {
	t.Helper()
	hub := stream.New(stream.Options{})
	t.Cleanup(hub.Close)
	hist := history.New(history.Options{})
	rules := alert.NewEngine(alert.DefaultRules())
	record := rewind.New(hist.Retention(), time.Now())
	fl := fleet.New(fleet.Options{Hub: hub, Rewind: record})
	opt := optimize.New(optimize.Options{Hub: hub, SampleInterval: fl.SampleInterval, HistoryRetention: hist.Retention()})
	bc := broadcast.New(broadcast.Options{Mode: "static", Fleet: fl, Hub: hub, History: hist, Alerts: rules, Optimizer: opt, Rewind: record})
	st := engine{fl, bc}
	st.Status(view.AgentStatus{V: 1, Key: "http://a", State: view.AgentConnected, Pod: "cart-1", Namespace: "shop", Workload: "cart"})
	st.Snapshot("http://a", &wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: "cart-1"}, Sample: &wire.Sample{V: 1, IntervalMs: 1000,
		CPU: &wire.CPU{Cores: 0.5}}, Breakers: []wire.Breaker{{V: 1, Name: "db", State: wire.StateOpen}}}, true)
	st.Broadcast(time.Now())
	guard := httpx.New(httpx.Options{Server: "faultline-aggregator", Token: token, AllowedHosts: []string{"example.com"}})
	keeper := suggest.NewKeeper(0, fl.Agents, record.Flips, hist)
	h := api.Handler(api.Config{State: state{bc, keeper, opt}, Hub: hub, History: hist, Alerts: rules, Guard: guard,
		Cleanup: &api.Cleanup{Agents: func() map[string]string { return nil }}})
	return h, st
}

type call struct {
	method, target string
	remote         string
	headers        map[string]string
	body           string
}

func do(h http.Handler, c call) (int, string) {
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r := httptest.NewRequest(c.method, c.target, body)
	if c.remote != "" {
		r.RemoteAddr = c.remote
	} else {
		r.RemoteAddr = "127.0.0.1:50000"
	}
	for k, v := range c.headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("body is not a JSON error: %q", body)
	}
	return e.Error
}

func TestBadRequestsGetJSONErrorsNamingTheProblem(t *testing.T) {
	h, _ := newHandler(t, "")
	tests := []struct {
		name   string
		call   call
		status int
		says   string
	}{
		{"unknown route", call{method: "GET", target: "/api/v1/nope"}, 404, "no such endpoint"},
		{"wrong method", call{method: "DELETE", target: "/api/v1/agents"}, 405, "method DELETE is not allowed"},
		{"GET on cleanup", call{method: "GET", target: "/api/v1/performance/cleanup-memory"}, 405, "allowed: POST"},
		{"bad namespace", call{method: "GET", target: "/api/v1/performance/stream?namespace=Bad_NS"}, 400, "namespace:"},
		{"bad workload", call{method: "GET", target: "/api/v1/fault-tolerance/status?workload=a%20b"}, 400, "workload:"},
		{"unknown event", call{method: "GET", target: "/api/v1/performance/stream?events=metrics,bogus"}, 400, "events: unknown event \"bogus\""},
		{"history without series", call{method: "GET", target: "/api/v1/history"}, 400, "series: required"},
		{"history bad series", call{method: "GET", target: "/api/v1/history?series=pod:x"}, 400, "series:"},
		{"history bad window", call{method: "GET", target: "/api/v1/history?series=cluster:health&window=forever"}, 400, "window:"},
		{"history window too long", call{method: "GET", target: "/api/v1/history?series=cluster:health&window=48h"}, 400, "window:"},
		{"history nothing recorded", call{method: "GET", target: "/api/v1/history?series=pod:shop/none:cpu_cores"}, 404, "nothing recorded"},
		{"agents bad state", call{method: "GET", target: "/api/v1/agents?state=sleepy"}, 400, "state:"},
		{"cleanup bad scope", call{method: "POST", target: "/api/v1/performance/cleanup-memory?scope=galaxy", headers: map[string]string{"Content-Type": "application/json"}}, 400, "scope:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(h, tt.call)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (%s)", status, tt.status, body)
			}
			if msg := errorOf(t, body); !strings.Contains(msg, tt.says) {
				t.Errorf("error %q does not say %q", msg, tt.says)
			}
		})
	}
}

func TestMutatingEndpointGuard(t *testing.T) {
	const path = "/api/v1/performance/cleanup-memory?scope=aggregator"
	json := map[string]string{"Content-Type": "application/json"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{"Content-Type": "application/json"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		token  string
		call   call
		status int
	}{
		{"loopback JSON", "", call{remote: "127.0.0.1:4000", headers: json}, 200},
		{"loopback v6", "", call{remote: "[::1]:4000", headers: json}, 200},
		{"same origin", "", call{headers: with(map[string]string{"Origin": "http://example.com"})}, 200},
		{"cross origin", "", call{headers: with(map[string]string{"Origin": "http://evil.test"})}, 403},
		{"null origin", "", call{headers: with(map[string]string{"Origin": "null"})}, 403},
		{"form content type", "", call{headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415},
		{"no content type", "", call{}, 415},
		{"remote without token configured", "", call{remote: "10.1.2.3:5000", headers: json}, 403},
		{"remote without token", "s3cret", call{remote: "10.1.2.3:5000", headers: json}, 401},
		{"remote wrong token", "s3cret", call{remote: "10.1.2.3:5000", headers: with(map[string]string{"Authorization": "Bearer nope"})}, 401},
		{"remote right token", "s3cret", call{remote: "10.1.2.3:5000", headers: with(map[string]string{"Authorization": "Bearer s3cret"})}, 200},
		{"body not JSON", "", call{headers: json, body: "scope=cluster"}, 400},
		{"body JSON", "", call{headers: json, body: `{}`}, 200},
		{"body naming a member twice", "", call{headers: json, body: `{"scope":"a","scope":"b"}`}, 400},
		{"body too large", "", call{headers: json, body: `{"x":"` + strings.Repeat("a", 70<<10) + `"}`}, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHandler(t, tt.token)
			c := tt.call
			c.method, c.target = "POST", path
			status, body := do(h, c)
			if status != tt.status {
				t.Fatalf("status = %d, want %d: %s", status, tt.status, body)
			}
			if status != 200 {
				errorOf(t, body)
			}
		})
	}
}

func TestPollingEndpoints(t *testing.T) {
	h, _ := newHandler(t, "")
	status, body := do(h, call{method: "GET", target: "/api/v1/fault-tolerance/circuit-breakers"})
	var br api.BreakersResponse
	if status != 200 || json.Unmarshal([]byte(body), &br) != nil {
		t.Fatalf("circuit-breakers: %d %s", status, body)
	}
	if br.Open != 1 || len(br.Breakers) != 1 || len(br.Breakers[0].PerPod) != 1 {
		t.Errorf("circuit-breakers = %+v; want the open db breaker with its pod", br)
	}
	status, body = do(h, call{method: "GET", target: "/api/v1/fault-tolerance/status?namespace=other"})
	var c view.Cluster
	if status != 200 || json.Unmarshal([]byte(body), &c) != nil || len(c.Pods) != 0 {
		t.Errorf("status filtered to another namespace: %d %s", status, body)
	}
	status, body = do(h, call{method: "GET", target: "/api/v1/agents?namespace=shop"})
	var ag api.AgentsResponse
	if status != 200 || json.Unmarshal([]byte(body), &ag) != nil || len(ag.Agents) != 1 || ag.Counts["connected"] != 1 {
		t.Errorf("agents: %d %s", status, body)
	}
	status, body = do(h, call{method: "GET", target: "/api/v1/alerts"})
	var al api.AlertsResponse
	if status != 200 || json.Unmarshal([]byte(body), &al) != nil || len(al.Firing) != 1 || al.Firing[0].Rule != "breaker-open" {
		t.Errorf("alerts: %d %s", status, body)
	}
	status, body = do(h, call{method: "GET", target: "/api/v1/history?series=cluster:breakers_open&window=1m"})
	var hr history.Result
	if status != 200 || json.Unmarshal([]byte(body), &hr) != nil || len(hr.Points) != 1 || hr.Points[0].V != 1 {
		t.Errorf("history: %d %s", status, body)
	}
	for _, path := range []string{"/api/v1/performance/optimization-status", "/api/v1/performance/suggestions"} {
		if status, body := do(h, call{method: "GET", target: path}); status != 200 || !json.Valid([]byte(body)) {
			t.Errorf("%s: %d %s", path, status, body)
		}
	}
}

func TestFilter(t *testing.T) {
	events := map[string]bool{wire.EventCircuitBreaker: true, wire.EventMetrics: true}
	f := api.Filter("shop", "", events)
	tests := []struct {
		ev   stream.Event
		want bool
	}{
		{stream.Event{Name: wire.EventCircuitBreaker, Namespace: "shop", Workload: "cart"}, true},
		{stream.Event{Name: wire.EventCircuitBreaker, Namespace: "pay", Workload: "api"}, false},
		{stream.Event{Name: wire.EventMetrics}, true},
		{stream.Event{Name: wire.EventAlert, Namespace: "shop"}, false},
	}
	var got, want []bool
	for _, tt := range tests {
		got = append(got, f(&tt.ev))
		want = append(want, tt.want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if api.Filter("", "", nil) != nil {
		t.Error("no filter should accept everything without a function call")
	}
}
