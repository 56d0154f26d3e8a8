package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/names/namestest"
	"github.com/faultline-dev/faultline/internal/wire"
)

const jsonType = "application/json"

func TestIngestAccepts(t *testing.T) {
	a := newTestAgent(t, nil)
	h := a.ingestHandler()
	sub := a.hub.Subscribe("", nil)
	defer a.hub.Unsubscribe(sub)

	code, body, _ := do(t, h, "PUT", "/v1/breakers/payments", "application/json; charset=utf-8",
		`{"state":"open","failure_rate":62.5,"calls":{"succeeded":30,"failed":50}}`)
	if code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
	var stored wire.Breaker
	json.Unmarshal([]byte(body), &stored)
	if stored.Name != "payments" || stored.State != wire.StateOpen || stored.Source != "push" || stored.LastSeen.IsZero() {
		t.Errorf("PUT answered %s", body)
	}
	ev := <-sub.C
	var tr wire.Transition
	if err := wire.Decode(wire.Event{Name: ev.Name, Data: dataOf(ev.Frame)}, &tr); err != nil || ev.Name != wire.EventCircuitBreaker || tr.To != wire.StateOpen || tr.Breaker.Name != "payments" {
		t.Errorf("transition event %s: %+v %v", ev.Name, tr, err)
	}

	code, body, _ = do(t, h, "POST", "/v1/breakers", jsonType,
		`[{"name":"payments","state":"open","calls":{"succeeded":31}},{"name":"db","state":"closed"}]`)
	if diff := cmp.Diff(`{"breakers":2,"transitions":1,"throughput":false}`+"\n", body); code != http.StatusOK || diff != "" {
		t.Errorf("POST /v1/breakers: %d (-want +got):\n%s", code, diff)
	}
	code, body, _ = do(t, h, "POST", "/v1/throughput", jsonType, `{"requests":100,"errors":2}`)
	if code != http.StatusOK || a.app.last == nil || a.app.last.requests != 100 {
		t.Errorf("POST /v1/throughput: %d %s", code, body)
	}
	code, body, _ = do(t, h, "POST", "/v1/events", jsonType,
		`{"breakers":[{"name":"db","state":"half_open"}],"throughput":{"requests":150,"errors":3}}`)
	if diff := cmp.Diff(`{"breakers":1,"transitions":1,"throughput":true}`+"\n", body); code != http.StatusOK || diff != "" {
		t.Errorf("POST /v1/events: %d (-want +got):\n%s", code, diff)
	}
	got := map[string]wire.BreakerState{}
	for _, b := range a.reg.List() {
		got[b.Name] = b.State
	}
	if diff := cmp.Diff(map[string]wire.BreakerState{"payments": "open", "db": "half_open"}, got); diff != "" {
		t.Errorf("registry (-want +got):\n%s", diff)
	}
}

func dataOf(frame []byte) []byte {
	for _, line := range strings.Split(string(frame), "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			return []byte(d)
		}
	}
	return nil
}

// TestIngestRejects: every bad request gets a 4xx with a JSON error naming what is
// wrong, and changes nothing.
func TestIngestRejects(t *testing.T) {
	big := `{"state":"open","source":"` + strings.Repeat("x", 64<<10) + `"}`
	tests := []struct {
		name, method, path, ctype, body string
		code                            int
		want                            string
	}{
		{"malformed JSON", "PUT", "/v1/breakers/db", jsonType, `{"state":`, 400, "body: truncated JSON"},
		{"unknown state", "PUT", "/v1/breakers/db", jsonType, `{"state":"sideways"}`, 400, `state: "sideways" is not one of`},
		{"negative counter", "PUT", "/v1/breakers/db", jsonType, `{"state":"open","calls":{"failed":-1}}`, 400, "calls.failed: got number -1, want a non-negative integer"},
		{"unknown field", "PUT", "/v1/breakers/db", jsonType, `{"state":"open","colour":"red"}`, 400, "colour: unknown field"},
		{"bad name", "PUT", "/v1/breakers/a%00b", jsonType, `{"state":"open"}`, 400, `name: "a\x00b" holds the control character U+0000`},
		{"name too long", "PUT", "/v1/breakers/" + strings.Repeat("n", 201), jsonType, `{"state":"open"}`, 400, "name: must be 1 to 200 bytes"},
		{"rate that would overflow", "PUT", "/v1/breakers/db", jsonType, `{"state":"open","failure_rate":100,"rate_per_sec":1.7e308}`, 400, "rate_per_sec: 1.7e+308 is above the limit"},
		{"duplicate key", "PUT", "/v1/breakers/db", jsonType, `{"state":"open","state":"closed"}`, 400, `"state": named twice`},
		{"name mismatch", "PUT", "/v1/breakers/db", jsonType, `{"name":"cache","state":"open"}`, 400, `name: the body names "cache"`},
		{"too large", "PUT", "/v1/breakers/db", jsonType, big, 413, "body: larger than 65536 bytes"},
		{"not JSON", "PUT", "/v1/breakers/db", "text/plain", `{"state":"open"}`, 415, `Content-Type: want application/json, got "text/plain"`},
		{"no content type", "PUT", "/v1/breakers/db", "", `{"state":"open"}`, 415, "Content-Type: want application/json"},
		{"batch with one bad report", "POST", "/v1/breakers", jsonType, `[{"name":"x","state":"open"},{"name":"y","state":"ajar"}]`, 400, `[1].state: "ajar"`},
		{"batch not an array", "POST", "/v1/breakers", jsonType, `{"name":"x","state":"open"}`, 400, "body: got object, want an array"},
		{"batch too large", "POST", "/v1/breakers", jsonType, "[" + big + "]", 413, "body: larger than"},
		{"throughput negative", "POST", "/v1/throughput", jsonType, `{"requests":-5}`, 400, "requests: got number -5"},
		{"throughput missing requests", "POST", "/v1/throughput", jsonType, `{"errors":5}`, 400, "requests: required"},
		{"throughput errors over requests", "POST", "/v1/throughput", jsonType, `{"requests":1,"errors":5}`, 400, "errors: 5 is more than requests"},
		{"throughput typo", "POST", "/v1/throughput", jsonType, `{"requests":1,"eror":5}`, 400, "eror: unknown field"},
		{"events with a bad throughput", "POST", "/v1/events", jsonType, `{"breakers":[{"name":"x","state":"open"}],"throughput":{"requests":-1}}`, 400, "throughput.requests: got number -1"},
		{"events empty", "POST", "/v1/events", jsonType, `{}`, 400, "body: neither breakers nor throughput"},
		{"wrong method", "GET", "/v1/breakers/db", "", "", 405, "method GET is not allowed on /v1/breakers/db; allowed: PUT"},
		{"wrong method on batch", "PUT", "/v1/breakers", jsonType, "[]", 405, "allowed: POST"},
		{"unknown route", "POST", "/v1/alerts", jsonType, "{}", 404, "no such endpoint: /v1/alerts"},
		{"no name", "PUT", "/v1/breakers/", jsonType, `{"state":"open"}`, 404, "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAgent(t, nil)
			a.reg.Upsert(wire.Breaker{Name: "db", State: wire.StateClosed, Source: "push"})
			before := a.reg.List()
			code, body, hdr := do(t, a.ingestHandler(), tt.method, tt.path, tt.ctype, tt.body)
			if code != tt.code {
				t.Errorf("status %d, want %d (%s)", code, tt.code, body)
			}
			if got := errorOf(t, body); !strings.Contains(got, tt.want) {
				t.Errorf("error %q does not contain %q", got, tt.want)
			}
			if ct := hdr.Get("Content-Type"); ct != jsonType {
				t.Errorf("Content-Type %q", ct)
			}
			if diff := cmp.Diff(before, a.reg.List()); diff != "" {
				t.Errorf("a rejected request changed the breakers (-before +after):\n%s", diff)
			}
			if a.app.last != nil {
				t.Error("a rejected request recorded throughput")
			}
		})
	}
}

func TestIngestCapsBreakersPerSource(t *testing.T) {
	a := newTestAgent(t, func(c *config.Agent) { c.MaxBreakersPerSource = 3 })
	h := a.ingestHandler()
	for i := range 2 {
		if code, body, _ := do(t, h, "PUT", fmt.Sprintf("/v1/breakers/b%d", i), jsonType, `{"state":"closed"}`); code != 200 {
			t.Fatalf("PUT b%d: %d %s", i, code, body)
		}
	}
	code, body, _ := do(t, h, "POST", "/v1/breakers", jsonType, `[{"name":"b2","state":"closed"},{"name":"b3","state":"closed"}]`)
	if want := `name: 2 new breakers from source "push" would exceed max-breakers-per-source (3; 2 held)`; code != 400 || errorOf(t, body) != want {
		t.Errorf("over the cap: %d %s, want 400 %q", code, body, want)
	}
	if a.reg.Len() != 2 {
		t.Errorf("%d breakers held, want 2: the refused batch stores nothing", a.reg.Len())
	}
	if code, _, _ := do(t, h, "PUT", "/v1/breakers/b0", jsonType, `{"state":"open"}`); code != 200 {
		t.Errorf("an update of a held breaker was refused: %d", code)
	}
}

// The pushing application names the source, so a per-source cap alone is no cap: the
// agent holds at most max-breakers over every source, counts what it refuses and says
// so in its sample and its metrics.
func TestIngestCapsBreakersInAll(t *testing.T) {
	a := newTestAgent(t, func(c *config.Agent) { c.MaxBreakers, c.MaxBreakersPerSource = 5, 3 })
	h := a.ingestHandler()
	refused := 0
	for i := range 40 {
		body := fmt.Sprintf(`{"state":"closed","source":"invented-%d"}`, i)
		code, resp, _ := do(t, h, "PUT", fmt.Sprintf("/v1/breakers/b%d", i), jsonType, body)
		if code != http.StatusOK {
			refused++
			if msg := errorOf(t, resp); !strings.Contains(msg, "would exceed max-breakers (5; 5 held)") {
				t.Errorf("refusal says %q", msg)
			}
		}
	}
	if a.reg.Len() != 5 || refused != 35 {
		t.Errorf("%d breakers held and %d refused, want 5 and 35", a.reg.Len(), refused)
	}
	code, _, _ := do(t, h, "POST", "/v1/breakers", jsonType, `[{"name":"b0","state":"open"},{"name":"new","state":"open"}]`)
	if b, _ := a.reg.Get("b0"); code != http.StatusBadRequest || b.State != wire.StateClosed {
		t.Errorf("a batch with a new breaker over the cap: %d, b0 %s; want 400 and nothing stored", code, b.State)
	}
	if code, _, _ := do(t, h, "PUT", "/v1/breakers/b0", jsonType, `{"state":"open","source":"invented-0"}`); code != http.StatusOK {
		t.Errorf("an update of a held breaker was refused: %d", code)
	}
	a.tick(context.Background())
	col := a.latestSample().Collectors[len(a.latestSample().Collectors)-1]
	if col.Name != "breakers" || col.OK || !strings.Contains(col.Status, "5 breakers held (max-breakers 5); 36 new breakers refused") {
		t.Errorf("breakers collector = %+v", col)
	}
	_, metrics, _ := do(t, a.mainHandler(), "GET", "/metrics", "", "")
	for _, want := range []string{"faultline_agent_breakers 5", "faultline_agent_max_breakers 5", `faultline_agent_breakers_refused_total{source="invented-5"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// Names reach the agent's snapshot, stream and metrics byte for byte from every push
// endpoint: escaped only in the path of PUT, where the router undoes the escaping.
func TestIngestNamesAsReported(t *testing.T) {
	for _, push := range []struct {
		name string
		send func(h http.Handler, name string) (int, string)
	}{
		{"PUT", func(h http.Handler, name string) (int, string) {
			code, body, _ := do(t, h, "PUT", "/v1/breakers/"+url.PathEscape(name), jsonType, `{"state":"open"}`)
			return code, body
		}},
		{"POST /v1/breakers", func(h http.Handler, name string) (int, string) {
			body, _ := json.Marshal([]wire.Breaker{{V: wire.Version, Name: name, State: wire.StateOpen}})
			code, resp, _ := do(t, h, "POST", "/v1/breakers", jsonType, string(body))
			return code, resp
		}},
		{"POST /v1/events", func(h http.Handler, name string) (int, string) {
			body, _ := json.Marshal(map[string]any{"breakers": []wire.Breaker{{V: wire.Version, Name: name, State: wire.StateOpen}}})
			code, resp, _ := do(t, h, "POST", "/v1/events", jsonType, string(body))
			return code, resp
		}},
	} {
		t.Run(push.name, func(t *testing.T) {
			a := newTestAgent(t, nil)
			sub := a.hub.Subscribe("", nil)
			defer a.hub.Unsubscribe(sub)
			for _, name := range namestest.Hostile() {
				if code, body := push.send(a.ingestHandler(), name); code != http.StatusOK {
					t.Fatalf("push %q: %d %s", name, code, body)
				}
				ev := <-sub.C
				var tr wire.Transition
				if err := json.Unmarshal(dataOf(ev.Frame), &tr); err != nil || tr.Breaker.Name != name {
					t.Errorf("transition event for %q names %q (%v)", name, tr.Breaker.Name, err)
				}
			}
			_, body, _ := do(t, a.mainHandler(), "GET", "/v1/snapshot", "", "")
			var snap wire.Snapshot
			if err := json.Unmarshal([]byte(body), &snap); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range snap.Breakers {
				got = append(got, b.Name)
			}
			want := slices.Sorted(slices.Values(namestest.Hostile()))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("names in GET /v1/snapshot (-pushed +got):\n%s", diff)
			}
			parser := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := parser.TextToMetricFamilies(strings.NewReader(metricsText(t, a)))
			if err != nil {
				t.Fatal(err)
			}
			got = got[:0]
			for _, m := range fams["faultline_agent_breaker_stale"].GetMetric() {
				got = append(got, m.GetLabel()[0].GetValue())
			}
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("breaker labels in /metrics (-pushed +got):\n%s", diff)
			}
		})
	}
}

func metricsText(t *testing.T, a *agent) string {
	_, body, _ := do(t, a.mainHandler(), "GET", "/metrics", "", "")
	return body
}
