// Package sample reads what the agent reports about the unit it watches: CPU, memory,
// network, processes and load, with one collector per source. Each collector records
// whether it ran and how long it took; one that cannot run says why in the sample and
// never stops the others. Rates (CPU cores, bytes/s) come from the difference between
// two samples, so the first sample of a Sampler carries none.
//
// The package is self-contained (gopsutil and the wire types only) so that the
// aggregator can sample its own machine in-process.
package sample

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/process"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Modes: what a Sampler watches.
const (
	ModePod    = "pod"    // the pod's processes, seen through a shared process namespace
	ModeCgroup = "cgroup" // the sampler's own cgroup (v2, or v1 where v2 lacks the controllers)
	ModeHost   = "host"   // the whole machine
)

// Options choose what a Sampler reads. Zero values take the defaults.
type Options struct {
	Mode string // ModePod, ModeCgroup or ModeHost (default)

	// Limits of the watched container, in pod mode from the Downward API. Zero means
	// unknown. In cgroup mode the cgroup's own cpu.max and memory.max take precedence.
	CPULimitMillicores int64
	MemoryLimitBytes   int64

	// ProcRoot is where procfs is mounted: $HOST_PROC, else /proc.
	ProcRoot string
	// CgroupDir is a cgroup v2 directory read in cgroup mode; by default the sampler's
	// own cgroup, v2 or v1, found through /proc/self/cgroup and /proc/self/mountinfo.
	CgroupDir string
	// SelfPID is the process reported as Self and, in pod mode, left out of the pod's
	// sums; by default this process.
	SelfPID int32
}

// noteFirst is the status of a collector whose rates need a second reading.
const noteFirst = "rates available from the next sample (first reading)"

// collector reads one source and fills its sections of the sample in progress. A
// non-empty note replaces "ok" as its status; an error makes it "unavailable: <err>".
type collector interface {
	name() string
	collect(ctx context.Context, c *cycle) (note string, err error)
}

// cycle is one sample in progress.
type cycle struct {
	now time.Time
	dt  float64 // seconds since the previous sample; 0 on the first
	out *wire.Sample
}

// Sampler takes samples of one unit. It keeps the previous readings to compute rates,
// so one Sampler serves one sampling loop; it is safe for concurrent use.
type Sampler struct {
	mu         sync.Mutex
	opts       Options
	env        common.EnvMap // procfs root for gopsutil when not the default
	collectors []collector
	last       time.Time
	now        func() time.Time
}

var bootTimeCache sync.Once

// New returns a Sampler for opts. An unknown mode yields samples whose only collector
// says so.
func New(opts Options) *Sampler {
	if opts.Mode == "" {
		opts.Mode = ModeHost
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = os.Getenv("HOST_PROC")
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.SelfPID == 0 {
		opts.SelfPID = int32(os.Getpid())
	}
	// Without the cache gopsutil re-reads /proc/stat (kilobytes on large machines) for
	// every process time it reports; the boot time does not change.
	bootTimeCache.Do(func() { process.EnableBootTimeCache(true) })

	s := &Sampler{opts: opts, now: time.Now}
	if opts.ProcRoot != "/proc" {
		s.env = common.EnvMap{common.HostProcEnvKey: opts.ProcRoot}
	}
	lim := limitsOf(opts)
	switch opts.Mode {
	case ModePod:
		s.collectors = []collector{
			newPodProcesses(opts.ProcRoot, opts.SelfPID, lim),
			&networkCollector{},
			&selfCollector{proc: &process.Process{Pid: opts.SelfPID}},
		}
	case ModeCgroup:
		cg := &cgroupLocator{procRoot: opts.ProcRoot, dir: opts.CgroupDir}
		s.collectors = []collector{
			&cgroupCPUCollector{cg: cg, lim: lim},
			&cgroupMemoryCollector{cg: cg, lim: lim},
			newCgroupProcesses(cg),
			&networkCollector{},
			&selfCollector{proc: &process.Process{Pid: opts.SelfPID}},
		}
	case ModeHost:
		s.collectors = []collector{
			&hostCPUCollector{},
			&hostMemoryCollector{},
			&loadCollector{},
			&hostProcessesCollector{procRoot: opts.ProcRoot},
			&networkCollector{},
			&selfCollector{proc: &process.Process{Pid: opts.SelfPID}},
		}
	default:
		s.collectors = []collector{unknownMode(opts.Mode)}
	}
	return s
}

// Mode is the mode in effect.
func (s *Sampler) Mode() string { return s.opts.Mode }

// Sample runs every collector once and returns what they found. Throughput is left
// for the caller, which knows what the application reported.
func (s *Sampler) Sample(ctx context.Context) wire.Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.env != nil {
		ctx = context.WithValue(ctx, common.EnvKey, s.env)
	}
	now := s.now()
	out := wire.Sample{V: wire.Version, Time: wire.NewTime(now), Collectors: make([]wire.Collector, 0, len(s.collectors)+4)}
	c := cycle{now: now, out: &out}
	if !s.last.IsZero() && now.After(s.last) {
		c.dt = now.Sub(s.last).Seconds()
		out.IntervalMs = wire.Ms(now.Sub(s.last))
	}
	s.last = now
	for _, col := range s.collectors {
		start := time.Now()
		note, err := col.collect(ctx, &c)
		st := wire.Collector{Name: col.name(), OK: err == nil, DurationMs: wire.Ms(time.Since(start)), Status: "ok"}
		switch {
		case err != nil:
			st.Status = "unavailable: " + err.Error()
		case note != "":
			st.Status = note
		}
		out.Collectors = append(out.Collectors, st)
	}
	return out
}

// limits are the watched unit's limits as configured; nil when unknown.
type limits struct {
	cpuCores *float64
	memBytes *uint64
}

func limitsOf(o Options) limits {
	var l limits
	if o.CPULimitMillicores > 0 {
		l.cpuCores = wire.Ptr(float64(o.CPULimitMillicores) / 1000)
	}
	if o.MemoryLimitBytes > 0 {
		l.memBytes = wire.Ptr(uint64(o.MemoryLimitBytes))
	}
	return l
}

// percentOf is v as a percentage of limit, or nil without a limit.
func percentOf(v float64, limit *float64) *float64 {
	if limit == nil || *limit <= 0 {
		return nil
	}
	return wire.Ptr(v / *limit * 100)
}

// rate is the per-second change of a counter, or false when the counter went back
// (a restart or a reused id) or no time passed.
func rate(prev, cur, dt float64) (float64, bool) {
	if dt <= 0 || cur < prev {
		return 0, false
	}
	return (cur - prev) / dt, true
}

type unknownMode string

func (m unknownMode) name() string { return "sampler" }
func (m unknownMode) collect(context.Context, *cycle) (string, error) {
	return "", errUnknownMode(m)
}

type errUnknownMode string

func (e errUnknownMode) Error() string {
	return "mode " + string(e) + " is not one of pod, cgroup, host"
}
