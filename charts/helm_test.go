// Package charts tests the faultline Helm chart with the real helm v4 CLI: lint, render,
// schema and validation failures, the sidecar template from a user's chart, and a real
// install into an envtest kube-apiserver.
package charts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/faultline-dev/faultline/internal/testbin"
)

// release and namespace are what every render in these tests uses, so names are known:
// the release name contains the chart name, so the full name is "faultline".
const (
	release   = "faultline"
	namespace = "faultline"
	fullname  = "faultline"
)

var chartDir = filepath.Join(testbin.RepoRoot(), "charts", "faultline")

// helm runs the helm CLI with its caches and config apart from the user's (testbin.Helm).
func helm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return testbin.Helm(t, args...)
}

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.RemoveTemp()
	os.Exit(code)
}

// ciValues are the value files under charts/faultline/ci.
func ciValues(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no value files in %s/ci: %v", chartDir, err)
	}
	return files
}

// valueCases are the default values plus every ci file, as helm arguments.
func valueCases(t testing.TB) map[string][]string {
	cases := map[string][]string{"default": nil}
	for _, f := range ciValues(t) {
		cases[filepath.Base(f)] = []string{"--values", f}
	}
	return cases
}

// manifest is a rendered chart: every object, decoded strictly into its Go type (unknown
// or duplicate fields are errors), or unstructured for kinds outside client-go's scheme.
type manifest []runtime.Object

var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

func parseManifest(t testing.TB, text string) manifest {
	t.Helper()
	var m manifest
	for i, doc := range splitDocuments(text) {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document %d is not YAML: %v\n%s", i, err, doc)
		}
		if meta.Kind == "" {
			continue // an empty document: a template that rendered nothing
		}
		obj, _, err := strictDecoder.Decode([]byte(doc), nil, nil)
		if runtime.IsNotRegisteredError(err) {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("document %d (%s): %v", i, meta.Kind, err)
			}
			obj = u
		} else if err != nil {
			t.Fatalf("document %d (%s) is not a valid %s/%s: %v\n%s", i, meta.Kind, meta.APIVersion, meta.Kind, err, doc)
		}
		m = append(m, obj)
	}
	return m
}

// splitDocuments splits a multi-document YAML stream on its "---" lines.
func splitDocuments(text string) []string {
	var docs []string
	var cur strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.TrimRight(line, "\n") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, cur.String())
}

// render runs helm template for the chart with extra arguments (--values, --set ...).
func render(t testing.TB, args ...string) manifest {
	t.Helper()
	out, err := renderErr(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return parseManifest(t, out)
}

func renderErr(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return helm(t, append([]string{"template", release, chartDir, "--namespace", namespace}, args...)...)
}

// objects returns the objects of kind K.
func objects[K runtime.Object](m manifest) []K {
	var out []K
	for _, o := range m {
		if k, ok := o.(K); ok {
			out = append(out, k)
		}
	}
	return out
}

// one returns the only object of kind K named name, failing the test otherwise.
func one[K interface {
	runtime.Object
	GetName() string
}](t testing.TB, m manifest, name string) K {
	t.Helper()
	var found []K
	for _, o := range objects[K](m) {
		if o.GetName() == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		var zero K
		t.Fatalf("want one %T named %q, got %d", zero, name, len(found))
	}
	return found[0]
}

// podTemplates are the pod templates of the manifest's Deployments plus its bare Pods
// (the helm test), by object name.
func podTemplates(m manifest) map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for _, d := range objects[*appsv1.Deployment](m) {
		out[d.Name] = d.Spec.Template
	}
	for _, p := range objects[*corev1.Pod](m) {
		out[p.Name] = corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}
	}
	return out
}

// appVersion is the chart's appVersion, the default tag of every image.
func appVersion(t testing.TB) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil || c.AppVersion == "" {
		t.Fatalf("Chart.yaml has no appVersion: %v", err)
	}
	return c.AppVersion
}

// wantErr checks that err is a helm failure whose output contains want.
func wantErr(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("helm accepted the values; want an error containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("helm error does not contain %q:\n%v", want, err)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("helm did not run: %v", err)
	}
}
