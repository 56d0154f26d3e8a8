// Package e2e tests the dashboard in a real headless Chromium driven with chromedp
// (internal/browser), against real faultline processes.
package e2e

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"path/filepath"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/faultline-dev/faultline/internal/browser"
	"github.com/faultline-dev/faultline/internal/testbin"
)

var updateScreenshots = flag.Bool("screenshots", false, "write the screenshots taken by the tests to docs/screenshots")

// screenshot captures the viewport as PNG, checks its size, and writes it to
// docs/screenshots/<name> when the test runs with -screenshots.
func screenshot(b *browser.Browser, name string, width, height int) {
	t := b.T()
	t.Helper()
	buf := b.Screenshot()
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if got := img.Bounds().Size(); got.X != width || got.Y != height {
		t.Errorf("screenshot %s is %dx%d, want %dx%d", name, got.X, got.Y, width, height)
	}
	if !*updateScreenshots {
		return
	}
	path := filepath.Join(testbin.RepoRoot(), "docs", "screenshots", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// keyPress sends one named key to the focused element.
func keyPress(name string) chromedp.Action[chromedp.Void] {
	keys := map[string]string{"Tab": kb.Tab, "Enter": kb.Enter, "Escape": kb.Escape,
		"ArrowLeft": kb.ArrowLeft, "ArrowRight": kb.ArrowRight, "ArrowUp": kb.ArrowUp, "ArrowDown": kb.ArrowDown,
		"Home": kb.Home, "End": kb.End}
	k, ok := keys[name]
	if !ok {
		k = name
	}
	return chromedp.KeyEvent(k)
}
