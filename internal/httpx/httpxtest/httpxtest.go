// Package httpxtest checks that a listener built with internal/httpx refuses, on every
// route its mux declares, what the guard must refuse: a test that goes over the routes
// the mux lists covers a route added later without being edited.
package httpxtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/faultline-dev/faultline/internal/httpx"
)

// Listener is a handler built with httpx.Guard.Handler, as the binary serves it.
type Listener struct {
	Name    string
	Handler http.Handler
	Routes  []httpx.Route
	// Host is a Host the listener answers to, e.g. "127.0.0.1:9800".
	Host string
	// Token is the configured token ("" when none is).
	Token string
	// MaxBodyBytes is the configured body limit.
	MaxBodyBytes int64
}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// pathOf makes a request path of a route's pattern: wildcards become "x".
func pathOf(pattern string) string { return wildcard.ReplaceAllString(pattern, "x") }

type call struct {
	method, path, host, remote, origin, ctype, auth, body string
}

func (l Listener) do(t *testing.T, c call) (int, string) {
	t.Helper()
	r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	ctx, cancel := context.WithCancel(r.Context())
	cancel() // a stream answers what it has and returns
	r = r.WithContext(ctx)
	r.Host = c.host
	r.RemoteAddr = c.remote
	for k, v := range map[string]string{"Origin": c.origin, "Content-Type": c.ctype, "Authorization": c.auth} {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	l.Handler.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func errorOf(body string) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	return e.Error
}

// EveryRoute checks each route and method of the listener: a foreign Host is refused
// (403, naming the Host and --allowed-hosts) whatever the route; a method the route does
// not serve gets 405; a mutating route refuses a foreign Origin, a caller outside
// loopback without the token, a body that is not declared JSON and one over the limit;
// and a request that passes every check is not refused by the guard.
func EveryRoute(t *testing.T, l Listener) {
	t.Helper()
	if len(l.Routes) == 0 {
		t.Fatalf("listener %s lists no routes", l.Name)
	}
	const loopback, remote = "127.0.0.1:50000", "10.9.8.7:50000"
	for _, route := range l.Routes {
		path := pathOf(route.Pattern)
		for _, method := range route.Methods {
			t.Run(l.Name+" "+method+" "+route.Pattern, func(t *testing.T) {
				ok := call{method: method, path: path, host: l.Host, remote: loopback, ctype: "application/json", body: "{}"}
				if method == http.MethodGet || method == http.MethodHead {
					ok.ctype, ok.body = "", ""
				}
				refused := func(c call, status int, says ...string) {
					t.Helper()
					code, body := l.do(t, c)
					msg := errorOf(body)
					if code != status || msg == "" {
						t.Errorf("%+v: %d %q, want %d with a JSON error", c, code, body, status)
						return
					}
					for _, s := range says {
						if !strings.Contains(msg, s) {
							t.Errorf("%+v: error %q does not say %q", c, msg, s)
						}
					}
				}
				for _, host := range []string{"evil.example", "evil.example:80", "localhost.evil.example:9800"} {
					c := ok
					c.host = host
					refused(c, http.StatusForbidden, `Host "`+host+`"`, "--allowed-hosts=")
				}
				if !route.Mutating {
					if code, body := l.do(t, ok); code == http.StatusForbidden || code == http.StatusUnauthorized || code == http.StatusMethodNotAllowed {
						t.Errorf("%s %s from loopback by an allowed Host: %d %s", method, path, code, body)
					}
					return
				}
				c := ok
				c.origin = "http://evil.example"
				refused(c, http.StatusForbidden, "cross-origin")
				c = ok
				c.origin = "http://" + l.Host + "0" // another port is another origin
				refused(c, http.StatusForbidden, "cross-origin")
				c = ok
				c.remote = remote
				if l.Token == "" {
					refused(c, http.StatusForbidden, "allowed only from loopback")
				} else {
					refused(c, http.StatusUnauthorized, "bearer token is required")
					c.auth = "Bearer " + l.Token + "x"
					refused(c, http.StatusUnauthorized, "token")
					c.auth = "Bearer " + l.Token
					if code, body := l.do(t, c); code == http.StatusUnauthorized || code == http.StatusForbidden {
						t.Errorf("the token from outside loopback: %d %s", code, body)
					}
				}
				c = ok
				c.ctype = "application/x-www-form-urlencoded"
				refused(c, http.StatusUnsupportedMediaType, "Content-Type")
				c = ok
				c.body = `{"x":"` + strings.Repeat("a", int(l.MaxBodyBytes)) + `"}`
				refused(c, http.StatusRequestEntityTooLarge, "body: larger than")
				c = ok
				c.origin = "http://" + l.Host // same origin
				if code, body := l.do(t, c); code == http.StatusForbidden || code == http.StatusUnauthorized || code == http.StatusUnsupportedMediaType || code == http.StatusRequestEntityTooLarge {
					t.Errorf("a same-origin JSON request from loopback: %d %s", code, body)
				}
			})
		}
		t.Run(l.Name+" PATCH "+route.Pattern, func(t *testing.T) {
			code, body := l.do(t, call{method: "PATCH", path: path, host: l.Host, remote: loopback, ctype: "application/json", body: "{}"})
			if code != http.StatusMethodNotAllowed || !strings.Contains(errorOf(body), "allowed: "+strings.Join(route.Methods, ", ")) {
				t.Errorf("PATCH %s: %d %s, want 405 naming %v", path, code, body, route.Methods)
			}
		})
	}
}
