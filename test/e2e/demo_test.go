//go:build e2e

package e2e

import (
	"fmt"
	"testing"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/testbin"
)

// demoServices are the demo's services, each its own Deployment <release>-demo-<name>.
var demoServices = []string{"frontend", "checkout", "payments", "inventory", "shipping"}

// TestDemoServicesServe: every demo service is a workload whose pods are all connected
// and serve requests, so the calls between them go through the cluster's Services and
// DNS (frontend -> checkout -> payments, inventory, shipping), and the aggregator merges
// each workload over all of its pods.
func TestDemoServicesServe(t *testing.T) {
	c := connect(t)
	perWorkload := map[string]int{}
	for _, p := range c.demoPods(t) {
		perWorkload[c.release+"-demo-"+p.Labels["faultline.dev/demo-role"]]++
	}
	testbin.Eventually(t, c.timeout, func() error {
		status, err := c.status()
		if err != nil {
			return err
		}
		workloads := map[string]view.Workload{}
		for _, w := range status.Workloads {
			workloads[w.Name] = w
		}
		for _, name := range demoServices {
			name = c.release + "-demo-" + name
			w, ok := workloads[name]
			switch {
			case !ok:
				return fmt.Errorf("no workload %s (workloads: %v)", name, status.Workloads)
			case w.Pods != perWorkload[name] || w.PodsConnected != w.Pods:
				return fmt.Errorf("workload %s: %d pods, %d connected; the Deployment has %d Ready", w.Name, w.Pods, w.PodsConnected, perWorkload[name])
			case w.RequestsPerSec <= 0:
				return fmt.Errorf("workload %s serves no requests", w.Name)
			}
		}
		return nil
	})
}
