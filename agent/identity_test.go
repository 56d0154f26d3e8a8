package agent

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/version"
	"github.com/faultline-dev/faultline/internal/wire"
)

func TestIdentify(t *testing.T) {
	started := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	downward := map[string]string{"POD_NAME": "checkout-7d9fb8c5d4-x2kzq", "POD_NAMESPACE": "shop", "POD_UID": "6f1c",
		"NODE_NAME": "node-1", "POD_IP": "10.0.0.7"}
	tests := []struct {
		name     string
		env      map[string]string
		workload string
		host     string
		want     wire.Agent
	}{
		{"in a pod", downward, "", "ignored",
			wire.Agent{ID: "shop/checkout-7d9fb8c5d4-x2kzq", Pod: "checkout-7d9fb8c5d4-x2kzq", Namespace: "shop", UID: "6f1c",
				Node: "node-1", IP: "10.0.0.7", Workload: "checkout"}},
		{"workload set", downward, "checkout-v2", "ignored",
			wire.Agent{ID: "shop/checkout-7d9fb8c5d4-x2kzq", Pod: "checkout-7d9fb8c5d4-x2kzq", Namespace: "shop", UID: "6f1c",
				Node: "node-1", IP: "10.0.0.7", Workload: "checkout-v2"}},
		{"outside Kubernetes", nil, "", "laptop", wire.Agent{ID: "laptop", Node: "laptop"}},
		{"no host name", nil, "", "", wire.Agent{ID: "localhost", Node: "localhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := func() (string, error) {
				if tt.host == "" {
					return "", errors.New("no name")
				}
				return tt.host, nil
			}
			cfg := config.DefaultAgent()
			cfg.Mode, cfg.Workload = config.ModePod, tt.workload
			got := identify(cfg, func(k string) string { return tt.env[k] }, host, started)
			want := tt.want
			want.V, want.Version, want.Mode, want.Started = 1, version.Version, "pod", wire.NewTime(started)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWorkloadOf(t *testing.T) {
	tests := map[string]string{
		"checkout-7d9fb8c5d4-x2kzq":       "checkout",      // Deployment
		"api-v2-5f6c9b7d8-q8w4z":          "api-v2",        // Deployment whose name ends in a word
		"node-exporter-x2kzq":             "node-exporter", // DaemonSet
		"redis-0":                         "redis",         // StatefulSet
		"kafka-broker-12":                 "kafka-broker",  // StatefulSet
		"report-29012345-bq7xz":           "report",        // CronJob's Job
		"migrate-db-j9w2c":                "migrate-db",    // Job
		"standalone":                      "standalone",    // bare pod
		"my-app-server":                   "my-app-server", // words, not hashes
		"web-abcde":                       "web-abcde",     // vowels: not a generated suffix
		"checkout-7d9fb8c5d4-x2kzq-extra": "checkout-7d9fb8c5d4-x2kzq-extra",
	}
	for pod, want := range tests {
		if got := workloadOf(pod); got != want {
			t.Errorf("workloadOf(%q) = %q, want %q", pod, got, want)
		}
	}
}
