package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/injector/inject"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/testenv"
)

// review is the AdmissionReview the API server sends for a Deployment's new pod: an
// application container as real ones come (env, probes, resources, volumes), no name yet.
func review(b testing.TB) []byte {
	b.Helper()
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "checkout-7d9f8c6b5-", Namespace: "shop",
			Labels:      map[string]string{"app": "checkout", "tier": "web", "pod-template-hash": "7d9f8c6b5"},
			Annotations: map[string]string{"faultline.dev/prometheus-url": "http://127.0.0.1:8080/actuator/prometheus"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "checkout-7d9f8c6b5",
				UID: "6f1d2c3b-0a9e-4b8f-9c7d-1e2f3a4b5c6d", Controller: new(true), BlockOwnerDeletion: new(true)}}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "checkout", Image: "registry.example.com/shop/checkout:2.3.1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env: []corev1.EnvVar{{Name: "JAVA_OPTS", Value: "-Xmx512m -XX:+UseG1GC"}, {Name: "SPRING_PROFILES_ACTIVE", Value: "prod"},
					{Name: "DB_URL", Value: "jdbc:postgresql://db.shop.svc:5432/shop"}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/actuator/health", Port: intstr.FromString("http")}}},
				LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/actuator/health", Port: intstr.FromString("http")}}},
				VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/config"}, {Name: "kube-api-access-x7k2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
			}},
			Volumes:            []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "checkout"}}}}},
			ServiceAccountName: "checkout", TerminationGracePeriodSeconds: new(int64(30)),
		},
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		b.Fatal(err)
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "705ab4f5-6393-11e8-b7cc-42010a800002", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: "shop", Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// cachedProfiles starts an API server with the CRD, creates AgentProfiles in namespace
// shop (one selects the benchmark's pod) and returns the lister the injector uses, over
// an informer cache that has synced them.
func cachedProfiles(b *testing.B) ProfileLister {
	b.Helper()
	env := testenv.StartWith(b, testenv.Options{CRDs: []string{filepath.Join(testbin.RepoRoot(), "charts", "faultline", "crds")}})
	env.CreateNamespace(b, "shop")
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		b.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: s})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i, sel := range []map[string]string{{"app": "checkout"}, {"app": "cart"}, {"tier": "batch"}} {
		p := &v1alpha1.AgentProfile{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("profile-%d", i), Namespace: "shop"},
			Spec: v1alpha1.AgentProfileSpec{Selector: metav1.LabelSelector{MatchLabels: sel},
				SampleInterval: &metav1.Duration{Duration: 2 * time.Second}, AlertThresholds: map[string]int32{"cpu-high": 80}}}
		if err := c.Create(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	informers, err := cache.New(env.Config, cache.Options{Scheme: s})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := informers.GetInformer(ctx, &v1alpha1.AgentProfile{}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	b.Cleanup(cancel)
	go func() { _ = informers.Start(ctx) }()
	lister := CachedProfiles(informers)
	testbin.Eventually(b, 30*time.Second, func() error {
		ps, err := lister(ctx, "shop")
		if err == nil && len(ps) != 3 {
			err = fmt.Errorf("%d profiles in the cache", len(ps))
		}
		return err
	})
	return lister
}

// BenchmarkAdmission measures one admission review handled in-process as the injector
// serves it (HTTP handler: decode the review and the pod, read the namespace's
// AgentProfiles from the informer cache, decide, build the JSON patch, encode the
// response), against a baseline webhook that admits every pod unchanged, alternating the
// two in the same run. It reports the percentiles of both; the target is p99 <= 2 ms.
func BenchmarkAdmission(b *testing.B) {
	tmpl, err := inject.LoadTemplate(filepath.Join("..", "inject", "testdata", "sidecar.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	h := &Handler{Template: tmpl, Mode: inject.NamespaceWide, Profiles: cachedProfiles(b), Log: hclog.NewNullLogger()}
	injector := h.Webhook()
	baseline := &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})}
	body := review(b)
	serve := func(wh http.Handler) (time.Duration, *httptest.ResponseRecorder) {
		req := httptest.NewRequest(http.MethodPost, "/inject/namespace", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		start := time.Now()
		wh.ServeHTTP(w, req)
		return time.Since(start), w
	}
	// The answer is what the API server needs: allowed, with a patch adding the agent.
	_, w := serve(injector)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || !out.Response.Allowed || len(out.Response.Patch) == 0 ||
		!bytes.Contains(out.Response.Patch, []byte(`"faultline-agent"`)) || !bytes.Contains(out.Response.Patch, []byte(`"profile-0"`)) {
		b.Fatalf("injector answered %d %s", w.Code, w.Body.String())
	}

	inj := make([]time.Duration, 0, b.N)
	base := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d, _ := serve(baseline)
		base = append(base, d)
		d, _ = serve(injector)
		inj = append(inj, d)
	}
	b.StopTimer()
	pct := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return float64(ds[int(p*float64(len(ds)-1))]) / 1e6
	}
	b.ReportMetric(pct(inj, 0.50), "p50-ms")
	b.ReportMetric(pct(inj, 0.99), "p99-ms")
	b.ReportMetric(pct(base, 0.50), "baseline-p50-ms")
	b.ReportMetric(pct(base, 0.99), "baseline-p99-ms")
	b.ReportMetric(pct(inj, 0.99)/pct(base, 0.99), "p99-ratio")
}
