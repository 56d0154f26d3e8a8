package sample

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/shirou/gopsutil/v4/cpu"

	"github.com/faultline-dev/faultline/internal/wire"
)

var approx = cmpopts.EquateApprox(0, 1e-9)

func TestSumProcesses(t *testing.T) {
	prev := map[int32]float64{7: 12, 30: 0.6, 99: 5}
	cur := []procReading{
		{PID: 7, CPUSeconds: 13.5, RSSBytes: 100, Threads: 40, FDs: 6},
		{PID: 30, CPUSeconds: 0.2, RSSBytes: 10, Threads: 1, FDs: -1, FDErr: "fd of pid 30: permission denied"}, // pid reused
		{PID: 55, CPUSeconds: 0.1, RSSBytes: 20, Threads: 2, FDs: 4},                                            // started during the interval
	}
	got := sumProcesses(prev, cur, 2)
	want := processSums{processes: 3, threads: 43, fds: 10, fdsUnread: 1, fdErr: "fd of pid 30: permission denied", rss: 130, cores: wire.Ptr((1.5 + 0.2 + 0.1) / 2)}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(processSums{}), approx); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if first := sumProcesses(nil, cur, 0); first.cores != nil {
		t.Errorf("first sample has CPU %v, want none", *first.cores)
	}
}

func TestCgroupCPU(t *testing.T) {
	prev := cgroupCPUStat{UsageUsec: 5e6, NrPeriods: 1000, NrThrottled: 10, ThrottledUsec: 200000, Throttling: true}
	cur := cgroupCPUStat{UsageUsec: 6.5e6, NrPeriods: 1020, NrThrottled: 15, ThrottledUsec: 260000, Throttling: true}
	got := cgroupCPU(prev, cur, 2, wire.Ptr(1.0))
	want := &wire.CPU{Cores: 0.75, LimitCores: wire.Ptr(1.0), PercentOfLimit: wire.Ptr(75.0),
		Throttling: &wire.Throttling{Periods: 20, ThrottledPeriods: 5, ThrottledMs: 60, Percent: 25}}
	if diff := cmp.Diff(want, got, approx); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	noCtl := cgroupCPU(cgroupCPUStat{UsageUsec: 1e6}, cgroupCPUStat{UsageUsec: 2e6}, 1, nil)
	if diff := cmp.Diff(&wire.CPU{Cores: 1}, noCtl); diff != "" {
		t.Errorf("without the cpu controller (-want +got):\n%s", diff)
	}
	if back := cgroupCPU(cur, prev, 1, nil); back != nil {
		t.Errorf("usage going back gave %+v, want no CPU section", back)
	}
}

func TestCgroupMemory(t *testing.T) {
	stat := &cgroupMemoryStat{Anon: 120, InactiveFile: 50, HasAnon: true, HasInactiveFile: true}
	tests := []struct {
		name    string
		current uint64
		stat    *cgroupMemoryStat
		limit   *uint64
		want    *wire.Memory
	}{
		{"working set excludes inactive file", 200, stat, wire.Ptr[uint64](400),
			&wire.Memory{WorkingSetBytes: 150, RSSBytes: wire.Ptr[uint64](120), LimitBytes: wire.Ptr[uint64](400), PercentOfLimit: wire.Ptr(37.5)}},
		{"no memory.stat", 200, nil, nil, &wire.Memory{WorkingSetBytes: 200}},
		{"inactive file above usage", 40, stat, nil, &wire.Memory{WorkingSetBytes: 0, RSSBytes: wire.Ptr[uint64](120)}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, cgroupMemory(tt.current, tt.stat, tt.limit)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestHostCPUAndMemory(t *testing.T) {
	prev := cpu.TimesStat{User: 100, System: 50, Idle: 800, Iowait: 10}
	cur := cpu.TimesStat{User: 101.5, System: 50.5, Idle: 801.9, Iowait: 10.1}
	want := &wire.CPU{Cores: 1, LimitCores: wire.Ptr(2.0), PercentOfLimit: wire.Ptr(50.0), Percent: wire.Ptr(50.0)}
	if diff := cmp.Diff(want, hostCPU(prev, cur, 2, 2), approx); diff != "" {
		t.Errorf("cpu (-want +got):\n%s", diff)
	}
	wantMem := &wire.Memory{WorkingSetBytes: 300, LimitBytes: wire.Ptr[uint64](1000), TotalBytes: wire.Ptr[uint64](1000), PercentOfLimit: wire.Ptr(30.0)}
	if diff := cmp.Diff(wantMem, hostMemory(1000, 700)); diff != "" {
		t.Errorf("memory (-want +got):\n%s", diff)
	}
}

func TestNetworkRates(t *testing.T) {
	prev := map[string]ifaceBytes{"eth0": {1000, 500}, "eth1": {900, 900}}
	cur := map[string]ifaceBytes{"eth0": {3000, 1500}, "eth1": {10, 10}, "veth9": {50, 50}}
	want := &wire.Network{RxBytesPerSec: 1000, TxBytesPerSec: 500}
	if diff := cmp.Diff(want, networkRates(prev, cur, 2)); diff != "" {
		t.Errorf("reset and new interfaces are left out of the interval (-want +got):\n%s", diff)
	}
}

// fixture copies testdata/<dir>/t0 into a temporary procfs root and returns the root
// and a function that replaces it with testdata/<dir>/t1.
func fixture(t testing.TB, dir string) (root string, next func()) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "root")
	copyTree(t, filepath.Join("testdata", dir, "t0"), root)
	return root, func() {
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		copyTree(t, filepath.Join("testdata", dir, "t1"), root)
	}
}

func copyTree(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// twoSamples takes a sample of t0 and one of t1, two seconds later.
func twoSamples(t *testing.T, s *Sampler, next func()) (first, second wire.Sample) {
	t.Helper()
	at := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	s.now = func() time.Time { return at }
	first = s.Sample(context.Background())
	next()
	at = at.Add(2 * time.Second)
	second = s.Sample(context.Background())
	return first, second
}

// ignoreDurations leaves out what depends on the machine running the test.
var ignoreDurations = cmpopts.IgnoreFields(wire.Collector{}, "DurationMs")

func collectors(entries ...string) []wire.Collector {
	var out []wire.Collector
	for _, e := range entries {
		name, status, _ := strings.Cut(e, "=")
		out = append(out, wire.Collector{Name: name, OK: !strings.HasPrefix(status, "unavailable"), Status: status})
	}
	return out
}

var page = uint64(os.Getpagesize())

func TestPodModeOnFixedProc(t *testing.T) {
	root, next := fixture(t, "pod")
	s := New(Options{Mode: ModePod, ProcRoot: root, SelfPID: 42, CPULimitMillicores: 500, MemoryLimitBytes: 256 << 20})
	first, second := twoSamples(t, s, next)

	rss := (25600 + 256) * page // java and sh; pause and the agent are left out
	wantFirst := wire.Sample{
		V: 1, Time: wire.NewTime(time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)),
		Memory: &wire.Memory{WorkingSetBytes: rss, RSSBytes: &rss, LimitBytes: wire.Ptr[uint64](256 << 20),
			PercentOfLimit: wire.Ptr(float64(rss) / (256 << 20) * 100)},
		Process:    &wire.Process{Processes: 2, Threads: 41, OpenFDs: 9},
		Collectors: collectors("processes="+noteFirst, "network="+noteFirst, "self="+noteFirst),
	}
	if diff := cmp.Diff(wantFirst, first, ignoreDurations, approx); diff != "" {
		t.Errorf("first sample (-want +got):\n%s", diff)
	}

	rss = (25600 + 256 + 512) * page // worker (pid 55) started in between
	wantSecond := wire.Sample{
		V: 1, Time: wire.NewTime(time.Date(2026, 11, 27, 9, 30, 2, 0, time.UTC)), IntervalMs: 2000,
		// java 1.5 s + sh 0.2 s + worker 0.1 s of CPU in 2 s
		CPU: &wire.CPU{Cores: 0.9, LimitCores: wire.Ptr(0.5), PercentOfLimit: wire.Ptr(180.0)},
		Memory: &wire.Memory{WorkingSetBytes: rss, RSSBytes: &rss, LimitBytes: wire.Ptr[uint64](256 << 20),
			PercentOfLimit: wire.Ptr(float64(rss) / (256 << 20) * 100)},
		Network:    &wire.Network{RxBytesPerSec: 2000, TxBytesPerSec: 1000},
		Process:    &wire.Process{Processes: 3, Threads: 43, OpenFDs: 13},
		Self:       &wire.Self{CPUCores: 0.07, RSSBytes: 2560 * page},
		Collectors: collectors("processes=ok", "network=ok", "self=ok"),
	}
	if diff := cmp.Diff(wantSecond, second, ignoreDurations, approx); diff != "" {
		t.Errorf("second sample (-want +got):\n%s", diff)
	}
}

func TestCgroupModeOnFixedFiles(t *testing.T) {
	procRoot, nextProc := fixture(t, "pod")
	cgDir, nextCgroup := fixture(t, "cgroup")
	s := New(Options{Mode: ModeCgroup, ProcRoot: procRoot, CgroupDir: cgDir, SelfPID: 42, CPULimitMillicores: 250})
	first, second := twoSamples(t, s, func() { nextProc(); nextCgroup() })

	wantMem := &wire.Memory{WorkingSetBytes: 150000000, RSSBytes: wire.Ptr[uint64](120000000),
		LimitBytes: wire.Ptr[uint64](536870912), PercentOfLimit: wire.Ptr(150000000.0 / 536870912 * 100)}
	if diff := cmp.Diff(wantMem, first.Memory, approx); diff != "" {
		t.Errorf("first sample memory (-want +got):\n%s", diff)
	}
	if first.CPU != nil {
		t.Errorf("first sample has CPU %+v, want none until a second reading", first.CPU)
	}
	want := wire.Sample{
		V: 1, Time: wire.NewTime(time.Date(2026, 11, 27, 9, 30, 2, 0, time.UTC)), IntervalMs: 2000,
		// cpu.max (1 core) wins over the configured 250m
		CPU: &wire.CPU{Cores: 0.75, LimitCores: wire.Ptr(1.0), PercentOfLimit: wire.Ptr(75.0),
			Throttling: &wire.Throttling{Periods: 20, ThrottledPeriods: 5, ThrottledMs: 60, Percent: 25}},
		Memory: &wire.Memory{WorkingSetBytes: 170000000, RSSBytes: wire.Ptr[uint64](130000000),
			LimitBytes: wire.Ptr[uint64](536870912), PercentOfLimit: wire.Ptr(170000000.0 / 536870912 * 100)},
		Network:    &wire.Network{RxBytesPerSec: 2000, TxBytesPerSec: 1000},
		Process:    &wire.Process{Processes: 2, Threads: 41, OpenFDs: 9}, // the pids in cgroup.procs
		Self:       &wire.Self{CPUCores: 0.07, RSSBytes: 2560 * page},
		Collectors: collectors("cgroup-cpu=ok", "cgroup-memory=ok", "processes=ok", "network=ok", "self=ok"),
	}
	if diff := cmp.Diff(want, second, ignoreDurations, approx); diff != "" {
		t.Errorf("second sample (-want +got):\n%s", diff)
	}
}

func TestCgroupModeFindsOwnCgroup(t *testing.T) {
	procRoot, _ := fixture(t, "pod")
	cgRoot, _ := fixture(t, "cgroup")
	// The agent's cgroup is /kubepods/pod1/agent within a hierarchy mounted from
	// /kubepods; its files are those of the cgroup fixture.
	mount := filepath.Join(t.TempDir(), "cg")
	if err := os.MkdirAll(filepath.Join(mount, "pod1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cgRoot, filepath.Join(mount, "pod1", "agent")); err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(procRoot, "self")
	os.MkdirAll(self, 0o755)
	os.WriteFile(filepath.Join(self, "cgroup"), []byte("0::/kubepods/pod1/agent\n"), 0o644)
	os.WriteFile(filepath.Join(self, "mountinfo"), []byte("40 25 0:31 /kubepods "+mount+" rw - cgroup2 cgroup2 rw\n"), 0o644)

	s := New(Options{Mode: ModeCgroup, ProcRoot: procRoot, SelfPID: 42})
	got := s.Sample(context.Background())
	if got.Memory == nil || got.Memory.WorkingSetBytes != 150000000 {
		t.Fatalf("memory = %+v, want the fixture's working set of 150000000; collectors: %+v", got.Memory, got.Collectors)
	}
}

// cgroupSampler samples the cgroup found in a tree of fixed files: root/proc/self tells
// where the cgroup is, and mount points are taken under root.
func cgroupSampler(root string, lim limits) (*Sampler, *cgroupLocator) {
	cg := &cgroupLocator{procRoot: filepath.Join(root, "proc"), root: root}
	return &Sampler{now: time.Now, collectors: []collector{
		&cgroupCPUCollector{cg: cg, lim: lim},
		&cgroupMemoryCollector{cg: cg, lim: lim},
	}}, cg
}

func TestCgroupModeOnFixedTrees(t *testing.T) {
	const gib = 1 << 30
	ok := collectors("cgroup-cpu=ok", "cgroup-memory=ok")
	tests := []struct {
		tree string
		lim  limits
		want wire.Sample // CPU and memory of the second sample, two seconds on
		pids []int32
	}{
		{"v1-host", limits{cpuCores: wire.Ptr(4.0), memBytes: wire.Ptr[uint64](gib)}, wire.Sample{
			// no quota (-1) nor memory limit: the configured limits stand
			CPU: &wire.CPU{Cores: 1.5, LimitCores: wire.Ptr(4.0), PercentOfLimit: wire.Ptr(37.5), Throttling: &wire.Throttling{}},
			Memory: &wire.Memory{WorkingSetBytes: 200000000, RSSBytes: wire.Ptr[uint64](150000000),
				LimitBytes: wire.Ptr[uint64](gib), PercentOfLimit: wire.Ptr(200000000.0 / gib * 100)},
			Collectors: ok,
		}, []int32{812, 813}},
		{"v1-container", limits{}, wire.Sample{
			CPU: &wire.CPU{Cores: 0.45, LimitCores: wire.Ptr(0.5), PercentOfLimit: wire.Ptr(90.0),
				Throttling: &wire.Throttling{Periods: 20, ThrottledPeriods: 5, ThrottledMs: 250, Percent: 25}},
			// usage less total_inactive_file; rss is total_rss
			Memory: &wire.Memory{WorkingSetBytes: 160000000, RSSBytes: wire.Ptr[uint64](120000000),
				LimitBytes: wire.Ptr[uint64](256 << 20), PercentOfLimit: wire.Ptr(160000000.0 / (256 << 20) * 100)},
			Collectors: ok,
		}, []int32{1, 7}},
		{"hybrid", limits{}, wire.Sample{
			// v1 cpuacct.usage, not the unified group's cpu.stat (4 cores)
			CPU: &wire.CPU{Cores: 0.5, LimitCores: wire.Ptr(2.0), PercentOfLimit: wire.Ptr(25.0), Throttling: &wire.Throttling{Periods: 10}},
			// memory.limit_in_bytes 9223372036854771712: no limit
			Memory:     &wire.Memory{WorkingSetBytes: 30000000, RSSBytes: wire.Ptr[uint64](25000000)},
			Collectors: ok,
		}, []int32{812}},
		{"v2", limits{cpuCores: wire.Ptr(4.0)}, wire.Sample{
			CPU: &wire.CPU{Cores: 1.2, LimitCores: wire.Ptr(1.5), PercentOfLimit: wire.Ptr(80.0),
				Throttling: &wire.Throttling{Periods: 20, ThrottledPeriods: 10, ThrottledMs: 600, Percent: 50}},
			Memory: &wire.Memory{WorkingSetBytes: 320000000, RSSBytes: wire.Ptr[uint64](260000000),
				LimitBytes: wire.Ptr[uint64](gib), PercentOfLimit: wire.Ptr(320000000.0 / gib * 100)},
			Collectors: ok,
		}, []int32{42}},
	}
	for _, tt := range tests {
		t.Run(tt.tree, func(t *testing.T) {
			root, next := fixture(t, "cgroups/"+tt.tree)
			s, cg := cgroupSampler(root, tt.lim)
			first, second := twoSamples(t, s, next)
			if first.CPU != nil || first.Collectors[0].Status != noteFirst {
				t.Errorf("first sample has CPU %+v, status %q; want none until a second reading", first.CPU, first.Collectors[0].Status)
			}
			got := wire.Sample{CPU: second.CPU, Memory: second.Memory, Collectors: second.Collectors}
			if diff := cmp.Diff(tt.want, got, ignoreDurations, approx); diff != "" {
				t.Errorf("second sample (-want +got):\n%s", diff)
			}
			pids, err := newCgroupProcesses(cg).list(context.Background())
			if diff := cmp.Diff(tt.pids, pids); err != nil || diff != "" {
				t.Errorf("cgroup.procs: %v (-want +got):\n%s", err, diff)
			}
		})
	}
}

func TestCgroupModeUnavailable(t *testing.T) {
	const (
		ext4      = "25 1 254:1 / / rw,relatime - ext4 /dev/vda rw\n"
		noCPUAcct = "unavailable: cgroup v1 cpuacct controller: not in /proc/self/cgroup"
		v1Memory  = "cgroup v1 memory controller: not mounted (no cgroup file system with it in /proc/self/mountinfo)"
	)
	tests := []struct {
		name              string
		cgroup, mountinfo string
		files             map[string]string // under the root
		cpu, memory       string
	}{{
		name:   "v1 controller not mounted",
		cgroup: "4:memory:/user.slice\n1:name=systemd:/user.slice\n", mountinfo: ext4,
		cpu: noCPUAcct, memory: "unavailable: " + v1Memory,
	}, {
		name:   "v1 group without its files",
		cgroup: "4:memory:/user.slice\n", mountinfo: ext4 + "32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n",
		cpu: noCPUAcct, memory: "unavailable: read cgroup v1 memory.usage_in_bytes: no such file or directory",
	}, {
		// hybrid, seen where only the unified hierarchy is mounted: its group has no
		// controllers, and its cpu.stat counts another group
		name:   "hybrid without v1 mounts",
		cgroup: "3:cpu,cpuacct:/a\n0::/a\n", mountinfo: ext4 + "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
		files:  map[string]string{"sys/fs/cgroup/unified/a/cgroup.controllers": "\n", "sys/fs/cgroup/unified/a/cpu.stat": "usage_usec 1000\n"},
		cpu:    "unavailable: cgroup v1 cpuacct controller: not mounted (no cgroup file system with it in /proc/self/mountinfo)",
		memory: "unavailable: cgroup v1 memory controller: not in /proc/self/cgroup",
	}, {
		name:   "neither",
		cgroup: "1:name=systemd:/\n", mountinfo: ext4,
		cpu:    "unavailable: not in a cgroup v2 hierarchy (no 0:: line in /proc/self/cgroup); cgroup v1: no cpu, cpuacct or memory line in /proc/self/cgroup",
		memory: "unavailable: not in a cgroup v2 hierarchy (no 0:: line in /proc/self/cgroup); cgroup v1: no cpu, cpuacct or memory line in /proc/self/cgroup",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{"proc/self/cgroup": tt.cgroup, "proc/self/mountinfo": tt.mountinfo}
			maps.Copy(files, tt.files)
			for name, text := range files {
				path := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, _ := cgroupSampler(root, limits{cpuCores: wire.Ptr(1.0), memBytes: wire.Ptr[uint64](1 << 30)})
			s.Sample(context.Background())
			got := s.Sample(context.Background())
			if diff := cmp.Diff(collectors("cgroup-cpu="+tt.cpu, "cgroup-memory="+tt.memory), got.Collectors, ignoreDurations); diff != "" {
				t.Errorf("collectors (-want +got):\n%s", diff)
			}
			if got.CPU != nil || got.Memory != nil {
				t.Errorf("sections filled without a cgroup: cpu %+v memory %+v", got.CPU, got.Memory)
			}
		})
	}
}

// TestCgroupModeThisMachine samples the cgroup of the test process on the real machine:
// whichever version it finds, memory and CPU must be read and sane.
func TestCgroupModeThisMachine(t *testing.T) {
	s := New(Options{Mode: ModeCgroup})
	s.Sample(context.Background())
	got := s.Sample(context.Background())
	cg := s.collectors[0].(*cgroupCPUCollector).cg
	v1, _ := cg.isV1()
	t.Logf("v1 %v, dirs %+v, v2 dir %q; cpu %+v memory %+v", v1, cg.v1, cg.dir, got.CPU, got.Memory)
	for _, c := range got.Collectors[:2] {
		if !c.OK {
			t.Errorf("collector %s: %q", c.Name, c.Status)
		}
	}
	if m := got.Memory; m == nil || m.WorkingSetBytes == 0 || m.RSSBytes == nil || *m.RSSBytes == 0 {
		t.Errorf("memory of this process's cgroup = %+v, want a working set and rss", m)
	} else if m.LimitBytes != nil && m.WorkingSetBytes > *m.LimitBytes {
		t.Errorf("working set %d above the limit %d", m.WorkingSetBytes, *m.LimitBytes)
	}
	if c := got.CPU; c == nil || c.Cores < 0 || c.Cores > float64(runtime.NumCPU())*1.1 {
		t.Errorf("cpu = %+v, want between 0 and %d cores", c, runtime.NumCPU())
	}
}

func TestHostModeOnFixedProc(t *testing.T) {
	root, next := fixture(t, "host")
	s := New(Options{Mode: ModeHost, ProcRoot: root, SelfPID: 42})
	_, got := twoSamples(t, s, next)
	total := uint64(8000000 * 1024)
	used := uint64(3000000 * 1024)
	want := wire.Sample{
		V: 1, Time: wire.NewTime(time.Date(2026, 11, 27, 9, 30, 2, 0, time.UTC)), IntervalMs: 2000,
		// busy 150+50 ticks, idle 190+10 ticks of 100 Hz in 2 s on 2 CPUs
		CPU:        &wire.CPU{Cores: 1, LimitCores: wire.Ptr(2.0), PercentOfLimit: wire.Ptr(50.0), Percent: wire.Ptr(50.0)},
		Memory:     &wire.Memory{WorkingSetBytes: used, LimitBytes: &total, TotalBytes: &total, PercentOfLimit: wire.Ptr(37.5)},
		Network:    &wire.Network{RxBytesPerSec: 5500, TxBytesPerSec: 3300}, // eth0 + eth1, not lo
		Process:    &wire.Process{Processes: 3, Threads: 350, OpenFDs: 2112},
		Load:       &wire.Load{Load1: 1.5, Load5: 0.6, Load15: 0.35},
		Self:       &wire.Self{CPUCores: 0.01, RSSBytes: 2560 * page},
		Collectors: collectors("cpu=ok", "memory=ok", "load=ok", "processes=ok", "network=ok", "self=ok"),
	}
	if diff := cmp.Diff(want, got, ignoreDurations, approx); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestMissingSourcesAreReportedNotInvented(t *testing.T) {
	empty := t.TempDir()
	s := New(Options{Mode: ModeHost, ProcRoot: empty, SelfPID: 42})
	got := s.Sample(context.Background())
	if got.CPU != nil || got.Memory != nil || got.Process != nil || got.Network != nil || got.Self != nil {
		t.Errorf("sections filled from an empty /proc: %+v", got)
	}
	for _, c := range got.Collectors {
		if c.Name == "load" {
			continue // gopsutil falls back to the sysinfo system call: real figures
		}
		if c.OK || !strings.HasPrefix(c.Status, "unavailable: ") {
			t.Errorf("collector %s: ok=%v status %q; want unavailable with a reason", c.Name, c.OK, c.Status)
		}
	}
	bad := New(Options{Mode: "vm"}).Sample(context.Background())
	if diff := cmp.Diff(collectors("sampler=unavailable: mode vm is not one of pod, cgroup, host"), bad.Collectors, ignoreDurations); diff != "" {
		t.Errorf("unknown mode (-want +got):\n%s", diff)
	}
}

// TestThisMachine samples the real machine twice: every host collector must work here.
func TestThisMachine(t *testing.T) {
	s := New(Options{Mode: ModeHost})
	s.Sample(context.Background())
	got := s.Sample(context.Background())
	for _, c := range got.Collectors {
		if !c.OK || c.Status != "ok" {
			t.Errorf("collector %s: %q", c.Name, c.Status)
		}
	}
	if got.CPU == nil || got.Memory == nil || got.Memory.WorkingSetBytes == 0 || got.Self == nil || got.Self.RSSBytes == 0 {
		t.Errorf("sample of this machine lacks CPU, memory or self: %+v", got)
	}
}
