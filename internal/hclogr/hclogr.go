// Package hclogr lets libraries that log through logr (controller-runtime, and klog once
// pointed at a logr.Logger) write to the process's go-hclog logger, so that the
// aggregator has one log format and one level setting.
//
// logr verbosity maps onto hclog levels: V(0) is Info, V(1) is Debug, V(2) and above are
// Trace. Errors are logged at Error with the error under the key "error".
package hclogr

import (
	"github.com/go-logr/logr"
	"github.com/hashicorp/go-hclog"
)

// New returns a logr.Logger writing to l.
func New(l hclog.Logger) logr.Logger { return logr.New(&sink{l: l}) }

type sink struct{ l hclog.Logger }

var _ logr.LogSink = (*sink)(nil)

func (s *sink) Init(logr.RuntimeInfo) {}

// Level is the hclog level a logr verbosity is logged at.
func Level(v int) hclog.Level {
	switch {
	case v <= 0:
		return hclog.Info
	case v == 1:
		return hclog.Debug
	default:
		return hclog.Trace
	}
}

func (s *sink) Enabled(v int) bool {
	switch Level(v) {
	case hclog.Info:
		return s.l.IsInfo()
	case hclog.Debug:
		return s.l.IsDebug()
	default:
		return s.l.IsTrace()
	}
}

func (s *sink) Info(v int, msg string, kv ...any) {
	s.l.Log(Level(v), msg, values(kv)...)
}

func (s *sink) Error(err error, msg string, kv ...any) {
	if err != nil {
		kv = append([]any{"error", err}, kv...)
	}
	s.l.Error(msg, values(kv)...)
}

func (s *sink) WithValues(kv ...any) logr.LogSink { return &sink{l: s.l.With(values(kv)...)} }

func (s *sink) WithName(name string) logr.LogSink { return &sink{l: s.l.Named(name)} }

// values resolves logr.Marshaler values (klog.KObj and the like) to what they want logged.
func values(kv []any) []any {
	out := make([]any, len(kv))
	for i, v := range kv {
		if m, ok := v.(logr.Marshaler); ok && i%2 == 1 {
			v = m.MarshalLog()
		}
		out[i] = v
	}
	return out
}
