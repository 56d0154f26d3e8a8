package charts

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// userChart copies testdata/userchart (a user's chart that includes the agent with
// faultline.agentSidecar) with charts/faultline as its dependency, and returns its path.
func userChart(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "userchart"))); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "charts", "faultline"), os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestUserChartSidecar renders a user's own Deployment through the named templates, as
// the chart README tells users to: the pod gets a working native sidecar reading the
// user's container limits, and the label the aggregator selects by default.
func TestUserChartSidecar(t *testing.T) {
	t.Parallel()
	chart := userChart(t)
	out, err := helm(t, "template", "shop", chart, "--namespace", "shop")
	if err != nil {
		t.Fatal(err)
	}
	m := parseManifest(t, out)
	if len(m) != 1 {
		t.Fatalf("want only the user's Deployment (faultline's aggregator disabled), got %d objects", len(m))
	}
	d := one[*appsv1.Deployment](t, m, "shop")
	agent := checkSidecar(t, d.Spec.Template, "shop")
	if agent.Image != "ghcr.io/faultline-dev/faultline-agent:0.1.0" {
		t.Errorf("agent image %q, want the one the user passed", agent.Image)
	}
	if got := d.Spec.Template.Labels["faultline.dev/agent"]; got != "true" {
		t.Errorf("pod label faultline.dev/agent = %q, want \"true\" (the aggregator's default selector)", got)
	}
	env := agentEnv(t, agent, d.Spec.Template.Spec.Containers[0])
	if env["FAULTLINE_CPU_LIMIT_MILLICORES"] != "500" || env["FAULTLINE_MEMORY_LIMIT_BYTES"] != "268435456" {
		t.Errorf("limits as the kubelet resolves them: cpu %s millicores, memory %s bytes; want 500 and 268435456",
			env["FAULTLINE_CPU_LIMIT_MILLICORES"], env["FAULTLINE_MEMORY_LIMIT_BYTES"])
	}
}

// TestUserChartSidecarErrors calls faultline.agentSidecar wrongly from a user's template
// and checks the message says what is missing.
func TestUserChartSidecarErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		call string
		want string
	}{
		{"no container", `(dict "image" "ghcr.io/faultline-dev/faultline-agent:0.1.0")`, `faultline.agentSidecar: set "container" to the name of the application container`},
		{"no image", `(dict "container" "shop")`, `faultline.agentSidecar: set "image" to the agent image`},
		{"not a dict", `"shop"`, `faultline.agentSidecar: call it with a dict`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			chart := userChart(t)
			tmpl := "initContainers:\n{{- include \"faultline.agentSidecar\" " + tt.call + " | nindent 2 }}\n"
			if err := os.WriteFile(filepath.Join(chart, "templates", "wrong.yaml"), []byte(tmpl), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := helm(t, "template", "shop", chart)
			wantErr(t, err, tt.want)
		})
	}
}

// readmeBlocks returns the fenced code blocks of the chart README with the given info string.
func readmeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```" + regexp.QuoteMeta(lang) + "\n(.*?)```")
	var blocks []string
	for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestReadmeExamples keeps the chart README's copy-paste examples true: the Helm example
// is the template the user-chart test renders, and the plain-YAML example's sidecar is
// exactly what faultline.agentSidecar renders.
func TestReadmeExamples(t *testing.T) {
	t.Parallel()
	tmpl, err := os.ReadFile(filepath.Join("testdata", "userchart", "templates", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range readmeBlocks(t, "yaml") {
		if b == string(tmpl) {
			found = true
		}
	}
	if !found {
		t.Errorf("the chart README has no yaml block equal to testdata/userchart/templates/deployment.yaml:\n%s", tmpl)
	}

	out, err := helm(t, "template", "shop", userChart(t))
	if err != nil {
		t.Fatal(err)
	}
	rendered := one[*appsv1.Deployment](t, parseManifest(t, out), "shop")
	var plain *appsv1.Deployment
	for _, b := range readmeBlocks(t, "yaml") {
		if strings.Contains(b, "{{") || !strings.Contains(b, "kind: Deployment") {
			continue
		}
		plain = &appsv1.Deployment{}
		if err := yaml.UnmarshalStrict([]byte(b), plain); err != nil {
			t.Fatalf("the README's plain Deployment example is not a valid Deployment: %v", err)
		}
	}
	if plain == nil {
		t.Fatal("the chart README has no plain-YAML Deployment example")
	}
	if diff := cmp.Diff(rendered.Spec.Template.Spec.InitContainers, plain.Spec.Template.Spec.InitContainers); diff != "" {
		t.Errorf("README plain-YAML sidecar differs from what faultline.agentSidecar renders (-rendered +readme):\n%s", diff)
	}
	if diff := cmp.Diff(rendered.Spec.Template.Labels, plain.Spec.Template.Labels); diff != "" {
		t.Errorf("README plain-YAML pod labels (-rendered +readme):\n%s", diff)
	}
	if plain.Spec.Template.Spec.ShareProcessNamespace == nil || !*plain.Spec.Template.Spec.ShareProcessNamespace {
		t.Error("README plain-YAML example lacks shareProcessNamespace: true")
	}
}
