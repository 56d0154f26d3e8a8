//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/testenv"
)

// helm runs the helm binary against the cluster under test.
func (c *cluster) helm(t *testing.T, args ...string) string {
	t.Helper()
	bin := testbin.Tool(t, "helm", "install it with make tools")
	if c.kubeconfig != "" {
		args = append(args, "--kubeconfig", c.kubeconfig)
	}
	out, err := exec.Command(bin, append(args, "--namespace", c.namespace)...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAggregatorReady: the aggregator's Deployment is available with every pod Ready, and
// the chart's own test (helm test) passes.
func TestAggregatorReady(t *testing.T) {
	c := connect(t)
	deploys, err := c.cs.AppsV1().Deployments(c.namespace).List(context.Background(), metav1.ListOptions{LabelSelector: c.selector("aggregator")})
	if err != nil || len(deploys.Items) != 1 {
		t.Fatalf("the aggregator Deployment: %d found (%v)", len(deploys.Items), err)
	}
	d := deploys.Items[0]
	if d.Status.AvailableReplicas != *d.Spec.Replicas {
		t.Errorf("Deployment %s: %d of %d replicas available", d.Name, d.Status.AvailableReplicas, *d.Spec.Replicas)
	}
	c.readyPods(t, c.selector("aggregator"), c.timeout)
	out := c.helm(t, "test", c.release, "--timeout", "2m")
	if !strings.Contains(out, "Succeeded") {
		t.Errorf("helm test %s did not report a test that succeeded:\n%s", c.release, out)
	}
}

// TestAggregatorRBAC: the aggregator's ServiceAccount may do exactly what
// charts/faultline/files/rbac-rules.yaml grants, asked of the API server's authorizer
// (SubjectAccessReview, as kubectl auth can-i does): each granted verb where it is
// granted, and nothing else on the resources a user would worry about, there or elsewhere.
func TestAggregatorRBAC(t *testing.T) {
	c := connect(t)
	rules, err := testenv.LoadRules()
	if err != nil {
		t.Fatal(err)
	}
	pods := c.readyPods(t, c.selector("aggregator"), c.timeout)
	sa := pods[0].Spec.ServiceAccountName
	user := "system:serviceaccount:" + c.namespace + ":" + sa
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + c.namespace, "system:authenticated"}

	type resource struct{ group, name string }
	resources := []resource{{"", "pods"}, {"", "pods/log"}, {"", "pods/exec"}, {"", "pods/portforward"}, {"", "secrets"},
		{"", "configmaps"}, {"", "services"}, {"", "endpoints"}, {"", "events"}, {"", "serviceaccounts"},
		{"", "namespaces"}, {"", "nodes"}, {"apps", "deployments"}, {"apps", "replicasets"}, {"apps", "statefulsets"},
		{"apps", "daemonsets"}, {"batch", "jobs"}, {"coordination.k8s.io", "leases"}, {"rbac.authorization.k8s.io", "roles"},
		{"rbac.authorization.k8s.io", "clusterroles"}, {"rbac.authorization.k8s.io", "rolebindings"}}
	verbs := []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
	granted := func(rs []rbacv1.PolicyRule, r resource, verb string) bool {
		for _, rule := range rs {
			if slices.Contains(rule.APIGroups, r.group) && slices.Contains(rule.Resources, r.name) && slices.Contains(rule.Verbs, verb) {
				return true
			}
		}
		return false
	}
	// Discovery watches every namespace by default (a ClusterRole); leader election is
	// granted in the release's namespace only.
	for _, ns := range []string{c.namespace, "default", "kube-system"} {
		for _, r := range resources {
			for _, verb := range verbs {
				want := granted(rules.Discovery, r, verb) || (ns == c.namespace && granted(rules.LeaderElection, r, verb))
				sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
					User: user, Groups: groups,
					ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: r.group, Resource: r.name},
				}}
				if name, sub, ok := strings.Cut(r.name, "/"); ok {
					sar.Spec.ResourceAttributes.Resource, sar.Spec.ResourceAttributes.Subresource = name, sub
				}
				got, err := c.cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
				if err != nil {
					t.Fatalf("SubjectAccessReview: %v", err)
				}
				if got.Status.Allowed != want {
					t.Errorf("%s may %s %s in namespace %s: %v, want %v (%s)", user, verb, r.name+"."+r.group, ns, got.Status.Allowed, want, got.Status.Reason)
				}
			}
		}
	}
}
