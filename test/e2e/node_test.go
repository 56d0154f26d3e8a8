//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/faultline-dev/faultline/internal/testbin"
)

// proxyClient is an HTTP client with the kubeconfig's credentials, for the API server's
// proxy subresources.
func (c *cluster) proxyClient() (*http.Client, error) { return rest.HTTPClientFor(c.cfg) }

// forward opens a port-forward to port of pod, as kubectl port-forward does, and
// returns the local base URL; it is closed when the test ends. What the pod serves sees
// the request come from its own loopback.
func (c *cluster) forward(t *testing.T, pod string, port int) string {
	t.Helper()
	u := c.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(c.namespace).Name(pod).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	if ws, err := portforward.NewSPDYOverWebsocketDialer(u, c.cfg); err == nil {
		dialer = portforward.NewFallbackDialer(ws, dialer, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var errOut bytes.Buffer
	fw, err := portforward.NewOnAddressesWithContext(ctx, dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, ready, io.Discard, &errOut)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward to %s:%d: %v %s", pod, port, err, errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("port-forward to %s:%d: not ready within 30s %s", pod, port, errOut.String())
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		t.Fatalf("port-forward to %s:%d: ports %v: %v", pod, port, ports, err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", ports[0].Local)
}

// setPattern sets the failure pattern of the demo's dependency on every one of its pods
// through their control API (loopback callers only, hence a port-forward to each), and
// puts the default back when the test ends.
func (c *cluster) setPattern(t *testing.T, dependency, pattern string) {
	t.Helper()
	pods := c.readyPods(t, c.selector("demo")+",faultline.dev/demo-role="+dependency, c.timeout)
	put := func(base, body string) error {
		req, _ := http.NewRequest(http.MethodPut, base+"/control/dependencies/"+dependency, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("PUT %s pattern %s: status %d: %s", dependency, body, resp.StatusCode, b)
		}
		return nil
	}
	for _, p := range pods {
		base := c.forward(t, p.Name, 9810)
		var before struct {
			Pattern json.RawMessage `json:"pattern"`
		}
		r, err := fetch(http.DefaultClient, base+"/control/dependencies/"+dependency)
		if err == nil && r.StatusCode == http.StatusOK {
			err = json.Unmarshal(r.Body, &before)
		}
		if err != nil || len(before.Pattern) == 0 {
			t.Fatalf("read the pattern of %s in %s: %v (status %d: %.300s)", dependency, p.Name, err, r.StatusCode, r.Body)
		}
		if err := put(base, `{"pattern":"`+pattern+`"}`); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s in pod %s: pattern %s", dependency, p.Name, pattern)
		t.Cleanup(func() {
			if err := put(base, string(before.Pattern)); err != nil {
				t.Logf("restore the pattern of %s in %s: %v", dependency, p.Name, err)
			}
		})
	}
}

// containerd runs ctr against the node's containerd, when the suite runs on the node
// (FAULTLINE_E2E_CONTAINERD names its socket; make test-cluster sets it). Without it the
// test is skipped, or failed when every test is required.
func containerd(t *testing.T, args ...string) string {
	t.Helper()
	sock := os.Getenv("FAULTLINE_E2E_CONTAINERD")
	if sock == "" {
		testbin.Missing(t, "FAULTLINE_E2E_CONTAINERD is not set: this test reaches the node's containerd (make test-cluster sets it)")
	}
	ctr := testbin.Tool(t, "ctr", "containerd's client, Debian package containerd")
	out, err := exec.Command(ctr, append([]string{"-a", sock, "-n", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// containerID is the runtime's id of the named container of p, empty while it has none.
func containerID(p corev1.Pod, name string) string {
	for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if s.Name == name {
			_, id, _ := strings.Cut(s.ContainerID, "://")
			return id
		}
	}
	return ""
}

// containerPID is the node's PID of the named container's process in p, or 0 when the
// suite does not run on the node.
func (c *cluster) containerPID(t *testing.T, p corev1.Pod, name string) int {
	t.Helper()
	if os.Getenv("FAULTLINE_E2E_CONTAINERD") == "" {
		return 0
	}
	id := containerID(p, name)
	for line := range strings.Lines(containerd(t, "tasks", "ls")) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("ctr tasks ls: %q: %v", line, err)
			}
			return pid
		}
	}
	t.Fatalf("container %s (%s) of pod %s has no task on the node", name, id, p.Name)
	return 0
}

// pod reads a pod of the release's namespace.
func (c *cluster) pod(t *testing.T, name string) corev1.Pod {
	t.Helper()
	p, err := c.cs.CoreV1().Pods(c.namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *p
}
