//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/testbin"
)

// Budgets from the moment the cluster is asked to the moment the aggregator shows it.
const (
	scaleUpBudget   = 10 * time.Second // new pods of a scaled workload connected
	podDeleteBudget = 2 * time.Second  // a deleted pod's agent no longer listed
)

// TestScaleUpAndDeletePod: scaling a demo workload up adds the new pods' agents within
// ten seconds; deleting a pod drops its agent within two seconds, and the pod the
// Deployment makes in its place connects.
func TestScaleUpAndDeletePod(t *testing.T) {
	c := connect(t)
	ctx := context.Background()
	deployment := c.release + "-demo-inventory"
	selector := c.selector("demo") + ",faultline.dev/demo-role=inventory"
	before := names(c.readyPods(t, selector, c.timeout))
	c.connectedAgents(t, c.timeout, before)

	scale, err := c.cs.AppsV1().Deployments(c.namespace).GetScale(ctx, deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replicas := scale.Spec.Replicas
	setReplicas := func(n int32) error {
		patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
		_, err := c.cs.AppsV1().Deployments(c.namespace).Patch(ctx, deployment, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "scale")
		return err
	}
	t.Cleanup(func() {
		if err := setReplicas(replicas); err != nil {
			t.Errorf("scale %s back to %d: %v", deployment, replicas, err)
		}
	})
	start := time.Now()
	if err := setReplicas(replicas + 2); err != nil {
		t.Fatal(err)
	}
	testbin.Eventually(t, scaleUpBudget, func() error {
		agents, err := c.agents(c.namespace)
		if err != nil {
			return err
		}
		pods, err := c.cs.CoreV1().Pods(c.namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		connected := 0
		for _, p := range pods.Items {
			if agents[p.Name].State == "connected" {
				connected++
			}
		}
		if connected != int(replicas)+2 {
			return fmt.Errorf("%s scaled to %d: %d of %d pods with a connected agent", deployment, replicas+2, connected, len(pods.Items))
		}
		return nil
	})
	t.Logf("scaled %s from %d to %d: every new agent connected %v later", deployment, replicas, replicas+2, time.Since(start).Round(time.Millisecond))

	// Delete one of the pods: its agent goes at once, its replacement connects.
	victim := before[0]
	start = time.Now()
	if err := c.cs.CoreV1().Pods(c.namespace).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testbin.Eventually(t, podDeleteBudget, func() error {
		agents, err := c.agents(c.namespace)
		if err != nil {
			return err
		}
		if a, ok := agents[victim]; ok {
			return fmt.Errorf("deleted pod %s still listed as %s", victim, describe(a))
		}
		return nil
	})
	t.Logf("deleted pod %s: its agent left the list %v later", victim, time.Since(start).Round(time.Millisecond))
	var replacement []string
	testbin.Eventually(t, c.timeout, func() error {
		pods := c.readyPods(t, selector, c.timeout)
		replacement = replacement[:0]
		for _, p := range pods {
			if p.Name != victim && !slices.Contains(before, p.Name) {
				replacement = append(replacement, p.Name)
			}
		}
		if len(pods) != int(replicas)+2 || slices.Contains(names(pods), victim) {
			return fmt.Errorf("%d pods Ready (%v), want %d without %s", len(pods), names(pods), replicas+2, victim)
		}
		return nil
	})
	c.connectedAgents(t, c.timeout, replacement)
}

// TestPodsThatShouldBeThere: a workload whose pods cannot run (they fit no node) is
// listed with a row per pod its Deployment wants and does not have, read from the
// Deployment's desired replicas; scaled to zero, the rows go.
func TestPodsThatShouldBeThere(t *testing.T) {
	c := connect(t)
	ctx := context.Background()
	const name = "nowhere"
	tmpl := handWritten(c.demoTemplate(t), name)
	tmpl.Spec.NodeSelector = map[string]string{"faultline.dev/e2e": "no-such-node"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.namespace},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Template: tmpl,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}},
	}
	if _, err := c.cs.AppsV1().Deployments(c.namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.cs.AppsV1().Deployments(c.namespace).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	absent := func() ([]view.AgentStatus, error) {
		var resp api.AgentsResponse
		q := url.Values{"namespace": {c.namespace}, "workload": {name}}
		if err := c.getJSON("/api/v1/agents?"+q.Encode(), &resp); err != nil {
			return nil, err
		}
		return slices.DeleteFunc(resp.Agents, func(a view.AgentStatus) bool { return a.State != view.AgentAbsent }), nil
	}
	start := time.Now()
	testbin.Eventually(t, 20*time.Second, func() error {
		rows, err := absent()
		if err != nil {
			return err
		}
		if len(rows) != 2 || !strings.Contains(rows[0].Reason, "0 of 2 desired pods") {
			return fmt.Errorf("workload %s: absent rows %+v, want 2 saying 0 of 2 desired pods", name, rows)
		}
		return nil
	})
	t.Logf("a Deployment of 2 pods that cannot run: 2 absent rows %v after it was created", time.Since(start).Round(time.Millisecond))
	patch := []byte(`{"spec":{"replicas":0}}`)
	if _, err := c.cs.AppsV1().Deployments(c.namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}, "scale"); err != nil {
		t.Fatal(err)
	}
	testbin.Eventually(t, 20*time.Second, func() error {
		rows, err := absent()
		if err == nil && len(rows) > 0 {
			err = fmt.Errorf("scaled to 0, workload %s still has %d absent rows", name, len(rows))
		}
		return err
	})
}
