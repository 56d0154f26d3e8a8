package charts

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSchemaRejects checks that values.schema.json turns away each kind of wrong value
// before anything renders, naming the value's path.
func TestSchemaRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"wrong type: replicas as text", []string{"--set", "aggregator.replicas=two"}, "at '/aggregator/replicas': got string, want integer"},
		{"wrong type: demo.enabled as text", []string{"--set-string", "demo.enabled=yes"}, "at '/demo/enabled': got string, want boolean"},
		{"wrong type: watchNamespaces as text", []string{"--set", "aggregator.watchNamespaces=shop"}, "at '/aggregator/watchNamespaces': got string, want array"},
		{"unknown top-level key", []string{"--set", "replicas=2"}, "additional properties 'replicas' not allowed"},
		{"unknown nested key (typo)", []string{"--set", "aggregator.replica=2"}, "at '/aggregator': additional properties 'replica' not allowed"},
		{"unknown image key", []string{"--set", "agent.image.name=x"}, "at '/agent/image': additional properties 'name' not allowed"},
		{"bad enum: mode", []string{"--set", "aggregator.mode=swarm"}, "at '/aggregator/mode': value must be one of 'kubernetes', 'static'"},
		{"bad enum: log level", []string{"--set", "aggregator.logLevel=verbose"}, "at '/aggregator/logLevel': value must be one of"},
		{"bad enum: service type", []string{"--set", "aggregator.service.type=ExternalName"}, "at '/aggregator/service/type': value must be one of"},
		{"bad enum: pull policy", []string{"--set", "demo.image.pullPolicy=Sometimes"}, "at '/demo/image/pullPolicy': value must be one of"},
		{"bad duration", []string{"--set", "aggregator.broadcastInterval=fast"}, "at '/aggregator/broadcastInterval'"},
		{"bad sample interval", []string{"--set", "agent.sampleInterval=1"}, "at '/agent/sampleInterval'"},
		{"bad namespace name", []string{"--set", "aggregator.watchNamespaces={Shop}"}, "at '/aggregator/watchNamespaces/0'"},
		{"agent URL without scheme", []string{"--set", "aggregator.mode=static", "--set", "aggregator.agents={10.0.0.7:9800}"}, "at '/aggregator/agents/0'"},
		{"bad digest", []string{"--set", "aggregator.image.digest=abc"}, "at '/aggregator/image/digest'"},
		{"allowed host with a scheme", []string{"--set", "aggregator.allowedHosts={http://dash.example.com}"}, "at '/aggregator/allowedHosts/0'"},
		{"replicas below one", []string{"--set", "aggregator.replicas=0"}, "at '/aggregator/replicas': minimum: got 0, want 1"},
		{"node port out of range", []string{"--set", "aggregator.service.type=NodePort", "--set", "aggregator.service.nodePort=80"}, "at '/aggregator/service/nodePort'"},
		{"empty agent selector", []string{"--set", "aggregator.agentSelector=null"}, "at '/aggregator': missing property 'agentSelector'"},
		{"demo replicas as text", []string{"--set", "demo.services.checkout.replicas=two"}, "at '/demo/services/checkout/replicas': got string, want integer"},
		{"demo replicas below zero", []string{"--set", "demo.services.payments.replicas=-1"}, "at '/demo/services/payments/replicas': minimum: got -1, want 0"},
		{"unknown demo service", []string{"--set", "demo.services.cart.replicas=1"}, "at '/demo/services': additional properties 'cart' not allowed"},
		{"pattern of a service that is no dependency", []string{"--set", "demo.services.frontend.pattern=outage"}, "at '/demo/services/frontend': additional properties 'pattern' not allowed"},
		{"unknown demo pattern", []string{"--set", "demo.services.payments.pattern=sideways"}, "at '/demo/services/payments/pattern'"},
		{"bad resource quantity", []string{"--set", "demo.resources.limits.memory=lots"}, "at '/demo/resources/limits/memory'"},
		{"alert rule of an unknown kind", []string{"--set", "aggregator.alertRules[0].name=x", "--set", "aggregator.alertRules[0].kind=disk"}, "at '/aggregator/alertRules/0/kind': value must be one of"},
		{"alert rule without a name", []string{"--set", "aggregator.alertRules[0].severity=critical"}, "at '/aggregator/alertRules/0': missing property 'name'"},
		{"alert rule with an unknown field", []string{"--set", "aggregator.alertRules[0].name=x", "--set", "aggregator.alertRules[0].duration=5m"}, "at '/aggregator/alertRules/0': additional properties 'duration' not allowed"},
		{"alert threshold over 100 percent", []string{"--set", "aggregator.alertRules[0].name=x", "--set", "aggregator.alertRules[0].threshold=150"}, "at '/aggregator/alertRules/0/threshold': maximum"},
		{"subscriber buffer too small", []string{"--set", "aggregator.tuning.subscriberBuffer=4"}, "at '/aggregator/tuning/subscriberBuffer'"},
		{"unknown resources key", []string{"--set", "agent.resources.limit.cpu=1"}, "at '/agent/resources': additional properties 'limit' not allowed"},
		{"injector.enabled as text", []string{"--set-string", "injector.enabled=yes"}, "at '/injector/enabled': got string, want boolean"},
		{"unknown injector key", []string{"--set", "injector.failurePolicy=Fail"}, "at '/injector': additional properties 'failurePolicy' not allowed"},
		{"bad enum: podOptIn", []string{"--set", "injector.podOptIn=everything"}, "at '/injector/podOptIn': value must be one of 'annotation', 'label', 'off'"},
		{"webhook timeout too long", []string{"--set", "injector.webhook.timeoutSeconds=31"}, "at '/injector/webhook/timeoutSeconds': maximum: got 31, want 30"},
		{"webhook timeout zero", []string{"--set", "injector.webhook.timeoutSeconds=0"}, "at '/injector/webhook/timeoutSeconds': minimum: got 0, want 1"},
		{"bad excluded namespace", []string{"--set", "injector.excludeNamespaces={Shop}"}, "at '/injector/excludeNamespaces/0'"},
		{"bad issuer kind", []string{"--set", "injector.certManager.issuerRef.kind=Vault"}, "at '/injector/certManager/issuerRef/kind': value must be one of 'Issuer', 'ClusterIssuer'"},
		{"injector replicas below one", []string{"--set", "injector.replicas=0"}, "at '/injector/replicas': minimum: got 0, want 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := renderErr(t, tt.args...)
			wantErr(t, err, "values don't meet the specifications of the schema")
			wantErr(t, err, tt.want)
		})
	}
}

// TestFailMessages checks each combination _validations.tpl refuses, and that the message
// says what to change.
func TestFailMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"static mode without agents", []string{"--set", "aggregator.mode=static"},
			`aggregator.mode is "static" but aggregator.agents is empty`},
		{"agents in kubernetes mode", []string{"--set", "aggregator.agents={http://10.0.0.7:9800}"},
			`aggregator.agents is only used with aggregator.mode "static"`},
		{"watched namespaces in static mode", []string{"--values", filepath.Join(chartDir, "ci", "static-values.yaml"), "--set", "aggregator.watchNamespaces={shop}"},
			`aggregator.watchNamespaces is only used with aggregator.mode "kubernetes"`},
		{"demo in static mode", []string{"--values", filepath.Join(chartDir, "ci", "static-values.yaml"), "--set", "demo.enabled=true"},
			`demo.enabled needs aggregator.mode "kubernetes"`},
		{"demo outside the watched namespaces", []string{"--set", "demo.enabled=true", "--set", "aggregator.watchNamespaces={shop}"},
			`demo.enabled runs the demo in the release namespace "faultline", which aggregator.watchNamespaces [shop] leaves out: add "faultline"`},
		{"the old single demo replicas value", []string{"--set", "demo.enabled=true", "--set", "demo.replicas=3"},
			"demo.replicas is gone: the demo is five services (frontend, checkout, payments, inventory, shipping), each with its own demo.services.<name>.replicas"},
		{"disruption budget with one replica", []string{"--set", "aggregator.podDisruptionBudget.enabled=true"},
			"aggregator.podDisruptionBudget.enabled needs aggregator.replicas of 2 or more"},
		{"disruption budget that blocks every eviction", []string{"--set", "aggregator.podDisruptionBudget.enabled=true", "--set", "aggregator.replicas=2", "--set", "aggregator.podDisruptionBudget.minAvailable=2"},
			"aggregator.podDisruptionBudget.minAvailable (2) must be below aggregator.replicas (2)"},
		{"ingress without a host", []string{"--set", "aggregator.ingress.enabled=true"},
			"aggregator.ingress.enabled needs aggregator.ingress.host"},
		{"node port on a ClusterIP service", []string{"--set", "aggregator.service.nodePort=30001"},
			"aggregator.service.nodePort is set but aggregator.service.type is ClusterIP"},
		{"injector in static mode", []string{"--values", filepath.Join(chartDir, "ci", "static-values.yaml"), "--set", "injector.enabled=true"},
			`injector.enabled adds agents that only aggregator.mode "kubernetes" finds: set injector.enabled=false with mode "static"`},
		{"injector disruption budget with one replica", []string{"--set", "injector.podDisruptionBudget.enabled=true"},
			"injector.podDisruptionBudget.enabled needs injector.replicas of 2 or more"},
		{"injector disruption budget that blocks every eviction", []string{"--set", "injector.podDisruptionBudget.enabled=true", "--set", "injector.replicas=2", "--set", "injector.podDisruptionBudget.minAvailable=2"},
			"injector.podDisruptionBudget.minAvailable (2) must be below injector.replicas (2)"},
		{"issuer without cert-manager", []string{"--set", "injector.certManager.issuerRef.name=corp-ca"},
			"injector.certManager.issuerRef is only used with injector.certManager.enabled"},
		{"issuer without a name", []string{"--set", "injector.certManager.enabled=true", "--set", "injector.certManager.issuerRef.kind=ClusterIssuer"},
			"injector.certManager.issuerRef needs a name"},
		{"no service account to use", []string{"--set", "serviceAccount.create=false"},
			"serviceAccount.create is false, so serviceAccount.name must name an existing ServiceAccount"},
		{"scrape timeout over the interval", []string{"--set", "aggregator.serviceMonitor.enabled=true", "--set", "aggregator.serviceMonitor.interval=10s", "--set", "aggregator.serviceMonitor.scrapeTimeout=1m"},
			"aggregator.serviceMonitor.scrapeTimeout (1m) must not exceed aggregator.serviceMonitor.interval (10s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := renderErr(t, tt.args...)
			wantErr(t, err, "faultline: "+tt.want)
		})
	}
	// The same checks let good combinations through.
	for _, args := range [][]string{
		{"--set", "aggregator.serviceMonitor.enabled=true", "--set", "aggregator.serviceMonitor.interval=1m", "--set", "aggregator.serviceMonitor.scrapeTimeout=59s"},
		{"--set", "demo.enabled=true", "--set", "aggregator.watchNamespaces={shop,faultline}"},
		{"--set", "serviceAccount.create=false", "--set", "serviceAccount.name=existing"},
	} {
		if _, err := renderErr(t, args...); err != nil {
			t.Errorf("good values %q rejected: %v", args, err)
		}
	}
}

// TestValuesDocumented checks that every key in values.yaml has a comment right above it
// ("every value documented"); section keys may be documented by their children.
func TestValuesDocumented(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	indent := func(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "- ") || !strings.Contains(trimmed, ":") {
			continue
		}
		key, value, _ := strings.Cut(trimmed, ":")
		section := strings.TrimSpace(value) == "" && i+1 < len(lines) && indent(lines[i+1]) > indent(line)
		// Entries inside a documented map or list value (resources, capabilities...)
		// belong to their parent's comment.
		if parentDocumented(lines, i, indent) {
			continue
		}
		if section {
			continue
		}
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("values.yaml:%d: %s has no comment above it", i+1, key)
		}
	}
}

// parentDocumented reports whether line i sits inside a value whose key carries the
// "# --" documentation comment (so the line is part of that value's default).
func parentDocumented(lines []string, i int, indent func(string) int) bool {
	want := indent(lines[i])
	for j := i - 1; j >= 0; j-- {
		l := lines[j]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") || indent(l) >= want {
			continue
		}
		want = indent(l)
		// l is an ancestor key; documented if the comment block above it starts with "# --".
		for k := j - 1; k >= 0 && strings.HasPrefix(strings.TrimSpace(lines[k]), "#"); k-- {
			if strings.HasPrefix(strings.TrimSpace(lines[k]), "# --") {
				return true
			}
		}
		if want == 0 {
			return false
		}
	}
	return false
}
