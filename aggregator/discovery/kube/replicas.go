package kube

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/faultline-dev/faultline/aggregator/discovery"
)

// The workload kinds whose desired replicas are read: "k of n" counts n as the pods a
// workload's controller wants, so that a pod that vanished or never came up counts.
// Jobs are not among them: a Job's parallelism is not a number of pods that should be
// up.
var workloadKinds = []workloadKind{
	{"deployments", &appsv1.Deployment{}},
	{"statefulsets", &appsv1.StatefulSet{}},
	{"replicasets", &appsv1.ReplicaSet{}},
	{"daemonsets", &appsv1.DaemonSet{}},
}

type workloadKind struct {
	resource string
	obj      client.Object
}

// workloadCache is how the cache reads the workload kinds: in the namespaces pods are
// watched in, each object turned into a small summary as it arrives. ReplicaSets are
// also selected by the agent selector on the API server: a ReplicaSet a Deployment made
// carries its pod template's labels, and only a ReplicaSet that no Deployment owns is
// counted on its own (a Deployment's are counted through it). The other kinds cannot be
// selected there (their own labels are not their pods'), so the summary keeps only
// whether their pod template matches the selector.
func workloadCache(sel labels.Selector) map[client.Object]cache.ByObject {
	out := map[client.Object]cache.ByObject{}
	for _, k := range workloadKinds {
		by := cache.ByObject{Transform: summarizeWorkload(sel)}
		if k.resource == "replicasets" {
			by.Label = sel
		}
		out[k.obj] = by
	}
	return out
}

// cachedWorkload is all the cache keeps of a workload object.
type cachedWorkload struct {
	metav1.TypeMeta
	metav1.ObjectMeta // name, namespace, UID and resource version only

	// selected is false for a workload whose pods the selector does not select, and for
	// a Deployment's ReplicaSet (counted through the Deployment).
	selected bool
	desired  int
}

var _ runtime.Object = (*cachedWorkload)(nil)

// DeepCopyObject copies the summary.
func (w *cachedWorkload) DeepCopyObject() runtime.Object {
	c := *w
	w.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	return &c
}

// summarizeWorkload is the cache's transform for the workload kinds; like summarize, it
// is idempotent and lets anything else through.
func summarizeWorkload(sel labels.Selector) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		var meta metav1.ObjectMeta
		var template map[string]string
		var replicas *int32
		desired := -1
		switch o := obj.(type) {
		case *appsv1.Deployment:
			meta, template, replicas = o.ObjectMeta, o.Spec.Template.Labels, o.Spec.Replicas
		case *appsv1.StatefulSet:
			meta, template, replicas = o.ObjectMeta, o.Spec.Template.Labels, o.Spec.Replicas
		case *appsv1.ReplicaSet:
			meta, template, replicas = o.ObjectMeta, o.Spec.Template.Labels, o.Spec.Replicas
			if ref := metav1.GetControllerOfNoCopy(o); ref != nil && ref.Kind == "Deployment" {
				template = nil // counted through its Deployment
			}
		case *appsv1.DaemonSet:
			meta, template = o.ObjectMeta, o.Spec.Template.Labels
			desired = int(o.Status.DesiredNumberScheduled)
		default:
			return obj, nil
		}
		if desired < 0 {
			desired = 1 // the API server's default for an unset replicas
			if replicas != nil {
				desired = int(*replicas)
			}
		}
		return &cachedWorkload{
			ObjectMeta: metav1.ObjectMeta{Name: meta.Name, Namespace: meta.Namespace, UID: meta.UID, ResourceVersion: meta.ResourceVersion},
			selected:   template != nil && sel.Matches(labels.Set(template)),
			desired:    desired,
		}, nil
	}
}

// replicas keeps the desired pods of the selected workloads, and whether they can be
// read.
type replicas struct {
	mu      sync.Mutex
	objects map[string]*cachedWorkload // by UID
	synced  bool
	current atomic.Pointer[map[discovery.Workload]int] // rebuilt on every change; nil until synced
	errs    map[string]string                          // by resource and scope
}

func newReplicas() *replicas {
	return &replicas{objects: map[string]*cachedWorkload{}, errs: map[string]string{}}
}

// apply updates one workload from an informer event.
func (r *replicas) apply(obj any, deleted bool) {
	obj, deleted = fromEvent(obj, deleted)
	w, ok := obj.(*cachedWorkload)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.objects[string(w.UID)]
	switch {
	case deleted || !w.selected:
		if old == nil {
			return
		}
		delete(r.objects, string(w.UID))
	case old != nil && old.desired == w.desired && old.Name == w.Name:
		return
	default:
		r.objects[string(w.UID)] = w
	}
	r.rebuild()
}

// setSynced records that every workload kind has been read once.
func (r *replicas) setSynced() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.synced = true
	r.rebuild()
}

// rebuild sums the desired pods per workload name; called with r.mu held. Workloads of
// different kinds with one name in one namespace share their pods' workload, and so
// their sum.
func (r *replicas) rebuild() {
	if !r.synced {
		return
	}
	m := make(map[discovery.Workload]int, len(r.objects))
	for _, w := range r.objects {
		m[discovery.Workload{Namespace: intern(w.Namespace), Name: intern(w.Name)}] += w.desired
	}
	r.current.Store(&m)
}

// desired is the current map (never modified after it is published), or nil before
// every kind was read once. While the API server cannot be reached the last known
// counts stay, as the last known pods do.
func (r *replicas) desired() map[discovery.Workload]int {
	if m := r.current.Load(); m != nil {
		return *m
	}
	return nil
}

// observe records the outcome of one list or watch of a workload kind.
func (r *replicas) observe(resource, scope string, watch bool, problem string) {
	key := resource + "\x00" + scope
	if !watch {
		key += "\x00list"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if problem == "" {
		delete(r.errs, key)
		if watch { // a watch only starts from a complete list
			delete(r.errs, key+"\x00list")
		}
		return
	}
	r.errs[key] = problem
}

// problem is why desired replicas cannot be read now; empty when they can.
func (r *replicas) problem() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return ""
	}
	msgs := make([]string, 0, len(r.errs))
	for _, m := range r.errs {
		if !slices.Contains(msgs, m) {
			msgs = append(msgs, m)
		}
	}
	sort.Strings(msgs)
	return strings.Join(msgs, "; ")
}

// watchWorkloads registers the workload informers' handlers and marks the replicas
// synced once each kind was read; it returns at once (the manager runs the informers).
func (d *Discoverer) watchWorkloads(ctx context.Context) {
	var regs []toolscache.ResourceEventHandlerRegistration
	for _, k := range workloadKinds {
		inf, err := d.mgr.GetCache().GetInformer(ctx, k.obj, cache.BlockUntilSynced(false))
		if err == nil {
			var reg toolscache.ResourceEventHandlerRegistration
			reg, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { d.replicas.apply(obj, false) },
				UpdateFunc: func(_, obj any) { d.replicas.apply(obj, false) },
				DeleteFunc: func(obj any) { d.replicas.apply(obj, true) },
			})
			regs = append(regs, reg)
		}
		if err != nil {
			d.replicas.observe(k.resource, "", false, fmt.Sprintf("cannot set up the %s informer: %v", k.resource, err))
			return
		}
	}
	go func() {
		synced := make([]toolscache.InformerSynced, len(regs))
		for i, r := range regs {
			synced[i] = r.HasSynced
		}
		if toolscache.WaitForCacheSync(ctx.Done(), synced...) {
			d.replicas.setSynced()
			d.log.Info("desired replicas synced")
		}
	}()
}

// DesiredReplicas returns the desired pods of every selected workload; nil before the
// workloads are read or while they cannot be (Status says why in ReplicasError).
func (d *Discoverer) DesiredReplicas() map[discovery.Workload]int { return d.replicas.desired() }

// workloadRequest says whether r lists or watches one of the workload kinds, and which
// and where.
func workloadRequest(r *http.Request) (resource, scope string, watch, ok bool) {
	if r.Method != http.MethodGet {
		return "", "", false, false
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 4 || parts[0] != "apis" || parts[1] != appsv1.GroupName || parts[2] != "v1" {
		return "", "", false, false
	}
	switch {
	case len(parts) == 4:
		resource = parts[3]
	case len(parts) == 6 && parts[3] == "namespaces":
		resource, scope = parts[5], parts[4]
	default:
		return "", "", false, false
	}
	if !slices.ContainsFunc(workloadKinds, func(k workloadKind) bool { return k.resource == resource }) {
		return "", "", false, false
	}
	w := r.URL.Query().Get("watch")
	return resource, scope, w == "true" || w == "1", true
}

// workloadMappings are the REST mappings of the workload kinds, for the fixed mapper.
func workloadMappings() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{
		appsv1.SchemeGroupVersion.WithKind("Deployment"),
		appsv1.SchemeGroupVersion.WithKind("StatefulSet"),
		appsv1.SchemeGroupVersion.WithKind("ReplicaSet"),
		appsv1.SchemeGroupVersion.WithKind("DaemonSet"),
	}
}
