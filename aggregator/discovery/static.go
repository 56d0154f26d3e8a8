package discovery

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
)

// Static discovers agents from a fixed list of URLs and, unless the list was pinned by a
// flag or environment variable, from the agents key of a config file, re-read whenever
// the file changes. The directory is watched rather than the file, so that editors and
// ConfigMap updates that replace the file by renaming are seen.
type Static struct {
	// Fixed are URLs that are always targets (--agents, or the file's agents at start
	// when File is empty).
	Fixed []string
	// File is the config file whose agents key is re-read on change; empty: none.
	File string
	// Read returns the agents key of File (config.AgentsFromFile).
	Read func(path string) ([]string, error)
	// OnReload is called after the file was re-read with the old and new target counts
	// (for the optimization event), or with the error that kept the old targets.
	OnReload func(before, after int, err error)
	// Debounce groups a burst of file events into one re-read (default 100 ms).
	Debounce time.Duration
	Logger   hclog.Logger

	mu     sync.Mutex
	status Status
}

var _ Discoverer = (*Static)(nil)

// Status reports whether the targets were sent and whether the file could be read.
func (s *Static) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Mode = "static"
	return st
}

func (s *Static) setStatus(synced bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if s.status.Synced != synced || s.status.Error != msg || s.status.Since.IsZero() {
		s.status.Since = time.Now()
	}
	s.status.Synced = synced
	s.status.Error = msg
	s.status.Stale = err != nil
}

// Targets builds the target set from URLs; duplicates and trailing slashes are folded.
func Targets(urls []string) []Target {
	seen := map[string]bool{}
	out := []Target{}
	for _, u := range urls {
		u = strings.TrimSuffix(strings.TrimSpace(u), "/")
		if u == "" || seen[u] {
			continue
		}
		seen[u] = true
		out = append(out, Target{Key: u, URL: u})
	}
	return out
}

func (s *Static) current() ([]string, error) {
	urls := slices.Clone(s.Fixed)
	if s.File == "" || s.Read == nil {
		return urls, nil
	}
	fromFile, err := s.Read(s.File)
	return append(urls, fromFile...), err
}

// Run sends the targets, then sends them again after each change of the file, until ctx
// is done.
func (s *Static) Run(ctx context.Context, out chan<- []Target) {
	log := s.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	// Watch before the first read, so that a change made while the first set is being
	// sent is not missed.
	w, watchErr := s.watch()
	if watchErr != nil {
		log.Error("watch config directory; the file will not be re-read", "file", s.File, "error", watchErr)
	}
	if w != nil {
		defer w.Close()
	}
	urls, err := s.current()
	if err != nil {
		log.Error("read agents from config file", "file", s.File, "error", err)
	}
	last := Targets(urls)
	s.setStatus(true, errors.Join(err, watchErr))
	if !send(ctx, out, last) {
		return
	}
	if w == nil {
		<-ctx.Done()
		return
	}
	debounce := s.Debounce
	if debounce <= 0 {
		debounce = 100 * time.Millisecond
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	base := filepath.Base(s.File)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			// A ConfigMap volume swaps a "..data" symlink; anything else in the
			// directory is someone else's file.
			if name := filepath.Base(ev.Name); name == base || strings.HasPrefix(name, "..") {
				timer.Reset(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			log.Warn("config watch error", "error", err)
		case <-timer.C:
			urls, err := s.current()
			if err != nil {
				// Keep the targets we have: a half-written or broken file must not
				// disconnect every agent.
				log.Error("re-read agents from config file; keeping the previous list", "file", s.File, "error", err)
				s.setStatus(true, err)
				if s.OnReload != nil {
					s.OnReload(len(last), len(last), err)
				}
				continue
			}
			s.setStatus(true, nil)
			next := Targets(urls)
			if slices.Equal(keys(next), keys(last)) {
				continue
			}
			log.Info("agents changed in config file", "before", len(last), "after", len(next))
			if s.OnReload != nil {
				s.OnReload(len(last), len(next), nil)
			}
			last = next
			if !send(ctx, out, last) {
				return
			}
		}
	}
}

// watch watches the directory of File; nil without a file to re-read.
func (s *Static) watch() (*fsnotify.Watcher, error) {
	if s.File == "" || s.Read == nil {
		return nil, nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(filepath.Dir(s.File)); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func keys(ts []Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Key
	}
	return out
}

func send(ctx context.Context, out chan<- []Target, ts []Target) bool {
	select {
	case out <- ts:
		return true
	case <-ctx.Done():
		return false
	}
}
