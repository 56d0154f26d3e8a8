package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdpio "github.com/chromedp/cdproto/io"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"

	"github.com/faultline-dev/faultline/internal/browser"
)

// traceCategories are the ones Chromium DevTools' Performance panel records: main-thread
// tasks with their style, layout and paint steps, what invalidated style and layout (with
// the JS stack that did it), and JS samples.
var traceCategories = []string{
	"-*",
	"devtools.timeline",
	"disabled-by-default-devtools.timeline",
	"disabled-by-default-devtools.timeline.frame",
	"disabled-by-default-devtools.timeline.stack",
	"disabled-by-default-devtools.timeline.invalidationTracking",
	"disabled-by-default-v8.cpu_profiler",
	"v8.execute",
	"blink.user_timing",
}

// recordProfile writes d of the page's activity to dir: trace.json (a Chromium trace:
// open it in DevTools' Performance panel or ui.perfetto.dev), then, for another d,
// page.cpuprofile and worker.cpuprofile (the JavaScript of the main thread and of the
// data worker, sampled every 100 µs; DevTools opens them too). The trace and the
// profiles are taken one after the other so that neither adds its overhead to the other;
// neither overlaps the measured window.
func recordProfile(tb testing.TB, br *browser.Browser, d time.Duration, dir string) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	recordTrace(tb, br, d, filepath.Join(dir, "trace.json"))
	wctx, cancel := chromedp.NewContext(br.Ctx, chromedp.WithTargetID(dataWorker(tb, br)))
	defer cancel()
	werr := make(chan error, 1)
	go func() { werr <- recordCPUProfile(wctx, d, filepath.Join(dir, "worker.cpuprofile")) }()
	if err := recordCPUProfile(br.Ctx, d, filepath.Join(dir, "page.cpuprofile")); err != nil {
		tb.Fatalf("page profile: %v", err)
	}
	if err := <-werr; err != nil {
		tb.Fatalf("worker profile: %v", err)
	}
	tb.Logf("wrote %s/page.cpuprofile and worker.cpuprofile", dir)
}

func recordTrace(tb testing.TB, br *browser.Browser, d time.Duration, path string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(br.Ctx, d+2*time.Minute)
	defer cancel()
	complete := chromedp.Events(ctx, tracing.TracingComplete)
	cfg := &tracing.TraceConfig{RecordMode: tracing.TraceConfigRecordModeRecordContinuously, IncludedCategories: traceCategories}
	if _, err := chromedp.Call(ctx, tracing.Start, tracing.StartParams{TraceConfig: cfg, TransferMode: tracing.StartTransferModeReturnAsStream}); err != nil {
		tb.Fatalf("start tracing: %v", err)
	}
	time.Sleep(d)
	if _, err := chromedp.Call(ctx, tracing.End, cdp.Empty{}); err != nil {
		tb.Fatalf("end tracing: %v", err)
	}
	var handle cdpio.StreamHandle
	for ev, err := range complete {
		if err != nil {
			tb.Fatalf("tracing did not complete: %v", err)
		}
		handle = ev.Stream
		break
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	for {
		r, err := chromedp.Call(ctx, cdpio.Read, cdpio.ReadParams{Handle: handle, Size: 1 << 20})
		if err != nil {
			tb.Fatalf("read the trace: %v", err)
		}
		if _, err := f.Write(r.Data); err != nil {
			tb.Fatal(err)
		}
		if r.EOF {
			break
		}
	}
	if _, err := chromedp.Call(ctx, cdpio.Close, cdpio.CloseParams{Handle: handle}); err != nil {
		tb.Fatalf("close the trace stream: %v", err)
	}
	tb.Logf("wrote %s", path)
}

// recordCPUProfile samples the JavaScript of the target of ctx (a page or a worker) for d
// and writes the profile to path.
func recordCPUProfile(ctx context.Context, d time.Duration, path string) error {
	if _, err := chromedp.Call(ctx, profiler.Enable, cdp.Empty{}); err != nil {
		return fmt.Errorf("enable profiler: %w", err)
	}
	if _, err := chromedp.Call(ctx, profiler.SetSamplingInterval, profiler.SetSamplingIntervalParams{Interval: 100}); err != nil {
		return fmt.Errorf("profiler interval: %w", err)
	}
	if _, err := chromedp.Call(ctx, profiler.Start, cdp.Empty{}); err != nil {
		return fmt.Errorf("start profiler: %w", err)
	}
	time.Sleep(d)
	res, err := chromedp.Call(ctx, profiler.Stop, cdp.Empty{})
	if err != nil {
		return fmt.Errorf("stop profiler: %w", err)
	}
	if _, err := chromedp.Call(ctx, profiler.Disable, cdp.Empty{}); err != nil {
		return fmt.Errorf("disable profiler: %w", err)
	}
	b, err := json.Marshal(res.Profile)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
