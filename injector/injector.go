// Package injector is faultline-injector: a mutating admission webhook that adds the
// agent to the pods of enabled namespaces (package webhook, deciding through package
// inject), the controller that keeps each AgentProfile's status (package status), and
// the webhook's serving certificate, rotated in a Secret with the CA patched into the
// MutatingWebhookConfiguration (open-policy-agent/cert-controller), unless cert-manager
// provides it.
//
// It runs as its own Deployment, apart from the aggregator, so that neither's failure or
// rights touch the other; any number of replicas serve the webhook, and each keeps the
// status the same way (writes happen only on change, so a second replica costs a
// conflict retry at most and no Lease is needed). The API rights it needs are in
// charts/faultline/files/injector-rbac-rules.yaml.
package injector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/injector/api/v1alpha1"
	"github.com/faultline-dev/faultline/injector/inject"
	"github.com/faultline-dev/faultline/injector/status"
	"github.com/faultline-dev/faultline/injector/webhook"
	"github.com/faultline-dev/faultline/internal/hclogr"
	"github.com/faultline-dev/faultline/internal/version"
)

// Options are what Run takes besides the configuration.
type Options struct {
	// Config is the API client configuration; nil loads it from the configuration's
	// kubeconfig, then $KUBECONFIG, then the in-cluster service account.
	Config *rest.Config
	Logger hclog.Logger
}

// Server timeouts. The API server gives a webhook at most its timeoutSeconds (the chart
// sets 2 s) and reuses connections.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 10 * time.Second
)

// Run serves until ctx is done or something fails.
func Run(ctx context.Context, cfg config.Injector, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = cfg.Logger("faultline-injector")
	}
	hclogr.Install(log)
	tmpl, err := inject.LoadTemplate(cfg.SidecarTemplate)
	if err != nil {
		return err
	}
	restCfg := opts.Config
	if restCfg == nil {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = cfg.Kubeconfig
		restCfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return fmt.Errorf("kubeconfig: %w (set --kubeconfig or KUBECONFIG when running outside a cluster)", err)
		}
	}
	restCfg = rest.CopyConfig(restCfg)
	restCfg.UserAgent = "faultline-injector/" + version.Version

	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1alpha1.AddToScheme(scheme)); err != nil {
		return err
	}
	mgr, err := manager.New(restCfg, manager.Options{
		Scheme: scheme,
		Logger: hclogr.New(log.Named("controller-runtime")),
		// The probe listener below serves /metrics with the health checks.
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{
			DefaultNamespaces: namespaces(cfg.Namespaces),
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Pod{}: {Transform: status.Strip},
			},
		},
		// controller-runtime refuses a second controller of the same name in one process
		// (their metrics would mix); a process runs one injector, except in tests.
		Controller:              crconfig.Controller{SkipNameValidation: ptrTo(true)},
		GracefulShutdownTimeout: ptrTo(shutdownTimeout),
	})
	if err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	if err := (&status.Reconciler{Client: mgr.GetClient(), Sidecar: tmpl.SidecarName()}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("AgentProfile status controller: %w", err)
	}

	certsReady := make(chan struct{})
	if cfg.CertSecret != "" {
		svc := cfg.ServiceName + "." + cfg.Namespace + ".svc"
		err := rotator.AddRotator(mgr, &rotator.CertRotator{
			SecretKey:      types.NamespacedName{Namespace: cfg.Namespace, Name: cfg.CertSecret},
			CertDir:        cfg.CertDir,
			CAName:         "faultline-injector-ca",
			CAOrganization: "faultline",
			DNSName:        svc,
			ExtraDNSNames:  []string{cfg.ServiceName, cfg.ServiceName + "." + cfg.Namespace, svc + ".cluster.local"},
			IsReady:        certsReady,
			Webhooks:       []rotator.WebhookInfo{{Name: cfg.WebhookConfiguration, Type: rotator.Mutating}},
			FieldOwner:     "faultline-injector",
			ControllerName: rotatorName(),
			// Every replica serves, so every replica keeps the certificate current.
			RequireLeaderElection: false,
			EnableReadinessCheck:  true,
		})
		if err != nil {
			return fmt.Errorf("certificate rotation: %w", err)
		}
	} else {
		close(certsReady) // cert-manager (or the operator) provides the files
	}

	m := newMetrics()
	excluded := map[string]bool{cfg.Namespace: true}
	for _, ns := range cfg.ExcludeNamespaces {
		excluded[ns] = true
	}
	profiles := webhook.CachedProfiles(mgr.GetCache())
	recorder := mgr.GetEventRecorder("faultline-injector")
	mux := http.NewServeMux()
	for path, mode := range map[string]inject.Mode{webhook.PathNamespace: inject.NamespaceWide, webhook.PathPod: inject.PodOptIn} {
		h := &webhook.Handler{Template: tmpl, Mode: mode, Profiles: profiles, Excluded: excluded, Recorder: recorder,
			Log: log.Named("webhook"), Outcomes: m.outcome(path)}
		mux.Handle(path, m.instrument(path, h.Webhook()))
	}

	var serving atomic.Bool
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-certsReady:
		}
		return serveWebhook(ctx, cfg, mux, &serving, log)
	})); err != nil {
		return err
	}

	probes := http.NewServeMux()
	probes.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	probes.Handle("GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context(), mgr, certsReady, &serving); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	}))
	probes.Handle("GET /metrics", promhttp.HandlerFor(crmetrics.Registry, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", cfg.ProbeListen)
	if err != nil {
		return fmt.Errorf("probe-listen: %w", err)
	}
	if err := mgr.Add(&manager.Server{Name: "probes", Listener: ln, ShutdownTimeout: ptrTo(shutdownTimeout), Server: &http.Server{
		Handler: probes, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout,
	}}); err != nil {
		return err
	}

	log.Info("faultline-injector starting", "version", version.Version, "listen", cfg.Listen, "probe-listen", cfg.ProbeListen, "namespaces", cfg.Namespaces,
		"sidecar", tmpl.Sidecar.Image, "excluded", excluded, "rotating-certificates", cfg.CertSecret != "")
	return mgr.Start(ctx)
}

// serveWebhook serves the webhooks over TLS with the certificate in the configuration's
// directory, reloaded when it changes (rotation, cert-manager renewal).
func serveWebhook(ctx context.Context, cfg config.Injector, mux http.Handler, serving *atomic.Bool, log hclog.Logger) error {
	cw, err := certwatcher.New(filepath.Join(cfg.CertDir, "tls.crt"), filepath.Join(cfg.CertDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("webhook certificate: %w", err)
	}
	go func() {
		if err := cw.Start(ctx); err != nil {
			log.Error("certificate watcher stopped", "error", err)
		}
	}()
	ln, err := tls.Listen("tcp", cfg.Listen, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cw.GetCertificate})
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	serving.Store(true)
	defer serving.Store(false)
	log.Info("serving the admission webhook", "listen", cfg.Listen)
	return (&manager.Server{Name: "webhook", Listener: ln, ShutdownTimeout: ptrTo(shutdownTimeout), Server: &http.Server{
		Handler: mux, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout,
		ErrorLog: log.Named("webhook").StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}}).Start(ctx)
}

// ready is nil once the injector can admit pods as intended: the certificate is in
// place (and its CA patched in), the profile cache has synced, and the webhook listens.
func ready(ctx context.Context, mgr manager.Manager, certs <-chan struct{}, serving *atomic.Bool) error {
	select {
	case <-certs:
	default:
		return errors.New("the webhook certificate is not in place yet")
	}
	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("the AgentProfile and pod caches have not synced")
	}
	if !serving.Load() {
		return errors.New("the webhook is not listening")
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }

// namespaces is the cache's scope: the namespaces given, or nil for all of them.
func namespaces(list []string) map[string]cache.Config {
	if len(list) == 0 {
		return nil
	}
	out := map[string]cache.Config{}
	for _, ns := range list {
		out[ns] = cache.Config{}
	}
	return out
}

// runs counts the Runs of this process.
var runs atomic.Int64

// rotatorName names the certificate rotator's controller. controller-runtime refuses two
// controllers of one name in a process, and the rotator's cannot be told to skip that
// check, so a process that runs the injector again (tests do) names each one apart.
func rotatorName() string {
	if n := runs.Add(1); n > 1 {
		return fmt.Sprintf("cert-rotator-%d", n)
	}
	return "cert-rotator"
}

// metrics are the injector's own: admissions by webhook and outcome, and how long each
// took. controller-runtime's (workqueue, client) are on the same registry.
type metrics struct {
	outcomes *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faultline_injector_admissions_total",
			Help: "Pods admitted, by webhook path and outcome (injected, refused: asked for the agent and admitted without it, skipped).",
		}, []string{"webhook", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "faultline_injector_admission_duration_seconds",
			Help:    "Time to answer an admission review, by webhook path.",
			Buckets: []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5, 2},
		}, []string{"webhook"}),
	}
	// A second Run in one process (tests) counts on the collectors of the first.
	if err := crmetrics.Registry.Register(m.outcomes); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err)
		}
		m.outcomes = are.ExistingCollector.(*prometheus.CounterVec)
	}
	if err := crmetrics.Registry.Register(m.duration); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err)
		}
		m.duration = are.ExistingCollector.(*prometheus.HistogramVec)
	}
	return m
}

func (m *metrics) outcome(path string) func(inject.Outcome) {
	return func(o inject.Outcome) { m.outcomes.WithLabelValues(path, o.String()).Inc() }
}

func (m *metrics) instrument(path string, next http.Handler) http.Handler {
	h := m.duration.WithLabelValues(path)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		h.Observe(time.Since(start).Seconds())
	})
}
