package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Injector is the configuration of faultline-injector.
type Injector struct {
	Common
	Listen      string // the admission webhook (HTTPS)
	ProbeListen string // /healthz, /readyz, /metrics
	// CertDir holds the webhook's serving certificate, tls.crt and tls.key (reloaded when
	// they change).
	CertDir string
	// CertSecret is the Secret in Namespace that the injector keeps a CA and serving
	// certificate in, rotating them and patching the CA into WebhookConfiguration. Empty:
	// the certificate comes from elsewhere (cert-manager) and is only read from CertDir.
	CertSecret string
	// WebhookConfiguration is the MutatingWebhookConfiguration that calls the injector.
	WebhookConfiguration string
	// ServiceName is the webhook's Service; its DNS names go in the serving certificate.
	ServiceName string
	// Namespace is the injector's own namespace: it holds CertSecret and is never injected.
	Namespace string
	// ExcludeNamespaces are never injected, whatever their labels say.
	ExcludeNamespaces List
	// Namespaces limits the injector to these namespaces (the pods and AgentProfiles it
	// reads, and so the rights it needs); empty: all.
	Namespaces List
	// SidecarTemplate is the file the chart renders the agent sidecar into.
	SidecarTemplate string
	Kubeconfig      string // out-of-cluster kubeconfig; empty: in-cluster or KUBECONFIG
}

// DefaultInjector returns the injector's defaults.
func DefaultInjector() Injector {
	return Injector{
		Common:            defaultCommon(),
		Listen:            ":9443",
		ProbeListen:       ":8081",
		CertDir:           "/etc/faultline/tls",
		ExcludeNamespaces: List{"kube-system", "kube-public"},
		SidecarTemplate:   "/etc/faultline/sidecar.yaml",
	}
}

func (c *Injector) bind(fs *flag.FlagSet) {
	c.Common.bind(fs)
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of the admission webhook (HTTPS)")
	fs.StringVar(&c.ProbeListen, "probe-listen", c.ProbeListen, "address of /healthz, /readyz and /metrics")
	fs.StringVar(&c.CertDir, "cert-dir", c.CertDir, "directory of the webhook's serving certificate (tls.crt, tls.key)")
	fs.StringVar(&c.CertSecret, "cert-secret", c.CertSecret, "Secret (in namespace) to keep a rotated CA and serving certificate in; empty: the certificate in cert-dir comes from elsewhere")
	fs.StringVar(&c.WebhookConfiguration, "webhook-configuration", c.WebhookConfiguration, "MutatingWebhookConfiguration to patch the CA into (with cert-secret)")
	fs.StringVar(&c.ServiceName, "service-name", c.ServiceName, "the webhook's Service, named in the serving certificate (with cert-secret)")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "the injector's own namespace: holds cert-secret, never injected")
	fs.Var(&c.Namespaces, "namespaces", "namespaces to inject and read AgentProfiles in, comma-separated (default all)")
	fs.Var(&c.ExcludeNamespaces, "exclude-namespaces", "namespaces never injected, comma-separated (the injector's own is always excluded)")
	fs.StringVar(&c.SidecarTemplate, "sidecar-template", c.SidecarTemplate, "file holding the agent sidecar the chart renders")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig for running outside the cluster")
}

// LoadInjector reads the injector's settings from args (without the program name), the
// environment and the file named by --config, and validates them.
func LoadInjector(args []string, getenv func(string) string) (Injector, error) {
	cfg := DefaultInjector()
	fs := flag.NewFlagSet("faultline-injector", flag.ContinueOnError)
	cfg.bind(fs)
	if err := load(fs, args, getenv, nil); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// InjectorUsage prints the injector's flags.
func InjectorUsage(w io.Writer) {
	cfg := DefaultInjector()
	printDefaults("faultline-injector", cfg.bind, w)
}

// Validate reports every problem with the settings, each naming its key.
func (c Injector) Validate() error {
	errs := c.Common.validate()
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(checkListen("listen", c.Listen))
	add(checkListen("probe-listen", c.ProbeListen))
	if c.Listen == c.ProbeListen {
		add(fmt.Errorf("probe-listen: %q is also the webhook's listen address", c.ProbeListen))
	}
	if c.CertDir == "" {
		add(errors.New("cert-dir: must be set"))
	}
	if c.SidecarTemplate == "" {
		add(errors.New("sidecar-template: must be set"))
	}
	if c.Namespace == "" {
		add(errors.New("namespace: must name the injector's own namespace"))
	} else {
		add(checkLabel("namespace", c.Namespace))
	}
	for _, ns := range c.ExcludeNamespaces {
		add(checkLabel("exclude-namespaces", ns))
	}
	for _, ns := range c.Namespaces {
		add(checkLabel("namespaces", ns))
	}
	if c.CertSecret != "" {
		add(checkName("cert-secret", c.CertSecret))
		if c.WebhookConfiguration == "" {
			add(errors.New("webhook-configuration: must be set with cert-secret (the CA is patched into it)"))
		} else {
			add(checkName("webhook-configuration", c.WebhookConfiguration))
		}
		if c.ServiceName == "" {
			add(errors.New("service-name: must be set with cert-secret (the certificate names it)"))
		} else {
			add(checkLabel("service-name", c.ServiceName))
		}
	}
	return errors.Join(errs...)
}

// checkName checks a Kubernetes object name (DNS-1123 subdomain).
func checkName(key, v string) error {
	if len(v) > 253 || !objectName.MatchString(v) {
		return fmt.Errorf("%s: %q is not a Kubernetes object name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253)", key, v)
	}
	return nil
}

// checkLabel checks a namespace or Service name (DNS-1123 label).
func checkLabel(key, v string) error {
	if len(v) > 63 || !dnsLabel.MatchString(v) {
		return fmt.Errorf("%s: %q is not a DNS label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63)", key, v)
	}
	return nil
}
