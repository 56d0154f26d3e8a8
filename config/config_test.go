package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "faultline.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAgentPrecedence(t *testing.T) {
	file := writeFile(t, "sample-interval: 2s\nlisten: \":7000\"\nworkload: from-file\nmax-breakers-per-source: 20\n")
	cfg, err := LoadAgent(
		[]string{"--config", file, "--sample-interval=500ms"},
		env(map[string]string{"FAULTLINE_LISTEN": ":7100", "FAULTLINE_SAMPLE_INTERVAL": "3s"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"sample": cfg.SampleInterval, "listen": cfg.Listen, "workload": cfg.Workload, "max": cfg.MaxBreakersPerSource, "mode": cfg.Mode}
	want := map[string]any{"sample": 500 * time.Millisecond, "listen": ":7100", "workload": "from-file", "max": 20, "mode": ModeHost}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("flags > env > file > defaults (-want +got):\n%s", diff)
	}
}

func TestAgentModeDefaultsToPodInCluster(t *testing.T) {
	cfg, err := LoadAgent(nil, env(map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != ModePod {
		t.Errorf("mode = %q, want pod", cfg.Mode)
	}
}

func TestAgentReportsEveryProblem(t *testing.T) {
	file := writeFile(t, "sample-interval: 5ms\nbogus-key: 1\nprometheus-mappings:\n  - metric: x\n    states: {\"1\": sideways}\n")
	_, err := LoadAgent([]string{"--config=" + file, "--mode=vm", "--listen=nope", "--hystrix-url=ftp://x"},
		env(map[string]string{"FAULTLINE_MAX_BREAKERS_PER_SOURCE": "lots"}))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{"bogus-key", "max-breakers-per-source (env FAULTLINE_MAX_BREAKERS_PER_SOURCE)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
	// Loading stops before validation when values cannot even be parsed; fix those and
	// every validation problem is reported at once.
	file = writeFile(t, "sample-interval: 5ms\nprometheus-mappings:\n  - metric: x\n    states: {\"1\": sideways}\n")
	_, err = LoadAgent([]string{"--config=" + file, "--mode=vm", "--listen=nope", "--hystrix-url=ftp://x"}, env(nil))
	for _, want := range []string{"sample-interval: 5ms", "mode: \"vm\"", "listen: \"nope\"", "hystrix-url", "prometheus-mappings[0].name-label", "sideways"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
}

func TestAggregatorLists(t *testing.T) {
	file := writeFile(t, "agents:\n  - http://127.0.0.1:9800\n  - http://127.0.0.2:9800\nnamespaces: [shop, pay]\nlocal-agent: true\n")
	cfg, err := LoadAggregator([]string{"-config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(List{"http://127.0.0.1:9800", "http://127.0.0.2:9800"}, cfg.Agents); diff != "" {
		t.Errorf("agents (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(List{"shop", "pay"}, cfg.Namespaces); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	if !cfg.LocalAgent || cfg.Mode != ModeStatic {
		t.Errorf("local-agent = %v, mode = %q; want true, static", cfg.LocalAgent, cfg.Mode)
	}
	_, err = LoadAggregator([]string{"--agents=localhost:9800", "--broadcast-interval=2m", "--alertmanager-url=::"}, env(nil))
	for _, want := range []string{"agents: \"localhost:9800\"", "broadcast-interval", "alertmanager-url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("sample-interval"); got != "FAULTLINE_SAMPLE_INTERVAL" {
		t.Errorf("EnvName = %q", got)
	}
}
