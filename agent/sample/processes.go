package sample

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/faultline-dev/faultline/internal/wire"
)

// pauseName is the command name of the pod's infrastructure ("pause") container, which
// holds the pod's namespaces and does no work of its own.
const pauseName = "pause"

// processesCollector reads a set of processes through gopsutil: in pod mode every
// process of the shared process namespace but the pause process and the agent, whose
// CPU and memory it sums; in cgroup mode the processes of the cgroup, which it only
// counts (the cgroup's own files account for CPU and memory).
type processesCollector struct {
	list    func(ctx context.Context) ([]int32, error)
	skip    func(pid int32, name string) bool
	withUse bool // pod mode: report the processes' CPU and memory as the pod's
	lim     limits

	tracked  map[int32]*trackedProcess
	readings []procReading
}

type trackedProcess struct {
	proc    *process.Process
	skipped bool
	cpu     float64 // CPU seconds at the last sample
	seen    bool    // still listed in this sample
}

// procReading is one process as read in one sample.
type procReading struct {
	PID        int32
	CPUSeconds float64
	RSSBytes   uint64
	Threads    int32
	FDs        int32 // -1: /proc/<pid>/fd could not be read
	FDErr      string
}

func newPodProcesses(procRoot string, self int32, lim limits) *processesCollector {
	return &processesCollector{
		list: func(ctx context.Context) ([]int32, error) { return process.PidsWithContext(ctx) },
		skip: func(pid int32, name string) bool {
			return pid == self || name == pauseName
		},
		withUse: true,
		lim:     lim,
		tracked: map[int32]*trackedProcess{},
	}
}

func newCgroupProcesses(cg *cgroupLocator) *processesCollector {
	return &processesCollector{
		list: func(context.Context) ([]int32, error) {
			b, err := cg.read("memory", "cgroup.procs") // in v1, the memory controller's group
			if err != nil {
				return nil, err
			}
			return parsePIDList(b)
		},
		tracked: map[int32]*trackedProcess{},
	}
}

var _ collector = (*processesCollector)(nil)

func (c *processesCollector) name() string { return "processes" }

func (c *processesCollector) collect(ctx context.Context, cy *cycle) (string, error) {
	pids, err := c.list(ctx)
	if err != nil {
		return "", fmt.Errorf("list processes: %w", err)
	}
	prev := make(map[int32]float64, len(c.tracked))
	for pid, t := range c.tracked {
		if !t.skipped && t.cpu >= 0 {
			prev[pid] = t.cpu
		}
		t.seen = false
	}
	c.readings = c.readings[:0]
	for _, pid := range pids {
		t, ok := c.tracked[pid]
		if !ok {
			t = &trackedProcess{proc: &process.Process{Pid: pid}, cpu: -1}
			if c.skip != nil {
				name, err := t.proc.NameWithContext(ctx)
				if err != nil {
					continue // exited since it was listed
				}
				t.skipped = c.skip(pid, name)
			}
			c.tracked[pid] = t
		}
		t.seen = true
		if t.skipped {
			continue
		}
		r, ok := readProcess(ctx, t.proc)
		if !ok {
			continue
		}
		t.cpu = r.CPUSeconds
		c.readings = append(c.readings, r)
	}
	for pid, t := range c.tracked {
		if !t.seen {
			delete(c.tracked, pid)
		}
	}
	sum := sumProcesses(prev, c.readings, cy.dt)
	cy.out.Process = &wire.Process{Processes: sum.processes, Threads: sum.threads, OpenFDs: sum.fds}
	note := ""
	if sum.fdsUnread > 0 {
		note = fmt.Sprintf("open_fds counts %d of %d processes (%s)", sum.processes-sum.fdsUnread, sum.processes, sum.fdErr)
	}
	if !c.withUse {
		return note, nil
	}
	cy.out.Memory = &wire.Memory{
		WorkingSetBytes: sum.rss,
		RSSBytes:        wire.Ptr(sum.rss),
		LimitBytes:      c.lim.memBytes,
	}
	if c.lim.memBytes != nil {
		cy.out.Memory.PercentOfLimit = percentOf(float64(sum.rss), wire.Ptr(float64(*c.lim.memBytes)))
	}
	if sum.cores == nil {
		return joinNotes(noteFirst, note), nil
	}
	cy.out.CPU = &wire.CPU{
		Cores:          *sum.cores,
		LimitCores:     c.lim.cpuCores,
		PercentOfLimit: percentOf(*sum.cores, c.lim.cpuCores),
	}
	return note, nil
}

// readProcess reads one process, or returns false when it is gone.
func readProcess(ctx context.Context, p *process.Process) (procReading, bool) {
	r := procReading{PID: p.Pid}
	times, err := p.TimesWithContext(ctx)
	if err != nil {
		return r, false
	}
	r.CPUSeconds = times.User + times.System
	mem, err := p.MemoryInfoWithContext(ctx)
	if err != nil {
		return r, false
	}
	r.RSSBytes = mem.RSS
	if r.Threads, err = p.NumThreadsWithContext(ctx); err != nil {
		return r, false
	}
	if r.FDs, err = p.NumFDsWithContext(ctx); err != nil {
		r.FDs = -1
		r.FDErr = "fd of pid " + strconv.Itoa(int(p.Pid)) + ": " + fdReason(err)
	}
	return r, true
}

func fdReason(err error) string {
	if errors.Is(err, fs.ErrPermission) {
		return "permission denied"
	}
	return err.Error()
}

type processSums struct {
	processes, threads, fds int
	fdsUnread               int
	fdErr                   string
	rss                     uint64
	cores                   *float64 // nil on the first sample
}

// sumProcesses adds up one sample's processes. CPU is the time used since the previous
// sample (prev: CPU seconds by pid then) over dt: a process not seen before started
// during the interval, so all its time counts; a process whose time went back is a new
// one under a reused pid. Processes that exited during the interval lose their last
// partial interval.
func sumProcesses(prev map[int32]float64, cur []procReading, dt float64) processSums {
	var s processSums
	var cpu float64
	for _, r := range cur {
		s.processes++
		s.threads += int(r.Threads)
		s.rss += r.RSSBytes
		if r.FDs < 0 {
			s.fdsUnread++
			if s.fdErr == "" {
				s.fdErr = r.FDErr
			}
		} else {
			s.fds += int(r.FDs)
		}
		if p, ok := prev[r.PID]; ok && r.CPUSeconds >= p {
			cpu += r.CPUSeconds - p
		} else {
			cpu += r.CPUSeconds
		}
	}
	if dt > 0 {
		s.cores = wire.Ptr(cpu / dt)
	}
	return s
}

// parsePIDList parses cgroup.procs: one pid per line.
func parsePIDList(b []byte) ([]int32, error) {
	var pids []int32
	for line := range lines(b) {
		if len(line) == 0 {
			continue
		}
		pid, err := strconv.ParseInt(string(line), 10, 32)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("parse pid list: %q is not a pid", line)
		}
		pids = append(pids, int32(pid))
	}
	return pids, nil
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
