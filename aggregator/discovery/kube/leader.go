package kube

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
)

// DefaultLeaseName names the Lease when Options.LeaseName is empty.
const DefaultLeaseName = "faultline-aggregator"

// eventGrace is how long a term's last events may take to reach the API server.
const eventGrace = 5 * time.Second

// elector holds a Lease for as long as it can, and campaigns again when it loses it. It
// runs beside the manager rather than as the manager's own leader election, because the
// manager ends when it loses the Lease, and discovery must go on in every replica (an API
// server outage long enough to lose the Lease must not stop the view).
type elector struct {
	client    kubernetes.Interface
	namespace string
	name      string
	id        string
	lease     time.Duration
	renew     time.Duration
	retry     time.Duration
	leading   atomic.Bool
}

func newElector(cfg *rest.Config, namespace string, opts Options) (*elector, error) {
	if namespace == "" {
		return nil, fmt.Errorf("no namespace for the Lease")
	}
	e := &elector{namespace: namespace, name: opts.LeaseName, id: opts.Identity,
		lease: opts.LeaseDuration, renew: opts.RenewDeadline, retry: opts.RetryPeriod}
	if e.name == "" {
		e.name = DefaultLeaseName
	}
	if e.id == "" {
		e.id = hostname() + "_" + string(uuid.NewUUID())
	}
	if e.lease == 0 {
		e.lease, e.renew, e.retry = 15*time.Second, 10*time.Second, 2*time.Second
	}
	// A hung request must not outlast the renew deadline, or one slow answer loses the Lease.
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = max(e.renew/2, time.Second)
	var err error
	e.client, err = kubernetes.NewForConfig(cfg)
	return e, err
}

// run campaigns until ctx is done.
func (e *elector) run(ctx context.Context, log hclog.Logger) {
	log.Info("campaigning for the Lease", "lease", e.namespace+"/"+e.name, "identity", e.id)
	for ctx.Err() == nil {
		if err := e.term(ctx, log); err != nil {
			log.Error("leader election disabled", "error", err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(e.retry):
		}
	}
}

// term campaigns until it holds the Lease, then holds it until it loses it or ctx is done.
// Each term records "became leader" and "stopped leading" events on the Lease, which
// show operators which replica delivers alerts. A fresh recorder per term never
// aggregates an event into an earlier one, so creating events is the only right needed.
func (e *elector) term(ctx context.Context, log hclog.Logger) error {
	// The broadcaster outlives the term by a few seconds so that the "stopped leading"
	// event, recorded as the term ends (or the process stops), is still sent.
	events := record.NewBroadcaster(record.WithContext(context.WithoutCancel(ctx)))
	defer time.AfterFunc(eventGrace, events.Shutdown)
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: e.client.CoreV1().Events(e.namespace)})
	recorder := events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "faultline-aggregator"})
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, e.namespace, e.name,
		e.client.CoreV1(), e.client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: e.id, EventRecorder: recorder})
	if err != nil {
		return err
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            e.name,
		LeaseDuration:   e.lease,
		RenewDeadline:   e.renew,
		RetryPeriod:     e.retry,
		ReleaseOnCancel: true, // a replica shutting down hands over at once
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				e.leading.Store(true)
				log.Info("leading: this replica delivers alerts", "identity", e.id)
			},
			OnStoppedLeading: func() {
				if e.leading.Swap(false) {
					log.Warn("lost the Lease: another replica delivers alerts", "identity", e.id)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	le.Run(ctx) // returns when leadership is lost or ctx is done
	return nil
}
