// Package testenv runs a real kube-apiserver and etcd for tests (controller-runtime's
// envtest), with helpers to act as users other than the administrator and to bind them to
// the RBAC rules faultline ships in charts/faultline/files/rbac-rules.yaml.
//
// The binaries come from $KUBEBUILDER_ASSETS (`make test` sets it from
// hack/envtest-assets.sh). Without them a test is skipped, or failed when
// FAULTLINE_REQUIRE_ALL=1.
//
// Typical use:
//
//	env := testenv.Start(t)                    // stopped when the test ends
//	env.CreateNamespace(t, "shop")
//	u := env.AddUser(t, "aggregator")          // no rights yet
//	env.BindRules(t, u.Name, testenv.Scope{Namespaces: []string{"shop"}, LeaseNamespace: "shop"})
//	// u.Config / u.Kubeconfig now have exactly the aggregator's rights.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/faultline-dev/faultline/internal/testbin"
)

var quietOnce sync.Once

// Env is a running API server with its etcd.
type Env struct {
	// Config is an administrator's (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for the administrator, for tools such
	// as helm (`helm install --kubeconfig env.Kubeconfig ...`).
	Kubeconfig string
	// Client is an administrator's clientset.
	Client kubernetes.Interface

	env *envtest.Environment
	dir string
}

// User is a client identity of the API server. A new user has no rights at all.
type User struct {
	Name       string
	Groups     []string
	Config     *rest.Config
	Kubeconfig string // path of a kubeconfig file for this user
}

// Options change what StartWith runs.
type Options struct {
	// CRDs are files or directories of CustomResourceDefinitions, installed (and
	// established) before StartWith returns, e.g. charts/faultline/crds.
	CRDs []string
}

// Start runs an API server and etcd for the test, and stops them when the test ends.
// Each Env is separate: tests that share one should use their own namespaces.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Env {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" || !isFile(filepath.Join(assets, "kube-apiserver")) || !isFile(filepath.Join(assets, "etcd")) {
		testbin.Missing(t, "kube-apiserver and etcd not found in $KUBEBUILDER_ASSETS=%q "+
			"(run `make test`, or KUBEBUILDER_ASSETS=\"$(hack/envtest-assets.sh)\" go test ...)", assets)
	}
	// envtest logs through controller-runtime's global logger, which prints a warning
	// with a stack trace if nothing was installed within 30 s of process start. Its
	// errors reach the test as returned errors, so its logs are dropped; a later
	// ctrllog.SetLogger (kube.New installs the aggregator's) replaces this.
	quietOnce.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	dir := t.TempDir()
	certs := filepath.Join(dir, "apiserver")
	if err := os.Mkdir(certs, 0o700); err != nil {
		t.Fatal(err)
	}
	te := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		// A fixed certificate directory keeps the serving certificates, the client CA and
		// the port across StopAPIServer/StartAPIServer, so every client (and every user
		// added) keeps working after a restart.
		ControlPlane:             envtest.ControlPlane{APIServer: &envtest.APIServer{CertDir: certs}},
		ControlPlaneStartTimeout: time.Minute, // 2 shared cores: the first start is slow
		ControlPlaneStopTimeout:  time.Minute,
		CRDInstallOptions:        envtest.CRDInstallOptions{Paths: opts.CRDs, ErrorIfPathMissing: true},
	}
	// Stop in about 2 s rather than waiting up to a minute for open watches to end; the
	// API server answers 429 with Retry-After meanwhile, as it does in production with
	// this flag.
	te.ControlPlane.APIServer.Configure().Set("shutdown-send-retry-after", "true")
	cfg, err := te.Start()
	if err != nil {
		_ = te.Stop()
		t.Fatalf("start envtest API server: %v", err)
	}
	e := &Env{Config: cfg, env: te, dir: dir}
	t.Cleanup(func() {
		if err := te.Stop(); err != nil {
			t.Logf("stop envtest: %v", err)
		}
	})
	e.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, te.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	if e.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// AddUser provisions a client certificate for a user in groups (beyond
// system:authenticated, which every user has). The user has no rights until bound.
func (e *Env) AddUser(t testing.TB, name string, groups ...string) User {
	t.Helper()
	au, err := e.env.AddUser(envtest.User{Name: name, Groups: groups}, &rest.Config{QPS: 200, Burst: 400})
	if err != nil {
		t.Fatalf("add user %s: %v", name, err)
	}
	kc, err := au.KubeConfig()
	if err != nil {
		t.Fatalf("kubeconfig of user %s: %v", name, err)
	}
	path := filepath.Join(e.dir, name+".kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return User{Name: name, Groups: groups, Config: au.Config(), Kubeconfig: path}
}

// CreateNamespace creates a namespace (an existing one is fine).
func (e *Env) CreateNamespace(t testing.TB, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	_, err := e.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// StopAPIServer stops the API server process (etcd keeps running and keeps the data), as
// an outage clients must ride out.
func (e *Env) StopAPIServer(t testing.TB) {
	t.Helper()
	if err := e.env.ControlPlane.APIServer.Stop(); err != nil {
		t.Fatalf("stop API server: %v", err)
	}
}

// StartAPIServer starts the API server again after StopAPIServer, on the same address
// with the same certificates, and waits until it serves.
func (e *Env) StartAPIServer(t testing.TB) {
	t.Helper()
	if err := e.env.ControlPlane.APIServer.Start(); err != nil {
		t.Fatalf("restart API server: %v", err)
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// mustName builds an object name from parts, for the RBAC objects BindRules creates.
func mustName(parts ...string) string {
	n := "faultline-test"
	for _, p := range parts {
		n += "-" + p
	}
	if len(n) > 253 {
		panic(fmt.Sprintf("object name too long: %s", n))
	}
	return n
}

// WithoutWatchList turns client-go's streaming lists off in this process for the test,
// so informers list and then watch as they do against API servers without WatchList:
// where a test shows that a client needs the list verb.
func WithoutWatchList(t testing.TB) {
	old := clientfeatures.FeatureGates()
	clientfeatures.ReplaceFeatureGates(gatesWithout{old, clientfeatures.WatchListClient})
	t.Cleanup(func() { clientfeatures.ReplaceFeatureGates(old) })
}

type gatesWithout struct {
	clientfeatures.Gates
	off clientfeatures.Feature
}

func (g gatesWithout) Enabled(f clientfeatures.Feature) bool { return f != g.off && g.Gates.Enabled(f) }

// Warnings records the warnings the API server sends back (admission webhooks' and Pod
// Security's): set it as a rest.Config's WarningHandler.
type Warnings struct {
	mu   sync.Mutex
	text []string
}

// HandleWarningHeader implements rest.WarningHandler.
func (w *Warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.text = append(w.text, text)
}

// Take returns the warnings recorded since the last Take.
func (w *Warnings) Take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.text
	w.text = nil
	return out
}
