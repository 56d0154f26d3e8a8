package hclogr

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

type ref struct{ ns, name string }

func (r ref) MarshalLog() any { return r.ns + "/" + r.name }

func TestSink(t *testing.T) {
	tests := []struct {
		name  string
		level hclog.Level
		log   func(l hclog.Logger)
		want  []map[string]any
	}{
		{
			name:  "info with values, names and a marshaler",
			level: hclog.Info,
			log: func(l hclog.Logger) {
				lg := New(l).WithName("cache").WithValues("kind", "Pod")
				lg.Info("synced", "pod", ref{"shop", "web-1"}, "count", 3)
			},
			want: []map[string]any{{"@level": "info", "@module": "test.cache", "@message": "synced",
				"kind": "Pod", "pod": "shop/web-1", "count": float64(3)}},
		},
		{
			name:  "verbosity maps to debug and trace",
			level: hclog.Debug,
			log: func(l hclog.Logger) {
				lg := New(l)
				lg.V(1).Info("debug line")
				lg.V(2).Info("trace line, dropped at debug")
			},
			want: []map[string]any{{"@level": "debug", "@module": "test", "@message": "debug line"}},
		},
		{
			name:  "errors carry the error",
			level: hclog.Warn,
			log: func(l hclog.Logger) {
				lg := New(l)
				lg.Info("info dropped at warn")
				lg.Error(errors.New("pods is forbidden"), "list failed", "namespace", "shop")
			},
			want: []map[string]any{{"@level": "error", "@module": "test", "@message": "list failed",
				"error": "pods is forbidden", "namespace": "shop"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			hl := hclog.New(&hclog.LoggerOptions{Name: "test", Level: tt.level, JSONFormat: true, Output: &buf})
			tt.log(hl)
			var got []map[string]any
			dec := json.NewDecoder(&buf)
			for dec.More() {
				var m map[string]any
				if err := dec.Decode(&m); err != nil {
					t.Fatal(err)
				}
				delete(m, "@timestamp")
				got = append(got, m)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("log lines (-want +got):\n%s", diff)
			}
		})
	}
}
