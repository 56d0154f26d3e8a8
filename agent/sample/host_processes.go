package sample

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/faultline-dev/faultline/internal/wire"
)

// hostProcessesCollector counts the machine's processes (the pid directories of /proc),
// threads (/proc/loadavg) and open file handles (/proc/sys/fs/file-nr) without reading
// every process.
type hostProcessesCollector struct {
	procRoot string
}

var _ collector = hostProcessesCollector{}

func (hostProcessesCollector) name() string { return "processes" }

func (c hostProcessesCollector) collect(_ context.Context, cy *cycle) (string, error) {
	procs, err := countPIDDirs(c.procRoot)
	if err != nil {
		return "", fmt.Errorf("list processes: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(c.procRoot, "loadavg"))
	if err != nil {
		return "", fmt.Errorf("read loadavg: %w", err)
	}
	threads, err := parseLoadavgThreads(b)
	if err != nil {
		return "", err
	}
	b, err = os.ReadFile(filepath.Join(c.procRoot, "sys", "fs", "file-nr"))
	if err != nil {
		return "", fmt.Errorf("read file-nr: %w", err)
	}
	fds, err := parseFileNr(b)
	if err != nil {
		return "", err
	}
	cy.out.Process = &wire.Process{Processes: procs, Threads: threads, OpenFDs: fds}
	return "", nil
}

// countPIDDirs counts the entries of a procfs root that name a process.
func countPIDDirs(root string) (int, error) {
	d, err := os.Open(root)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		if isPID(name) {
			n++
		}
	}
	return n, nil
}

func isPID(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return false
		}
	}
	return name != "" && name[0] != '0'
}

// parseLoadavgThreads returns the number of scheduling entities (threads) from the
// fourth field of /proc/loadavg, "<runnable>/<total>".
func parseLoadavgThreads(b []byte) (int, error) {
	f := bytes.Fields(b)
	if len(f) < 4 {
		return 0, fmt.Errorf("parse loadavg: want 5 fields, got %q", bytes.TrimSpace(b))
	}
	_, total, ok := bytes.Cut(f[3], []byte{'/'})
	n, err := strconv.Atoi(string(total))
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("parse loadavg: %q is not runnable/total", f[3])
	}
	return n, nil
}

// parseFileNr returns the open file handles from /proc/sys/fs/file-nr: allocated less
// free ("allocated free max"; free is always 0 on current kernels).
func parseFileNr(b []byte) (int, error) {
	f := bytes.Fields(b)
	if len(f) != 3 {
		return 0, fmt.Errorf("parse file-nr: want 3 fields, got %q", bytes.TrimSpace(b))
	}
	alloc, err1 := strconv.Atoi(string(f[0]))
	free, err2 := strconv.Atoi(string(f[1]))
	if err1 != nil || err2 != nil || alloc < free || free < 0 {
		return 0, fmt.Errorf("parse file-nr: %q is not allocated, free, max", bytes.TrimSpace(b))
	}
	return alloc - free, nil
}
