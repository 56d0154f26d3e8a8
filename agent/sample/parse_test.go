package sample

import (
	"os"
	"path/filepath"
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
