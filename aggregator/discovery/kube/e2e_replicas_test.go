package kube

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/testenv"
)

// TestAggregatorDesiredReplicas runs the real aggregator (bound only to the chart's
// rules) and real agents behind the pods of a Deployment of 2 replicas: "k of n" counts
// the Deployment's replicas, a deleted pod shows as an absent row at once, the
// replicas-missing alert (its for shortened to 2 s) fires once the shortfall lasts and
// resolves when the Deployment is scaled down to what is there; scaling up shows the
// new pods absent until they come.
func TestAggregatorDesiredReplicas(t *testing.T) {
	env := testenv.Start(t)
	requireBinaries(t)
	env.CreateNamespace(t, "shop")
	user := env.AddUser(t, "system:serviceaccount:faultline:faultline-aggregator")
	env.BindRules(t, user.Name, testenv.Scope{Namespaces: []string{"shop"}})
	cs := env.Client
	w := workloads{t, cs}
	w.deployment("shop", "checkout", 2, selected)
	const hash = "6b7f9d5c4"
	for i, ip := range []string{"127.0.0.51", "127.0.0.52"} {
		port, ingest := startAgentIngest(t, ip, "checkout")
		state := "closed"
		if i == 0 {
			state = "open"
		}
		testbin.PutJSON(t, ingest+"/v1/breakers/payments", `{"state":"`+state+`","failure_rate":50}`)
		testPod{ns: "shop", name: fmt.Sprintf("checkout-%s-%d", hash, i), labels: withHash(selected, hash),
			owner: "ReplicaSet/checkout-" + hash, port: port, ip: ip}.create(t, cs)
	}
	cfg := filepath.Join(t.TempDir(), "aggregator.yaml")
	if err := os.WriteFile(cfg, []byte("alert-rules:\n  - name: replicas-missing\n    for: 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agg := startAggregator(t, user.Kubeconfig, "--namespaces=shop", "--config="+cfg)
	testbin.WaitHTTP(t, "http://"+agg.probe+"/readyz", http.StatusOK, 60*time.Second)

	status := func() (view.Cluster, error) {
		var c view.Cluster
		err := testbin.GetJSON("http://"+agg.api+"/api/v1/fault-tolerance/status", &c)
		return c, err
	}
	// kOfN is the payments tile's "k of n", and the absent rows of /api/v1/agents.
	kOfN := func() (string, int, error) {
		c, err := status()
		if err != nil {
			return "", 0, err
		}
		tile := ""
		for _, b := range c.Breakers {
			if b.Name == "payments" {
				n := b.Pods
				if b.DesiredPods != nil {
					n = max(n, *b.DesiredPods)
				}
				tile = fmt.Sprintf("%d of %d", b.Open, n)
			}
		}
		r, err := agg.agents(t)
		if err != nil {
			return "", 0, err
		}
		return tile, r.Counts[view.AgentAbsent], nil
	}
	want := func(timeout time.Duration, tile string, absent int) {
		t.Helper()
		testbin.Eventually(t, timeout, func() error {
			got, n, err := kOfN()
			if err != nil {
				return err
			}
			if got != tile || n != absent {
				return fmt.Errorf("payments %q with %d absent rows, want %q with %d", got, n, tile, absent)
			}
			return nil
		})
	}
	alerts := func() (firing, resolved bool, err error) {
		var r api.AlertsResponse
		if err := testbin.GetJSON("http://"+agg.api+"/api/v1/alerts", &r); err != nil {
			return false, false, err
		}
		for _, a := range r.Firing {
			firing = firing || (a.Rule == "replicas-missing" && a.Target.Workload == "checkout")
		}
		for _, a := range r.Resolved {
			resolved = resolved || (a.Rule == "replicas-missing" && a.Target.Workload == "checkout")
		}
		return firing, resolved, nil
	}
	want(30*time.Second, "1 of 2", 0)

	t.Run("pod deleted", func(t *testing.T) {
		start := time.Now()
		deletePod(t, cs, "shop", "checkout-"+hash+"-1", new(int64))
		want(2*time.Second, "1 of 2", 1) // the closed pod is gone; n stays the Deployment's 2
		t.Logf("absent row after %v", time.Since(start).Round(time.Millisecond))
		if f, _, err := alerts(); err != nil || (f && time.Since(start) < 2*time.Second) {
			t.Errorf("replicas-missing fired before its 2 s (err %v)", err)
		}
		testbin.Eventually(t, 10*time.Second, func() error {
			f, _, err := alerts()
			if err != nil || !f {
				return fmt.Errorf("replicas-missing not firing (err %v)", err)
			}
			return nil
		})
		t.Logf("alert firing after %v", time.Since(start).Round(time.Millisecond))
	})
	t.Run("scale down to what is there", func(t *testing.T) {
		w.scaleDeployment("shop", "checkout", 1)
		want(5*time.Second, "1 of 1", 0)
		testbin.Eventually(t, 5*time.Second, func() error {
			f, r, err := alerts()
			if err != nil || f || !r {
				return fmt.Errorf("replicas-missing firing %v, resolved %v (err %v)", f, r, err)
			}
			return nil
		})
	})
	t.Run("scale up", func(t *testing.T) {
		w.scaleDeployment("shop", "checkout", 3)
		want(5*time.Second, "1 of 3", 2)
	})
}
