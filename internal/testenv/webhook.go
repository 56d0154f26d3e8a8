package testenv

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/faultline-dev/faultline/internal/testbin"
)

// Webhook is where the API server sends the admission reviews of a webhook configuration
// installed by InstallWebhooks, and the certificate to serve them with.
type Webhook struct {
	Addr    string // host:port to listen on
	CertDir string // tls.crt and tls.key, signed by CAData
	CAData  []byte // the CA bundle the API server trusts for Addr
}

// InstallWebhooks installs webhook configurations (as a chart renders them, with Service
// references) in the API server through envtest's WebhookInstallOptions: each Service is
// replaced by a URL on a free loopback port, with a CA envtest made. The configurations
// are removed when the test ends.
func (e *Env) InstallWebhooks(t testing.TB, hooks ...*admissionv1.MutatingWebhookConfiguration) Webhook {
	t.Helper()
	// The API server calls https://localhost:<port>, the name a certificate for a
	// Service can also carry (ExtraDNSNames); the injector listens on 127.0.0.1.
	opts := &envtest.WebhookInstallOptions{MutatingWebhooks: hooks, LocalServingHost: "127.0.0.1", LocalServingHostExternalName: "localhost"}
	if err := opts.PrepWithoutInstalling(); err != nil {
		t.Fatalf("prepare webhooks: %v", err)
	}
	t.Cleanup(func() { _ = opts.Cleanup() })
	// envtest joins the host and the Service path with a slash, and the path starts with
	// one: "https://host:port//inject/pod". Go's ServeMux would answer that with a redirect.
	for _, h := range opts.MutatingWebhooks {
		for i := range h.Webhooks {
			if u := h.Webhooks[i].ClientConfig.URL; u != nil {
				fixed := "https://" + strings.Replace(strings.TrimPrefix(*u, "https://"), "//", "/", 1)
				h.Webhooks[i].ClientConfig.URL = &fixed
			}
		}
	}
	if err := opts.Install(e.Config); err != nil {
		t.Fatalf("install webhooks: %v", err)
	}
	t.Cleanup(func() {
		for _, h := range hooks {
			_ = e.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), h.Name, metav1.DeleteOptions{})
		}
	})
	return Webhook{
		Addr:    net.JoinHostPort(opts.LocalServingHost, strconv.Itoa(opts.LocalServingPort)),
		CertDir: opts.LocalServingCertDir,
		CAData:  opts.LocalServingCAData,
	}
}

// StartControllerManager runs kube-controller-manager against the API server with only
// the named controllers (e.g. "deployment", "replicaset", so that Deployments make pods),
// as the administrator, until the test ends. The binary comes from $KUBEBUILDER_ASSETS
// (hack/envtest-assets.sh builds it); without it the test is skipped, or failed when
// FAULTLINE_REQUIRE_ALL=1.
func (e *Env) StartControllerManager(t testing.TB, controllers ...string) *testbin.Process {
	t.Helper()
	bin := filepath.Join(e.env.BinaryAssetsDirectory, "kube-controller-manager")
	if !isFile(bin) {
		testbin.Missing(t, "kube-controller-manager not found in $KUBEBUILDER_ASSETS=%q (run `make envtest-assets`)", e.env.BinaryAssetsDirectory)
	}
	p := testbin.Start(t, bin, nil,
		"--kubeconfig="+e.Kubeconfig,
		"--controllers="+strings.Join(controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		// The administrator's credentials for every controller: envtest has no
		// service-account token signer.
		"--use-service-account-credentials=false",
		"--concurrent-deployment-syncs=2", "--concurrent-replicaset-syncs=2",
	)
	select {
	case <-p.Done():
		t.Fatalf("kube-controller-manager exited at once:\n%s", p.Output())
	case <-time.After(500 * time.Millisecond):
	}
	return p
}
