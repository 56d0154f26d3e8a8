package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/config"
)

var testEnv = map[string]string{"POD_NAME": "checkout-7d9fb8c5d4-x2kzq", "POD_NAMESPACE": "shop", "NODE_NAME": "node-1"}

// newTestAgent builds an agent sampling this machine in host mode, without listeners. It
// answers to the Host of httptest.NewRequest, example.com.
func newTestAgent(t *testing.T, edit func(*config.Agent)) *agent {
	t.Helper()
	cfg := config.DefaultAgent()
	cfg.Mode = config.ModeHost
	cfg.AllowedHosts = config.List{"example.com"}
	if edit != nil {
		edit(&cfg)
	}
	return newAgent(cfg, hclog.NewNullLogger(), func(k string) string { return testEnv[k] })
}

// do sends one request to h, from loopback as an application in the pod does, and
// returns the status and body.
func do(t *testing.T, h http.Handler, method, path, ctype, body string, edit ...func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:41000"
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	for _, e := range edit {
		e(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b), w.Result().Header
}

// errorOf returns the "error" of a JSON error answer, failing the test if the answer
// is not one.
func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error == "" {
		t.Fatalf("answer is not a JSON error: %q (%v)", body, err)
	}
	return e.Error
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: hclog.DefaultOutput, Level: hclog.Warn, Name: t.Name()})
}

func testConfig() config.Agent {
	cfg := config.DefaultAgent()
	cfg.Mode = config.ModeHost
	return cfg
}

func nullLogger() hclog.Logger { return hclog.NewNullLogger() }
