package sample

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseCgroup2Mount(t *testing.T) {
	tests := []struct {
		file       string
		root, path string
		wantErr    string
	}{
		{"kubernetes.txt", "/", "/sys/fs/cgroup", ""},
		{"hybrid.txt", "/", "/sys/fs/cgroup/unified", ""},
		{"host-nested.txt", "/kubepods.slice", "/var/lib/my cgroups", ""},
		{"v1-only.txt", "", "", "no cgroup2 file system is mounted"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			root, mp, err := parseCgroup2Mount(readTestdata(t, "mountinfo/"+tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{tt.root, tt.path}, []string{root, mp}); diff != "" {
				t.Errorf("root, mount point (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct{ file, want, wantErr string }{
		{"namespaced.txt", "/", ""},
		{"hybrid.txt", "/kubepods.slice/kubepods-burstable.slice/cri-containerd-abc.scope", ""},
		{"v1-only.txt", "", "not in a cgroup v2 hierarchy"},
	}
	for _, tt := range tests {
		got, err := parseProcCgroup(readTestdata(t, "proccgroup/"+tt.file))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.file, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.file, got, err, tt.want)
		}
	}
}

func TestCgroupDir(t *testing.T) {
	tests := []struct{ root, mount, path, want string }{
		{"/", "/sys/fs/cgroup", "/", "/sys/fs/cgroup"},
		{"/", "/sys/fs/cgroup/unified", "/user.slice/x.scope", "/sys/fs/cgroup/unified/user.slice/x.scope"},
		{"/kubepods.slice", "/mnt/cg", "/kubepods.slice/pod1/ctr", "/mnt/cg/pod1/ctr"},
		{"/kubepods.slice", "/mnt/cg", "/kubepods.slicex/ctr", "/mnt/cg/kubepods.slicex/ctr"},
	}
	for _, tt := range tests {
		if got := cgroupDir(tt.root, tt.mount, tt.path); got != tt.want {
			t.Errorf("cgroupDir(%q, %q, %q) = %q, want %q", tt.root, tt.mount, tt.path, got, tt.want)
		}
	}
}

func TestParseCPUStat(t *testing.T) {
	tests := []struct {
		file    string
		want    cgroupCPUStat
		wantErr bool
	}{
		{"cgroup/t0/cpu.stat", cgroupCPUStat{UsageUsec: 5000000, NrPeriods: 1000, NrThrottled: 10, ThrottledUsec: 200000, Throttling: true}, false},
		{"cgroupfile/cpu.stat-no-controller", cgroupCPUStat{UsageUsec: 1311056116}, false},
		{"cgroupfile/memory.max-unlimited", cgroupCPUStat{}, true},
	}
	for _, tt := range tests {
		got, err := parseCPUStat(readTestdata(t, tt.file))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.file, err, tt.wantErr)
		}
		if diff := cmp.Diff(tt.want, got); !tt.wantErr && diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.file, diff)
		}
	}
}

func TestParseCPUMax(t *testing.T) {
	tests := []struct {
		in      string
		cores   float64
		limited bool
		wantErr bool
	}{
		{"max 100000\n", 0, false, false},
		{"250000 100000\n", 2.5, true, false},
		{"50000 100000", 0.5, true, false},
		{"50000", 0, false, true},
		{"max 0", 0, false, true},
		{"lots 100000", 0, false, true},
	}
	for _, tt := range tests {
		cores, limited, err := parseCPUMax([]byte(tt.in))
		if (err != nil) != tt.wantErr || cores != tt.cores || limited != tt.limited {
			t.Errorf("parseCPUMax(%q) = %v, %v, %v; want %v, %v, error %v", tt.in, cores, limited, err, tt.cores, tt.limited, tt.wantErr)
		}
	}
}

func TestParseMemoryFiles(t *testing.T) {
	v, limited, err := parseMemoryValue("memory.max", readTestdata(t, "cgroupfile/memory.max-unlimited"))
	if err != nil || limited || v != 0 {
		t.Errorf("memory.max max = %v, %v, %v; want no limit", v, limited, err)
	}
	v, limited, err = parseMemoryValue("memory.current", readTestdata(t, "cgroup/t0/memory.current"))
	if err != nil || !limited || v != 200000000 {
		t.Errorf("memory.current = %v, %v, %v; want 200000000", v, limited, err)
	}
	if _, _, err := parseMemoryValue("memory.current", []byte("-1\n")); err == nil || !strings.Contains(err.Error(), "memory.current") {
		t.Errorf("negative memory.current: err = %v", err)
	}
	got := parseMemoryStat(readTestdata(t, "cgroup/t0/memory.stat"))
	want := cgroupMemoryStat{Anon: 120000000, InactiveFile: 50000000, HasAnon: true, HasInactiveFile: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("memory.stat (-want +got):\n%s", diff)
	}
}

func TestParsePIDList(t *testing.T) {
	got, err := parsePIDList(readTestdata(t, "cgroup/t0/cgroup.procs"))
	if diff := cmp.Diff([]int32{7, 30}, got); err != nil || diff != "" {
		t.Errorf("cgroup.procs: %v (-want +got):\n%s", err, diff)
	}
	if _, err := parsePIDList([]byte("7\nx\n")); err == nil {
		t.Error("a bad pid was accepted")
	}
}

func TestParseHostCounts(t *testing.T) {
	threads, err := parseLoadavgThreads(readTestdata(t, "host/t0/loadavg"))
	if err != nil || threads != 345 {
		t.Errorf("loadavg threads = %d, %v; want 345", threads, err)
	}
	fds, err := parseFileNr(readTestdata(t, "host/t0/sys/fs/file-nr"))
	if err != nil || fds != 2048 {
		t.Errorf("file-nr = %d, %v; want 2048", fds, err)
	}
	for _, bad := range []string{"", "0.1 0.2 0.3", "0.1 0.2 0.3 7 1", "0.1 0.2 0.3 1/x 1"} {
		if _, err := parseLoadavgThreads([]byte(bad)); err == nil {
			t.Errorf("loadavg %q accepted", bad)
		}
	}
	for _, bad := range []string{"", "1 2", "1 2 x y", "1 5 9"} {
		if _, err := parseFileNr([]byte(bad)); err == nil {
			t.Errorf("file-nr %q accepted", bad)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/trail\04`: `/trail\04`, `/tab\011x`: "/tab\tx"} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseProcCgroupV1(t *testing.T) {
	const ctr = "/kubepods/burstable/pod6f1c/abc"
	tests := []struct {
		file string
		want map[string]string
	}{
		{"proccgroup/hybrid.txt", map[string]string{"cpu": ctr, "cpuacct": ctr, "name=systemd": ctr}},
		{"proccgroup/v1-only.txt", map[string]string{"memory": "/user.slice", "name=systemd": "/user.slice"}},
		{"proccgroup/namespaced.txt", map[string]string{}},
		{"cgroups/v1-container/t0/proc/self/cgroup", map[string]string{"memory": ctr, "pids": ctr, "cpu": ctr, "cpuacct": ctr, "name=systemd": ctr}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, parseProcCgroupV1(readTestdata(t, tt.file))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.file, diff)
		}
	}
}

func TestParseCgroupV1Mounts(t *testing.T) {
	const ctr = "/kubepods/burstable/pod6f1c/abc"
	tests := []struct {
		file    string
		want    map[string]cgroupMount
		wantErr string
	}{
		{"mountinfo/hybrid.txt", map[string]cgroupMount{"memory": {"/", "/sys/fs/cgroup/memory"}}, ""},
		{"mountinfo/kubernetes.txt", map[string]cgroupMount{}, ""},
		{"cgroups/v1-container/t0/proc/self/mountinfo", map[string]cgroupMount{
			"cpu": {ctr, "/sys/fs/cgroup/cpu,cpuacct"}, "cpuacct": {ctr, "/sys/fs/cgroup/cpu,cpuacct"}, "memory": {ctr, "/sys/fs/cgroup/memory"},
		}, ""},
		{"cgroups/hybrid/t0/proc/self/mountinfo", map[string]cgroupMount{
			"cpu": {"/", "/sys/fs/cgroup/cpu"}, "cpuacct": {"/", "/sys/fs/cgroup/cpuacct"}, "memory": {"/", "/sys/fs/cgroup/memory"},
		}, ""},
	}
	for _, tt := range tests {
		got, err := parseCgroupV1Mounts(readTestdata(t, tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(cgroupMount{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.file, diff)
		}
	}
	if _, err := parseCgroupV1Mounts([]byte("31 30 0:28 / - cgroup cgroup rw,cpu\n")); err == nil || !strings.Contains(err.Error(), "short line") {
		t.Errorf("short cgroup line: err = %v, want short line", err)
	}
}

func TestParseCFSQuota(t *testing.T) {
	tests := []struct {
		quota, period string
		cores         float64
		limited       bool
		wantErr       bool
	}{
		{"-1\n", "100000\n", 0, false, false},
		{"50000\n", "100000\n", 0.5, true, false},
		{"250000", "100000", 2.5, true, false},
		{"50000", "0", 0, false, true},
		{"lots", "100000", 0, false, true},
		{"50000", "-1", 0, false, true},
	}
	for _, tt := range tests {
		cores, limited, err := parseCFSQuota([]byte(tt.quota), []byte(tt.period))
		if (err != nil) != tt.wantErr || cores != tt.cores || limited != tt.limited {
			t.Errorf("parseCFSQuota(%q, %q) = %v, %v, %v; want %v, %v, error %v", tt.quota, tt.period, cores, limited, err, tt.cores, tt.limited, tt.wantErr)
		}
	}
}

func TestParseCPUStatV1(t *testing.T) {
	got, usage := cpuStatFields(readTestdata(t, "cgroups/v1-container/t0/sys/fs/cgroup/cpu,cpuacct/cpu.stat"))
	want := cgroupCPUStat{NrPeriods: 500, NrThrottled: 50, ThrottledUsec: 4000000, Throttling: true}
	if diff := cmp.Diff(want, got); usage || diff != "" {
		t.Errorf("v1 cpu.stat: usage %v (-want +got):\n%s", usage, diff)
	}
	if _, err := parseCPUStat(readTestdata(t, "cgroups/v1-container/t0/sys/fs/cgroup/cpu,cpuacct/cpu.stat")); err == nil {
		t.Error("a v1 cpu.stat passed for a v2 one, without usage_usec")
	}
}

func TestParseMemoryFilesV1(t *testing.T) {
	tests := []struct {
		in      string
		v       uint64
		limited bool
	}{
		{"9223372036854771712\n", 0, false}, // no limit, 4 KiB pages
		{"9223372036854710272\n", 0, false}, // no limit, 64 KiB pages
		{"268435456\n", 268435456, true},
		{"0\n", 0, true},
	}
	for _, tt := range tests {
		v, limited, err := parseMemoryValue("memory.limit_in_bytes", []byte(tt.in))
		if err != nil || v != tt.v || limited != tt.limited {
			t.Errorf("memory.limit_in_bytes %q = %v, %v, %v; want %v, %v", tt.in, v, limited, err, tt.v, tt.limited)
		}
	}
	// total_ fields, not the group's own (rss 100000000, inactive_file 30000000)
	got := parseMemoryStatV1(readTestdata(t, "cgroups/v1-container/t0/sys/fs/cgroup/memory/memory.stat"))
	want := cgroupMemoryStat{Anon: 110000000, InactiveFile: 40000000, HasAnon: true, HasInactiveFile: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("v1 memory.stat (-want +got):\n%s", diff)
	}
}

// FuzzParseCgroupV1 feeds the /proc/<pid>/cgroup and mountinfo parsers outside input;
// they must not panic, and the mounts found are of the controllers asked for.
func FuzzParseCgroupV1(f *testing.F) {
	for _, tree := range []string{"v1-host", "v1-container", "hybrid", "v2"} {
		self := filepath.Join("testdata", "cgroups", tree, "t0", "proc", "self")
		cg, err1 := os.ReadFile(filepath.Join(self, "cgroup"))
		mi, err2 := os.ReadFile(filepath.Join(self, "mountinfo"))
		if err1 != nil || err2 != nil {
			f.Fatal(err1, err2)
		}
		f.Add(cg, mi)
	}
	f.Fuzz(func(t *testing.T, cgroup, mountinfo []byte) {
		parseProcCgroupV1(cgroup)
		parseProcCgroup(cgroup)
		parseCgroup2Mount(mountinfo)
		mounts, err := parseCgroupV1Mounts(mountinfo)
		for c := range mounts {
			if err != nil || !slices.Contains(v1Controllers, c) {
				t.Errorf("mount of %q found (err %v)", c, err)
			}
		}
	})
}
