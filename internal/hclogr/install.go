package hclogr

import (
	"flag"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"github.com/hashicorp/go-hclog"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

var (
	// k8sLog is where controller-runtime and klog (client-go's informers, leader
	// election and event recording) write: the logger last installed (one per process in
	// the binaries; tests install theirs in turn).
	k8sLog      atomic.Pointer[hclog.Logger]
	installOnce sync.Once
)

// Install points the Kubernetes libraries' process-wide loggers (controller-runtime's and
// klog's) at l, under the name "k8s". klog's logger may only be set before it is used,
// so it is set once, to a sink that looks up the logger installed last at every call.
func Install(l hclog.Logger) {
	l = l.Named("k8s")
	k8sLog.Store(&l)
	installOnce.Do(func() {
		lr := logr.New(&switchSink{})
		ctrllog.SetLogger(lr)
		klog.SetLoggerWithOptions(lr, klog.ContextualLogger(true))
		// klog drops V(n) calls above its own verbosity before they reach the logger:
		// open it as far as the first logger prints.
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		v := "0"
		switch {
		case l.IsTrace():
			v = "4"
		case l.IsDebug():
			v = "1"
		}
		_ = fs.Set("v", v)
	})
}

// switchSink is a logr sink writing to whatever k8sLog holds at the time of the call.
type switchSink struct {
	names []string
	kv    []any
}

func (s *switchSink) current() logr.LogSink {
	sink := New(*k8sLog.Load()).GetSink()
	for _, n := range s.names {
		sink = sink.WithName(n)
	}
	if len(s.kv) > 0 {
		sink = sink.WithValues(s.kv...)
	}
	return sink
}

func (s *switchSink) Init(logr.RuntimeInfo)                  {}
func (s *switchSink) Enabled(v int) bool                     { return s.current().Enabled(v) }
func (s *switchSink) Info(v int, msg string, kv ...any)      { s.current().Info(v, msg, kv...) }
func (s *switchSink) Error(err error, msg string, kv ...any) { s.current().Error(err, msg, kv...) }
func (s *switchSink) WithValues(kv ...any) logr.LogSink {
	return &switchSink{names: s.names, kv: append(append([]any(nil), s.kv...), kv...)}
}
func (s *switchSink) WithName(name string) logr.LogSink {
	return &switchSink{names: append(append([]string(nil), s.names...), name), kv: s.kv}
}
