package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAgentDownwardAPILimits: the chart passes container limits through the
// environment, as the Downward API renders them.
func TestAgentDownwardAPILimits(t *testing.T) {
	cfg, err := LoadAgent(nil, env(map[string]string{
		"FAULTLINE_CPU_LIMIT_MILLICORES": "500",
		"FAULTLINE_MEMORY_LIMIT_BYTES":   "268435456",
		"FAULTLINE_TOKEN":                "s3cret",
		"FAULTLINE_MODE":                 "cgroup",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cfg.CPULimitMillicores, cfg.MemoryLimitBytes, cfg.Token, cfg.Mode}
	if diff := cmp.Diff([]any{int64(500), int64(268435456), "s3cret", ModeCgroup}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	_, err = LoadAgent([]string{"--cpu-limit-millicores=-1", "--memory-limit-bytes=-5", "--ingest-listen=9801"}, env(nil))
	for _, want := range []string{"cpu-limit-millicores: -1 is negative", "memory-limit-bytes: -5 is negative", `ingest-listen: "9801"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
	// A quantity with a unit or a fraction is refused: the chart renders millicores
	// (resourceFieldRef divisor 1m).
	_, err = LoadAgent(nil, env(map[string]string{"FAULTLINE_CPU_LIMIT_MILLICORES": "500m"}))
	if err == nil || !strings.Contains(err.Error(), "cpu-limit-millicores (env FAULTLINE_CPU_LIMIT_MILLICORES)") {
		t.Errorf("a fractional value is accepted or not named: %v", err)
	}
}

func TestCheckAgentSetting(t *testing.T) {
	tests := []struct {
		key, value, want string // want: "" for accepted, else a part of the message
	}{
		{"sample-interval", "500ms", ""},
		{"sample-interval", "5ms", "outside the allowed range 100ms to 1m0s"},
		{"sample-interval", "fast", `"fast" is not a duration such as 500ms or 2s`},
		{"max-breakers-per-source", "many", `"many" is not a whole number`},
		{"prometheus-url", "http://127.0.0.1:8080/metrics", ""},
		{"prometheus-url", "127.0.0.1:8080/metrics", "is not an http or https URL"},
		{"hystrix-url", "ftp://x/y", "is not an http or https URL"},
		{"log-level", "debug", ""},
		{"log-level", "loud", `"loud" is not one of trace, debug, info, warn, error`},
		{"prometheus-interval", "10m", "outside the allowed range"},
		{"config", "/etc/x", "is not a setting of the agent"},
		{"no-such-key", "1", "is not a setting of the agent"},
	}
	for _, tt := range tests {
		err := CheckAgentSetting(tt.key, tt.value)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s=%q: %v, want accepted", tt.key, tt.value, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s=%q: %v, want an error containing %q", tt.key, tt.value, err, tt.want)
		case err != nil && strings.HasPrefix(err.Error(), tt.key+":"):
			t.Errorf("%s=%q: message %q repeats the key", tt.key, tt.value, err)
		}
	}
}

// The limits and names of the guard and the registry are checked, each naming its key.
func TestAgentLimitsChecked(t *testing.T) {
	_, err := LoadAgent([]string{"--max-breakers=0", "--max-body-bytes=10", "--max-header-bytes=1", "--allowed-hosts=http://x,ok.example",
		"--workload=" + strings.Repeat("w", 300)}, env(nil))
	for _, want := range []string{"max-breakers: 0 is outside", "max-body-bytes: 10 is outside", "max-header-bytes: 1 is outside",
		`allowed-hosts: "http://x" is not a host name`, "workload: longer than 253 bytes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
	cfg, err := LoadAgent(nil, env(map[string]string{"FAULTLINE_ALLOWED_HOSTS": "checkout.shop.svc,.corp.example"}))
	if err != nil || len(cfg.AllowedHosts) != 2 || cfg.MaxBreakers != 1000 || cfg.MaxBodyBytes != 64<<10 || cfg.MaxHeaderBytes != 16<<10 {
		t.Errorf("defaults and env: %+v %v", cfg, err)
	}
}
