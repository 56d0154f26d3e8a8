package api_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/rewind"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/wire"
)

// nextMilli waits until the clock has moved past t by a millisecond at least, so that
// two moments of a test are apart on the millisecond clock the record keeps.
func nextMilli(t time.Time) time.Time {
	for !time.Now().After(t.Add(time.Millisecond)) {
		time.Sleep(100 * time.Microsecond)
	}
	return time.Now()
}

func TestSnapshotAtBadValues(t *testing.T) {
	h, _ := newHandler(t, "")
	now := time.Now()
	q := func(v string) string { return "/api/v1/snapshot?at=" + url.QueryEscape(v) }
	tests := []struct {
		name, target, says string
	}{
		{"missing", "/api/v1/snapshot", "at: required"},
		{"empty", "/api/v1/snapshot?at=", "at: required"},
		{"not a time", q("yesterday"), "not an RFC 3339 time"},
		{"date only", q("2026-11-27"), "not an RFC 3339 time"},
		{"time without zone", q("2026-11-27T14:03:12"), "not an RFC 3339 time"},
		{"positive duration", q("90s"), "positive duration"},
		{"plus duration", q("+90s"), "positive duration"},
		{"bad duration", q("-5parsecs"), "not a duration"},
		{"future time", q(now.Add(time.Hour).UTC().Format(time.RFC3339)), "in the future"},
		{"older than kept", q("-2h"), "older than what is kept"},
		{"before the aggregator started", q(now.Add(-10 * time.Minute).UTC().Format(time.RFC3339)), "older than what is kept"},
		{"far past", q("1999-01-01T00:00:00Z"), "older than what is kept"},
		{"bad namespace", "/api/v1/snapshot?at=-0s&namespace=Bad_NS", "namespace:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(h, call{method: "GET", target: tt.target})
			if status != 400 {
				t.Fatalf("status = %d, want 400 (%s)", status, body)
			}
			msg := errorOf(t, body)
			if !strings.Contains(msg, tt.says) {
				t.Errorf("error %q does not say %q", msg, tt.says)
			}
			if strings.HasPrefix(msg, "at:") {
				var e struct{ Earliest, Latest wire.Time }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Earliest.IsZero() || e.Latest.Before(e.Earliest.Time) {
					t.Errorf("error body %s does not give the allowed range", body)
				}
				if !strings.Contains(msg, "the allowed range is ") {
					t.Errorf("error %q does not say the allowed range", msg)
				}
			}
		})
	}
}

// TestSnapshotAt rewinds the view across a breaker transition: before it the breaker is
// as it was, after it as it became, the instant answered is the one asked, and a time
// zone offset written with an unescaped "+" (a space once decoded) is understood.
func TestSnapshotAt(t *testing.T) {
	h, st := newHandler(t, "")
	before := nextMilli(time.Now())
	nextMilli(before)
	st.Transition("http://a", wire.Transition{V: 1, Agent: "cart-1", From: wire.StateOpen, To: wire.StateClosed,
		Breaker: wire.Breaker{V: 1, Name: "db", State: wire.StateClosed}})
	after := nextMilli(time.Now())

	get := func(target string) rewind.Snapshot {
		t.Helper()
		status, body := do(h, call{method: "GET", target: target})
		if status != 200 {
			t.Fatalf("%s: %d %s", target, status, body)
		}
		var snap rewind.Snapshot
		if err := json.Unmarshal([]byte(body), &snap); err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if len(snap.Breakers) > 0 && (!strings.Contains(body, `"rate_per_sec":null`) || !strings.Contains(body, `"calls":null`)) {
			t.Errorf("figures that are not kept must be null: %s", body)
		}
		return snap
	}
	at := before.In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.000-07:00")
	snap := get("/api/v1/snapshot?at=" + strings.Replace(at, "+", "%2B", 1))
	if len(snap.Breakers) != 1 || snap.Breakers[0].State != wire.StateOpen || snap.Breakers[0].Open != 1 {
		t.Errorf("before the transition: %+v, want db open on 1 pod", snap.Breakers)
	}
	if want := before.Truncate(time.Millisecond); !snap.At.Time.Equal(want) || !snap.Time.Equal(want) {
		t.Errorf("instant described %v / %v, want %v", snap.At.Time, snap.Time, want)
	}
	if len(snap.Alerts) != 1 || snap.Alerts[0].Rule != "breaker-open" {
		t.Errorf("alerts firing before the transition: %+v", snap.Alerts)
	}
	snap = get("/api/v1/snapshot?at=" + strings.Replace(at, "+", "+", 1)) // "+" decodes to a space
	if len(snap.Breakers) != 1 || snap.Breakers[0].State != wire.StateOpen {
		t.Errorf("with an unescaped +: %+v", snap.Breakers)
	}
	snap = get("/api/v1/snapshot?at=" + after.UTC().Format(time.RFC3339Nano))
	if len(snap.Breakers) != 1 || snap.Breakers[0].State != wire.StateClosed {
		t.Errorf("after the transition: %+v, want db closed", snap.Breakers)
	}
	snap = get("/api/v1/snapshot?at=-0s&namespace=other")
	if len(snap.Breakers) != 0 || len(snap.Agents) != 0 {
		t.Errorf("filtered to another namespace: %+v", snap)
	}
	if len(get("/api/v1/snapshot?at=-0s&workload=cart").Agents) != 1 {
		t.Error("filtered to the workload: its agent is missing")
	}
}

func TestBreakerTimelinesAndSorts(t *testing.T) {
	h, st := newHandler(t, "")
	nextMilli(time.Now())
	st.Status(view.AgentStatus{V: 1, Key: "http://b", State: view.AgentConnected, Pod: "web-1", Namespace: "shop", Workload: "web"})
	st.Snapshot("http://b", &wire.Snapshot{V: 1, Agent: wire.Agent{V: 1, ID: "web-1"}, Breakers: []wire.Breaker{{V: 1, Name: "search", State: wire.StateClosed}}}, true)
	for i, to := range []wire.BreakerState{wire.StateOpen, wire.StateClosed, wire.StateOpen, wire.StateClosed} {
		nextMilli(time.Now())
		from := wire.StateClosed
		if i%2 == 1 {
			from = wire.StateOpen
		}
		st.Transition("http://b", wire.Transition{V: 1, Agent: "web-1", From: from, To: to,
			Breaker: wire.Breaker{V: 1, Name: "search", State: to, FailureRate: wire.Ptr(55.0), Calls: wire.Calls{Succeeded: 9, Failed: 11}}})
	}
	nextMilli(time.Now())
	status, body := do(h, call{method: "GET", target: "/api/v1/fault-tolerance/circuit-breakers?window=5m&sort=transitions&per_pod=false"})
	var br api.BreakersResponse
	if status != 200 || json.Unmarshal([]byte(body), &br) != nil {
		t.Fatalf("%d %s", status, body)
	}
	if len(br.Breakers) != 2 || br.Breakers[0].Name != "search" || br.Window != 300000 {
		t.Fatalf("sorted by transitions: %s, want search (4 transitions) first", body)
	}
	tl := br.Breakers[0].Timeline
	if tl == nil || tl.Transitions != 4 || len(tl.Openings) != 2 || *tl.Openings[0].FailureRate != 55 || tl.Openings[0].Calls.Failed != 11 || tl.Recoveries != 2 {
		t.Errorf("search timeline %+v, want 4 transitions, 2 openings at 55 %% with their calls, 2 recoveries", tl)
	}
	if br.Breakers[0].PerPod != nil {
		t.Error("per_pod=false still lists the pods")
	}
	// db has been open since before the record began: open all the window, no transition.
	if db := br.Breakers[1].Timeline; db == nil || db.Transitions != 0 || db.OpenMs <= 0 || len(db.Periods) != 1 || !db.Periods[0].Ongoing {
		t.Errorf("db timeline %+v, want open throughout, ongoing", db)
	}
	status, body = do(h, call{method: "GET", target: "/api/v1/fault-tolerance/circuit-breakers?window=5m&sort=longest_open"})
	if status != 200 || json.Unmarshal([]byte(body), &br) != nil || br.Breakers[0].Name != "db" || br.Breakers[0].PerPod[0].Timeline == nil {
		t.Errorf("sorted by longest open: %s, want db first with its pod's timeline", body)
	}
	for target, says := range map[string]string{
		"/api/v1/fault-tolerance/circuit-breakers?sort=transitions":          "sort: transitions needs a window",
		"/api/v1/fault-tolerance/circuit-breakers?window=5m&sort=vibes":      "sort: \"vibes\"",
		"/api/v1/fault-tolerance/circuit-breakers?window=5 minutes":          "window:",
		"/api/v1/fault-tolerance/circuit-breakers?window=48h":                "window:",
		"/api/v1/fault-tolerance/circuit-breakers?window=5m&per_pod=perhaps": "per_pod:",
	} {
		status, body := do(h, call{method: "GET", target: strings.ReplaceAll(target, " ", "%20")})
		if msg := errorOf(t, body); status != 400 || !strings.Contains(msg, says) {
			t.Errorf("%s: %d %q, want 400 saying %q", target, status, msg, says)
		}
	}
}

func TestAlertsGrouped(t *testing.T) {
	h, st := newHandler(t, "")
	for i, pod := range []string{"cart-2", "cart-3"} {
		key := "http://c" + string(rune('0'+i))
		st.Status(view.AgentStatus{V: 1, Key: key, State: view.AgentUnavailable, Reason: "connection refused", Pod: pod, Namespace: "shop", Workload: "cart"})
	}
	st.Broadcast(time.Now())
	status, body := do(h, call{method: "GET", target: "/api/v1/alerts?group_by=workload"})
	var al api.AlertsResponse
	if status != 200 || json.Unmarshal([]byte(body), &al) != nil {
		t.Fatalf("%d %s", status, body)
	}
	if len(al.Firing) != 3 || len(al.Groups) != 1 {
		t.Fatalf("firing %d, groups %+v: want 3 alerts in one workload group", len(al.Firing), al.Groups)
	}
	g := al.Groups[0]
	if g.Key != "shop/cart" || g.Total != 3 || g.Severity != wire.SeverityCritical || len(g.Groups) != 2 {
		t.Fatalf("group %+v: want shop/cart, 3 alerts, critical, split in two rules", g)
	}
	// Worst first: the critical breaker-open before the two agent-unavailable warnings.
	if g.Groups[0].Rule != "breaker-open" || g.Groups[1].Rule != "agent-unavailable" || g.Groups[1].Total != 2 || len(g.Groups[1].Alerts) != 2 {
		t.Errorf("rules in the group: %+v", g.Groups)
	}
	status, body = do(h, call{method: "GET", target: "/api/v1/alerts?group_by=rule"})
	if status != 200 || json.Unmarshal([]byte(body), &al) != nil || len(al.Groups) != 2 || al.Groups[0].Rule != "breaker-open" || al.GroupBy != alert.ByRule {
		t.Errorf("by rule: %s", body)
	}
	status, body = do(h, call{method: "GET", target: "/api/v1/alerts?group_by=team"})
	if msg := errorOf(t, body); status != 400 || !strings.Contains(msg, "group_by:") {
		t.Errorf("bad group_by: %d %q", status, msg)
	}
}
