package charts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/podtest"
	"github.com/faultline-dev/faultline/internal/testbin"
)

func TestLint(t *testing.T) {
	t.Parallel()
	for name, args := range valueCases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := helm(t, append([]string{"lint", "--strict", chartDir}, args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// TestRender renders the defaults and every ci file and checks what holds for all of them:
// every object is a valid Kubernetes object, lives in the release namespace (unless it
// is cluster-scoped or a per-namespace Role), and every image is pinned, by default to the
// chart's appVersion.
func TestRender(t *testing.T) {
	t.Parallel()
	version := appVersion(t)
	for name, args := range valueCases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := render(t, args...)
			if len(objects[*appsv1.Deployment](m)) == 0 {
				t.Fatal("no Deployment rendered")
			}
			for _, o := range m {
				meta := o.(metav1.Object)
				kind := o.GetObjectKind().GroupVersionKind().Kind
				switch kind {
				case "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration":
					if meta.GetNamespace() != "" {
						t.Errorf("%s %s has a namespace", kind, meta.GetName())
					}
				case "Role", "RoleBinding":
				default:
					if meta.GetNamespace() != namespace {
						t.Errorf("%s %s is in namespace %q, want the release namespace", kind, meta.GetName(), meta.GetNamespace())
					}
				}
				if meta.GetLabels()["app.kubernetes.io/instance"] != release {
					t.Errorf("%s %s lacks the release's instance label", kind, meta.GetName())
				}
			}
			for name, tmpl := range podTemplates(m) {
				for _, c := range append(slices.Clone(tmpl.Spec.InitContainers), tmpl.Spec.Containers...) {
					if strings.HasSuffix(c.Image, ":latest") || !strings.ContainsAny(c.Image, ":@") {
						t.Errorf("%s/%s: image %q is not pinned", name, c.Name, c.Image)
					}
					if args == nil && !strings.HasSuffix(c.Image, ":"+version) {
						t.Errorf("%s/%s: default image %q is not tagged with appVersion %s", name, c.Name, c.Image, version)
					}
				}
			}
		})
	}
}

// aggregatorConfig loads the settings file the chart renders with the aggregator's own
// loader, as the aggregator does in a pod (--config, in-cluster environment). Unknown
// keys are errors there, so this proves the file uses the aggregator's flag names.
func aggregatorConfig(t *testing.T, m manifest) config.Aggregator {
	t.Helper()
	d := one[*appsv1.Deployment](t, m, fullname)
	c := d.Spec.Template.Spec.Containers[0]
	var path string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			path = v
		}
	}
	if path == "" {
		t.Fatalf("aggregator args %q have no --config", c.Args)
	}
	// The file must come from the chart's ConfigMap, mounted where --config points.
	var volume string
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == filepath.Dir(path) {
			volume = vm.Name
		}
	}
	var cmName string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == volume && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	cm := one[*corev1.ConfigMap](t, m, cmName)
	body, ok := cm.Data[filepath.Base(path)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s (--config=%s)", cmName, filepath.Base(path), path)
	}
	file := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	inCluster := map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
	args := slices.Clone(c.Args)
	args[slices.Index(args, "--config="+path)] = "--config=" + file
	cfg, err := config.LoadAggregator(args, func(k string) string { return inCluster[k] })
	if err != nil {
		t.Fatalf("the aggregator rejects the rendered settings file:\n%s\n%v", body, err)
	}
	// The probes and ports are fixed in the template; they must agree with the file.
	if cfg.Listen != ":3001" || cfg.ProbeListen != ":8081" {
		t.Errorf("listen %q, probe-listen %q; the Deployment's ports are 3001 and 8081", cfg.Listen, cfg.ProbeListen)
	}
	return cfg
}

func TestAggregatorConfig(t *testing.T) {
	t.Parallel()
	type summary struct {
		Mode, Selector, Lease, Alertmanager, LogFormat string
		Namespaces, Agents                             []string
		Broadcast, Retention, Budget                   time.Duration
		SubscriberBuffer, MaxTiles                     int
		AlertRules                                     []string
		AllowedHosts                                   []string
	}
	// Each release elects its alert sender with a Lease named after the release's full
	// name (the release name here, as it holds the chart's).
	lease := release
	// What the aggregator defaults to when the chart leaves a key out.
	def := config.DefaultAggregator()
	// The aggregator answers to its Service's names as clients in the cluster write them.
	serviceNames := []string{fullname, fullname + "." + namespace, fullname + "." + namespace + ".svc", fullname + "." + namespace + ".svc.cluster.local"}
	defaults := func(s summary) summary {
		s.Retention, s.Budget, s.SubscriberBuffer, s.MaxTiles = def.HistoryRetention, def.BroadcastBudget, def.SubscriberBuffer, def.MetricsMaxTiles
		if s.AllowedHosts == nil {
			s.AllowedHosts = serviceNames
		}
		return s
	}
	tests := []struct {
		name string
		args []string
		want summary
	}{
		{"defaults", nil, defaults(summary{Mode: "kubernetes", Selector: "faultline.dev/agent=true", Lease: lease, LogFormat: "json", Broadcast: time.Second})},
		{"namespaced", []string{"--values", filepath.Join(chartDir, "ci", "namespaced-values.yaml")},
			defaults(summary{Mode: "kubernetes", Selector: "faultline.dev/agent=true,team=checkout", Lease: lease, LogFormat: "json", Namespaces: []string{"shop", "payments"}, Broadcast: time.Second})},
		{"static", []string{"--values", filepath.Join(chartDir, "ci", "static-values.yaml")},
			defaults(summary{Mode: "static", LogFormat: "json", Agents: []string{"http://10.0.0.7:9800", "http://10.0.0.8:9800"}, Broadcast: time.Second})},
		{"production", []string{"--values", filepath.Join(chartDir, "ci", "production-values.yaml"), "--set", "aggregator.logFormat=text"},
			summary{Mode: "kubernetes", Selector: "faultline.dev/agent=true", Lease: lease, Alertmanager: "http://alertmanager.monitoring.svc:9093", LogFormat: "text",
				Broadcast: 500 * time.Millisecond, Retention: 6 * time.Hour, Budget: 400 * time.Millisecond, SubscriberBuffer: 1024, MaxTiles: 500,
				AlertRules: []string{"breaker-open  30s critical", "cpu-high cpu 90 5m0s warning"}, AllowedHosts: serviceNames}},
		{"ingress and more hosts", []string{"--set", "aggregator.ingress.enabled=true", "--set", "aggregator.ingress.host=dash.example.com",
			"--set", "aggregator.allowedHosts={lb.example.com,.corp.example}", "--set", "aggregator.clusterDomain=k8s.internal"},
			defaults(summary{Mode: "kubernetes", Selector: "faultline.dev/agent=true", Lease: lease, LogFormat: "json", Broadcast: time.Second,
				AllowedHosts: []string{fullname, fullname + "." + namespace, fullname + "." + namespace + ".svc", fullname + "." + namespace + ".svc.k8s.internal",
					"dash.example.com", "lb.example.com", ".corp.example"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := aggregatorConfig(t, render(t, tt.args...))
			got := summary{Mode: cfg.Mode, Alertmanager: cfg.AlertmanagerURL, LogFormat: cfg.LogFormat,
				Namespaces: cfg.Namespaces, Agents: cfg.Agents, Broadcast: cfg.BroadcastInterval,
				Retention: cfg.HistoryRetention, Budget: cfg.BroadcastBudget, SubscriberBuffer: cfg.SubscriberBuffer, MaxTiles: cfg.MetricsMaxTiles,
				AllowedHosts: cfg.AllowedHosts}
			for _, r := range cfg.AlertRules {
				s := r.Name + " " + r.Kind
				if r.Threshold != nil {
					s += fmt.Sprintf(" %v", *r.Threshold)
				}
				s += " " + r.For.String() + " " + r.Severity
				got.AlertRules = append(got.AlertRules, s)
			}
			if cfg.Mode == config.ModeKubernetes {
				got.Selector, got.Lease = cfg.AgentSelector, cfg.LeaseName
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("settings the aggregator loads (-want +got):\n%s", diff)
			}
		})
	}
}

// restricted checks a container against the settings the "restricted" Pod Security
// profile asks of it (the envtest install proves the API server agrees).
func restricted(t *testing.T, where string, sc *corev1.SecurityContext) {
	t.Helper()
	if sc == nil {
		t.Errorf("%s: no securityContext", where)
		return
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", where)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: root filesystem is not read-only", where)
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot is not true", where)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities are not drop [ALL]", where)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccomp profile is not RuntimeDefault", where)
	}
}

func TestAggregatorDeployment(t *testing.T) {
	t.Parallel()
	m := render(t)
	d := one[*appsv1.Deployment](t, m, fullname)
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	restricted(t, "aggregator", c.SecurityContext)

	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if diff := cmp.Diff(map[string]int32{"http": 3001, "probes": 8081}, ports); diff != "" {
		t.Errorf("container ports (-want +got):\n%s", diff)
	}
	probes := map[string]string{}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Fatalf("%s probe is not an HTTP GET", name)
		}
		probes[name] = p.HTTPGet.Port.String() + p.HTTPGet.Path
	}
	want := map[string]string{"startup": "probes/healthz", "readiness": "probes/readyz", "liveness": "probes/healthz"}
	if diff := cmp.Diff(want, probes); diff != "" {
		t.Errorf("probes (-want +got):\n%s", diff)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("aggregator resources lack a memory request or limit: %+v", c.Resources)
	}
	if spec.ServiceAccountName != fullname {
		t.Errorf("serviceAccountName = %q, want %q", spec.ServiceAccountName, fullname)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation: a settings change would not roll the pods")
	}

	svc := one[*corev1.Service](t, m, fullname)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not select the aggregator pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	svcPorts := map[string]string{}
	for _, p := range svc.Spec.Ports {
		svcPorts[p.Name] = p.TargetPort.String()
	}
	if diff := cmp.Diff(map[string]string{"http": "http", "metrics": "probes"}, svcPorts); diff != "" {
		t.Errorf("Service target ports (-want +got):\n%s", diff)
	}
	// Optional objects stay off by default.
	if n := len(objects[*policyv1.PodDisruptionBudget](m)) + len(objects[*unstructured.Unstructured](m)); n != 0 {
		t.Errorf("%d PodDisruptionBudget/ServiceMonitor objects rendered with the defaults", n)
	}
}

func TestOptionalObjects(t *testing.T) {
	t.Parallel()
	m := render(t, "--values", filepath.Join(chartDir, "ci", "production-values.yaml"))
	d := one[*appsv1.Deployment](t, m, fullname)

	pdb := one[*policyv1.PodDisruptionBudget](t, m, fullname)
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("PodDisruptionBudget selector %v does not select the aggregator pods (%v)", pdb.Spec.Selector, err)
	}
	if pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("minAvailable = %v, want 1", pdb.Spec.MinAvailable)
	}

	sms := objects[*unstructured.Unstructured](m)
	if len(sms) != 1 || sms[0].GetKind() != "ServiceMonitor" {
		t.Fatalf("want one ServiceMonitor, got %d unstructured objects", len(sms))
	}
	endpoints, _, _ := unstructured.NestedSlice(sms[0].Object, "spec", "endpoints")
	if diff := cmp.Diff([]any{map[string]any{"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "5s"}}, endpoints); diff != "" {
		t.Errorf("ServiceMonitor endpoints (-want +got):\n%s", diff)
	}
	if sms[0].GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v lack release: prometheus", sms[0].GetLabels())
	}

	var token *corev1.EnvVar
	for i, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == config.EnvName("token") {
			token = &d.Spec.Template.Spec.Containers[0].Env[i]
		}
	}
	if token == nil || token.ValueFrom == nil || token.ValueFrom.SecretKeyRef == nil || token.ValueFrom.SecretKeyRef.Name != "faultline-token" {
		t.Errorf("FAULTLINE_TOKEN does not come from Secret faultline-token: %+v", token)
	}
	if ref := secretEnv(d.Spec.Template.Spec.Containers[0], config.EnvName("agent-token")); ref != "faultline-agent-token/token" {
		t.Errorf("FAULTLINE_AGENT_TOKEN comes from %q, want Secret faultline-agent-token key token", ref)
	}
	if len(objects[*networkingv1.Ingress](m)) != 0 {
		t.Error("an Ingress is rendered without aggregator.ingress.enabled")
	}
	ing := one[*networkingv1.Ingress](t, render(t, "--set", "aggregator.ingress.enabled=true", "--set", "aggregator.ingress.host=dash.example.com",
		"--set", "aggregator.ingress.tlsSecretName=dash-tls", "--set", "aggregator.ingress.className=nginx"), fullname)
	if r := ing.Spec.Rules; len(r) != 1 || r[0].Host != "dash.example.com" || r[0].HTTP.Paths[0].Backend.Service.Name != fullname ||
		r[0].HTTP.Paths[0].Backend.Service.Port.Name != "http" || len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "dash-tls" ||
		ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("Ingress = %+v; want dash.example.com to the Service's http port, TLS from dash-tls, class nginx", ing.Spec)
	}
	svc := one[*corev1.Service](t, m, fullname)
	if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].NodePort != 30001 {
		t.Errorf("Service type %s, node port %d; want NodePort 30001", svc.Spec.Type, svc.Spec.Ports[0].NodePort)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(got, ":0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") {
		t.Errorf("image %q is not pinned by its digest", got)
	}
}

// agentFlags are the settings faultline-agent knows, from its own usage text.
func agentFlags(t *testing.T) map[string]bool {
	t.Helper()
	var buf bytes.Buffer
	config.AgentUsage(&buf)
	flags := map[string]bool{}
	re := regexp.MustCompile(`^\s+-([a-z0-9-]+)`)
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			flags[m[1]] = true
		}
	}
	if !flags["sample-interval"] {
		t.Fatalf("cannot read the agent's flags from its usage:\n%s", buf.String())
	}
	return flags
}

// checkSidecar checks an agent sidecar the way the kubelet and the agent will see it, in
// a pod template whose application container is app.
func checkSidecar(t *testing.T, tmpl corev1.PodTemplateSpec, app string) corev1.Container {
	t.Helper()
	spec := tmpl.Spec
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "faultline-agent" {
		t.Fatalf("want the agent as the one init container, got %d", len(spec.InitContainers))
	}
	agent := spec.InitContainers[0]
	if agent.RestartPolicy == nil || *agent.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("agent init container lacks restartPolicy: Always (not a native sidecar)")
	}
	restricted(t, "agent sidecar", agent.SecurityContext)
	if len(agent.Ports) != 1 || agent.Ports[0].Name != "faultline" || agent.Ports[0].ContainerPort != 9800 {
		t.Errorf("agent ports %+v; want one named faultline on 9800 (discovery looks for that name)", agent.Ports)
	}
	if spec.ShareProcessNamespace == nil || !*spec.ShareProcessNamespace {
		t.Error("pod does not set shareProcessNamespace: the agent could not sample the app's processes")
	}

	fields := map[string]string{}
	limits := map[string]string{}
	for _, e := range agent.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			fields[e.Name] = e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil:
			r := e.ValueFrom.ResourceFieldRef
			limits[e.Name] = r.ContainerName + " " + r.Resource + " /" + r.Divisor.String()
		}
	}
	wantFields := map[string]string{
		"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_UID": "metadata.uid",
		"NODE_NAME": "spec.nodeName", "POD_IP": "status.podIP",
	}
	if diff := cmp.Diff(wantFields, fields); diff != "" {
		t.Errorf("Downward API env (-want +got):\n%s", diff)
	}
	wantLimits := map[string]string{
		"FAULTLINE_CPU_LIMIT_MILLICORES": app + " limits.cpu /1m",
		"FAULTLINE_MEMORY_LIMIT_BYTES":   app + " limits.memory /1",
	}
	if diff := cmp.Diff(wantLimits, limits); diff != "" {
		t.Errorf("limit env through resourceFieldRef (-want +got):\n%s", diff)
	}
	if !slices.ContainsFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == app }) {
		t.Errorf("resourceFieldRef names container %q, which the pod does not have", app)
	}
	for _, p := range []*corev1.Probe{agent.StartupProbe, agent.ReadinessProbe, agent.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "faultline" {
			t.Errorf("agent probe %+v is not an HTTP GET on the faultline port", p)
		}
	}
	return agent
}

// agentEnv resolves the sidecar's env as the kubelet would for a pod whose application
// container is app.
func agentEnv(t *testing.T, agent corev1.Container, app corev1.Container) map[string]string {
	t.Helper()
	env, err := podtest.Env(agent, []corev1.Container{app})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// demoRoles are the demo's services, each a Deployment and a Service named
// <fullname>-demo-<role>.
var demoRoles = []string{"frontend", "checkout", "payments", "inventory", "shipping"}

func demoName(role string) string { return fullname + "-demo-" + role }

func TestDemoSidecar(t *testing.T) {
	t.Parallel()
	m := render(t, "--values", filepath.Join(chartDir, "ci", "demo-values.yaml"))
	cfg := aggregatorConfig(t, m)
	sel, err := labels.Parse(cfg.AgentSelector)
	if err != nil {
		t.Fatalf("agent-selector %q: %v", cfg.AgentSelector, err)
	}
	known := agentFlags(t)
	for _, role := range demoRoles {
		t.Run(role, func(t *testing.T) {
			demo := one[*appsv1.Deployment](t, m, demoName(role))
			agent := checkSidecar(t, demo.Spec.Template, "demo")
			app := demo.Spec.Template.Spec.Containers[0]
			restricted(t, role, app.SecurityContext)

			// The aggregator must select the demo pods: its own selector, parsed the way
			// it will parse it, matches the pod labels.
			if !sel.Matches(labels.Set(demo.Spec.Template.Labels)) {
				t.Errorf("agent-selector %q does not select the %s pods %v", cfg.AgentSelector, role, demo.Spec.Template.Labels)
			}

			// Every FAULTLINE_* variable must be one of the agent's settings, and the agent
			// must accept the values as the kubelet resolves them.
			for _, e := range agent.Env {
				if key, ok := strings.CutPrefix(e.Name, "FAULTLINE_"); ok {
					flag := strings.ReplaceAll(strings.ToLower(key), "_", "-")
					if !known[flag] {
						t.Errorf("sidecar sets %s, but the agent has no setting %q", e.Name, flag)
					}
				}
			}
			env := agentEnv(t, agent, app)
			acfg, err := config.LoadAgent(nil, func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("the agent rejects the sidecar's environment: %v", err)
			}
			type summary struct {
				Listen, Mode, Workload string
				CPU, Memory            int64
				Interval               time.Duration
			}
			want := summary{Listen: ":9800", Mode: config.ModePod, Workload: demoName(role), CPU: 200, Memory: 64 << 20, Interval: time.Second}
			got := summary{acfg.Listen, acfg.Mode, acfg.Workload, acfg.CPULimitMillicores, acfg.MemoryLimitBytes, acfg.SampleInterval}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("agent settings from the sidecar env (-want +got):\n%s", diff)
			}
			if acfg.Token != "" {
				t.Error("the demo agents have a token although aggregator.agentToken is not set")
			}
		})
	}

	// With an agent token, every demo agent accepts the token the aggregator sends.
	m = render(t, "--set", "demo.enabled=true", "--set", "aggregator.agentToken.existingSecret=agents")
	for _, role := range demoRoles {
		demo := one[*appsv1.Deployment](t, m, demoName(role))
		if ref := secretEnv(demo.Spec.Template.Spec.InitContainers[0], config.EnvName("token")); ref != "agents/token" {
			t.Errorf("%s agent FAULTLINE_TOKEN comes from %q, want Secret agents key token", role, ref)
		}
	}
}

// TestDemoServices checks the demo's shape: five Deployments with the replicas asked
// for, each behind a Service of its name that selects its pods and no others, each pod
// running its --role and calling the services after it by their Service names.
func TestDemoServices(t *testing.T) {
	t.Parallel()
	type service struct {
		Replicas int32
		Args     []string
	}
	url := func(role string) string { return "http://" + demoName(role) + ":9810" }
	defaults := map[string]service{
		"frontend":  {2, []string{"--role=frontend", "--listen=:9810", "--checkout-url=" + url("checkout"), "--load-rps=20"}},
		"checkout":  {2, []string{"--role=checkout", "--listen=:9810", "--payments-url=" + url("payments"), "--inventory-url=" + url("inventory"), "--shipping-url=" + url("shipping")}},
		"payments":  {2, []string{"--role=payments", "--listen=:9810"}},
		"inventory": {1, []string{"--role=inventory", "--listen=:9810"}},
		"shipping":  {1, []string{"--role=shipping", "--listen=:9810"}},
	}
	ci := maps.Clone(defaults)
	ci["frontend"] = service{1, defaults["frontend"].Args}
	ci["payments"] = service{3, []string{"--role=payments", "--listen=:9810", "--payments=steady,errors=5%,latency=30ms"}}
	overrides := maps.Clone(defaults)
	overrides["frontend"] = service{2, []string{"--role=frontend", "--listen=:9810", "--checkout-url=" + url("checkout"), "--load-rps=5", "--breaker-open-timeout=9s"}}
	overrides["shipping"] = service{0, []string{"--role=shipping", "--listen=:9810", "--shipping=outage", "--breaker-open-timeout=9s"}}
	for _, role := range []string{"checkout", "payments", "inventory"} {
		overrides[role] = service{defaults[role].Replicas, append(slices.Clone(defaults[role].Args), "--breaker-open-timeout=9s")}
	}
	tests := []struct {
		name string
		args []string
		want map[string]service
	}{
		{"defaults", []string{"--set", "demo.enabled=true"}, defaults},
		{"ci/demo-values.yaml", []string{"--values", filepath.Join(chartDir, "ci", "demo-values.yaml")}, ci},
		{"overrides", []string{"--set", "demo.enabled=true", "--set", "demo.loadRPS=5", "--set", "demo.services.shipping.replicas=0",
			"--set", "demo.services.shipping.pattern=outage", "--set", "demo.extraArgs={--breaker-open-timeout=9s}"}, overrides},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := render(t, tt.args...)
			got := map[string]service{}
			for _, role := range demoRoles {
				d := one[*appsv1.Deployment](t, m, demoName(role))
				got[role] = service{*d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Args}

				if d.Labels["app.kubernetes.io/component"] != "demo" || d.Labels["faultline.dev/demo-role"] != role {
					t.Errorf("Deployment %s labels %v: want component demo, faultline.dev/demo-role %s", d.Name, d.Labels, role)
				}
				podSel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
				if err != nil {
					t.Fatal(err)
				}
				svc := one[*corev1.Service](t, m, demoName(role))
				if svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9810 || svc.Spec.Ports[0].TargetPort.String() != "http" {
					t.Errorf("Service %s: type %s ports %+v; want ClusterIP 9810 -> http", svc.Name, svc.Spec.Type, svc.Spec.Ports)
				}
				// Each Service and each Deployment selects the pods of its own service only.
				for _, other := range demoRoles {
					pods := labels.Set(one[*appsv1.Deployment](t, m, demoName(other)).Spec.Template.Labels)
					if got := labels.SelectorFromSet(svc.Spec.Selector).Matches(pods); got != (other == role) {
						t.Errorf("Service %s selects the %s pods: %v, want %v", svc.Name, other, got, other == role)
					}
					if got := podSel.Matches(pods); got != (other == role) {
						t.Errorf("Deployment %s selects the %s pods: %v, want %v", d.Name, other, got, other == role)
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("demo Deployments (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRBACObjects(t *testing.T) {
	t.Parallel()
	// The injector's certificate rotation: a ClusterRole for its webhook configuration
	// and a Role for its Secret.
	certs := []string{
		"ClusterRole//faultline-faultline-injector-certs", "ClusterRoleBinding//faultline-faultline-injector-certs",
		"Role/faultline/faultline-injector-certs", "RoleBinding/faultline/faultline-injector-certs",
	}
	injector := append([]string{"ClusterRole//faultline-faultline-injector", "ClusterRoleBinding//faultline-faultline-injector"}, certs...)
	tests := []struct {
		name string
		args []string
		want []string // kind/namespace/name
	}{
		{"all namespaces", nil, append([]string{
			"ClusterRole//faultline-faultline-discovery", "ClusterRoleBinding//faultline-faultline-discovery",
			"Role/faultline/faultline-leader-election", "RoleBinding/faultline/faultline-leader-election",
		}, injector...)},
		{"watched namespaces", []string{"--values", filepath.Join(chartDir, "ci", "namespaced-values.yaml")}, append([]string{
			"Role/shop/faultline-discovery", "RoleBinding/shop/faultline-discovery",
			"Role/payments/faultline-discovery", "RoleBinding/payments/faultline-discovery",
			"Role/faultline/faultline-leader-election", "RoleBinding/faultline/faultline-leader-election",
			"Role/shop/faultline-injector", "RoleBinding/shop/faultline-injector",
			"Role/payments/faultline-injector", "RoleBinding/payments/faultline-injector",
		}, certs...)},
		{"cert-manager: no certificate rotation rights", []string{"--set", "injector.certManager.enabled=true"}, []string{
			"ClusterRole//faultline-faultline-discovery", "ClusterRoleBinding//faultline-faultline-discovery",
			"Role/faultline/faultline-leader-election", "RoleBinding/faultline/faultline-leader-election",
			"ClusterRole//faultline-faultline-injector", "ClusterRoleBinding//faultline-faultline-injector",
		}},
		{"injector disabled", []string{"--set", "injector.enabled=false"}, []string{
			"ClusterRole//faultline-faultline-discovery", "ClusterRoleBinding//faultline-faultline-discovery",
			"Role/faultline/faultline-leader-election", "RoleBinding/faultline/faultline-leader-election",
		}},
		{"static mode needs no API access", []string{"--values", filepath.Join(chartDir, "ci", "static-values.yaml")}, nil},
		{"rbac.create false", []string{"--set", "rbac.create=false"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := render(t, tt.args...)
			var got []string
			for _, o := range m {
				switch o := o.(type) {
				case *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding, *rbacv1.Role, *rbacv1.RoleBinding:
					meta := o.(metav1.Object)
					got = append(got, o.GetObjectKind().GroupVersionKind().Kind+"/"+meta.GetNamespace()+"/"+meta.GetName())
				}
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("RBAC objects (-want +got):\n%s", diff)
			}
			// Each component's bindings name its own ServiceAccount only.
			check := func(kind, ns, name string, subjects []rbacv1.Subject) {
				sa := fullname
				if strings.Contains(name, "-injector") {
					sa = fullname + "-injector"
				}
				if diff := cmp.Diff([]rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: namespace}}, subjects); diff != "" {
					t.Errorf("%s %s/%s subjects (-want +got):\n%s", kind, ns, name, diff)
				}
			}
			for _, rb := range objects[*rbacv1.RoleBinding](m) {
				check("RoleBinding", rb.Namespace, rb.Name, rb.Subjects)
			}
			for _, crb := range objects[*rbacv1.ClusterRoleBinding](m) {
				check("ClusterRoleBinding", "", crb.Name, crb.Subjects)
			}
		})
	}
}

// secretEnv is "secret/key" of the env var name of c when it comes from a Secret.
func secretEnv(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	return ""
}

// TestDemoContainerRuns starts the real faultline-demo five times, with the arguments
// the chart gives each service (only the listen addresses moved to free loopback ports,
// and each Service URL to the address of that service), checks that each serves the
// /healthz its probes call, and that orders go through: the demo has no importable
// config loader, so running it is how the rendered arguments and wiring are checked.
func TestDemoContainerRuns(t *testing.T) {
	t.Parallel()
	m := render(t, "--values", filepath.Join(chartDir, "ci", "demo-values.yaml"), "--set", "demo.extraArgs={--shipping=outage}")
	addr := map[string]string{} // Service URL -> loopback address of its service
	listen := map[string]string{}
	for _, role := range demoRoles {
		svc := one[*corev1.Service](t, m, demoName(role))
		listen[role] = testbin.FreeAddr(t, "127.0.0.1")
		addr[fmt.Sprintf("http://%s:%d", svc.Name, svc.Spec.Ports[0].Port)] = "http://" + listen[role]
	}
	bin := testbin.Build(t, "faultline-demo")
	procs := map[string]*testbin.Process{}
	for _, role := range demoRoles {
		demo := one[*appsv1.Deployment](t, m, demoName(role)).Spec.Template.Spec.Containers[0]
		if demo.ReadinessProbe == nil || demo.ReadinessProbe.HTTPGet == nil || demo.ReadinessProbe.HTTPGet.Path != "/healthz" {
			t.Fatalf("%s readiness probe %+v is not GET /healthz", role, demo.ReadinessProbe)
		}
		var args []string
		for _, a := range demo.Args {
			if name, u, ok := strings.Cut(a, "="); ok && strings.HasSuffix(name, "-url") {
				to, ok := addr[u]
				if !ok {
					t.Fatalf("%s: %s is not the URL of a rendered demo Service (have %v)", role, a, keys(addr))
				}
				a = name + "=" + to
			}
			args = append(args, a)
		}
		args = append(args, "--listen="+listen[role], "--ingest-url=http://"+testbin.FreeAddr(t, "127.0.0.1"))
		procs[role] = testbin.Start(t, bin, nil, args...)
	}
	for _, role := range demoRoles {
		testbin.WaitHTTP(t, "http://"+listen[role]+"/healthz", 200, 30*time.Second)
		select {
		case <-procs[role].Done():
			t.Fatalf("faultline-demo --role=%s exited:\n%s", role, procs[role].Output())
		default:
		}
	}
	// The frontend's load reaches the checkout and, through it, payments.
	testbin.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + listen["payments"] + "/control/dependencies/payments")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var dep struct {
			Served uint64 `json:"served"`
			Spec   string `json:"spec"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&dep); err != nil {
			return err
		}
		if dep.Spec != "steady,errors=5%,latency=30ms" {
			t.Fatalf("payments runs pattern %q, want demo.services.payments.pattern of ci/demo-values.yaml", dep.Spec)
		}
		if dep.Served == 0 {
			return errors.New("payments has served no request: the frontend's load does not reach it")
		}
		return nil
	})
}
