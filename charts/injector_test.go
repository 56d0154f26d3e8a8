package charts

import (
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/injector/inject"
	"github.com/faultline-dev/faultline/injector/webhook"
	"github.com/faultline-dev/faultline/internal/testbin"
)

var update = flag.Bool("update", false, "rewrite injector/inject/testdata/sidecar.yaml from the chart")

const injectorName = fullname + "-injector"

// injectionTemplate is the sidecar template the chart gives the injector, parsed as the
// injector parses it.
func injectionTemplate(t *testing.T, m manifest) *inject.Template {
	t.Helper()
	cm := one[*corev1.ConfigMap](t, m, injectorName)
	tmpl, err := inject.ParseTemplate([]byte(cm.Data["sidecar.yaml"]))
	if err != nil {
		t.Fatalf("the injector refuses the chart's sidecar template: %v\n%s", err, cm.Data["sidecar.yaml"])
	}
	return tmpl
}

// TestInjectorMatchesHandWrittenSidecar is the one-source-of-truth check: the demo's
// pods carry the agent written by hand in the chart (faultline.agentSidecar); the same
// pods without any faultline YAML, passed through the injector with the template the
// chart renders for it, must come out the same, whatever the agent values say. The one
// difference is the workload name the demo passes, which injected agents leave to the
// aggregator (it reads it from the pod's owner).
func TestInjectorMatchesHandWrittenSidecar(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"defaults": {"--set", "demo.enabled=true"},
		"agent values": {"--set", "demo.enabled=true", "--set", "agent.sampleInterval=500ms", "--set", "agent.logLevel=debug",
			"--set", "agent.resources.limits.cpu=200m", "--set", "agent.image.pullPolicy=Always",
			"--set", "agent.image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		"selector": {"--set", "demo.enabled=true", "--set", "aggregator.agentSelector.team=shop"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := render(t, args...)
			tmpl := injectionTemplate(t, m)
			for _, role := range demoRoles {
				demo := one[*appsv1.Deployment](t, m, demoName(role)).Spec.Template
				want := corev1.Pod{ObjectMeta: *demo.ObjectMeta.DeepCopy(), Spec: *demo.Spec.DeepCopy()}
				want.Spec.InitContainers[0].Env = slices.DeleteFunc(want.Spec.InitContainers[0].Env, func(e corev1.EnvVar) bool {
					return e.Name == config.EnvName("workload")
				})
				plain := want.DeepCopy()
				plain.Spec.InitContainers = nil
				plain.Spec.ShareProcessNamespace = nil
				for k := range tmpl.Labels {
					delete(plain.Labels, k)
				}
				res := tmpl.Inject(plain, inject.NamespaceWide, nil)
				if res.Outcome != inject.Injected {
					t.Fatalf("%s: outcome %v, problems %q", role, res.Outcome, res.Problems)
				}
				if diff := cmp.Diff(want.Spec, res.Pod.Spec); diff != "" {
					t.Errorf("%s: injected pod spec differs from the hand-written one (-hand +injected):\n%s", role, diff)
				}
				if diff := cmp.Diff(want.Labels, res.Pod.Labels); diff != "" {
					t.Errorf("%s: labels (-hand +injected):\n%s", role, diff)
				}
			}
		})
	}
}

// TestInjectionTemplateGolden keeps the injector's unit-test input
// (injector/inject/testdata/sidecar.yaml) equal to what the chart renders with its
// defaults; -update rewrites it.
func TestInjectionTemplateGolden(t *testing.T) {
	t.Parallel()
	cm := one[*corev1.ConfigMap](t, render(t), injectorName)
	path := filepath.Join(testbin.RepoRoot(), "injector", "inject", "testdata", "sidecar.yaml")
	if *update {
		if err := os.WriteFile(path, []byte(cm.Data["sidecar.yaml"]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(golden), cm.Data["sidecar.yaml"]); diff != "" {
		t.Errorf("%s differs from the chart's rendering; run go test ./charts -run TestInjectionTemplateGolden -update (-file +chart):\n%s", path, diff)
	}
}

// injectorConfig loads the injector's settings file as the injector does in its pod.
func injectorConfig(t *testing.T, m manifest) config.Injector {
	t.Helper()
	d := one[*appsv1.Deployment](t, m, injectorName)
	c := d.Spec.Template.Spec.Containers[0]
	cm := one[*corev1.ConfigMap](t, m, injectorName)
	file := filepath.Join(t.TempDir(), "injector.yaml")
	if err := os.WriteFile(file, []byte(cm.Data["injector.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Args, []string{"--config=/etc/faultline/injector.yaml"}) {
		t.Fatalf("injector args %q", c.Args)
	}
	cfg, err := config.LoadInjector([]string{"--config=" + file}, func(string) string { return "" })
	if err != nil {
		t.Fatalf("the injector refuses the rendered settings file:\n%s\n%v", cm.Data["injector.yaml"], err)
	}
	// The files it names are where the Deployment mounts them.
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm.Name
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	if v := volumes[mounts[filepath.Dir(cfg.SidecarTemplate)]]; v.ConfigMap == nil || v.ConfigMap.Name != injectorName {
		t.Errorf("sidecar-template %s is not in the injector's ConfigMap", cfg.SidecarTemplate)
	}
	if v := volumes[mounts[cfg.CertDir]]; v.Secret == nil || v.Secret.SecretName != injectorName+"-tls" {
		t.Errorf("cert-dir %s is not the certificate Secret %s-tls", cfg.CertDir, injectorName)
	}
	return cfg
}

func TestInjectorObjects(t *testing.T) {
	t.Parallel()
	m := render(t)
	d := one[*appsv1.Deployment](t, m, injectorName)
	spec := d.Spec.Template.Spec
	restricted(t, "injector", spec.Containers[0].SecurityContext)
	if spec.ServiceAccountName != injectorName {
		t.Errorf("serviceAccountName %q, want its own, %q", spec.ServiceAccountName, injectorName)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation: a new sidecar template would not roll the injector")
	}
	cfg := injectorConfig(t, m)
	type settings struct {
		Listen, Probes, Secret, Webhook, Service, Namespace string
		Excluded                                            []string
	}
	got := settings{cfg.Listen, cfg.ProbeListen, cfg.CertSecret, cfg.WebhookConfiguration, cfg.ServiceName, cfg.Namespace, cfg.ExcludeNamespaces}
	want := settings{":9443", ":8081", injectorName + "-tls", namespace + "-" + injectorName, injectorName, namespace, []string{"kube-system", "kube-public", namespace}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("injector settings (-want +got):\n%s", diff)
	}
	ports := map[string]int32{}
	for _, p := range spec.Containers[0].Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["webhook"] != 9443 || ports["probes"] != 8081 {
		t.Errorf("container ports %v, want webhook 9443 (listen) and probes 8081 (probe-listen)", ports)
	}
	if p := spec.Containers[0].ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v is not /readyz: the Service would send the API server to an injector without its certificate", p)
	}
	svc := one[*corev1.Service](t, m, injectorName)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not select the injector pods", svc.Spec.Selector)
	}
	if aggregator := one[*appsv1.Deployment](t, m, fullname); labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(aggregator.Spec.Template.Labels)) {
		t.Error("the injector's Service selects the aggregator pods")
	}
	if svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.String() != "webhook" {
		t.Errorf("Service port %+v, want 443 -> webhook", svc.Spec.Ports[0])
	}
	if s := one[*corev1.Secret](t, m, injectorName+"-tls"); len(s.Data)+len(s.StringData) != 0 {
		t.Error("the chart writes the certificate Secret's data; the injector owns it")
	}

	mwc := one[*admissionregv1.MutatingWebhookConfiguration](t, m, namespace+"-"+injectorName)
	paths := map[string]string{}
	for _, w := range mwc.Webhooks {
		paths[w.Name] = *w.ClientConfig.Service.Path
		if w.FailurePolicy == nil || *w.FailurePolicy != admissionregv1.Ignore {
			t.Errorf("%s: failurePolicy %v, want Ignore: nothing a user deploys may wait on faultline", w.Name, w.FailurePolicy)
		}
		if w.TimeoutSeconds == nil || *w.TimeoutSeconds != 2 {
			t.Errorf("%s: timeoutSeconds %v, want 2", w.Name, w.TimeoutSeconds)
		}
		if *w.SideEffects != admissionregv1.SideEffectClassNoneOnDryRun || *w.ReinvocationPolicy != admissionregv1.IfNeededReinvocationPolicy {
			t.Errorf("%s: sideEffects %v, reinvocationPolicy %v", w.Name, *w.SideEffects, *w.ReinvocationPolicy)
		}
		if s := w.ClientConfig.Service; s.Name != injectorName || s.Namespace != namespace || *s.Port != 443 {
			t.Errorf("%s calls %+v, want the injector's Service", w.Name, s)
		}
		if len(w.Rules) != 1 || !slices.Equal(w.Rules[0].Operations, []admissionregv1.OperationType{admissionregv1.Create}) ||
			!slices.Equal(w.Rules[0].Resources, []string{"pods"}) {
			t.Errorf("%s rules %+v, want pod creation only", w.Name, w.Rules)
		}
	}
	if diff := cmp.Diff(map[string]string{"namespace.inject.faultline.dev": webhook.PathNamespace, "pod.inject.faultline.dev": webhook.PathPod}, paths); diff != "" {
		t.Errorf("webhook paths (-want +got):\n%s", diff)
	}
}

// TestInjectorSelectors checks which namespaces and pods each webhook configuration sends
// to the injector, by evaluating its selectors on namespace and pod labels as the API
// server does.
func TestInjectorSelectors(t *testing.T) {
	t.Parallel()
	ns := func(name string, kv ...string) labels.Set {
		l := labels.Set{"kubernetes.io/metadata.name": name}
		for i := 0; i < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return l
	}
	pod := func(kv ...string) labels.Set {
		l := labels.Set{"app": "shop"}
		for i := 0; i < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return l
	}
	type place struct {
		name    string
		ns, pod labels.Set
		want    string // the webhook that gets the pod, or ""
	}
	places := []place{
		{name: "enabled namespace", ns: ns("shop", "faultline.dev/inject", "enabled"), pod: pod(), want: "namespace"},
		{name: "enabled namespace, pod opts out by label", ns: ns("shop", "faultline.dev/inject", "enabled"), pod: pod("faultline.dev/inject", "false")},
		{name: "plain namespace, plain pod", ns: ns("shop"), pod: pod(), want: "pod"},
		{name: "plain namespace, pod labelled true", ns: ns("shop"), pod: pod("faultline.dev/inject", "true"), want: "pod"},
		{name: "disabled namespace", ns: ns("shop", "faultline.dev/inject", "disabled"), pod: pod("faultline.dev/inject", "true")},
		{name: "kube-system enabled", ns: ns("kube-system", "faultline.dev/inject", "enabled"), pod: pod()},
		{name: "kube-public", ns: ns("kube-public"), pod: pod("faultline.dev/inject", "true")},
		{name: "release namespace enabled", ns: ns(namespace, "faultline.dev/inject", "enabled"), pod: pod()},
	}
	tests := []struct {
		name string
		args []string
		// want overrides places' want by place name
		want map[string]string
	}{
		{"podOptIn annotation (default)", nil, nil},
		{"podOptIn label", []string{"--set", "injector.podOptIn=label"}, map[string]string{"plain namespace, plain pod": ""}},
		{"podOptIn off", []string{"--set", "injector.podOptIn=off"}, map[string]string{"plain namespace, plain pod": "", "plain namespace, pod labelled true": ""}},
		{"excluded namespace", []string{"--set", "injector.excludeNamespaces={shop}"}, map[string]string{
			"enabled namespace": "", "plain namespace, plain pod": "", "plain namespace, pod labelled true": ""}},
		{"watched namespaces only", []string{"--set", "aggregator.watchNamespaces={payments}"}, map[string]string{
			"enabled namespace": "", "plain namespace, plain pod": "", "plain namespace, pod labelled true": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mwc := one[*admissionregv1.MutatingWebhookConfiguration](t, render(t, tt.args...), namespace+"-"+injectorName)
			for _, p := range places {
				want := p.want
				if w, ok := tt.want[p.name]; ok {
					want = w
				}
				var got []string
				for _, w := range mwc.Webhooks {
					nsSel, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
					if err != nil {
						t.Fatal(err)
					}
					objSel, err := metav1.LabelSelectorAsSelector(w.ObjectSelector)
					if err != nil {
						t.Fatal(err)
					}
					if nsSel.Matches(p.ns) && objSel.Matches(p.pod) {
						got = append(got, strings.TrimSuffix(w.Name, ".inject.faultline.dev"))
					}
				}
				if want == "" && len(got) > 0 || want != "" && !slices.Equal(got, []string{want}) {
					t.Errorf("%s: sent to %q, want %q", p.name, got, want)
				}
			}
		})
	}
}

func TestInjectorOptions(t *testing.T) {
	t.Parallel()
	t.Run("cert-manager", func(t *testing.T) {
		t.Parallel()
		m := render(t, "--set", "injector.certManager.enabled=true")
		cfg := injectorConfig(t, m)
		if cfg.CertSecret != "" {
			t.Errorf("cert-secret %q with cert-manager: the injector would rotate a certificate cert-manager owns", cfg.CertSecret)
		}
		if n := len(objects[*corev1.Secret](m)); n != 0 {
			t.Errorf("%d Secrets rendered: cert-manager makes the certificate's", n)
		}
		mwc := one[*admissionregv1.MutatingWebhookConfiguration](t, m, namespace+"-"+injectorName)
		if got := mwc.Annotations["cert-manager.io/inject-ca-from"]; got != namespace+"/"+injectorName {
			t.Errorf("inject-ca-from %q, want %s/%s", got, namespace, injectorName)
		}
		kinds := map[string]*unstructured.Unstructured{}
		for _, u := range objects[*unstructured.Unstructured](m) {
			kinds[u.GetKind()] = u
		}
		cert, issuer := kinds["Certificate"], kinds["Issuer"]
		if cert == nil || issuer == nil {
			t.Fatalf("want a Certificate and a self-signed Issuer, got %v", slices.Collect(maps.Keys(kinds)))
		}
		secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
		names, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
		issuerName, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
		if secret != injectorName+"-tls" || !slices.Contains(names, injectorName+"."+namespace+".svc") || issuerName != issuer.GetName() {
			t.Errorf("Certificate: secret %q, names %q, issuer %q", secret, names, issuerName)
		}
		m = render(t, "--set", "injector.certManager.enabled=true", "--set", "injector.certManager.issuerRef.kind=ClusterIssuer", "--set", "injector.certManager.issuerRef.name=corp-ca")
		for _, u := range objects[*unstructured.Unstructured](m) {
			if u.GetKind() == "Issuer" {
				t.Error("an Issuer is rendered although issuerRef names one")
			}
		}
	})
	t.Run("two replicas with a disruption budget", func(t *testing.T) {
		t.Parallel()
		m := render(t, "--set", "injector.replicas=2", "--set", "injector.podDisruptionBudget.enabled=true")
		d := one[*appsv1.Deployment](t, m, injectorName)
		pdb := one[*policyv1.PodDisruptionBudget](t, m, injectorName)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) || *d.Spec.Replicas != 2 || pdb.Spec.MinAvailable.IntValue() != 1 {
			t.Errorf("replicas %d; PodDisruptionBudget %v minAvailable %v does not select the injector pods (%v)", *d.Spec.Replicas, pdb.Spec.Selector, pdb.Spec.MinAvailable, err)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"--set", "injector.enabled=false"}, {"--set", "aggregator.enabled=false"}} {
			for _, o := range render(t, args...) {
				if name := o.(metav1.Object).GetName(); strings.Contains(name, "injector") {
					t.Errorf("%q: %s %s rendered", args, o.GetObjectKind().GroupVersionKind().Kind, name)
				}
			}
		}
	})
}
