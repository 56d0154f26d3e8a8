//go:build e2e

// Package e2e tests a running installation (the chart with the demo, as `make kind-up` or
// `make test-cluster` installs it) through the cluster of the current kubeconfig, the way
// a user checks it on day one: the aggregator is ready with exactly its RBAC, every demo
// pod runs the agent as a native sidecar and is connected, the agents sample their pods,
// breakers opened through the demo's control API reach a stream client at once, scaling,
// deleting and killing pods and containers lose nothing, the dashboard shows it all in
// Chromium, and helm upgrade and uninstall behave. Run with `make test-e2e`.
//
// Requests go through the API server's service proxy with the kubeconfig's credentials,
// or through port-forwards to pods where the API needs a loopback caller, so the suite
// needs no route to the cluster's network. FAULTLINE_E2E_URL (e.g. http://127.0.0.1:3001,
// the kind port mapping) sends the API requests straight to the aggregator instead.
//
// Environment: FAULTLINE_E2E_NAMESPACE (default faultline), FAULTLINE_E2E_RELEASE
// (default faultline), FAULTLINE_E2E_URL, FAULTLINE_E2E_TIMEOUT (default 3m: how long to
// wait for what a cluster does at its own pace), FAULTLINE_E2E_CONTAINERD (containerd's
// socket on the node, for killing a container; set by make test-cluster),
// FAULTLINE_E2E_UNINSTALL=1 (run TestUninstall, which removes the release).
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// cluster is the installation under test.
type cluster struct {
	cfg        *rest.Config
	kubeconfig string // the file cfg came from, for helm
	cs         kubernetes.Interface
	namespace  string
	release    string
	http       *http.Client
	app        string // base URL of the dashboard, API and stream
	probes     string // base URL of /healthz, /readyz, /metrics
	timeout    time.Duration
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// connect finds the installation and waits until its aggregator is ready.
func connect(t *testing.T) *cluster {
	t.Helper()
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		t.Fatalf("no usable kubeconfig (run make kind-up or make cluster-up first): %v", err)
	}
	// The suite asks many questions at once (access reviews, lists while it waits).
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	timeout, err := time.ParseDuration(env("FAULTLINE_E2E_TIMEOUT", "3m"))
	if err != nil {
		t.Fatalf("FAULTLINE_E2E_TIMEOUT: %v", err)
	}
	c := &cluster{cfg: cfg, cs: cs, namespace: env("FAULTLINE_E2E_NAMESPACE", "faultline"),
		release: env("FAULTLINE_E2E_RELEASE", "faultline"), timeout: timeout}
	if files := rules.GetLoadingPrecedence(); len(files) > 0 {
		c.kubeconfig = files[0]
	}

	svc := c.aggregatorService(t)
	if direct := os.Getenv("FAULTLINE_E2E_URL"); direct != "" {
		c.http = &http.Client{}
		c.app = strings.TrimSuffix(direct, "/")
	} else {
		if c.http, err = rest.HTTPClientFor(cfg); err != nil {
			t.Fatal(err)
		}
		c.app = proxyURL(cfg.Host, c.namespace, svc, "http")
	}
	// The probe port is reached through the service proxy either way.
	proxyClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.probes = proxyURL(cfg.Host, c.namespace, svc, "metrics")
	testbin.Eventually(t, c.timeout, func() error {
		r, err := fetch(proxyClient, c.probes+"/readyz")
		if err == nil && r.StatusCode != http.StatusOK {
			err = fmt.Errorf("aggregator /readyz: status %d: %.300s", r.StatusCode, r.Body)
		}
		return err
	})
	return c
}

// aggregatorService is the name of the release's aggregator Service.
func (c *cluster) aggregatorService(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svcs, err := c.cs.CoreV1().Services(c.namespace).List(ctx, metav1.ListOptions{LabelSelector: c.selector("aggregator")})
	if err != nil {
		t.Fatalf("find the aggregator Service in %s: %v", c.namespace, err)
	}
	if len(svcs.Items) != 1 {
		t.Fatalf("want one aggregator Service (%s) in namespace %s, found %d: is the chart installed?",
			c.selector("aggregator"), c.namespace, len(svcs.Items))
	}
	return svcs.Items[0].Name
}

func proxyURL(host, ns, svc, port string) string {
	return fmt.Sprintf("%s/api/v1/namespaces/%s/services/http:%s:%s/proxy",
		strings.TrimSuffix(host, "/"), url.PathEscape(ns), url.PathEscape(svc), port)
}

func (c *cluster) selector(component string) string {
	return "app.kubernetes.io/instance=" + c.release + ",app.kubernetes.io/component=" + component
}

type response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

var eventID = regexp.MustCompile(`^([^-\s]+)-[0-9]+$`)

func (c *cluster) get(t *testing.T, client *http.Client, u string) response {
	t.Helper()
	r, err := fetch(client, u)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fetch(client *http.Client, u string) (response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return response{}, fmt.Errorf("GET %s: %w", u, err)
	}
	return response{resp.StatusCode, resp.Header, body}, nil
}

// getJSON fetches an API path of the aggregator into v.
func (c *cluster) getJSON(path string, v any) error {
	r, err := fetch(c.http, c.app+path)
	if err != nil {
		return err
	}
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %.300s", path, r.StatusCode, r.Body)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// agents is /api/v1/agents of namespace ns, by pod.
func (c *cluster) agents(ns string) (map[string]view.AgentStatus, error) {
	var resp api.AgentsResponse
	if err := c.getJSON("/api/v1/agents?namespace="+url.QueryEscape(ns), &resp); err != nil {
		return nil, err
	}
	out := map[string]view.AgentStatus{}
	for _, a := range resp.Agents {
		out[a.Pod] = a
	}
	return out, nil
}

// status is /api/v1/fault-tolerance/status of the release's namespace.
func (c *cluster) status() (view.Cluster, error) {
	var s view.Cluster
	err := c.getJSON("/api/v1/fault-tolerance/status?namespace="+url.QueryEscape(c.namespace), &s)
	return s, err
}

// connectedAgents waits until the agent of every pod in pods is connected and no other
// pod's agent is listed as connected, and returns the agents by pod.
func (c *cluster) connectedAgents(t *testing.T, timeout time.Duration, pods []string) map[string]view.AgentStatus {
	t.Helper()
	var agents map[string]view.AgentStatus
	testbin.Eventually(t, timeout, func() error {
		var err error
		if agents, err = c.agents(c.namespace); err != nil {
			return err
		}
		for _, p := range pods {
			if agents[p].State != view.AgentConnected {
				return fmt.Errorf("agent of pod %s: %s, want connected", p, describe(agents[p]))
			}
		}
		return nil
	})
	return agents
}

func describe(a view.AgentStatus) string {
	if a.State == "" {
		return "not listed"
	}
	if a.Reason != "" {
		return a.State + " (" + a.Reason + ")"
	}
	return a.State
}

// pods lists the pods matching selector in the release's namespace, and fails unless
// every one is Ready within the timeout.
func (c *cluster) readyPods(t *testing.T, selector string, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var out []corev1.Pod
	testbin.Eventually(t, timeout, func() error {
		pods, err := c.cs.CoreV1().Pods(c.namespace).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		out = out[:0]
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				return fmt.Errorf("pod %s is terminating", p.Name)
			}
			if !ready(p) {
				return fmt.Errorf("pod %s is not ready (phase %s)", p.Name, p.Status.Phase)
			}
			out = append(out, p)
		}
		if len(out) == 0 {
			return fmt.Errorf("no pods match %s in %s", selector, c.namespace)
		}
		return nil
	})
	return out
}

// demoPods returns the demo pods, once every one of them is Ready.
func (c *cluster) demoPods(t *testing.T) []corev1.Pod {
	t.Helper()
	return c.readyPods(t, c.selector("demo"), c.timeout)
}

func names(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil
		}
	}
	return false
}

func TestDashboardReachable(t *testing.T) {
	c := connect(t)
	for _, page := range []string{"/", "/test-realtime.html"} {
		r := c.get(t, c.http, c.app+page)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: status %d, content type %q; want 200 text/html", page, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	status, err := c.status()
	if err != nil {
		t.Fatal(err)
	}
	if status.Mode != "kubernetes" || !status.Discovery.Synced {
		t.Errorf("status: mode %q, discovery synced %v; want kubernetes, true", status.Mode, status.Discovery.Synced)
	}
}

// stream is an open connection to the aggregator's event stream; its events arrive on
// events, and err holds why it ended once events is closed.
type stream struct {
	events <-chan wire.Event
	err    error
	cancel context.CancelFunc
}

// openStream connects to the aggregator's stream with the query q, resuming after
// lastID when it is set. The stream is closed when the test ends.
func (c *cluster) openStream(t *testing.T, q url.Values, lastID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.app+"/api/v1/performance/stream?"+q.Encode(), nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open the stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		cancel()
		t.Fatalf("stream: status %d, content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	events := make(chan wire.Event, 1024)
	s := &stream{events: events, cancel: cancel}
	go func() {
		defer close(events)
		defer resp.Body.Close()
		for ev, err := range wire.ReadEvents(resp.Body, 0) {
			if err != nil {
				s.err = err
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
		s.err = io.EOF
	}()
	t.Cleanup(cancel)
	return s
}

// next returns the next event named one of names, failing the test when none comes
// within timeout or the stream ends.
func (s *stream) next(t *testing.T, timeout time.Duration, names ...string) wire.Event {
	t.Helper()
	ev, ok := s.nextBefore(time.Now().Add(timeout), names...)
	if !ok {
		if s.err != nil {
			t.Fatalf("stream ended waiting for %v: %v", names, s.err)
		}
		t.Fatalf("no %v event within %v", names, timeout)
	}
	return ev
}

// nextBefore returns the next event named one of names, or false when the deadline
// passes or the stream ends (s.err then says why).
func (s *stream) nextBefore(deadline time.Time, names ...string) (wire.Event, bool) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return wire.Event{}, false
			}
			if slices.Contains(names, ev.Name) {
				return ev, true
			}
		case <-timer.C:
			return wire.Event{}, false
		}
	}
}

func TestBreakerTransitionOnStream(t *testing.T) {
	c := connect(t)
	s := c.openStream(t, url.Values{"namespace": {c.namespace}, "events": {wire.EventSnapshot + "," + wire.EventCircuitBreaker}}, "")
	if ev := s.next(t, 30*time.Second, wire.EventSnapshot, wire.EventCircuitBreaker); ev.Name != wire.EventSnapshot {
		t.Fatalf("first event %q, want snapshot", ev.Name)
	}
	deadline := time.Now().Add(c.timeout)
	for time.Now().Before(deadline) {
		ev := s.next(t, time.Until(deadline), wire.EventCircuitBreaker)
		var be view.BreakerEvent
		if err := wire.Decode(ev, &be); err != nil {
			t.Fatal(err)
		}
		tr := be.Transition
		if tr.From == "" || tr.From == tr.To {
			continue // a breaker seen for the first time, not a state change
		}
		if be.Namespace != c.namespace || be.Pod == "" || be.Tile.Name != tr.Breaker.Name {
			t.Errorf("transition event lacks its place: namespace %q pod %q tile %q breaker %q",
				be.Namespace, be.Pod, be.Tile.Name, tr.Breaker.Name)
		}
		if !eventID.MatchString(ev.ID) {
			t.Errorf("transition event id %q is not <epoch>-<seq>: a reconnecting client could not resume", ev.ID)
		}
		t.Logf("breaker %s in %s/%s: %s -> %s (event %s)", tr.Breaker.Name, be.Namespace, be.Pod, tr.From, tr.To, ev.ID)
		return
	}
	t.Fatalf("no breaker transition within %v", c.timeout)
}
