package kube

import (
	"flag"

	"github.com/hashicorp/go-hclog"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/faultline-dev/faultline/internal/hclogr"
)

// installLogger sends controller-runtime's and klog's logs (client-go's informers and
// leader election log through klog) to l. Both loggers are process-wide, so New installs
// the first Discoverer's logger once.
func installLogger(l hclog.Logger) {
	lr := hclogr.New(l.Named("k8s"))
	ctrllog.SetLogger(lr)
	klog.SetLoggerWithOptions(lr, klog.ContextualLogger(true))
	// klog drops V(n) calls above its own verbosity before they reach the logger: open it
	// as far as l will print.
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
}
