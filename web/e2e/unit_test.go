package e2e

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/internal/browser"
	"github.com/faultline-dev/faultline/web"
)

// TestJSUnits runs the dashboard modules' unit checks (testdata/unit/unit.js) in
// Chromium: the reconnect and polling rules of the data manager with fake timers and a
// fake EventSource, and the store's handling of bad, partial and filtered data.
func TestJSUnits(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/unit/", http.StripPrefix("/unit/", http.FileServer(http.Dir("testdata/unit"))))
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", web.CSP)
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()

	b := browser.New(t, 1024, 768)
	b.Allow("cannot read properties of undefined") // the panel check logs the error it shows
	b.Navigate(srv.URL + "/unit/index.html")
	b.WaitFor(20*time.Second, `document.body.dataset.done === '1'`, `document.getElementById('out').textContent`)
	res := browser.Eval[struct {
		Total  int      `json:"total"`
		Passed []string `json:"passed"`
		Failed []string `json:"failed"`
	}](b, `window.unitResults`)
	for _, f := range res.Failed {
		t.Errorf("JS check failed: %s", f)
	}
	if res.Total < 8 || len(res.Passed) != res.Total {
		t.Errorf("%d of %d JS checks passed (%s)", len(res.Passed), res.Total, strings.Join(res.Passed, "; "))
	}
	t.Logf("%d JS checks passed", len(res.Passed))
}
