//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/faultline-dev/faultline/internal/testbin"
)

// TestHelmUpgrade: `helm upgrade` with one value changed (the demo's load) rolls the
// frontend out with the new setting, and every agent is connected again afterwards;
// `helm rollback` puts the old value back the same way.
func TestHelmUpgrade(t *testing.T) {
	c := connect(t)
	chart := filepath.Join(testbin.RepoRoot(), "charts", "faultline")
	frontend := c.selector("demo") + ",faultline.dev/demo-role=frontend"
	old := c.readyPods(t, frontend, c.timeout)
	start := time.Now()
	c.helm(t, "upgrade", c.release, chart, "--reuse-values", "--set", "demo.loadRPS=7", "--wait=watcher", "--timeout", "5m")
	t.Logf("helm upgrade --wait took %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { c.helm(t, "rollback", c.release, "--wait=watcher", "--timeout", "5m") })

	var rolled []string
	testbin.Eventually(t, c.timeout, func() error {
		pods := c.readyPods(t, frontend, c.timeout)
		rolled = names(pods)
		for _, p := range pods {
			if slices.Contains(names(old), p.Name) {
				return fmt.Errorf("frontend pod %s of the old release is still there", p.Name)
			}
			if !slices.Contains(container(p, "demo").Args, "--load-rps=7") {
				return fmt.Errorf("frontend pod %s runs with %v, want --load-rps=7", p.Name, container(p, "demo").Args)
			}
		}
		return nil
	})
	c.connectedAgents(t, c.timeout, rolled)
}

// TestUninstall: `helm uninstall` leaves no object of the release behind, in its
// namespace or cluster-wide. It removes the installation, so it runs only when
// FAULTLINE_E2E_UNINSTALL=1 (make test-cluster runs it last).
func TestUninstall(t *testing.T) {
	if os.Getenv("FAULTLINE_E2E_UNINSTALL") != "1" {
		t.Skip("removes the release: set FAULTLINE_E2E_UNINSTALL=1 to run it")
	}
	c := connect(t)
	c.helm(t, "uninstall", c.release, "--wait", "--timeout", "5m")

	disc, err := discovery.NewDiscoveryClientForConfig(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	lists, err := disc.ServerPreferredResources()
	if err != nil {
		t.Fatal(err)
	}
	// What Kubernetes itself keeps in every namespace, and records of what happened.
	expected := map[string][]string{"configmaps": {"kube-root-ca.crt"}, "serviceaccounts": {"default"}}
	ignored := []string{"events", "events.events.k8s.io"}
	testbin.Eventually(t, 2*time.Minute, func() error {
		var left []string
		for _, list := range lists {
			gv, err := schema.ParseGroupVersion(list.GroupVersion)
			if err != nil {
				return err
			}
			for _, r := range list.APIResources {
				if !slices.Contains(r.Verbs, "list") || strings.Contains(r.Name, "/") {
					continue
				}
				full := r.Name
				if gv.Group != "" {
					full += "." + gv.Group
				}
				if slices.Contains(ignored, full) {
					continue
				}
				res := dyn.Resource(gv.WithResource(r.Name))
				byLabel, err := res.List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + c.release})
				if err != nil {
					return fmt.Errorf("list %s: %w", full, err)
				}
				for _, o := range byLabel.Items {
					left = append(left, full+" "+o.GetNamespace()+"/"+o.GetName())
				}
				if !r.Namespaced {
					continue
				}
				inNS, err := res.Namespace(c.namespace).List(context.Background(), metav1.ListOptions{})
				if err != nil {
					return fmt.Errorf("list %s in %s: %w", full, c.namespace, err)
				}
				for _, o := range inNS.Items {
					if !slices.Contains(expected[full], o.GetName()) && len(o.GetLabels()["app.kubernetes.io/instance"]) == 0 {
						left = append(left, full+" "+o.GetNamespace()+"/"+o.GetName())
					}
				}
			}
		}
		if len(left) > 0 {
			slices.Sort(left)
			return fmt.Errorf("after helm uninstall these remain: %v", slices.Compact(left))
		}
		return nil
	})
}
