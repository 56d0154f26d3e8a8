package sample

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// cgroupLocator finds the sampler's own cgroup v2 directory once and reads its files.
type cgroupLocator struct {
	procRoot string
	dir      string // set by Options.CgroupDir, or found on first use

	once sync.Once
	err  error
}

func (l *cgroupLocator) locate() error {
	l.once.Do(func() {
		if l.dir != "" {
			return
		}
		self, err := os.ReadFile(filepath.Join(l.procRoot, "self", "cgroup"))
		if err != nil {
			l.err = fmt.Errorf("read own cgroup: %w", err)
			return
		}
		path, err := parseProcCgroup(self)
		if err != nil {
			l.err = err
			return
		}
		mounts, err := os.ReadFile(filepath.Join(l.procRoot, "self", "mountinfo"))
		if err != nil {
			l.err = fmt.Errorf("read mountinfo: %w", err)
			return
		}
		root, mountPoint, err := parseCgroup2Mount(mounts)
		if err != nil {
			l.err = err
			return
		}
		l.dir = cgroupDir(root, mountPoint, path)
	})
	return l.err
}

// read returns one file of the cgroup.
func (l *cgroupLocator) read(file string) ([]byte, error) {
	if err := l.locate(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(l.dir, file))
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("read cgroup %s: %w", file, err)
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

// parseCgroup2Mount finds the first cgroup2 mount in /proc/<pid>/mountinfo and returns
// the mounted root within the hierarchy and the mount point.
func parseCgroup2Mount(b []byte) (root, mountPoint string, err error) {
	for line := range lines(b) {
		pre, post, ok := bytes.Cut(line, []byte(" - "))
		if !ok {
			continue
		}
		if fs := bytes.Fields(post); len(fs) == 0 || string(fs[0]) != "cgroup2" {
			continue
		}
		f := bytes.Fields(pre)
		if len(f) < 5 {
			return "", "", fmt.Errorf("parse mountinfo: short line %q", line)
		}
		return unescapeMount(string(f[3])), unescapeMount(string(f[4])), nil
	}
	return "", "", errors.New("no cgroup2 file system is mounted")
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

// cgroupCPUStat is cgroup v2 cpu.stat. The throttling fields exist only when the cpu
// controller is enabled for the group.
type cgroupCPUStat struct {
	UsageUsec     uint64
	NrPeriods     uint64
	NrThrottled   uint64
	ThrottledUsec uint64
	Throttling    bool
}

func parseCPUStat(b []byte) (cgroupCPUStat, error) {
	var s cgroupCPUStat
	var usage bool
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
		}
	}
	if !usage {
		return s, errors.New("parse cpu.stat: no usage_usec")
	}
	return s, nil
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

// parseMemoryValue reads a single-value memory file (memory.current, memory.max); false
// means "max", no limit.
func parseMemoryValue(name string, b []byte) (uint64, bool, error) {
	s := string(bytes.TrimSpace(b))
	if s == "max" {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parse %s: %q is not a byte count", name, s)
	}
	return v, true, nil
}

// cgroupMemoryStat holds the memory.stat fields the agent uses.
type cgroupMemoryStat struct {
	Anon, InactiveFile       uint64
	HasAnon, HasInactiveFile bool
}

func parseMemoryStat(b []byte) cgroupMemoryStat {
	var s cgroupMemoryStat
	for key, v := range keyValues(b) {
		switch key {
		case "anon":
			s.Anon, s.HasAnon = v, true
		case "inactive_file":
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
