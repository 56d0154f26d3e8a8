package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAggregatorAlertRulesAndNewKeys(t *testing.T) {
	file := writeFile(t, `
history-retention: 2h
metrics-max-tiles: 50
alert-rules:
  - name: cpu-high
    threshold: 80
    for: 30s
  - name: breaker-open
    disabled: true
`)
	cfg, err := LoadAggregator([]string{"--config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	th, off := 80.0, true
	want := []AlertRule{
		{Name: "cpu-high", Threshold: &th, For: &Duration{30 * time.Second}},
		{Name: "breaker-open", Disabled: &off},
	}
	if diff := cmp.Diff(want, cfg.AlertRules); diff != "" {
		t.Errorf("alert-rules (-want +got):\n%s", diff)
	}
	if cfg.HistoryRetention != 2*time.Hour || cfg.MetricsMaxTiles != 50 || cfg.SubscriberBuffer != 256 {
		t.Errorf("retention %v, max tiles %d, buffer %d", cfg.HistoryRetention, cfg.MetricsMaxTiles, cfg.SubscriberBuffer)
	}
	if cfg.AgentsPinned {
		t.Error("agents pinned without --agents or FAULTLINE_AGENTS")
	}
}

func TestAggregatorBadAlertRules(t *testing.T) {
	file := writeFile(t, `
alert-rules:
  - name: a
    kind: weather
    threshold: 120
    severity: dire
  - name: a
  - threshold: 5
`)
	_, err := LoadAggregator([]string{"--config", file, "--subscriber-buffer=1", "--history-retention=1m"}, env(nil))
	for _, want := range []string{"alert-rules[0].kind", "alert-rules[0].threshold", "alert-rules[0].severity", "alert-rules[1].name: \"a\" appears twice",
		"alert-rules[2].name: must be set", "subscriber-buffer", "history-retention"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
	file = writeFile(t, "alert-rules:\n  - name: x\n    for: soon\n")
	if _, err := LoadAggregator([]string{"--config", file}, env(nil)); err == nil || !strings.Contains(err.Error(), "alert-rules") {
		t.Errorf("bad duration: %v", err)
	}
}

func TestAgentsPinnedAndReread(t *testing.T) {
	file := writeFile(t, "agents: [\"http://127.0.0.1:9800\"]\n")
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want bool
	}{
		{[]string{"--config", file}, nil, false},
		{[]string{"--config", file, "--agents=http://127.0.0.2:9800"}, nil, true},
		{[]string{"--config", file, "-agents", "http://127.0.0.2:9800"}, nil, true},
		{[]string{"--config", file}, map[string]string{"FAULTLINE_AGENTS": "http://127.0.0.3:9800"}, true},
	} {
		cfg, err := LoadAggregator(tt.args, env(tt.env))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.AgentsPinned != tt.want {
			t.Errorf("%v %v: pinned = %v, want %v", tt.args, tt.env, cfg.AgentsPinned, tt.want)
		}
	}
	got, err := AgentsFromFile(file)
	if err != nil || !cmp.Equal(got, []string{"http://127.0.0.1:9800"}) {
		t.Errorf("AgentsFromFile = %v, %v", got, err)
	}
	if _, err := AgentsFromFile(writeFile(t, "agents: [\"nope\"]\n")); err == nil || !strings.Contains(err.Error(), "agents") {
		t.Errorf("bad URL in file: %v", err)
	}
}

func TestAggregatorLeaseName(t *testing.T) {
	cfg, err := LoadAggregator([]string{"--lease-name=shop-faultline"}, env(nil))
	if err != nil || cfg.LeaseName != "shop-faultline" {
		t.Fatalf("lease-name: got %q, %v", cfg.LeaseName, err)
	}
	if cfg, _ := LoadAggregator(nil, env(nil)); cfg.LeaseName != "faultline-aggregator" {
		t.Errorf("default lease-name %q", cfg.LeaseName)
	}
	for _, bad := range []string{"", "Shop", "-a", "a_b", strings.Repeat("a", 254)} {
		_, err := LoadAggregator([]string{"--lease-name=" + bad}, env(nil))
		if err == nil || !strings.Contains(err.Error(), "lease-name:") {
			t.Errorf("lease-name %q: error %v, want one naming lease-name", bad, err)
		}
	}
}

func TestAggregatorLimitsChecked(t *testing.T) {
	_, err := LoadAggregator([]string{"--agent-max-event-bytes=10", "--agent-max-garbage-bytes=-1", "--allowed-hosts=*,a b"}, env(nil))
	for _, want := range []string{"agent-max-event-bytes: 10 is outside", "agent-max-garbage-bytes: -1 is outside", `allowed-hosts: "a b" is not a host name`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
}
