//go:build e2e

// The injector on a running installation (the chart installs it by default): a plain
// Deployment in a namespace labelled faultline.dev/inject=enabled gets the agent and the
// aggregator connects to it; how much later its pods are Ready than those of the same
// Deployment with the sidecar written by hand; and that each right the chart gives the
// injector is one it uses.
//
// The workload is the chart's own demo image (the payments service of the installed
// demo, which these tests read from the release namespace), so nothing outside the
// installation is pulled. TestInjectorRulesEachNeeded changes the injector's RBAC and
// restarts it, restoring both at the end: run it on a test cluster only.
//
// Environment, besides e2e_test.go's: FAULTLINE_E2E_READY_ROUNDS (default 3): rounds of
// the Ready-time comparison.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/internal/testbin"
)

// testNamespace creates a namespace that enforces the restricted Pod Security profile,
// with extra labels, and deletes it when the test ends.
func (c *cluster) testNamespace(t *testing.T, name string, extra map[string]string) {
	t.Helper()
	labels := map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	}
	for k, v := range extra {
		labels[k] = v
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = c.cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// waitInjecting waits until the API server's calls to the injector work for namespace ns:
// a pod of the demo's payments service without any faultline YAML, created there with a
// server-side dry run, comes back with the agent. (The webhook fails open, so until the
// injector serves with its certificate in place, pods are created without the agent.)
func (c *cluster) waitInjecting(t *testing.T, ns string) {
	t.Helper()
	tmpl := plain(c.demoTemplate(t), "probe")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: ns, Labels: tmpl.Labels}, Spec: tmpl.Spec}
	testbin.Eventually(t, c.timeout, func() error {
		got, err := c.cs.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return fmt.Errorf("dry-run create in %s: %w", ns, err)
		}
		if !slices.ContainsFunc(got.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == agentContainer }) {
			return fmt.Errorf("a pod created in %s does not get the agent: is the injector serving?", ns)
		}
		return nil
	})
}

// demoTemplate is the pod template of the installed demo's payments service, a real
// application with the agent written by hand (faultline.agentSidecar).
func (c *cluster) demoTemplate(t *testing.T) corev1.PodTemplateSpec {
	t.Helper()
	list, err := c.cs.AppsV1().Deployments(c.namespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: c.selector("demo") + ",faultline.dev/demo-role=payments"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("want the demo's payments Deployment in %s (install the chart with demo.enabled=true), found %d", c.namespace, len(list.Items))
	}
	return list.Items[0].Spec.Template
}

// handWritten is the demo's pod template for a Deployment of that name: the agent
// written by hand, the workload it reports renamed, and the pod opted out of the
// injector, so that the API server does not even call it.
func handWritten(demo corev1.PodTemplateSpec, name string) corev1.PodTemplateSpec {
	tmpl := *demo.DeepCopy()
	tmpl.Labels = map[string]string{"app": name, "faultline.dev/agent": "true", v1alpha1.LabelInject: "false"}
	tmpl.Annotations = nil
	for i, e := range tmpl.Spec.InitContainers[0].Env {
		if e.Name == "FAULTLINE_WORKLOAD" {
			tmpl.Spec.InitContainers[0].Env[i].Value = name
		}
	}
	return tmpl
}

// plain is the demo's pod template without any faultline YAML: no agent, no shared
// process namespace, no faultline label.
func plain(demo corev1.PodTemplateSpec, name string) corev1.PodTemplateSpec {
	tmpl := *demo.DeepCopy()
	tmpl.Labels = map[string]string{"app": name}
	tmpl.Annotations = nil
	tmpl.Spec.InitContainers = slices.DeleteFunc(tmpl.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == "faultline-agent" })
	tmpl.Spec.ShareProcessNamespace = nil
	return tmpl
}

// deploy creates a Deployment of tmpl in ns and returns when its pods (replicas) are all
// Ready, with how long that took from the create call.
func (c *cluster) deploy(t *testing.T, ns, name string, replicas int32, tmpl corev1.PodTemplateSpec) ([]corev1.Pod, time.Duration) {
	t.Helper()
	ctx := context.Background()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: tmpl,
		},
	}
	start := time.Now()
	if _, err := c.cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Deployment %s/%s: %v", ns, name, err)
	}
	var pods []corev1.Pod
	deadline := time.Now().Add(c.timeout)
	for {
		list, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			t.Fatal(err)
		}
		pods = list.Items
		readyPods := 0
		for _, p := range pods {
			if ready(p) {
				readyPods++
			}
		}
		if readyPods == int(replicas) && len(pods) == int(replicas) {
			return pods, time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Deployment %s/%s: %d of %d pods Ready after %v: %s", ns, name, readyPods, replicas, c.timeout, podStates(pods))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// undeploy deletes a Deployment and waits until its pods are gone.
func (c *cluster) undeploy(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	if err := c.cs.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	testbin.Eventually(t, c.timeout, func() error {
		list, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err == nil && len(list.Items) > 0 {
			err = fmt.Errorf("%d pods of %s left", len(list.Items), name)
		}
		return err
	})
}

func podStates(pods []corev1.Pod) string {
	var out []string
	for _, p := range pods {
		s := p.Name + " " + string(p.Status.Phase)
		for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil {
				s += " " + cs.Name + ":" + w.Reason
			}
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// TestInjectedDeploymentConnected deploys an application with no faultline YAML into a
// namespace labelled faultline.dev/inject=enabled: its pods run with the agent as a
// native sidecar, under the restricted Pod Security profile, and the aggregator
// connects to each agent and shows it with its workload, in the API and on the dashboard.
func TestInjectedDeploymentConnected(t *testing.T) {
	c := connect(t)
	ns := "faultline-e2e-inject"
	c.testNamespace(t, ns, map[string]string{v1alpha1.LabelInject: v1alpha1.NamespaceEnabled})
	c.waitInjecting(t, ns)
	pods, took := c.deploy(t, ns, "shop", 2, plain(c.demoTemplate(t), "shop"))
	t.Logf("2 injected pods Ready %v after the Deployment was created", took.Round(time.Millisecond))
	for _, p := range pods {
		if len(p.Spec.InitContainers) == 0 || p.Spec.InitContainers[0].Name != "faultline-agent" ||
			p.Spec.InitContainers[0].RestartPolicy == nil || *p.Spec.InitContainers[0].RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Fatalf("pod %s has no agent as a native sidecar: init containers %d", p.Name, len(p.Spec.InitContainers))
		}
		if p.Labels["faultline.dev/agent"] != "true" || p.Spec.ShareProcessNamespace == nil || !*p.Spec.ShareProcessNamespace {
			t.Errorf("pod %s: labels %v, shareProcessNamespace %v", p.Name, p.Labels, p.Spec.ShareProcessNamespace)
		}
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s is %s", p.Name, p.Status.Phase)
		}
	}
	var keys []string
	testbin.Eventually(t, c.timeout, func() error {
		agents, err := c.agents(ns)
		if err != nil {
			return err
		}
		keys = keys[:0]
		for _, p := range pods {
			a := agents[p.Name]
			if a.State != view.AgentConnected || a.Workload != "shop" {
				return fmt.Errorf("agent of %s: state %q (%s), workload %q; want connected, shop", p.Name, a.State, a.Reason, a.Workload)
			}
			keys = append(keys, a.Key)
		}
		return nil
	})
	// And the dashboard shows them.
	showsAgentsConnected(c.openDashboard(t), keys)

	// A pod whose annotation the injector cannot honour is created all the same, without
	// the agent, and the aggregator lists it as missing one, with the reason.
	bad := plain(c.demoTemplate(t), "bad")
	bad.Annotations = map[string]string{"faultline.dev/sample-interval": "fast"}
	pods, _ = c.deploy(t, ns, "bad", 1, bad)
	if len(pods[0].Spec.InitContainers) != 0 {
		t.Fatalf("pod %s got the agent despite its bad annotation", pods[0].Name)
	}
	testbin.Eventually(t, c.timeout, func() error {
		agents, err := c.agents(ns)
		if err != nil {
			return err
		}
		a := agents[pods[0].Name]
		if a.State != view.AgentMissing || !strings.Contains(a.Reason, `agent not injected: annotation faultline.dev/sample-interval="fast"`) {
			return fmt.Errorf("agent of %s: %q (%s), want missing with the injector's reason", pods[0].Name, a.State, a.Reason)
		}
		return nil
	})
}

// TestInjectedReadyTime measures, in one run, how long a Deployment's pods take to be
// Ready with the agent injected against the same Deployment with the sidecar written by
// hand (and not sent to the injector), alternating the two for some rounds, and logs the
// medians and their difference: the cost of injection end to end through the API server.
// It fails only if injection costs more than the pods' own start (a sign that it blocks
// something), since one run on a shared machine is not a benchmark.
func TestInjectedReadyTime(t *testing.T) {
	c := connect(t)
	rounds, err := strconv.Atoi(env("FAULTLINE_E2E_READY_ROUNDS", "3"))
	if err != nil || rounds < 1 {
		t.Fatalf("FAULTLINE_E2E_READY_ROUNDS: %q", env("FAULTLINE_E2E_READY_ROUNDS", "3"))
	}
	ns := "faultline-e2e-ready"
	c.testNamespace(t, ns, map[string]string{v1alpha1.LabelInject: v1alpha1.NamespaceEnabled})
	c.waitInjecting(t, ns)
	demo := c.demoTemplate(t)
	var injected, byHand []time.Duration
	for i := range rounds {
		name := fmt.Sprintf("injected-%d", i)
		pods, d := c.deploy(t, ns, name, 2, plain(demo, name))
		for _, p := range pods {
			if len(p.Spec.InitContainers) == 0 || p.Spec.InitContainers[0].Name != agentContainer {
				t.Fatalf("pod %s of %s was not injected: the comparison would measure nothing", p.Name, name)
			}
		}
		injected = append(injected, d)
		c.undeploy(t, ns, name)
		name = fmt.Sprintf("by-hand-%d", i)
		_, d = c.deploy(t, ns, name, 2, handWritten(demo, name))
		byHand = append(byHand, d)
		c.undeploy(t, ns, name)
	}
	median := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	mi, mh := median(injected), median(byHand)
	t.Logf("Ready after create, 2 pods, %d rounds: injected median %v %v, by hand median %v %v; injection adds %v",
		rounds, mi.Round(time.Millisecond), injected, mh.Round(time.Millisecond), byHand, (mi - mh).Round(time.Millisecond))
	if mi > 2*mh {
		t.Errorf("injected pods take %v to be Ready, more than twice the %v of the same pods written by hand", mi, mh)
	}
}

// injector is the installed injector: its Deployment, RBAC and certificate Secret.
type injector struct {
	c          *cluster
	deployment string
	roles      []rbacv1.Role        // as installed
	cluster    []rbacv1.ClusterRole // as installed
	secret     string
}

func (c *cluster) injector(t *testing.T) *injector {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: c.selector("injector")}
	deps, err := c.cs.AppsV1().Deployments(c.namespace).List(ctx, sel)
	if err != nil || len(deps.Items) != 1 {
		t.Fatalf("want the injector's Deployment (%s) in %s: %v", c.selector("injector"), c.namespace, err)
	}
	in := &injector{c: c, deployment: deps.Items[0].Name, secret: deps.Items[0].Name + "-tls"}
	roles, err := c.cs.RbacV1().Roles(c.namespace).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	in.roles = roles.Items
	crs, err := c.cs.RbacV1().ClusterRoles().List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	in.cluster = crs.Items
	if len(in.cluster) == 0 {
		t.Fatal("the injector has no ClusterRole: is the chart installed with injector.enabled?")
	}
	return in
}

// setRules writes rules into the named Role ("" namespace: ClusterRole).
func (in *injector) setRules(t *testing.T, ns, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	rbac := in.c.cs.RbacV1()
	var err error
	if ns == "" {
		var cr *rbacv1.ClusterRole
		if cr, err = rbac.ClusterRoles().Get(ctx, name, metav1.GetOptions{}); err == nil {
			cr.Rules = rules
			_, err = rbac.ClusterRoles().Update(ctx, cr, metav1.UpdateOptions{})
		}
	} else {
		var r *rbacv1.Role
		if r, err = rbac.Roles(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			r.Rules = rules
			_, err = rbac.Roles(ns).Update(ctx, r, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		t.Fatalf("set the rules of %s/%s: %v", ns, name, err)
	}
}

// setWatchList turns client-go's streaming lists off (off=true) or back on in the
// injector, through client-go's feature-gate environment variable; this rolls its pods.
func (in *injector) setWatchList(t *testing.T, off bool) {
	t.Helper()
	ctx := context.Background()
	deployments := in.c.cs.AppsV1().Deployments(in.c.namespace)
	// The Deployment controller writes its status meanwhile: read again on a conflict.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := deployments.Get(ctx, in.deployment, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := &d.Spec.Template.Spec.Containers[0]
		c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "KUBE_FEATURE_WatchListClient" })
		if off {
			c.Env = append(c.Env, corev1.EnvVar{Name: "KUBE_FEATURE_WatchListClient", Value: "false"})
		}
		_, err = deployments.Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("set the injector's streaming lists: %v", err)
	}
}

// restart rolls the injector's pods and returns the new ones once they run (Ready or
// not: without some rights they never are, and the old pods then stay too).
func (in *injector) restart(t *testing.T) []corev1.Pod {
	t.Helper()
	ctx := context.Background()
	token := time.Now().Format("20060102T150405.000000000")
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"faultline.dev/e2e-restart":%q}}}}}`, token)
	d, err := in.c.cs.AppsV1().Deployments(in.c.namespace).Patch(ctx, in.deployment, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	testbin.Eventually(t, in.c.timeout, func() error {
		pods = pods[:0]
		for _, p := range in.currentPods(t) {
			if p.Annotations["faultline.dev/e2e-restart"] == token && p.Status.Phase == corev1.PodRunning {
				pods = append(pods, p)
			}
		}
		if len(pods) != int(*d.Spec.Replicas) {
			return fmt.Errorf("%d new injector pods running, want %d", len(pods), *d.Spec.Replicas)
		}
		return nil
	})
	return pods
}

// waitReady waits until every injector pod is Ready.
func (in *injector) waitReady(t *testing.T) {
	t.Helper()
	testbin.Eventually(t, in.c.timeout, func() error {
		for _, p := range in.currentPods(t) {
			if !ready(p) {
				return fmt.Errorf("injector pod %s is not ready", p.Name)
			}
		}
		return nil
	})
}

// currentPods are the injector's pods now, but those being deleted.
func (in *injector) currentPods(t *testing.T) []corev1.Pod {
	list, err := in.c.cs.CoreV1().Pods(in.c.namespace).List(context.Background(), metav1.ListOptions{LabelSelector: in.c.selector("injector")})
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return p.DeletionTimestamp != nil })
}

// logs is what the pods wrote, with the JSON escaping of quotes undone.
func (in *injector) logs(pods []corev1.Pod) string {
	var b strings.Builder
	for _, p := range pods {
		raw, err := in.c.cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: "injector"}).DoRaw(context.Background())
		if err == nil {
			b.Write(bytes.ReplaceAll(raw, []byte(`\"`), []byte(`"`)))
		}
	}
	return b.String()
}

// TestInjectorRulesEachNeeded removes each verb of each rule the chart gives the
// injector, in turn, restarts the injector and waits until the API server refuses it
// exactly that (client-go logs the refusal with the verb and resource), then restores
// the rule. What makes the injector use every right: an AgentProfile whose status it
// keeps, two pods of one ReplicaSet it must refuse (one Event, then a patch counting it
// twice), a certificate Secret emptied before the runs that need to write it, and
// streaming lists turned off for the list verbs (where the API server offers them,
// client-go lists through a watch).
func TestInjectorRulesEachNeeded(t *testing.T) {
	c := connect(t)
	in := c.injector(t)
	ns := "faultline-e2e-rbac"
	c.testNamespace(t, ns, map[string]string{v1alpha1.LabelInject: v1alpha1.NamespaceEnabled})
	ctx := context.Background()
	profile := fmt.Sprintf(`{"apiVersion":"faultline.dev/v1alpha1","kind":"AgentProfile","metadata":{"name":"e2e","namespace":%q},"spec":{"selector":{}}}`, ns)
	if err := c.cs.CoreV1().RESTClient().Post().AbsPath("/apis/faultline.dev/v1alpha1/namespaces", ns, "agentprofiles").
		Body([]byte(profile)).SetHeader("Content-Type", "application/json").Do(ctx).Error(); err != nil {
		t.Fatalf("create AgentProfile: %v", err)
	}

	type target struct {
		ns, name string // ns "": a ClusterRole
		rules    []rbacv1.PolicyRule
	}
	var targets []target
	for _, cr := range in.cluster {
		targets = append(targets, target{"", cr.Name, cr.Rules})
	}
	for _, r := range in.roles {
		targets = append(targets, target{r.Namespace, r.Name, r.Rules})
	}
	// Whatever happens, the installed rules, streaming lists and a working injector are
	// what the test leaves.
	t.Cleanup(func() {
		for _, tg := range targets {
			in.setRules(t, tg.ns, tg.name, tg.rules)
		}
		in.setWatchList(t, false)
		in.restart(t)
		in.waitReady(t)
	})

	for _, tg := range targets {
		for i, rule := range tg.rules {
			for _, verb := range rule.Verbs {
				resource := rule.Resources[0]
				t.Run(tg.name+"/"+resource+"/"+verb, func(t *testing.T) {
					without := slices.Clone(tg.rules)
					without[i] = *rule.DeepCopy()
					without[i].Verbs = slices.DeleteFunc(slices.Clone(rule.Verbs), func(v string) bool { return v == verb })
					if len(without[i].Verbs) == 0 {
						without = slices.Delete(without, i, i+1)
					}
					in.setRules(t, tg.ns, tg.name, without)
					defer in.setRules(t, tg.ns, tg.name, tg.rules)
					in.setWatchList(t, verb == "list")
					if resource == "secrets" && verb == "update" {
						in.emptySecret(t)
					}
					in.restart(t)
					want := fmt.Sprintf("cannot %s resource %q", verb, resource)
					var triggered time.Time
					testbin.Eventually(t, c.timeout, func() error {
						// Every pod of the injector has the reduced rules (RBAC applies at
						// once), so a refusal in any of their logs shows the right is used.
						if strings.Contains(in.logs(in.currentPods(t)), want) {
							return nil
						}
						// Refused pods make the injector record Events; again every 15 s,
						// in case the first ones came before it served.
						if time.Since(triggered) > 15*time.Second && slices.ContainsFunc(in.currentPods(t), ready) {
							triggered = time.Now()
							in.refuseTwice(t, ns, fmt.Sprintf("rbac-%s-%s", strings.ReplaceAll(resource, "/", "-"), verb))
						}
						return fmt.Errorf("the injector's log does not say %q", want)
					})
				})
			}
		}
	}
}

// emptySecret empties the injector's certificate Secret, so that it must write a new one.
func (in *injector) emptySecret(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	secrets := in.c.cs.CoreV1().Secrets(in.c.namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error { // the injector may be writing it
		s, err := secrets.Get(ctx, in.secret, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Data = nil
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		t.Skipf("no Secret %s: the injector's certificate comes from cert-manager", in.secret)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// refuseTwice creates two pods of one (made-up) ReplicaSet with an annotation the
// injector refuses: one Event, then the same Event counted twice.
func (in *injector) refuseTwice(t *testing.T, ns, rs string) {
	t.Helper()
	for range 2 {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: rs + "-", Namespace: ns,
				Annotations: map[string]string{"faultline.dev/sample-interval": "fast"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs,
					UID: "e2e-" + types.UID(rs), Controller: ptr.To(true)}}},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
				Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", ImagePullPolicy: corev1.PullNever,
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), RunAsUser: ptr.To[int64](65535),
						Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
			},
		}
		if _, err := in.c.cs.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod: %v", err)
		}
	}
}
