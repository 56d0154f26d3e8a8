package charts

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/testenv"
)

// restrictedNamespace creates a namespace that enforces (and warns about) the restricted
// Pod Security profile.
func restrictedNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
		"pod-security.kubernetes.io/warn":            "restricted",
	}}}
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// TestInstall installs the chart with helm into a real kube-apiserver (envtest), in a
// namespace that enforces the restricted Pod Security profile, and checks what a cluster
// administrator would: every object is accepted, pods made from every rendered pod
// template are admitted, the RBAC objects carry exactly the rules of rbac-rules.yaml and
// grant the ServiceAccount those rights and no others, and uninstall removes it all.
// There is no scheduler or kubelet here, so nothing runs (hence no --wait).
func TestInstall(t *testing.T) {
	// Skip (or fail under FAULTLINE_REQUIRE_ALL) before starting an API server.
	testbin.Tool(t, "helm", "make tools installs it into bin/")
	env := testenv.Start(t)
	ctx := context.Background()

	rec := &testenv.Warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = rec
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := testenv.LoadRules()
	if err != nil {
		t.Fatal(err)
	}

	restrictedNamespace(t, cs, namespace)

	// The control: PodSecurity admission is on in this API server, so a pod that breaks
	// the profile is refused. Without this the checks below could pass vacuously.
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "not-restricted", Namespace: namespace},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example/app:1"}}},
	}
	_, err = cs.CoreV1().Pods(namespace).Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "restricted:latest"`) {
		t.Fatalf("a pod without a security context was not refused by PodSecurity admission: %v", err)
	}

	out, err := helm(t, "install", release, chartDir, "--kubeconfig", env.Kubeconfig, "--namespace", namespace,
		"--values", filepath.Join(chartDir, "ci", "demo-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "port-forward service/faultline 3001:3001") {
		t.Errorf("install notes lack the port-forward command:\n%s", out)
	}
	status, err := helm(t, "status", release, "--kubeconfig", env.Kubeconfig, "--namespace", namespace)
	if err != nil || !strings.Contains(status, "STATUS: deployed") {
		t.Fatalf("release is not deployed: %v\n%s", err, status)
	}

	manifestText, err := helm(t, "get", "manifest", release, "--kubeconfig", env.Kubeconfig, "--namespace", namespace)
	if err != nil {
		t.Fatal(err)
	}
	m := parseManifest(t, manifestText)
	t.Run("every object is stored", func(t *testing.T) {
		kinds := map[string]int{}
		for _, o := range m {
			meta := o.(metav1.Object)
			gvk := o.GetObjectKind().GroupVersionKind()
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			if err := cl.Get(ctx, client.ObjectKey{Namespace: meta.GetNamespace(), Name: meta.GetName()}, u); err != nil {
				t.Errorf("%s %s/%s: %v", gvk.Kind, meta.GetNamespace(), meta.GetName(), err)
			}
			kinds[gvk.Kind]++
		}
		// The aggregator's and the injector's objects, and a Deployment and a Service per
		// demo service.
		want := map[string]int{"ServiceAccount": 2, "ConfigMap": 2, "Secret": 1, "Service": 2 + len(demoRoles), "Deployment": 2 + len(demoRoles),
			"ClusterRole": 3, "ClusterRoleBinding": 3, "Role": 2, "RoleBinding": 2, "MutatingWebhookConfiguration": 1}
		if diff := cmp.Diff(want, kinds); diff != "" {
			t.Errorf("installed kinds (-want +got):\n%s", diff)
		}
	})

	t.Run("pods from every template pass the restricted profile", func(t *testing.T) {
		hooks, err := helm(t, "get", "hooks", release, "--kubeconfig", env.Kubeconfig, "--namespace", namespace)
		if err != nil {
			t.Fatal(err)
		}
		// The Deployments as the API server stored them (defaults filled in), and the
		// helm test Pod.
		templates := map[string]corev1.PodTemplateSpec{}
		deps, err := cs.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deps.Items {
			templates[d.Name] = d.Spec.Template
		}
		for name, tmpl := range podTemplates(parseManifest(t, hooks)) {
			templates[name] = tmpl
		}
		want := []string{fullname, fullname + "-test", fullname + "-injector"}
		for _, role := range demoRoles {
			want = append(want, demoName(role))
		}
		for _, name := range want {
			tmpl, ok := templates[name]
			if !ok {
				t.Fatalf("no pod template %s among %v", name, keys(templates))
			}
			rec.Take()
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-", Namespace: namespace, Labels: tmpl.Labels, Annotations: tmpl.Annotations},
				Spec:       tmpl.Spec,
			}
			created, err := cs.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Errorf("pod from %s refused: %v", name, err)
				continue
			}
			if w := rec.Take(); len(w) > 0 {
				t.Errorf("pod from %s admitted with warnings: %q", name, w)
			}
			if strings.HasPrefix(name, fullname+"-demo-") {
				sidecar := created.Spec.InitContainers[0]
				if sidecar.RestartPolicy == nil || *sidecar.RestartPolicy != corev1.ContainerRestartPolicyAlways {
					t.Error("the API server dropped the sidecar's restartPolicy: Always")
				}
			}
		}
	})

	t.Run("RBAC is rbac-rules.yaml, bound to the ServiceAccount", func(t *testing.T) {
		cr, err := cs.RbacV1().ClusterRoles().Get(ctx, namespace+"-"+fullname+"-discovery", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(rules.Discovery, cr.Rules); diff != "" {
			t.Errorf("ClusterRole rules differ from rbac-rules.yaml discovery (-file +installed):\n%s", diff)
		}
		role, err := cs.RbacV1().Roles(namespace).Get(ctx, fullname+"-leader-election", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(rules.LeaderElection, role.Rules); diff != "" {
			t.Errorf("leader-election Role rules differ from rbac-rules.yaml (-file +installed):\n%s", diff)
		}
		sa := serviceAccountUser(namespace, fullname)
		checkAccess(t, cs, sa, rules.Discovery, "any-namespace", true)
		checkAccess(t, cs, sa, rules.LeaderElection, namespace, true)
		checkAccess(t, cs, sa, []rbacv1.PolicyRule{
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"update"}},
		}, "any-namespace", false)
		checkAccess(t, cs, sa, []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets", "configmaps"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"delete", "update"}},
		}, namespace, false)
	})

	t.Run("the AgentProfile CRD is installed", func(t *testing.T) {
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		if err := cl.Get(ctx, client.ObjectKey{Name: "agentprofiles.faultline.dev"}, crd); err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		established := false
		for _, c := range conds {
			c := c.(map[string]any)
			established = established || c["type"] == "Established" && c["status"] == "True"
		}
		if !established {
			t.Errorf("CRD agentprofiles.faultline.dev is not established: %v", conds)
		}
	})

	t.Run("the injector's RBAC is injector-rbac-rules.yaml, bound to its ServiceAccount", func(t *testing.T) {
		name := fullname + "-injector"
		irules, err := testenv.LoadInjectorRules(namespace+"-"+name, name+"-tls")
		if err != nil {
			t.Fatal(err)
		}
		for role, want := range map[string][]rbacv1.PolicyRule{namespace + "-" + name: irules.Cluster, namespace + "-" + name + "-certs": irules.CertRotationCluster} {
			cr, err := cs.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, cr.Rules); diff != "" {
				t.Errorf("ClusterRole %s differs from injector-rbac-rules.yaml (-file +installed):\n%s", role, diff)
			}
		}
		role, err := cs.RbacV1().Roles(namespace).Get(ctx, name+"-certs", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(irules.CertRotationNamespace, role.Rules); diff != "" {
			t.Errorf("Role %s differs from injector-rbac-rules.yaml (-file +installed):\n%s", role.Name, diff)
		}
		sa := serviceAccountUser(namespace, name)
		checkAccess(t, cs, sa, irules.Cluster, "any-namespace", true)
		checkAccess(t, cs, sa, irules.CertRotationCluster, "", true)
		checkAccess(t, cs, sa, irules.CertRotationNamespace, namespace, true)
		checkAccess(t, cs, sa, []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "update"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "delete", "patch", "update"}},
			{APIGroups: []string{"faultline.dev"}, Resources: []string{"agentprofiles"}, Verbs: []string{"create", "update", "delete"}},
		}, "any-namespace", false)
		checkAccess(t, cs, sa, []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"faultline-token"}, Verbs: []string{"get", "update"}},
		}, namespace, false)
		checkAccess(t, cs, sa, []rbacv1.PolicyRule{
			{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, ResourceNames: []string{"someone-elses"}, Verbs: []string{"update", "delete"}},
			{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"validatingwebhookconfigurations"}, Verbs: []string{"list", "update"}},
		}, "", false)
	})

	t.Run("namespaced release gets Roles only where it watches", func(t *testing.T) {
		const scoped = "scoped"
		restrictedNamespace(t, cs, scoped)
		env.CreateNamespace(t, "shop")
		_, err := helm(t, "install", scoped, chartDir, "--kubeconfig", env.Kubeconfig, "--namespace", scoped,
			"--set", "aggregator.watchNamespaces={scoped,shop}", "--set", "demo.enabled=true")
		if err != nil {
			t.Fatal(err)
		}
		name := scoped + "-faultline"
		for _, ns := range []string{scoped, "shop"} {
			role, err := cs.RbacV1().Roles(ns).Get(ctx, name+"-discovery", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(rules.Discovery, role.Rules); diff != "" {
				t.Errorf("Role %s/%s rules differ from rbac-rules.yaml discovery (-file +installed):\n%s", ns, role.Name, diff)
			}
		}
		// The one ClusterRole: the injector's, for its own (cluster-scoped) webhook
		// configuration.
		crs, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + scoped})
		if err != nil || len(crs.Items) != 1 || crs.Items[0].Name != scoped+"-"+name+"-injector-certs" {
			t.Errorf("namespaced release created ClusterRoles %v (%v), want only the injector's certificate rotation", crs.Items, err)
		}
		sa := serviceAccountUser(scoped, name)
		checkAccess(t, cs, sa, rules.Discovery, "shop", true)
		checkAccess(t, cs, sa, rules.Discovery, "any-namespace", false)
		irules, err := testenv.LoadInjectorRules(scoped+"-"+name+"-injector", name+"-injector-tls")
		if err != nil {
			t.Fatal(err)
		}
		injector := serviceAccountUser(scoped, name+"-injector")
		checkAccess(t, cs, injector, irules.Cluster, "shop", true)
		checkAccess(t, cs, injector, irules.Cluster, "any-namespace", false)
	})

	t.Run("uninstall removes cluster-wide objects", func(t *testing.T) {
		if _, err := helm(t, "uninstall", release, "--kubeconfig", env.Kubeconfig, "--namespace", namespace); err != nil {
			t.Fatal(err)
		}
		_, err := cs.RbacV1().ClusterRoles().Get(ctx, namespace+"-"+fullname+"-discovery", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRole after uninstall: %v, want not found", err)
		}
	})
}

type subject struct {
	user   string
	groups []string
}

func serviceAccountUser(ns, name string) subject {
	return subject{
		user:   fmt.Sprintf("system:serviceaccount:%s:%s", ns, name),
		groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
}

// checkAccess asks the API server's authorizer (SubjectAccessReview) whether who may do
// every verb on every resource of rules in ns, and fails unless the answer is want.
// RBAC objects take effect asynchronously, so a missing grant is retried briefly.
func checkAccess(t *testing.T, cs kubernetes.Interface, who subject, rules []rbacv1.PolicyRule, ns string, want bool) {
	t.Helper()
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, group := range r.APIGroups {
			for _, res := range r.Resources {
				for _, verb := range r.Verbs {
					for _, name := range names {
						resource, sub, _ := strings.Cut(res, "/")
						sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
							User: who.user, Groups: who.groups,
							ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: sub, Name: name},
						}}
						var allowed bool
						deadline := time.Now().Add(5 * time.Second)
						for {
							got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
							if err != nil {
								t.Fatalf("SubjectAccessReview: %v", err)
							}
							allowed = got.Status.Allowed
							if allowed == want || !want || time.Now().After(deadline) {
								break
							}
							time.Sleep(50 * time.Millisecond)
						}
						if allowed != want {
							t.Errorf("%s may %s %s.%s %q in %q: %v, want %v", who.user, verb, res, group, name, ns, allowed, want)
						}
					}
				}
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
