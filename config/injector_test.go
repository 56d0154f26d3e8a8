package config

import (
	"strings"
	"testing"
)

func TestInjectorSettings(t *testing.T) {
	cfg, err := LoadInjector([]string{"--namespace=faultline", "--namespaces=shop,pay"}, env(map[string]string{"FAULTLINE_CERT_DIR": "/tls"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CertDir != "/tls" || cfg.Listen != ":9443" || strings.Join(cfg.Namespaces, ",") != "shop,pay" || strings.Join(cfg.ExcludeNamespaces, ",") != "kube-system,kube-public" {
		t.Errorf("settings %+v", cfg)
	}
	// Every problem is reported at once, each naming its key.
	_, err = LoadInjector([]string{"--listen=9443", "--namespace=Faultline", "--cert-secret=tls", "--exclude-namespaces=ok,Bad_NS", "--probe-listen=:9443"}, env(nil))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		`listen: "9443" is not a host:port address`,
		`namespace: "Faultline" is not a DNS label`,
		`exclude-namespaces: "Bad_NS" is not a DNS label`,
		"webhook-configuration: must be set with cert-secret",
		"service-name: must be set with cert-secret",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := LoadInjector(nil, env(nil)); err == nil || !strings.Contains(err.Error(), "namespace: must name the injector's own namespace") {
		t.Errorf("no namespace: %v", err)
	}
}
