package sample

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSample takes one sample of every collector of a mode, reading this
// machine's kernel files. It reports the CPU time per sample (user + system, from
// getrusage, so garbage collection is included) as cpu-ns/op: the target is 1 ms.
//
// Pod and cgroup mode are sized like a pod: an application of three processes (sleep
// stand-ins) beside the agent. Pod mode reads them through a procfs root whose pid
// entries link to the real /proc/<pid>; cgroup mode reads cgroup files shaped like a
// container's (testdata/cgroup/t0) listing those pids.
func BenchmarkSample(b *testing.B) {
	app := startApp(b, 3)
	podRoot := b.TempDir()
	for _, pid := range append(app, os.Getpid()) {
		link(b, filepath.Join("/proc", strconv.Itoa(pid)), filepath.Join(podRoot, strconv.Itoa(pid)))
	}
	for _, f := range []string{"stat", "net", "meminfo", "loadavg"} {
		link(b, filepath.Join("/proc", f), filepath.Join(podRoot, f))
	}
	cgDir := b.TempDir()
	copyTree(b, "testdata/cgroup/t0", cgDir)
	procs := ""
	for _, pid := range app {
		procs += strconv.Itoa(pid) + "\n"
	}
	if err := os.WriteFile(filepath.Join(cgDir, "cgroup.procs"), []byte(procs), 0o644); err != nil {
		b.Fatal(err)
	}

	// Baseline: reading one small kernel file, the unit of a collector's work; a host
	// sample reads about ten files and one directory.
	b.Run("baseline-read-one-proc-file", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime(b)
		for b.Loop() {
			if _, err := os.ReadFile("/proc/loadavg"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
	for _, o := range []Options{
		{Mode: ModeHost},
		{Mode: ModePod, ProcRoot: podRoot, CPULimitMillicores: 500, MemoryLimitBytes: 256 << 20},
		{Mode: ModeCgroup, CgroupDir: cgDir},
	} {
		b.Run(o.Mode, func(b *testing.B) {
			s := New(o)
			ctx := context.Background()
			s.Sample(ctx) // the first sample also reads names and counts CPUs
			for _, c := range s.Sample(ctx).Collectors {
				if !c.OK {
					b.Fatalf("collector %s: %s", c.Name, c.Status)
				}
			}
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				s.Sample(ctx)
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

func startApp(b *testing.B, n int) []int {
	var pids []int
	for range n {
		cmd := exec.Command("sleep", "3600")
		if err := cmd.Start(); err != nil {
			b.Skipf("cannot start a stand-in application process: %v", err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
	}
	return pids
}

func link(b *testing.B, from, to string) {
	if err := os.Symlink(from, to); err != nil {
		b.Fatal(err)
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(fmt.Errorf("getrusage: %w", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
