// Package browser drives a real headless Chromium (Debian's chromium package) with
// chromedp for the dashboard's tests: one tab whose uncaught exceptions, console errors
// and Content-Security-Policy violations fail the test, and helpers that wait on a
// condition in the page instead of sleeping.
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/faultline-dev/faultline/internal/testbin"
)

// Browser is one headless Chromium with one tab. Uncaught exceptions, console errors and
// Content-Security-Policy violations in the page are collected and fail the test: the
// dashboard must run clean.
type Browser struct {
	t testing.TB
	// Ctx is the tab's context, for chromedp calls of a test's own.
	Ctx context.Context

	mu       sync.Mutex
	problems []string
	allowed  []string // substrings of problems a test expects (e.g. a refused connection)
}

// New starts Chromium with a fresh profile and a width x height window.
func New(t testing.TB, width, height int) *Browser {
	t.Helper()
	path := testbin.Tool(t, "chromium", "install it with: apt-get install -y chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &Browser{t: t, Ctx: ctx}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	entries := chromedp.Events(ctx, cdplog.EntryAdded)
	consoles := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the log domain: %v", err)
	}
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			b.problem("uncaught exception: " + text)
		}
	}()
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if ev.Entry.Level == cdplog.EntryLevelError {
				b.problem(fmt.Sprintf("console %s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}()
	go func() {
		for ev, err := range consoles {
			if err != nil {
				return
			}
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				b.problem("console.error: " + strings.Join(parts, " "))
			}
		}
	}()
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("page problem: %s", p)
		}
	})
	return b
}

// T is the test the browser belongs to.
func (b *Browser) T() testing.TB { return b.t }

func (b *Browser) problem(p string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.allowed {
		if strings.Contains(p, a) {
			return
		}
	}
	b.problems = append(b.problems, p)
}

// Allow stops problems containing any of subs from failing the test: a test that stops
// the aggregator expects the browser to log refused connections.
func (b *Browser) Allow(subs ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allowed = append(b.allowed, subs...)
}

func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.Do(chromedp.Navigate(url))
}

// Eval runs a JavaScript expression and decodes its JSON value into T.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAsValue))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// WaitFor polls a JavaScript condition until it is true; at the deadline it fails with
// the value of the diagnostic expression, which says what the page showed instead.
func (b *Browser) WaitFor(timeout time.Duration, cond, diag string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")", chromedp.EvalAsValue))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			got := ""
			if diag != "" {
				got = Eval[string](b, "String("+diag+")")
			}
			b.t.Fatalf("after %v, still not %s (err %v); page shows: %s", timeout, cond, err, got)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (b *Browser) Click(sel string) {
	b.t.Helper()
	b.Do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

func (b *Browser) Text(sel string) string {
	b.t.Helper()
	return Eval[string](b, fmt.Sprintf("(document.querySelector(%q)||{}).textContent||''", sel))
}

// Screenshot captures the viewport as PNG.
func (b *Browser) Screenshot() []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 60*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	return buf
}

// JSONString quotes s for use inside a JavaScript expression.
func JSONString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
