package kube

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/aggregator/discovery"
)

// health tracks whether the pod informers' own requests to the API server succeed, per
// scope (a namespace, or "" for all namespaces). The informer reports a failed list
// through its watch error handler, but neither a failed watch that it retries by itself
// (the API server going away) nor any recovery, so the requests are observed where they
// are made: in the client's transport. A scope is healthy again as soon as a watch on it
// succeeds, because an informer only watches from a state it has fully read.
type health struct {
	log hclog.Logger

	mu     sync.Mutex
	scopes map[string]*scopeErrs
	synced bool
	last   discovery.Status
}

type scopeErrs struct{ list, watch string }

// message is the one problem users see for a scope: a failed list first, since nothing
// else can work without it.
func (s *scopeErrs) message() string {
	if s.list != "" {
		return s.list
	}
	return s.watch
}

func newHealth(log hclog.Logger) *health {
	return &health{log: log, scopes: map[string]*scopeErrs{},
		last: discovery.Status{Mode: "kubernetes", Since: time.Now()}}
}

// status is the discovery status users see.
func (h *health) status() discovery.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// setSynced records that the informers have read every watched scope once.
func (h *health) setSynced() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.synced = true
	h.update()
}

// observe records the outcome of one pod list or watch request on scope.
func (h *health) observe(scope string, watch bool, problem string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.scopes[scope]
	if s == nil {
		s = &scopeErrs{}
		h.scopes[scope] = s
	}
	before := s.message()
	switch {
	case watch && problem == "":
		*s = scopeErrs{}
	case watch:
		s.watch = problem
	default:
		s.list = problem
	}
	if after := s.message(); after != before {
		where := scopeName(scope)
		if after == "" {
			h.log.Info("pod discovery recovered", "scope", where)
		} else {
			h.log.Error("pod discovery failing", "scope", where, "error", after)
		}
	}
	h.update()
}

// update recomputes the status; Since moves only when what users see changes.
func (h *health) update() {
	var msgs []string
	for _, s := range h.scopes {
		if m := s.message(); m != "" {
			msgs = append(msgs, m)
		}
	}
	sort.Strings(msgs)
	st := discovery.Status{
		Mode:   "kubernetes",
		Synced: h.synced,
		Stale:  h.synced && len(msgs) > 0,
		Error:  strings.Join(msgs, "; "),
		Since:  h.last.Since,
	}
	if st.Synced != h.last.Synced || st.Stale != h.last.Stale || st.Error != h.last.Error {
		st.Since = time.Now()
	}
	h.last = st
}

func scopeName(ns string) string {
	if ns == "" {
		return "all namespaces"
	}
	return "namespace " + ns
}

// podRequest says whether r lists or watches pods, and in which scope.
func podRequest(r *http.Request) (scope string, watch, ok bool) {
	if r.Method != http.MethodGet {
		return "", false, false
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 3 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "pods":
		scope = ""
	case len(parts) == 5 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "namespaces" && parts[4] == "pods":
		scope = parts[3]
	default:
		return "", false, false
	}
	w := r.URL.Query().Get("watch")
	return scope, w == "true" || w == "1", true
}

// problem describes a failed list or watch of resource (pods, deployments, ...) for
// users; empty means it succeeded.
func problem(resource, scope string, watch bool, resp *http.Response, err error) string {
	verb := "list"
	if watch {
		verb = "watch"
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("cannot reach the API server: %v", err)
	}
	switch code := resp.StatusCode; {
	case code < 300:
		return ""
	case code == http.StatusForbidden:
		return fmt.Sprintf("forbidden: cannot %s %s in %s", verb, resource, scopeName(scope))
	case code == http.StatusUnauthorized:
		return "unauthorized: the API server did not accept the aggregator's credentials"
	default:
		return fmt.Sprintf("cannot %s %s in %s: API server answered %s", verb, resource, scopeName(scope), resp.Status)
	}
}

// observer is the transport wrapper feeding health, and the replicas' own.
type observer struct {
	next     http.RoundTripper
	h        *health
	replicas *replicas
}

func (o *observer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(r)
	if r.Context().Err() != nil {
		return resp, err
	}
	if scope, watch, ok := podRequest(r); ok {
		o.h.observe(scope, watch, problem("pods", scope, watch, resp, err))
	} else if resource, scope, watch, ok := workloadRequest(r); ok && o.replicas != nil {
		o.replicas.observe(resource, scope, watch, problem(resource, scope, watch, resp, err))
	}
	return resp, err
}
