//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// agentContainer is the name of the agent's container in every pod that runs it.
const agentContainer = "faultline-agent"

// TestEveryDemoPodConnected: every demo pod runs the agent as a native sidecar (an init
// container that keeps running, started before the application), and the aggregator
// lists each agent as connected with the identity the Downward API gave it: pod,
// namespace, UID, node and IP, and the workload its owner names.
func TestEveryDemoPodConnected(t *testing.T) {
	c := connect(t)
	pods := c.demoPods(t)
	agents := c.connectedAgents(t, c.timeout, names(pods))
	for _, p := range pods {
		checkNativeSidecar(t, p)
		a := agents[p.Name]
		workload := p.Labels["app.kubernetes.io/instance"] + "-demo-" + p.Labels["faultline.dev/demo-role"]
		if a.Namespace != c.namespace || a.Node != p.Spec.NodeName || a.Workload != workload {
			t.Errorf("pod %s listed as namespace %q node %q workload %q; want %q %q %q",
				p.Name, a.Namespace, a.Node, a.Workload, c.namespace, p.Spec.NodeName, workload)
		}
		id := a.Agent
		if id == nil {
			t.Errorf("pod %s: connected agent without the identity it reported", p.Name)
			continue
		}
		want := wire.Agent{Pod: p.Name, Namespace: p.Namespace, UID: string(p.UID), Node: p.Spec.NodeName, IP: p.Status.PodIP, Mode: "pod"}
		got := wire.Agent{Pod: id.Pod, Namespace: id.Namespace, UID: id.UID, Node: id.Node, IP: id.IP, Mode: id.Mode}
		if got != want {
			t.Errorf("pod %s: agent reported identity %+v, want (from the Downward API) %+v", p.Name, got, want)
		}
	}
}

// checkNativeSidecar fails unless the pod runs the agent as a native sidecar that is
// started and ready.
func checkNativeSidecar(t *testing.T, p corev1.Pod) {
	t.Helper()
	var sidecar *corev1.Container
	for i, ic := range p.Spec.InitContainers {
		if ic.Name == agentContainer {
			sidecar = &p.Spec.InitContainers[i]
		}
	}
	if sidecar == nil || sidecar.RestartPolicy == nil || *sidecar.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("pod %s: no init container %s with restartPolicy Always (a native sidecar)", p.Name, agentContainer)
		return
	}
	if !*p.Spec.ShareProcessNamespace {
		t.Errorf("pod %s: shareProcessNamespace is not set; the agent cannot see the application's processes", p.Name)
	}
	for _, s := range p.Status.InitContainerStatuses {
		if s.Name == agentContainer && (s.State.Running == nil || s.Started == nil || !*s.Started || !s.Ready) {
			t.Errorf("pod %s: sidecar %s is not running, started and ready: %+v", p.Name, agentContainer, s.State)
		}
	}
}

// agentSnapshot reads an agent's own snapshot through the API server's pod proxy.
func (c *cluster) agentSnapshot(t *testing.T, pod string) (wire.Snapshot, error) {
	var snap wire.Snapshot
	port := 0
	for _, ct := range c.pod(t, pod).Spec.InitContainers {
		for _, p := range ct.Ports {
			if p.Name == "faultline" {
				port = int(p.ContainerPort)
			}
		}
	}
	// The pod proxy takes the port by number.
	u := fmt.Sprintf("%s/api/v1/namespaces/%s/pods/http:%s:%d/proxy/v1/snapshot",
		strings.TrimSuffix(c.cfg.Host, "/"), c.namespace, pod, port)
	client, err := c.proxyClient()
	if err != nil {
		return snap, err
	}
	r, err := fetch(client, u)
	if err != nil {
		return snap, err
	}
	if r.StatusCode != http.StatusOK {
		return snap, fmt.Errorf("GET agent snapshot of %s: status %d: %.300s", pod, r.StatusCode, r.Body)
	}
	return snap, wire.Decode(wire.Event{Name: "snapshot", Data: r.Body}, &snap)
}

// TestPodModeSampling: an agent in pod mode reports its pod, not the node: the processes
// it sums are the application's alone (the pause process and the agent left out), its
// CPU and memory limits are the application container's from the Downward API, and its
// resident memory is the application process's as the node sees it.
func TestPodModeSampling(t *testing.T) {
	c := connect(t)
	pods := c.demoPods(t)
	for _, p := range pods[:2] {
		app := container(p, "demo")
		wantCPU := app.Resources.Limits.Cpu().AsApproximateFloat64()
		wantMem := uint64(app.Resources.Limits.Memory().Value())
		var snap wire.Snapshot
		testbin.Eventually(t, 30*time.Second, func() error {
			var err error
			if snap, err = c.agentSnapshot(t, p.Name); err != nil {
				return err
			}
			if snap.Sample == nil || snap.Sample.CPU == nil || snap.Sample.Memory == nil || snap.Sample.Process == nil {
				return fmt.Errorf("agent of %s: no CPU, memory or process figures yet: %+v", p.Name, snap.Sample)
			}
			return nil
		})
		s := snap.Sample
		if snap.Agent.Mode != "pod" {
			t.Errorf("agent of %s samples in mode %q, want pod", p.Name, snap.Agent.Mode)
		}
		if s.Process.Processes != 1 {
			t.Errorf("agent of %s counts %d processes, want 1 (the demo alone; collectors: %+v)", p.Name, s.Process.Processes, s.Collectors)
		}
		if s.CPU.LimitCores == nil || math.Abs(*s.CPU.LimitCores-wantCPU) > 1e-9 {
			t.Errorf("agent of %s: CPU limit %v cores, want %v (the demo container's, from the Downward API)", p.Name, orNone(s.CPU.LimitCores), wantCPU)
		}
		if s.Memory.LimitBytes == nil || *s.Memory.LimitBytes != wantMem {
			t.Errorf("agent of %s: memory limit %v bytes, want %d", p.Name, orNone(s.Memory.LimitBytes), wantMem)
		}
		if s.CPU.Cores < 0 || s.CPU.Cores > wantCPU*1.2 {
			t.Errorf("agent of %s: %.3f cores used, beyond the container's limit of %v", p.Name, s.CPU.Cores, wantCPU)
		}
		if s.Memory.RSSBytes == nil || *s.Memory.RSSBytes == 0 || *s.Memory.RSSBytes > wantMem {
			t.Errorf("agent of %s: RSS %v bytes, want above 0 and within the limit %d", p.Name, orNone(s.Memory.RSSBytes), wantMem)
		}
		if s.Memory.TotalBytes != nil || s.Load != nil {
			t.Errorf("agent of %s reports the host's memory or load in pod mode", p.Name)
		}
		// The node's own view of the application process, when the suite runs on the node.
		if pid := c.containerPID(t, p, "demo"); pid > 0 && s.Memory.RSSBytes != nil {
			rss := processRSS(t, pid)
			if diff := math.Abs(float64(*s.Memory.RSSBytes) - float64(rss)); diff > 0.25*float64(rss) {
				t.Errorf("agent of %s: RSS %d bytes, the node sees %d for the demo process %d", p.Name, *s.Memory.RSSBytes, rss, pid)
			}
			t.Logf("%s: agent RSS %d, node's view %d bytes; CPU %.4f of %.1f cores", p.Name, *s.Memory.RSSBytes, rss, s.CPU.Cores, wantCPU)
		}
	}
}

func container(p corev1.Pod, name string) corev1.Container {
	for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	return corev1.Container{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("0"), corev1.ResourceMemory: resource.MustParse("0")}}}
}

func orNone[T any](p *T) any {
	if p == nil {
		return "none"
	}
	return *p
}

// processRSS reads a process's resident set size from /proc on this machine.
func processRSS(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(path.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS of %d: %v", pid, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestSidecarFootprint measures, from the node, what the agent sidecar costs in a real
// pod next to the application it watches: resident memory and CPU of both processes over
// a window of footprintWindow, for one pod of each demo service. The agent's memory
// must stay within the chart's request for it.
func TestSidecarFootprint(t *testing.T) {
	c := connect(t)
	if os.Getenv("FAULTLINE_E2E_CONTAINERD") == "" {
		testbin.Missing(t, "FAULTLINE_E2E_CONTAINERD is not set: the footprint is read on the node (make test-cluster sets it)")
	}
	byRole := map[string]corev1.Pod{}
	for _, p := range c.demoPods(t) {
		byRole[p.Labels["faultline.dev/demo-role"]] = p
	}
	type proc struct {
		role, pod, container string
		pid                  int
		cpu0                 float64
	}
	var procs []*proc
	for _, role := range demoServices {
		p := byRole[role]
		for _, name := range []string{agentContainer, "demo"} {
			pid := c.containerPID(t, p, name)
			procs = append(procs, &proc{role: role, pod: p.Name, container: name, pid: pid, cpu0: processCPU(t, pid)})
		}
	}
	start := time.Now()
	time.Sleep(footprintWindow)
	window := time.Since(start).Seconds()
	for _, pr := range procs {
		rss := processRSS(t, pr.pid)
		millicores := (processCPU(t, pr.pid) - pr.cpu0) / window * 1000
		t.Logf("footprint %-40s %-16s RSS %6.2f MiB  CPU %6.2f millicores", pr.pod, pr.container, float64(rss)/(1<<20), millicores)
		if pr.container == agentContainer {
			requests := container(byRole[pr.role], agentContainer).Resources.Requests
			if request := requests[corev1.ResourceMemory]; !request.IsZero() && int64(rss) > request.Value() {
				t.Errorf("agent of %s: RSS %d bytes, above its memory request of %s", pr.pod, rss, request.String())
			}
		}
	}
}

// footprintWindow is how long TestSidecarFootprint measures CPU over.
const footprintWindow = 30 * time.Second

// processCPU reads the CPU seconds a process has used (user and system) from /proc.
func processCPU(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(path.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return (utime + stime) / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on Linux.
const clockTicks = 100
