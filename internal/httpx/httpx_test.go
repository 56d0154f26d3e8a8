package httpx

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAllowedHost(t *testing.T) {
	g := New(Options{AllowedHosts: []string{"faultline", "faultline.obs.svc.cluster.local.", ".dash.example.com"}})
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:3001": true, "localhost.:3001": true,
		"127.0.0.1:3001": true, "127.9.9.9": true, "[::1]:9800": true, "::1": true,
		"10.244.1.7:9800": true, "[fd00::7]:8081": true, "192.0.2.10": true, // addresses: probes, node ports, load balancers
		"faultline:3001": true, "faultline.obs.svc.cluster.local": true, "FAULTLINE.obs.svc.cluster.local.:80": true,
		"dash.example.com": true, "eu.dash.example.com:443": true,
		"evil.example": false, "evil.example:3001": false, "localhost.evil.example": false, "faultline.evil": false,
		"notdash.example.com": false, "127.0.0.1.evil.example": false, "": false,
	} {
		if got := g.allowedHost(host); got != want {
			t.Errorf("allowedHost(%q) = %v, want %v", host, got, want)
		}
	}
	if !New(Options{AllowedHosts: []string{"*"}}).allowedHost("evil.example") {
		t.Error(`"*" does not allow any Host`)
	}
	if err := CheckHostList([]string{"ok", ".ok.example", "*", "http://x", "x:80", ""}); err == nil || strings.Count(err.Error(), "allowed-hosts") != 3 {
		t.Errorf("CheckHostList = %v, want three problems", err)
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tt := range []struct {
		origin, own string
		want        bool
	}{
		{"http://localhost:3001", "http://localhost:3001", true},
		{"http://LOCALHOST:3001", "http://localhost:3001", true},
		{"http://localhost", "http://localhost:80", true},
		{"https://dash.example.com", "https://dash.example.com:443", true},
		{"http://localhost:3002", "http://localhost:3001", false},
		{"https://localhost:3001", "http://localhost:3001", false},
		{"http://evil.example", "http://localhost:80", false},
		{"null", "http://localhost:80", false},
		{"http://localhost:3001/path", "http://localhost:3001", false},
		{"http://user@localhost:3001", "http://localhost:3001", false},
	} {
		if got := sameOrigin(tt.origin, tt.own); got != tt.want {
			t.Errorf("sameOrigin(%q, %q) = %v, want %v", tt.origin, tt.own, got, tt.want)
		}
	}
}

// The Host check covers what no route matches too (the dashboard's files, unknown paths),
// headers over the limit are refused in JSON, and each refusal is counted.
func TestFrontRefusesAndCounts(t *testing.T) {
	g := New(Options{MaxHeaderBytes: 4096})
	mux := NewMux()
	mux.Handle("/ok", map[string]http.HandlerFunc{http.MethodGet: func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, "ok") }})
	mux.Fallback("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("page")) }))
	h := g.Handler("api", mux)
	do := func(host, path string, hdr map[string]string) (int, string) {
		r := httptest.NewRequest("GET", path, nil)
		r.Host = host
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	for _, path := range []string{"/ok", "/", "/js/app.js", "/nothing"} {
		if code, body := do("evil.example:3001", path, nil); code != 403 || !strings.Contains(body, "--allowed-hosts=evil.example") {
			t.Errorf("GET %s with a foreign Host: %d %s", path, code, body)
		}
	}
	if code, _ := do("localhost:3001", "/js/app.js", nil); code != 200 {
		t.Errorf("the fallback by an allowed Host: %d", code)
	}
	if code, body := do("localhost:3001", "/ok", map[string]string{"X-Big": strings.Repeat("b", 5000)}); code != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(body, "--max-header-bytes") {
		t.Errorf("headers over the limit: %d %s", code, body)
	}
	want := map[[2]string]uint64{{"api", RefusedHost}: 4, {"api", RefusedHeaders}: 1}
	if diff := cmp.Diff(want, g.Refused()); diff != "" {
		t.Errorf("refusals counted (-want +got):\n%s", diff)
	}
}

// A wrong token is refused whatever its length, and the right one accepted; a token is
// never accepted when none is configured.
func TestToken(t *testing.T) {
	g := New(Options{Token: "s3cret-token"})
	for auth, want := range map[string]int{
		"Bearer s3cret-token": 0, "Bearer s3cret-toke": 401, "Bearer s3cret-tokenX": 401, "Bearer ": 401,
		"Basic s3cret-token": 401, "bearer s3cret-token": 401,
	} {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = "10.0.0.1:1"
		r.Header.Set("Authorization", auth)
		if got, _ := g.authorize(r); got != want {
			t.Errorf("Authorization %q: %d, want %d", auth, got, want)
		}
	}
	r := httptest.NewRequest("POST", "/", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("Authorization", "Bearer anything")
	if got, msg := New(Options{}).authorize(r); got != 401 || !strings.Contains(msg, "no token is configured") {
		t.Errorf("a token with none configured: %d %s", got, msg)
	}
}
