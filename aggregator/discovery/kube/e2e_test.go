package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/testenv"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The real binaries against the real API server: faultline-aggregator in kubernetes mode,
// running as a user bound only to the chart's RBAC rules, finds real faultline-agent
// processes through pods whose IPs point at them (distinct 127.0.0.x addresses).

type aggregatorProc struct {
	*testbin.Process
	api, probe string
}

func startAggregator(t *testing.T, kubeconfig string, args ...string) *aggregatorProc {
	t.Helper()
	requireBinaries(t)
	bin := testbin.Build(t, "faultline-aggregator")
	a := &aggregatorProc{api: testbin.FreeAddr(t, "127.0.0.1"), probe: testbin.FreeAddr(t, "127.0.0.1")}
	args = append([]string{"--mode=kubernetes", "--kubeconfig=" + kubeconfig, "--listen=" + a.api,
		"--probe-listen=" + a.probe, "--log-level=debug"}, args...)
	a.Process = testbin.Start(t, bin, []string{"KUBECONFIG="}, args...)
	testbin.WaitHTTP(t, "http://"+a.probe+"/healthz", http.StatusOK, 60*time.Second)
	return a
}

// startAgent runs a faultline-agent on ip and returns its port.
func startAgent(t *testing.T, ip, workload string) int32 {
	t.Helper()
	port, _ := startAgentIngest(t, ip, workload)
	return port
}

// startAgentIngest runs a faultline-agent on ip and returns its port and the base URL of
// its ingest API, where an application reports its breakers.
func startAgentIngest(t *testing.T, ip, workload string) (int32, string) {
	t.Helper()
	bin := testbin.Build(t, "faultline-agent")
	listen, ingest := testbin.FreeAddr(t, ip), testbin.FreeAddr(t, ip)
	testbin.Start(t, bin, nil, "--listen="+listen, "--ingest-listen="+ingest, "--mode=host",
		"--workload="+workload, "--sample-interval=200ms")
	testbin.WaitHTTP(t, "http://"+listen+"/readyz", http.StatusOK, 30*time.Second)
	_, port, _ := net.SplitHostPort(listen)
	p, _ := strconv.Atoi(port)
	return int32(p), "http://" + ingest
}

func requireBinaries(t *testing.T) {
	t.Helper()
	for _, cmd := range []string{"faultline-aggregator", "faultline-agent"} {
		if _, err := os.Stat(filepath.Join(testbin.RepoRoot(), "cmd", cmd, "main.go")); err != nil {
			testbin.Missing(t, "cmd/%s is not in this tree", cmd)
		}
	}
}

func (a *aggregatorProc) agents(t *testing.T) (api.AgentsResponse, error) {
	var r api.AgentsResponse
	err := testbin.GetJSON("http://"+a.api+"/api/v1/agents", &r)
	return r, err
}

func byPodStatus(r api.AgentsResponse) map[string]view.AgentStatus {
	m := map[string]view.AgentStatus{}
	for _, s := range r.Agents {
		m[s.Namespace+"/"+s.Pod] = s
	}
	return m
}

// TestAggregatorFindsAgents: connected agents with the workloads their pods' owners give,
// missing agents reported in /api/v1/agents, the alerts and the suggestions, and a pod
// turning NotReady or deleted dropped from /api/v1/agents within a second.
func TestAggregatorFindsAgents(t *testing.T) {
	env := testenv.Start(t)
	requireBinaries(t)
	for _, ns := range []string{"shop", "pay", "other"} {
		env.CreateNamespace(t, ns)
	}
	user := env.AddUser(t, "system:serviceaccount:faultline:faultline-aggregator")
	env.BindRules(t, user.Name, testenv.Scope{Namespaces: []string{"shop", "pay"}})

	checkoutPort := startAgent(t, "127.0.0.41", "agent-says-checkout")
	dbPort := startAgent(t, "127.0.0.42", "agent-says-db")
	_, closed, _ := net.SplitHostPort(testbin.FreeAddr(t, "127.0.0.43"))
	cs := env.Client
	testPod{ns: "shop", name: "checkout-6b7f9d5c4-q8w2e", labels: withHash(selected, "6b7f9d5c4"),
		owner: "ReplicaSet/checkout-6b7f9d5c4", port: checkoutPort, ip: "127.0.0.41"}.create(t, cs)
	testPod{ns: "pay", name: "db-0", labels: selected, owner: "StatefulSet/db", annotation: strconv.Itoa(int(dbPort)), ip: "127.0.0.42"}.create(t, cs)
	testPod{ns: "shop", name: "silent-1", labels: selected, owner: "DaemonSet/silent", annotation: closed, ip: "127.0.0.43"}.create(t, cs)
	testPod{ns: "pay", name: "misconfigured-1", labels: selected, owner: "Job/misconfigured", annotation: "http", ip: "127.0.0.44"}.create(t, cs)
	testPod{ns: "other", name: "elsewhere", labels: selected, port: checkoutPort, ip: "127.0.0.41"}.create(t, cs)
	testPod{ns: "shop", name: "unselected", port: dbPort, ip: "127.0.0.42"}.create(t, cs)

	agg := startAggregator(t, user.Kubeconfig, "--namespaces=shop,pay")
	testbin.WaitHTTP(t, "http://"+agg.probe+"/readyz", http.StatusOK, 60*time.Second)

	type seen struct{ State, Workload, Reason string }
	want := map[string]seen{
		"shop/checkout-6b7f9d5c4-q8w2e": {view.AgentConnected, "checkout", ""},
		"pay/db-0":                      {view.AgentConnected, "db", ""},
		"shop/silent-1": {view.AgentMissing, "silent",
			"nothing answering at the agent port declared by annotation faultline.dev/port (" + closed + "): connection refused"},
		"pay/misconfigured-1": {view.AgentMissing, "misconfigured", `annotation faultline.dev/port="http" is not a port number (1-65535)`},
	}
	testbin.Eventually(t, 30*time.Second, func() error {
		r, err := agg.agents(t)
		if err != nil {
			return err
		}
		got := map[string]seen{}
		for k, s := range byPodStatus(r) {
			got[k] = seen{s.State, s.Workload, s.Reason}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("agents:\n got  %v\n want %v", got, want)
		}
		if d := r.Discovery; !d.Synced || d.Stale || d.Error != "" {
			return fmt.Errorf("discovery status %+v", d)
		}
		return nil
	})

	t.Run("missing agents alert and suggest", func(t *testing.T) {
		testbin.Eventually(t, 20*time.Second, func() error {
			var alerts api.AlertsResponse
			if err := testbin.GetJSON("http://"+agg.api+"/api/v1/alerts", &alerts); err != nil {
				return err
			}
			var sugg api.SuggestionsResponse
			if err := testbin.GetJSON("http://"+agg.api+"/api/v1/performance/suggestions", &sugg); err != nil {
				return err
			}
			for _, pod := range []string{"silent-1", "misconfigured-1"} {
				alerted, suggested := false, false
				for _, a := range alerts.Firing {
					alerted = alerted || (a.Rule == "agent-missing" && a.Target.Pod == pod)
				}
				for _, s := range sugg.Suggestions {
					suggested = suggested || (s.Rule == "agent-missing" && s.Target.Pod == pod)
				}
				if !alerted || !suggested {
					return fmt.Errorf("pod %s: agent-missing alert %v, suggestion %v", pod, alerted, suggested)
				}
			}
			return nil
		})
	})

	drops := []struct {
		name, key string
		change    func()
	}{
		{"NotReady", "shop/checkout-6b7f9d5c4-q8w2e", func() {
			setStatus(t, cs, getPod(t, cs, "shop", "checkout-6b7f9d5c4-q8w2e"), "127.0.0.41", false)
		}},
		{"deleted", "pay/db-0", func() { deletePod(t, cs, "pay", "db-0", new(int64)) }},
	}
	for _, d := range drops {
		t.Run(d.name+" pod dropped within 1s", func(t *testing.T) {
			start := time.Now()
			d.change()
			testbin.Eventually(t, promptly-time.Since(start), func() error {
				r, err := agg.agents(t)
				if err != nil {
					return err
				}
				if _, ok := byPodStatus(r)[d.key]; ok {
					return fmt.Errorf("%s still listed", d.key)
				}
				return nil
			})
			t.Logf("dropped after %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestAggregatorForbidden runs the aggregator as a user without the chart's rules: it keeps
// running, is not ready, and says what is forbidden where in /readyz, /api/v1/agents and
// its log.
func TestAggregatorForbidden(t *testing.T) {
	env := testenv.Start(t)
	requireBinaries(t)
	env.CreateNamespace(t, "shop")
	user := env.AddUser(t, "unbound")
	agg := startAggregator(t, user.Kubeconfig, "--namespaces=shop")
	const want = "forbidden: cannot list pods in namespace shop"
	testbin.Eventually(t, 30*time.Second, func() error {
		r, err := agg.agents(t)
		if err != nil {
			return err
		}
		if r.Discovery.Error != want || r.Discovery.Synced {
			return fmt.Errorf("discovery status %+v, want error %q", r.Discovery, want)
		}
		if !strings.Contains(agg.Output(), want) {
			return fmt.Errorf("log lacks %q", want)
		}
		resp, err := http.Get("http://" + agg.probe + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body["error"], want) {
			return fmt.Errorf("readyz: %d %v", resp.StatusCode, body)
		}
		return nil
	})
	select {
	case <-agg.Done():
		t.Fatalf("aggregator exited while forbidden:\n%s", agg.Output())
	default:
	}
}

// TestAggregatorLeaseName runs the aggregator with alert delivery, so that it campaigns
// for leadership: the Lease it takes is the one --lease-name names, in the kubeconfig
// context's namespace, so that two releases in one namespace elect apart.
func TestAggregatorLeaseName(t *testing.T) {
	env := testenv.Start(t)
	requireBinaries(t)
	env.CreateNamespace(t, "shop")
	user := env.AddUser(t, "system:serviceaccount:default:faultline-aggregator")
	env.BindRules(t, user.Name, testenv.Scope{Namespaces: []string{"shop"}, LeaseNamespace: "default"})
	unreachable := "http://" + testbin.FreeAddr(t, "127.0.0.1")
	agg := startAggregator(t, user.Kubeconfig, "--namespaces=shop", "--alertmanager-url="+unreachable, "--lease-name=shop-faultline")
	testbin.Eventually(t, 30*time.Second, func() error {
		lease, err := env.Client.CoordinationV1().Leases("default").Get(context.Background(), "shop-faultline", metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("%w\n%s", err, agg.Output())
		}
		if h := lease.Spec.HolderIdentity; h == nil || *h == "" {
			return fmt.Errorf("lease shop-faultline has no holder")
		}
		return nil
	})
}
