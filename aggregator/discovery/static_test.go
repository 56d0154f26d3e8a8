package discovery

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/config"
)

func recv(t *testing.T, ch <-chan []Target) []string {
	t.Helper()
	select {
	case ts := <-ch:
		return keys(ts)
	case <-time.After(5 * time.Second):
		t.Fatal("no target set within 5 s")
		return nil
	}
}

// Editors and ConfigMap updates replace the file by renaming a new one over it; the
// directory watch sees that, and a broken file keeps the previous targets.
func TestStaticRereadsFileOnRenameWrite(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "faultline.yaml")
	write := func(body string) {
		tmp := filepath.Join(dir, ".faultline.yaml.tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write("agents:\n  - http://127.0.0.1:9800\n")
	var reloads []string
	d := &Static{File: file, Read: config.AgentsFromFile, Debounce: 20 * time.Millisecond,
		OnReload: func(before, after int, err error) {
			s := "ok"
			if err != nil {
				s = "error"
			}
			reloads = append(reloads, s)
		}}
	ch := make(chan []Target)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { d.Run(ctx, ch); close(done) }()
	if diff := cmp.Diff([]string{"http://127.0.0.1:9800"}, recv(t, ch)); diff != "" {
		t.Fatalf("first set (-want +got):\n%s", diff)
	}
	if st := d.Status(); !st.Synced || st.Mode != "static" {
		t.Errorf("status = %+v; want synced static", st)
	}
	write("agents:\n  - http://127.0.0.1:9800/\n  - http://127.0.0.2:9800\n")
	if diff := cmp.Diff([]string{"http://127.0.0.1:9800", "http://127.0.0.2:9800"}, recv(t, ch)); diff != "" {
		t.Errorf("after the change (-want +got):\n%s", diff)
	}
	write("agents: [\"ftp://nope\"]\n")
	deadline := time.Now().Add(5 * time.Second)
	for d.Status().Error == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := d.Status(); st.Error == "" || !st.Stale {
		t.Errorf("broken file: status = %+v; want the error shown and targets kept as stale", st)
	}
	write("agents:\n  - http://127.0.0.3:9800\n")
	if diff := cmp.Diff([]string{"http://127.0.0.3:9800"}, recv(t, ch)); diff != "" {
		t.Errorf("after the fix (-want +got):\n%s", diff)
	}
	cancel()
	<-done
	if diff := cmp.Diff([]string{"ok", "error", "ok"}, reloads); diff != "" {
		t.Errorf("reloads (-want +got):\n%s", diff)
	}
}

func TestStaticFixedList(t *testing.T) {
	d := &Static{Fixed: []string{"http://a:1", "http://a:1/", "http://b:2"}}
	ch := make(chan []Target, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, ch); close(done) }()
	if diff := cmp.Diff([]string{"http://a:1", "http://b:2"}, recv(t, ch)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal(errors.New("Run did not return on cancel"))
	}
}
