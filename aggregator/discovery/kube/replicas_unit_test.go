package kube

import (
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
)

func TestWorkloadRequest(t *testing.T) {
	type res struct {
		Resource, Scope string
		Watch, OK       bool
	}
	tests := []struct {
		method, url string
		want        res
	}{
		{"GET", "/apis/apps/v1/namespaces/shop/deployments?limit=500", res{"deployments", "shop", false, true}},
		{"GET", "/apis/apps/v1/daemonsets?watch=true", res{"daemonsets", "", true, true}},
		{"GET", "/apis/apps/v1/namespaces/shop/replicasets?labelSelector=a%3Db&watch=1", res{"replicasets", "shop", true, true}},
		{"GET", "/apis/apps/v1/namespaces/shop/statefulsets/db", res{}},
		{"GET", "/apis/apps/v1/namespaces/shop/controllerrevisions", res{}},
		{"GET", "/api/v1/namespaces/shop/pods", res{}},
		{"PUT", "/apis/apps/v1/namespaces/shop/deployments", res{}},
	}
	for _, tt := range tests {
		var got res
		got.Resource, got.Scope, got.Watch, got.OK = workloadRequest(httptest.NewRequest(tt.method, "https://api.example"+tt.url, nil))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", tt.method, tt.url, diff)
		}
	}
}

func TestSummarizeWorkload(t *testing.T) {
	sel := labels.SelectorFromSet(selected)
	tmpl := func(l map[string]string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}}
	}
	meta := metav1.ObjectMeta{Name: "x", Namespace: "shop", UID: "u1", ResourceVersion: "7", Labels: map[string]string{"big": "label"},
		Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}}
	owned := meta
	owned.OwnerReferences = []metav1.OwnerReference{{Kind: "Deployment", Name: "x", Controller: ptr.To(true)}}
	type sum struct {
		Selected bool
		Desired  int
	}
	tests := []struct {
		name string
		obj  any
		want sum
	}{
		{"deployment", &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Template: tmpl(selected)}}, sum{true, 3}},
		{"deployment, replicas unset", &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Template: tmpl(selected)}}, sum{true, 1}},
		{"deployment scaled to zero", &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Template: tmpl(selected)}}, sum{true, 0}},
		{"deployment of unselected pods", &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Template: tmpl(map[string]string{"app": "x"})}}, sum{false, 3}},
		{"statefulset", &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2), Template: tmpl(selected)}}, sum{true, 2}},
		{"daemonset: desired scheduled", &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Template: tmpl(selected)},
			Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 4}}, sum{true, 4}},
		{"replicaset of its own", &appsv1.ReplicaSet{ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Template: tmpl(selected)}}, sum{true, 2}},
		{"replicaset of a deployment", &appsv1.ReplicaSet{ObjectMeta: owned, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Template: tmpl(selected)}}, sum{false, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := summarizeWorkload(sel)(tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			w := out.(*cachedWorkload)
			if diff := cmp.Diff(tt.want, sum{w.selected, w.desired}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if w.Labels != nil || w.Annotations != nil || w.Name != "x" || w.UID != "u1" {
				t.Errorf("summary keeps more than the identity: %+v", w.ObjectMeta)
			}
			again, _ := summarizeWorkload(sel)(w)
			if again != any(w) {
				t.Error("the transform is not idempotent")
			}
		})
	}
}
