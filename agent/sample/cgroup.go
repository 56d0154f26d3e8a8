package sample

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// cgroupLocator finds the sampler's own cgroup once and reads its files. It takes the
// cgroup v2 group when that group has the cpu or memory controller, else the cgroup v1
// groups of the cpu, cpuacct and memory controllers. Hybrid machines place the process
// in a v2 hierarchy too, but one without controllers: its cpu.stat would count the
// wrong group, so v1 wins there.
type cgroupLocator struct {
	procRoot string
	root     string // prefix of the mount points in mountinfo: "" but in tests
	dir      string // the v2 directory: set by Options.CgroupDir, or found on first use

	once sync.Once
	v1   map[string]v1Dir // by controller; nil in v2
	err  error
}

// v1Controllers are the cgroup v1 controllers cgroup mode reads.
var v1Controllers = []string{"cpu", "cpuacct", "memory"}

// v1Dir is the directory of a cgroup v1 controller, or why there is none.
type v1Dir struct {
	dir string
	err error
}

func (l *cgroupLocator) locate() error {
	l.once.Do(func() {
		if l.dir == "" {
			l.err = l.find()
		}
	})
	return l.err
}

func (l *cgroupLocator) find() error {
	self, err := os.ReadFile(filepath.Join(l.procRoot, "self", "cgroup"))
	if err != nil {
		return fmt.Errorf("read own cgroup: %w", err)
	}
	mounts, err := os.ReadFile(filepath.Join(l.procRoot, "self", "mountinfo"))
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	dir, v2err := l.findV2(self, mounts)
	if v2err == nil && hasController(dir, "cpu", "memory") {
		l.dir = dir
		return nil
	}
	paths := parseProcCgroupV1(self)
	if !slices.ContainsFunc(v1Controllers, func(c string) bool { _, ok := paths[c]; return ok }) {
		if v2err != nil {
			return fmt.Errorf("%w; cgroup v1: no cpu, cpuacct or memory line in /proc/self/cgroup", v2err)
		}
		l.dir = dir // a v2 group without either controller still counts its CPU
		return nil
	}
	v1Mounts, err := parseCgroupV1Mounts(mounts)
	if err != nil {
		return err
	}
	l.v1 = make(map[string]v1Dir, len(v1Controllers))
	for _, c := range v1Controllers {
		path, inGroup := paths[c]
		m, mounted := v1Mounts[c]
		switch {
		case !inGroup:
			l.v1[c] = v1Dir{err: fmt.Errorf("cgroup v1 %s controller: not in /proc/self/cgroup", c)}
		case !mounted:
			l.v1[c] = v1Dir{err: fmt.Errorf("cgroup v1 %s controller: not mounted (no cgroup file system with it in /proc/self/mountinfo)", c)}
		default:
			l.v1[c] = v1Dir{dir: filepath.Join(l.root, cgroupDir(m.root, m.mountPoint, path))}
		}
	}
	return nil
}

func (l *cgroupLocator) findV2(self, mounts []byte) (string, error) {
	path, err := parseProcCgroup(self)
	if err != nil {
		return "", err
	}
	root, mountPoint, err := parseCgroup2Mount(mounts)
	if err != nil {
		return "", err
	}
	return filepath.Join(l.root, cgroupDir(root, mountPoint, path)), nil
}

// hasController reports whether the cgroup.controllers of a v2 group lists any of names.
func hasController(dir string, names ...string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return false
	}
	return slices.ContainsFunc(strings.Fields(string(b)), func(c string) bool { return slices.Contains(names, c) })
}

// isV1 reports whether the cgroup found is a v1 one.
func (l *cgroupLocator) isV1() (bool, error) {
	if err := l.locate(); err != nil {
		return false, err
	}
	return l.v1 != nil, nil
}

// read returns one file of the cgroup: in v1, of the group of controller, one of
// v1Controllers.
func (l *cgroupLocator) read(controller, file string) ([]byte, error) {
	if err := l.locate(); err != nil {
		return nil, err
	}
	dir, what := l.dir, "cgroup"
	if l.v1 != nil {
		d := l.v1[controller]
		if d.err != nil {
			return nil, d.err
		}
		dir, what = d.dir, "cgroup v1"
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("read %s %s: %w", what, file, err)
	}
	return b, nil
}

// parseProcCgroup returns the cgroup v2 path in /proc/<pid>/cgroup: the "0::<path>" line.
func parseProcCgroup(b []byte) (string, error) {
	for line := range lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("0::")); ok {
			return string(rest), nil
		}
	}
	return "", errors.New("not in a cgroup v2 hierarchy (no 0:: line in /proc/self/cgroup)")
}

// parseProcCgroupV1 returns the cgroup v1 paths in /proc/<pid>/cgroup by controller:
// "4:cpu,cpuacct:/path" places both cpu and cpuacct at /path.
func parseProcCgroupV1(b []byte) map[string]string {
	paths := map[string]string{}
	for line := range lines(b) {
		f := strings.SplitN(string(line), ":", 3)
		if len(f) != 3 || f[1] == "" {
			continue // the v2 line, or not a cgroup line
		}
		for c := range strings.SplitSeq(f[1], ",") {
			paths[c] = f[2]
		}
	}
	return paths
}

// cgroupMount is where a cgroup hierarchy is mounted: root is the group of the
// hierarchy that appears at mountPoint.
type cgroupMount struct{ root, mountPoint string }

// parseCgroup2Mount finds the first cgroup2 mount in /proc/<pid>/mountinfo and returns
// the mounted root within the hierarchy and the mount point.
func parseCgroup2Mount(b []byte) (root, mountPoint string, err error) {
	for m, err := range cgroupMounts(b) {
		if err != nil {
			return "", "", err
		}
		if m.fsType == "cgroup2" {
			return m.root, m.mountPoint, nil
		}
	}
	return "", "", errors.New("no cgroup2 file system is mounted")
}

// parseCgroupV1Mounts returns the first cgroup v1 mount in /proc/<pid>/mountinfo of each
// of v1Controllers, which the super options name ("rw,cpu,cpuacct").
func parseCgroupV1Mounts(b []byte) (map[string]cgroupMount, error) {
	mounts := map[string]cgroupMount{}
	for m, err := range cgroupMounts(b) {
		if err != nil {
			return nil, err
		}
		if m.fsType != "cgroup" {
			continue
		}
		for opt := range strings.SplitSeq(m.superOptions, ",") {
			if _, ok := mounts[opt]; !ok && slices.Contains(v1Controllers, opt) {
				mounts[opt] = m.cgroupMount
			}
		}
	}
	return mounts, nil
}

// mountEntry is a cgroup or cgroup2 line of /proc/<pid>/mountinfo.
type mountEntry struct {
	cgroupMount
	fsType, superOptions string
}

// cgroupMounts yields the cgroup and cgroup2 mounts of /proc/<pid>/mountinfo, or an
// error for such a line that is cut short.
func cgroupMounts(b []byte) iter.Seq2[mountEntry, error] {
	return func(yield func(mountEntry, error) bool) {
		for line := range lines(b) {
			pre, post, ok := bytes.Cut(line, []byte(" - "))
			if !ok {
				continue
			}
			// post: file system type, source, super options
			fs := bytes.Fields(post)
			if len(fs) == 0 || (string(fs[0]) != "cgroup" && string(fs[0]) != "cgroup2") {
				continue
			}
			f := bytes.Fields(pre)
			if len(f) < 5 || len(fs) < 3 {
				yield(mountEntry{}, fmt.Errorf("parse mountinfo: short line %q", line))
				return
			}
			m := mountEntry{
				cgroupMount:  cgroupMount{root: unescapeMount(string(f[3])), mountPoint: unescapeMount(string(f[4]))},
				fsType:       string(fs[0]),
				superOptions: string(fs[2]),
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupDir places a cgroup path under a mount of the hierarchy that starts at root.
func cgroupDir(root, mountPoint, path string) string {
	if root != "/" {
		if rel, ok := strings.CutPrefix(path, root); ok && (rel == "" || rel[0] == '/') {
			path = rel
		}
	}
	return filepath.Join(mountPoint, path)
}

// cgroupCPUStat is cpu.stat in cgroup v2 terms; in v1 the usage comes from cpuacct.usage.
// The throttling fields exist only when the cpu controller is enabled for the group.
type cgroupCPUStat struct {
	UsageUsec     uint64
	NrPeriods     uint64
	NrThrottled   uint64
	ThrottledUsec uint64
	Throttling    bool
}

func parseCPUStat(b []byte) (cgroupCPUStat, error) {
	s, usage := cpuStatFields(b)
	if !usage {
		return s, errors.New("parse cpu.stat: no usage_usec")
	}
	return s, nil
}

// cpuStatFields reads cpu.stat of either version and says whether it had usage_usec:
// v1 has none (cpuacct.usage holds it) and counts throttled_time in nanoseconds.
func cpuStatFields(b []byte) (s cgroupCPUStat, usage bool) {
	for key, v := range keyValues(b) {
		switch key {
		case "usage_usec":
			s.UsageUsec, usage = v, true
		case "nr_periods":
			s.NrPeriods, s.Throttling = v, true
		case "nr_throttled":
			s.NrThrottled = v
		case "throttled_usec":
			s.ThrottledUsec = v
		case "throttled_time":
			s.ThrottledUsec = v / 1000
		}
	}
	return s, usage
}

// parseCPUMax reads cpu.max ("<quota> <period>" or "max <period>") as a limit in cores;
// false means no limit.
func parseCPUMax(b []byte) (float64, bool, error) {
	f := bytes.Fields(b)
	if len(f) != 2 {
		return 0, false, fmt.Errorf("parse cpu.max: want quota and period, got %q", bytes.TrimSpace(b))
	}
	period, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil || period == 0 {
		return 0, false, fmt.Errorf("parse cpu.max: bad period %q", f[1])
	}
	if string(f[0]) == "max" {
		return 0, false, nil
	}
	quota, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parse cpu.max: bad quota %q", f[0])
	}
	return float64(quota) / float64(period), true, nil
}

// parseCFSQuota reads cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us as a limit in
// cores; false means no limit (a quota of -1).
func parseCFSQuota(quota, period []byte) (float64, bool, error) {
	q, err := strconv.ParseInt(string(bytes.TrimSpace(quota)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parse cpu.cfs_quota_us: %q is not a number", bytes.TrimSpace(quota))
	}
	if q < 0 {
		return 0, false, nil
	}
	p, err := parseCount("cpu.cfs_period_us", period)
	if err != nil {
		return 0, false, err
	}
	if p == 0 {
		return 0, false, errors.New("parse cpu.cfs_period_us: period is 0")
	}
	return float64(q) / float64(p), true, nil
}

// parseCount reads a file that holds one unsigned number (cpuacct.usage, memory.current).
func parseCount(name string, b []byte) (uint64, error) {
	s := string(bytes.TrimSpace(b))
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %q is not a number", name, s)
	}
	return v, nil
}

// v1NoMemoryLimit is the smallest memory limit taken for none: cgroup v1 reports the
// kernel's page counter maximum, LONG_MAX rounded down to a page (9223372036854771712
// with 4 KiB pages), for a group without a limit. The mask allows pages up to 64 KiB.
const v1NoMemoryLimit = math.MaxInt64 &^ (64<<10 - 1)

// parseMemoryValue reads a memory limit (memory.max, or v1 memory.limit_in_bytes); false
// means no limit: "max", or v1's value for none.
func parseMemoryValue(name string, b []byte) (uint64, bool, error) {
	if string(bytes.TrimSpace(b)) == "max" {
		return 0, false, nil
	}
	v, err := parseCount(name, b)
	if err != nil || v >= v1NoMemoryLimit {
		return 0, false, err
	}
	return v, true, nil
}

// cgroupMemoryStat holds the memory.stat fields the agent uses.
type cgroupMemoryStat struct {
	Anon, InactiveFile       uint64
	HasAnon, HasInactiveFile bool
}

func parseMemoryStat(b []byte) cgroupMemoryStat {
	return memoryStatFields(b, "anon", "inactive_file")
}

// parseMemoryStatV1 reads a cgroup v1 memory.stat as cAdvisor does: total_rss for anon
// and total_inactive_file for inactive_file. The total_ fields count the descendant
// groups too, as memory.usage_in_bytes does.
func parseMemoryStatV1(b []byte) cgroupMemoryStat {
	return memoryStatFields(b, "total_rss", "total_inactive_file")
}

func memoryStatFields(b []byte, anon, inactiveFile string) cgroupMemoryStat {
	var s cgroupMemoryStat
	for key, v := range keyValues(b) {
		switch key {
		case anon:
			s.Anon, s.HasAnon = v, true
		case inactiveFile:
			s.InactiveFile, s.HasInactiveFile = v, true
		}
	}
	return s
}

// keyValues yields the "key value" lines of a flat-keyed cgroup file, skipping lines
// whose value is not a number.
func keyValues(b []byte) iter.Seq2[string, uint64] {
	return func(yield func(string, uint64) bool) {
		for line := range lines(b) {
			k, v, ok := bytes.Cut(line, []byte{' '})
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				continue
			}
			if !yield(string(k), n) {
				return
			}
		}
	}
}

// lines yields the lines of b without their newlines.
func lines(b []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			line, rest, _ := bytes.Cut(b, []byte{'\n'})
			if !yield(line) {
				return
			}
			b = rest
		}
	}
}
