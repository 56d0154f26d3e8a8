package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/testenv"
)

// workloads creates and changes workload objects as a user (or a controller) would.
type workloads struct {
	t  *testing.T
	cs kubernetes.Interface
}

func template(l map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}}
}

func withApp(l map[string]string, app string) map[string]string {
	out := map[string]string{"app": app}
	for k, v := range l {
		out[k] = v
	}
	return out
}

func (w workloads) deployment(ns, name string, replicas int32, l map[string]string) *appsv1.Deployment {
	w.t.Helper()
	l = withApp(l, name)
	d, err := w.cs.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: template(l)},
	}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatalf("create deployment %s/%s: %v", ns, name, err)
	}
	return d
}

// replicaSet creates a ReplicaSet, owned by owner (a Deployment) when it is not nil,
// labelled as the Deployment controller labels the ones it makes.
func (w workloads) replicaSet(ns, name string, replicas int32, l map[string]string, owner *appsv1.Deployment) {
	w.t.Helper()
	l = withApp(l, name)
	meta := metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l}
	if owner != nil {
		meta.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}}
	}
	_, err := w.cs.AppsV1().ReplicaSets(ns).Create(context.Background(), &appsv1.ReplicaSet{ObjectMeta: meta,
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: l}, Template: template(l)},
	}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatalf("create replicaset %s/%s: %v", ns, name, err)
	}
}

func (w workloads) scaleDeployment(ns, name string, replicas int32) {
	w.t.Helper()
	ctx := context.Background()
	s, err := w.cs.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatalf("scale of %s/%s: %v", ns, name, err)
	}
	s.Spec.Replicas = replicas
	if _, err := w.cs.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		w.t.Fatalf("scale %s/%s to %d: %v", ns, name, replicas, err)
	}
}

// TestDesiredReplicas runs discovery as a user bound only to the chart's rules and
// checks the desired pods it reads: a Deployment's replicas (not its ReplicaSets',
// through a rollout), a StatefulSet's, a DaemonSet's desired scheduled pods, a
// ReplicaSet of its own; none for workloads whose pods the selector does not select; and
// each change (scale down, scale up, deletion) within a second.
func TestDesiredReplicas(t *testing.T) {
	env := testenv.Start(t)
	env.CreateNamespace(t, "shop")
	env.CreateNamespace(t, "other")
	user := env.AddUser(t, "faultline-aggregator")
	env.BindRules(t, user.Name, testenv.Scope{Namespaces: []string{"shop"}})
	cs := env.Client
	w := workloads{t, cs}
	ctx := context.Background()

	checkout := w.deployment("shop", "checkout", 3, selected)
	w.replicaSet("shop", "checkout-6b7f9d5c4", 3, withHash(selected, "6b7f9d5c4"), checkout)
	if _, err := cs.AppsV1().StatefulSets("shop").Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: template(withApp(selected, "db"))}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ds, err := cs.AppsV1().DaemonSets("shop").Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "node-agent", Namespace: "shop"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "node-agent"}},
			Template: template(withApp(selected, "node-agent"))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The DaemonSet controller reports how many nodes should run the pod; envtest has
	// none, so the test does.
	ds.Status.DesiredNumberScheduled = 4
	if _, err := cs.AppsV1().DaemonSets("shop").UpdateStatus(ctx, ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.replicaSet("shop", "legacy", 2, selected, nil)
	w.deployment("shop", "no-agent", 5, nil)        // pods not selected
	w.deployment("other", "elsewhere", 2, selected) // not a watched namespace

	c := run(t, Options{Config: user.Config, Namespaces: []string{"shop"}})
	shop := func(name string) discovery.Workload { return discovery.Workload{Namespace: "shop", Name: name} }
	wantDesired := func(timeout time.Duration, want map[discovery.Workload]int) {
		t.Helper()
		testbin.Eventually(t, timeout, func() error {
			if diff := cmp.Diff(want, c.d.DesiredReplicas()); diff != "" {
				return fmt.Errorf("desired replicas (-want +got):\n%s\nstatus %+v", diff, c.d.Status())
			}
			return nil
		})
	}
	wantDesired(30*time.Second, map[discovery.Workload]int{shop("checkout"): 3, shop("db"): 2, shop("node-agent"): 4, shop("legacy"): 2})
	if st := c.d.Status(); st.ReplicasError != "" {
		t.Errorf("replicas error %q with the chart's rules", st.ReplicasError)
	}

	steps := []struct {
		name   string
		change func()
		want   map[discovery.Workload]int
	}{
		{"scale down", func() { w.scaleDeployment("shop", "checkout", 1) },
			map[discovery.Workload]int{shop("checkout"): 1, shop("db"): 2, shop("node-agent"): 4, shop("legacy"): 2}},
		{"scale up", func() { w.scaleDeployment("shop", "checkout", 4) },
			map[discovery.Workload]int{shop("checkout"): 4, shop("db"): 2, shop("node-agent"): 4, shop("legacy"): 2}},
		// A rollout: the Deployment controller makes a new ReplicaSet and moves the
		// replicas over; the Deployment's replicas stay the count.
		{"rollout", func() {
			w.replicaSet("shop", "checkout-7c8d9e0f1", 2, withHash(selected, "7c8d9e0f1"), checkout)
		}, map[discovery.Workload]int{shop("checkout"): 4, shop("db"): 2, shop("node-agent"): 4, shop("legacy"): 2}},
		{"replicaset scaled", func() {
			rs, err := cs.AppsV1().ReplicaSets("shop").Get(ctx, "legacy", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rs.Spec.Replicas = ptr.To[int32](5)
			if _, err := cs.AppsV1().ReplicaSets("shop").Update(ctx, rs, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}, map[discovery.Workload]int{shop("checkout"): 4, shop("db"): 2, shop("node-agent"): 4, shop("legacy"): 5}},
		{"deleted", func() {
			if err := cs.AppsV1().StatefulSets("shop").Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, map[discovery.Workload]int{shop("checkout"): 4, shop("node-agent"): 4, shop("legacy"): 5}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			start := time.Now()
			s.change()
			wantDesired(promptly, s.want)
			t.Logf("seen after %v", time.Since(start).Round(time.Millisecond))
		})
	}
}
