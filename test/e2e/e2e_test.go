//go:build e2e

// Package e2e tests a running installation (normally `make kind-up`: the chart with the
// demo) through the cluster of the current kubeconfig: the dashboard answers, the agent
// of every demo pod is connected, and a breaker transition reaches the aggregator's
// stream. Run with `make test-e2e`.
//
// Requests go through the API server's service proxy with the kubeconfig's credentials,
// so no port-forward is needed; FAULTLINE_E2E_URL (e.g. http://127.0.0.1:3001, the kind
// port mapping) sends them straight to the aggregator instead.
//
// Environment: FAULTLINE_E2E_NAMESPACE (default faultline), FAULTLINE_E2E_RELEASE
// (default faultline), FAULTLINE_E2E_URL, FAULTLINE_E2E_TIMEOUT (default 3m: how long to
// wait for agents and a transition).
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
	cs        kubernetes.Interface
	namespace string
	release   string
	http      *http.Client
	app       string // base URL of the dashboard, API and stream
	probes    string // base URL of /healthz, /readyz, /metrics
	timeout   time.Duration
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func connect(t *testing.T) *cluster {
	t.Helper()
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		t.Fatalf("no usable kubeconfig (run make kind-up first): %v", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	timeout, err := time.ParseDuration(env("FAULTLINE_E2E_TIMEOUT", "3m"))
	if err != nil {
		t.Fatalf("FAULTLINE_E2E_TIMEOUT: %v", err)
	}
	c := &cluster{cs: cs, namespace: env("FAULTLINE_E2E_NAMESPACE", "faultline"),
		release: env("FAULTLINE_E2E_RELEASE", "faultline"), timeout: timeout}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svcs, err := cs.CoreV1().Services(c.namespace).List(ctx, metav1.ListOptions{
		LabelSelector: c.selector("aggregator")})
	if err != nil {
		t.Fatalf("find the aggregator Service in %s: %v", c.namespace, err)
	}
	if len(svcs.Items) != 1 {
		t.Fatalf("want one aggregator Service (%s) in namespace %s, found %d: is the chart installed?",
			c.selector("aggregator"), c.namespace, len(svcs.Items))
	}
	svc := svcs.Items[0].Name

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
	testbin.Eventually(t, time.Minute, func() error {
		r, err := fetch(proxyClient, c.probes+"/readyz")
		if err == nil && r.StatusCode != http.StatusOK {
			err = fmt.Errorf("aggregator /readyz: status %d: %.300s", r.StatusCode, r.Body)
		}
		return err
	})
	return c
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

var eventID = regexp.MustCompile(`^[^-\s]+-[0-9]+$`)

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

func TestDashboardReachable(t *testing.T) {
	c := connect(t)
	for _, page := range []string{"/", "/test-realtime.html"} {
		r := c.get(t, c.http, c.app+page)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: status %d, content type %q; want 200 text/html", page, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	r := c.get(t, c.http, c.app+"/api/v1/fault-tolerance/status")
	var status view.Cluster
	if r.StatusCode != http.StatusOK || json.Unmarshal(r.Body, &status) != nil {
		t.Fatalf("GET /api/v1/fault-tolerance/status: status %d, body %.300s", r.StatusCode, r.Body)
	}
	if status.Mode != "kubernetes" || !status.Discovery.Synced {
		t.Errorf("status: mode %q, discovery synced %v; want kubernetes, true", status.Mode, status.Discovery.Synced)
	}
}

// demoPods returns the names of the demo pods, once every one of them is Ready.
func (c *cluster) demoPods(t *testing.T) []string {
	t.Helper()
	var names []string
	testbin.Eventually(t, c.timeout, func() error {
		pods, err := c.cs.CoreV1().Pods(c.namespace).List(context.Background(), metav1.ListOptions{LabelSelector: c.selector("demo")})
		if err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			return fmt.Errorf("no demo pods (%s) in %s: install the chart with demo.enabled=true", c.selector("demo"), c.namespace)
		}
		names = names[:0]
		for _, p := range pods.Items {
			if !ready(p) {
				return fmt.Errorf("demo pod %s is not ready", p.Name)
			}
			names = append(names, p.Name)
		}
		return nil
	})
	return names
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil
		}
	}
	return false
}

func TestEveryDemoPodConnected(t *testing.T) {
	c := connect(t)
	pods := c.demoPods(t)
	testbin.Eventually(t, c.timeout, func() error {
		r, err := fetch(c.http, c.app+"/api/v1/agents?namespace="+url.QueryEscape(c.namespace))
		if err != nil {
			return err
		}
		var agents api.AgentsResponse
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /api/v1/agents: status %d: %.300s", r.StatusCode, r.Body)
		}
		if err := json.Unmarshal(r.Body, &agents); err != nil {
			return fmt.Errorf("GET /api/v1/agents: %w", err)
		}
		state := map[string]string{}
		for _, a := range agents.Agents {
			state[a.Pod] = a.State
			if a.Reason != "" {
				state[a.Pod] += " (" + a.Reason + ")"
			}
		}
		for _, p := range pods {
			if state[p] != view.AgentConnected {
				return fmt.Errorf("agent of demo pod %s: %q, want connected (all agents: %v)", p, state[p], state)
			}
		}
		return nil
	})
}

func TestBreakerTransitionOnStream(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	q := url.Values{"namespace": {c.namespace}, "events": {wire.EventSnapshot + "," + wire.EventCircuitBreaker}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.app+"/api/v1/performance/stream?"+q.Encode(), nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("open the stream: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		t.Fatalf("stream: status %d, content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	sawSnapshot := false
	for ev, err := range wire.ReadEvents(resp.Body, 0) {
		if err != nil {
			t.Fatalf("stream ended before a breaker transition (snapshot seen: %v) after %v: %v", sawSnapshot, c.timeout, err)
		}
		switch ev.Name {
		case wire.EventSnapshot:
			var snap view.Cluster
			if err := wire.Decode(ev, &snap); err != nil {
				t.Fatal(err)
			}
			sawSnapshot = true
		case wire.EventCircuitBreaker:
			var be view.BreakerEvent
			if err := wire.Decode(ev, &be); err != nil {
				t.Fatal(err)
			}
			tr := be.Transition
			if tr.From == "" || tr.From == tr.To {
				continue // a breaker seen for the first time, not a state change
			}
			if !sawSnapshot {
				t.Error("a circuit-breaker event came before the snapshot")
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
	}
	t.Fatalf("stream closed without a breaker transition (snapshot seen: %v)", sawSnapshot)
}
