// Package kube finds agents through the Kubernetes API: a controller-runtime manager whose
// cache watches only the pods matching the agent selector in the watched namespaces, and
// keeps of each only a small summary made by the cache's transform as the pod arrives. Each
// Ready pod is a target at http://<pod IP>:<agent port>. Every replica of the aggregator watches and serves the
// full view; a Lease elects one replica for the work that must happen once (alert
// delivery), which the aggregator asks about through IsLeader.
//
// The API rights this needs are in charts/faultline/files/rbac-rules.yaml; docs/kubernetes.md
// explains them.
package kube

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/internal/hclogr"
	"github.com/faultline-dev/faultline/internal/version"
)

// Options configure a Discoverer.
type Options struct {
	// Config is the API client configuration; nil loads it from Kubeconfig, then
	// $KUBECONFIG, then the in-cluster service account.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file (--kubeconfig); used when Config is nil.
	Kubeconfig string
	// Selector selects the pods that should have an agent (--agent-selector).
	Selector string
	// Namespaces to watch (--namespaces); empty watches all.
	Namespaces []string

	// LeaderElection elects one replica with a Lease; without it IsLeader is always true.
	LeaderElection bool
	// LeaseNamespace holds the Lease; empty: the kubeconfig context's namespace, or the
	// pod's own namespace in the cluster.
	LeaseNamespace string
	// LeaseName names the Lease (default faultline-aggregator).
	LeaseName string
	// Identity of this replica in the Lease (default <hostname>_<random>).
	Identity string
	// Lease timing; zero values take client-go's usual 15s, 10s and 2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration

	Logger hclog.Logger
}

// Discoverer is the Kubernetes discovery. Build it with New, then Run it once.
type Discoverer struct {
	opts     Options
	mgr      manager.Manager
	health   *health
	replicas *replicas
	log      hclog.Logger
	elector  *elector // nil without leader election
	watchErr atomic.Value

	mu      sync.Mutex
	targets map[string]discovery.Target // by pod UID
	changed chan struct{}               // a token when targets changed since the last send
}

var _ discovery.Discoverer = (*Discoverer)(nil)

// New checks the options and prepares the API client and the cache; nothing talks to the
// API server until Run.
func New(opts Options) (*Discoverer, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	var errs []error
	sel, err := labels.Parse(opts.Selector)
	if err != nil {
		errs = append(errs, fmt.Errorf("agent-selector: %w", err))
	} else if sel.Empty() {
		errs = append(errs, errors.New("agent-selector: must not be empty (it would select every pod)"))
	}
	for _, ns := range opts.Namespaces {
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, fmt.Errorf("namespaces: %q: %s", ns, msg))
		}
	}
	cfg, leaseNS, err := clientConfig(opts)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	// controller-runtime and client-go (through klog) log through the process logger.
	hclogr.Install(opts.Logger)

	d := &Discoverer{
		opts:     opts,
		health:   newHealth(opts.Logger),
		replicas: newReplicas(),
		log:      opts.Logger,
		targets:  map[string]discovery.Target{},
		changed:  make(chan struct{}, 1),
	}
	// The copy used by the informers reports every pod request's outcome to health.
	informerCfg := rest.CopyConfig(cfg)
	informerCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &observer{next: rt, h: d.health, replicas: d.replicas}
	})

	namespaces := map[string]cache.Config{}
	for _, ns := range opts.Namespaces {
		namespaces[ns] = cache.Config{}
	}
	if len(namespaces) == 0 {
		namespaces = nil // all namespaces, with one cluster-wide watch
	}
	d.mgr, err = manager.New(informerCfg, manager.Options{
		// The manager waits for its caches to sync before anything else, and cannot be
		// stopped while it waits: discovery that is forbidden from the start would then
		// never stop. Run waits for the sync itself instead.
		NewCache: func(cfg *rest.Config, opts cache.Options) (cache.Cache, error) {
			c, err := cache.New(cfg, opts)
			return syncedCache{c}, err
		},
		Scheme: scheme.Scheme,
		// Pods and the workload kinds are the only kinds read: a fixed mapping spares the
		// API discovery requests (and the failure mode) of a dynamic REST mapper.
		MapperProvider: func(*rest.Config, *http.Client) (meta.RESTMapper, error) {
			m := meta.NewDefaultRESTMapper(nil)
			m.Add(corev1.SchemeGroupVersion.WithKind("Pod"), meta.RESTScopeNamespace)
			for _, gvk := range workloadMappings() {
				m.Add(gvk, meta.RESTScopeNamespace)
			}
			return m, nil
		},
		Cache: cache.Options{
			DefaultNamespaces:           namespaces,
			ReaderFailOnMissingInformer: true,
			ByObject:                    withPods(workloadCache(sel), sel),
			DefaultWatchErrorHandler:    d.watchError,
		},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 hclogr.New(opts.Logger.Named("controller-runtime")),
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes discovery: %w", err)
	}
	if opts.LeaderElection {
		d.elector, err = newElector(cfg, leaseNS, opts)
		if err != nil {
			return nil, fmt.Errorf("leader election: %w", err)
		}
	}
	return d, nil
}

// clientConfig loads the API client configuration and the namespace the Lease goes in.
func clientConfig(opts Options) (*rest.Config, string, error) {
	leaseNS := opts.LeaseNamespace
	cfg := opts.Config
	if cfg == nil || leaseNS == "" {
		rules := clientcmd.NewDefaultClientConfigLoadingRules() // $KUBECONFIG, ~/.kube/config
		rules.ExplicitPath = opts.Kubeconfig
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
		if cfg == nil {
			c, err := cc.ClientConfig()
			if err != nil {
				return nil, "", fmt.Errorf("kubeconfig: %w (set --kubeconfig or KUBECONFIG when running outside a cluster)", err)
			}
			cfg = c
		}
		if leaseNS == "" {
			ns, _, err := cc.Namespace()
			if err != nil && opts.LeaderElection {
				return nil, "", fmt.Errorf("leader election: cannot tell the aggregator's namespace: %w", err)
			}
			leaseNS = ns
		}
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "faultline-aggregator/" + version.Version
	}
	return cfg, leaseNS, nil
}

// Run watches pods until ctx is done: it sends the full target set once the informers
// have read every watched namespace, then the full set again after every change. It
// never closes out.
func (d *Discoverer) Run(ctx context.Context, out chan<- []discovery.Target) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	var reg toolscache.ResourceEventHandlerRegistration
	inf, err := d.mgr.GetCache().GetInformer(ctx, &corev1.Pod{}, cache.BlockUntilSynced(false))
	if err == nil {
		reg, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { d.apply(obj, false) },
			UpdateFunc: func(_, obj any) { d.apply(obj, false) },
			DeleteFunc: func(obj any) { d.apply(obj, true) },
		})
	}
	if err != nil {
		d.health.observe("", false, fmt.Sprintf("cannot set up the pod informer: %v", err))
		<-ctx.Done()
		return
	}
	d.watchWorkloads(ctx)

	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.mgr.Start(ctx); err != nil {
			d.log.Error("kubernetes discovery stopped", "error", err)
			d.health.observe("", false, fmt.Sprintf("discovery stopped: %v", err))
		}
	}()
	if d.elector != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.elector.run(ctx, d.log.Named("leader-election"))
		}()
	}

	// Synced once every watched namespace was read and this handler has seen all of it.
	if !toolscache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
		return
	}
	d.health.setSynced()
	d.log.Info("pod discovery synced", "selector", d.opts.Selector, "namespaces", scopeList(d.opts.Namespaces))
	d.notify()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.changed:
		}
		select {
		case <-ctx.Done():
			return
		case out <- d.snapshot():
		}
	}
}

// Status reports whether discovery has synced and whether it can reach the API server,
// and why the desired replicas cannot be read if they cannot.
func (d *Discoverer) Status() discovery.Status {
	st := d.health.status()
	st.ReplicasError = d.replicas.problem()
	return st
}

// withPods adds the pods, selected on the API server and summarized as they arrive, to
// the cache's objects.
func withPods(by map[client.Object]cache.ByObject, sel labels.Selector) map[client.Object]cache.ByObject {
	by[&corev1.Pod{}] = cache.ByObject{Label: sel, Transform: summarize}
	return by
}

// IsLeader reports whether this replica holds the Lease and so delivers alerts; always
// true without leader election.
func (d *Discoverer) IsLeader() bool {
	if d.elector == nil {
		return true
	}
	return d.elector.leading.Load()
}

// fromEvent unwraps the tombstone an informer hands over for an object deleted while its
// watch was down: the object as last known, deleted.
func fromEvent(obj any, deleted bool) (any, bool) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		return tomb.Obj, true
	}
	return obj, deleted
}

// apply updates the target of one pod from an informer event.
func (d *Discoverer) apply(obj any, deleted bool) {
	obj, deleted = fromEvent(obj, deleted)
	pod, ok := obj.(*cachedPod)
	if !ok {
		return
	}
	key := string(pod.UID)
	d.mu.Lock()
	defer d.mu.Unlock()
	old, had := d.targets[key]
	switch {
	case deleted || !pod.ok:
		if !had {
			return
		}
		delete(d.targets, key)
	case had && old == pod.target:
		return
	default:
		d.targets[key] = pod.target
	}
	d.notify()
}

func (d *Discoverer) notify() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// snapshot is the current target set, sorted by key.
func (d *Discoverer) snapshot() []discovery.Target {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]discovery.Target, 0, len(d.targets))
	for _, k := range slices.Sorted(maps.Keys(d.targets)) {
		out = append(out, d.targets[k])
	}
	return out
}

// watchError logs what an informer's list or watch failed with, as the API server said
// it (the status carries the short form). Repeats are logged at debug level, since the
// informer retries with backoff for as long as the problem lasts.
func (d *Discoverer) watchError(_ context.Context, _ *toolscache.Reflector, err error) {
	msg := err.Error()
	if last, _ := d.watchErr.Load().(string); last == msg {
		d.log.Debug("watch failed again", "error", msg)
		return
	}
	d.watchErr.Store(msg)
	d.log.Warn("watch failed; retrying with backoff", "error", msg)
}

func scopeList(ns []string) any {
	if len(ns) == 0 {
		return "all"
	}
	return ns
}

// hostname is the default replica identity's first part.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "faultline-aggregator"
	}
	return h
}

// syncedCache tells the manager it has synced at once; see New.
type syncedCache struct{ cache.Cache }

func (syncedCache) WaitForCacheSync(context.Context) bool { return true }
