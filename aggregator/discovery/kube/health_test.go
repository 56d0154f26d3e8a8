package kube

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/aggregator/discovery"
)

func TestPodRequest(t *testing.T) {
	type res struct {
		Scope     string
		Watch, OK bool
	}
	tests := []struct {
		method, url string
		want        res
	}{
		{"GET", "/api/v1/namespaces/shop/pods?labelSelector=a%3Db&limit=500", res{"shop", false, true}},
		{"GET", "/api/v1/namespaces/shop/pods?watch=true&sendInitialEvents=true", res{"shop", true, true}},
		{"GET", "/api/v1/pods?watch=1", res{"", true, true}},
		{"GET", "/api/v1/pods", res{"", false, true}},
		{"GET", "/api/v1/namespaces/shop/pods/web-1", res{}},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/shop/leases/faultline-aggregator", res{}},
		{"POST", "/api/v1/namespaces/shop/pods", res{}},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "https://api.example"+tt.url, nil)
		var got res
		got.Scope, got.Watch, got.OK = podRequest(r)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", tt.method, tt.url, diff)
		}
	}
}

func TestProblem(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api/v1/pods", Err: syscall.ECONNREFUSED}
	tests := []struct {
		scope  string
		watch  bool
		status int
		err    error
		want   string
	}{
		{"shop", false, 200, nil, ""},
		{"shop", false, 403, nil, "forbidden: cannot list pods in namespace shop"},
		{"", true, 403, nil, "forbidden: cannot watch pods in all namespaces"},
		{"shop", false, 401, nil, "unauthorized: the API server did not accept the aggregator's credentials"},
		{"shop", true, 503, nil, "cannot watch pods in namespace shop: API server answered 503 Service Unavailable"},
		{"shop", true, 0, refused, "cannot reach the API server: connection refused"},
		{"shop", true, 0, errors.New("tls: handshake failure"), "cannot reach the API server: tls: handshake failure"},
	}
	for _, tt := range tests {
		var resp *http.Response
		if tt.err == nil {
			resp = &http.Response{StatusCode: tt.status, Status: fmt.Sprintf("%d %s", tt.status, http.StatusText(tt.status))}
		}
		if got := problem("pods", tt.scope, tt.watch, resp, tt.err); got != tt.want {
			t.Errorf("problem(%q, watch=%v, %d, %v) = %q, want %q", tt.scope, tt.watch, tt.status, tt.err, got, tt.want)
		}
	}
}

// TestHealth replays request outcomes as the informers produce them and checks what users
// would see in the discovery status.
func TestHealth(t *testing.T) {
	type step struct {
		synced  bool // mark synced before this outcome
		scope   string
		watch   bool
		problem string
		want    discovery.Status
	}
	forbidden := "forbidden: cannot list pods in namespace shop"
	forbiddenWatch := "forbidden: cannot watch pods in namespace shop"
	down := "cannot reach the API server: connection refused"
	tests := []struct {
		name  string
		steps []step
	}{
		{"forbidden from the start: an error, never synced, not stale", []step{
			{scope: "shop", watch: true, problem: forbiddenWatch, want: discovery.Status{Error: forbiddenWatch}},
			{scope: "shop", problem: forbidden, want: discovery.Status{Error: forbidden}},
			{scope: "shop", watch: true, problem: forbiddenWatch, want: discovery.Status{Error: forbidden}},
			{scope: "pay", problem: "", want: discovery.Status{Error: forbidden}},
		}},
		{"list allowed, watch forbidden", []step{
			{scope: "shop", problem: "", want: discovery.Status{}},
			{scope: "shop", watch: true, problem: forbiddenWatch, want: discovery.Status{Error: forbiddenWatch}},
			{scope: "shop", problem: "", want: discovery.Status{Error: forbiddenWatch}},
		}},
		{"outage after sync is stale until a watch succeeds", []step{
			{scope: "shop", watch: true, problem: "", want: discovery.Status{}},
			{synced: true, scope: "shop", watch: true, problem: down, want: discovery.Status{Synced: true, Stale: true, Error: down}},
			{scope: "shop", problem: down, want: discovery.Status{Synced: true, Stale: true, Error: down}},
			{scope: "shop", watch: true, problem: "", want: discovery.Status{Synced: true}},
		}},
		{"two scopes failing", []step{
			{synced: true, scope: "shop", problem: forbidden, want: discovery.Status{Synced: true, Stale: true, Error: forbidden}},
			{scope: "", problem: down, want: discovery.Status{Synced: true, Stale: true, Error: down + "; " + forbidden}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHealth(hclog.NewNullLogger())
			for i, s := range tt.steps {
				if s.synced {
					h.setSynced()
				}
				h.observe(s.scope, s.watch, s.problem)
				s.want.Mode = "kubernetes"
				if diff := cmp.Diff(s.want, h.status(), cmpopts.IgnoreFields(discovery.Status{}, "Since")); diff != "" {
					t.Errorf("step %d: status (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}
