// Package httpx is the one HTTP front of the agent and the aggregator: every listener of
// both is built from it, so that each refuses the same things in the same words.
//
//   - Host allow-list (every request): a browser can be made to send requests to
//     127.0.0.1:3001 or a port-forward by any page, and a page whose name resolves to
//     127.0.0.1 (DNS rebinding) even sends a same-origin Origin. A request is answered only
//     when its Host is loopback (localhost, 127.0.0.0/8, ::1), an IP address (a rebinding
//     page's Host is always its own name, so an address Host is one a client chose to
//     reach this server by: the pod IP of a probe, a node port, a load balancer), this
//     machine's host name, or a name given with --allowed-hosts; "*" turns the check off.
//   - Header limit: a request whose headers exceed --max-header-bytes is refused.
//   - Methods: a route answers a method it does not serve with 405 and Allow.
//   - Mutations (the routes marked so): a same-origin Origin if the browser sends one
//     (scheme, host and port compared with the request's own), loopback (which includes
//     kubectl port-forward) or the bearer token, a JSON Content-Type (a cross-site form
//     cannot send one without a CORS preflight), and a body within --max-body-bytes.
//
// Errors are JSON {"error": "..."} meant for the client; every refusal is counted by
// listener and reason.
package httpx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Defaults of the limits.
const (
	DefaultMaxBodyBytes   = 64 << 10
	DefaultMaxHeaderBytes = 16 << 10
)

// Options configure a Guard.
type Options struct {
	// Server names the server in messages and in WWW-Authenticate ("faultline-agent").
	Server string
	// AllowedHosts are the names besides loopback and IP addresses that a request's Host
	// may be (flag --allowed-hosts): a name, or ".example.com" for the name and its
	// subdomains; "*" allows any Host.
	AllowedHosts []string
	// Token, when set, lets a caller from outside loopback use mutating routes.
	Token          string
	MaxBodyBytes   int64 // default DefaultMaxBodyBytes
	MaxHeaderBytes int   // default DefaultMaxHeaderBytes
	Logger         hclog.Logger
}

// Reasons a request is refused, as Refused counts them.
const (
	RefusedHost     = "host"
	RefusedHeaders  = "headers_too_large"
	RefusedOrigin   = "origin"
	RefusedAuth     = "auth"
	RefusedType     = "content_type"
	RefusedBodySize = "body_too_large"
)

// Guard applies the checks to a listener's routes.
type Guard struct {
	opts     Options
	anyHost  bool
	names    map[string]bool // allowed names, lower case, without a trailing dot
	suffixes []string        // ".example.com" entries
	token    [sha256.Size]byte

	mu      sync.Mutex
	refused map[[2]string]uint64 // by listener and reason
}

// New returns a guard; it logs a warning when the Host check is off.
func New(opts Options) *Guard {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Server == "" {
		opts.Server = "faultline"
	}
	g := &Guard{opts: opts, names: map[string]bool{"localhost": true}, refused: map[[2]string]uint64{}}
	if h, err := os.Hostname(); err == nil && h != "" {
		g.names[normalHost(h)] = true
	}
	for _, h := range opts.AllowedHosts {
		h = normalHost(strings.TrimSpace(h))
		switch {
		case h == "*":
			g.anyHost = true
		case strings.HasPrefix(h, "."):
			g.suffixes = append(g.suffixes, h)
			g.names[h[1:]] = true
		case h != "":
			g.names[h] = true
		}
	}
	if g.anyHost {
		opts.Logger.Warn("the Host check is off (--allowed-hosts=*): a web page the user opens can read this server through DNS rebinding")
	}
	if opts.Token != "" {
		g.token = sha256.Sum256([]byte(opts.Token))
	}
	return g
}

// CheckHostList reports what is wrong with an --allowed-hosts entry.
func CheckHostList(hosts []string) error {
	var errs []error
	for _, h := range hosts {
		if h == "*" {
			continue
		}
		name := strings.TrimPrefix(h, ".")
		if name == "" || strings.ContainsAny(name, "/:@ ?#*") {
			errs = append(errs, fmt.Errorf("allowed-hosts: %q is not a host name (give names without scheme or port, \".example.com\" for a domain and its subdomains, or * for any)", h))
		}
	}
	return errors.Join(errs...)
}

func normalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// Refused counts refused requests by listener and reason.
func (g *Guard) Refused() map[[2]string]uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[[2]string]uint64, len(g.refused))
	for k, v := range g.refused {
		out[k] = v
	}
	return out
}

func (g *Guard) refuse(w http.ResponseWriter, listener, reason string, status int, format string, args ...any) {
	g.mu.Lock()
	g.refused[[2]string{listener, reason}]++
	g.mu.Unlock()
	WriteError(w, status, format, args...)
}

// allowedHost reports whether a request's Host names this server.
func (g *Guard) allowedHost(hostport string) bool {
	if g.anyHost {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = normalHost(strings.Trim(host, "[]"))
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if g.names[host] {
		return true
	}
	for _, s := range g.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// headerBytes is the size of a request's line and headers as they came.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len(r.Host) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// Handler applies the Host and header checks to every request of a listener and routes
// it with mux. The handler lists mux's routes too, for tests that go over every route.
func (g *Guard) Handler(listener string, mux *Mux) *Front {
	mux.listener = listener
	return &Front{g: g, listener: listener, mux: mux}
}

// Front is a listener's handler: the guard's checks in front of its routes.
type Front struct {
	g        *Guard
	listener string
	mux      *Mux
}

// Routes lists the routes served.
func (f *Front) Routes() []Route { return f.mux.Routes() }

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := f.g
	if !g.allowedHost(r.Host) {
		g.refuse(w, f.listener, RefusedHost, http.StatusForbidden,
			"Host %q is not a name of this server, so the request may come from a web page through DNS rebinding; "+
				"if %s is reached by this name, start it with --allowed-hosts=%s", r.Host, g.opts.Server, hostOnly(r.Host))
		return
	}
	if n := headerBytes(r); n > g.opts.MaxHeaderBytes {
		g.refuse(w, f.listener, RefusedHeaders, http.StatusRequestHeaderFieldsTooLarge,
			"headers: %d bytes, more than the %d allowed (--max-header-bytes)", n, g.opts.MaxHeaderBytes)
		return
	}
	f.mux.ServeHTTP(w, r)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// mutation applies the checks of a mutating route of m before next: same-origin Origin,
// loopback or token, JSON content type, body within the limit. next finds the body,
// read whole, with Body.
func (g *Guard) mutation(m *Mux, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			if own := ownOrigin(r); !sameOrigin(origin, own) {
				g.refuse(w, m.listener, RefusedOrigin, http.StatusForbidden, "cross-origin request from %q refused: this server is %s", origin, own)
				return
			}
		}
		if status, msg := g.authorize(r); status != 0 {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+g.opts.Server+`"`)
			}
			g.refuse(w, m.listener, RefusedAuth, status, "%s", msg)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			g.refuse(w, m.listener, RefusedType, http.StatusUnsupportedMediaType, "Content-Type: want application/json, got %q", r.Header.Get("Content-Type"))
			return
		}
		size := r.ContentLength // sized once when known, rather than grown by doubling
		if size < 0 || size > g.opts.MaxBodyBytes {
			size = 0
		}
		buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
		_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, g.opts.MaxBodyBytes))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			g.refuse(w, m.listener, RefusedBodySize, http.StatusRequestEntityTooLarge, "body: larger than %d bytes (--max-body-bytes)", g.opts.MaxBodyBytes)
			return
		case err != nil:
			WriteError(w, http.StatusBadRequest, "body: cannot be read: %v", err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), bodyKey{}, buf.Bytes())))
	}
}

type bodyKey struct{}

// Body is the body of a request to a mutating route, read whole.
func Body(r *http.Request) []byte {
	b, _ := r.Context().Value(bodyKey{}).([]byte)
	return b
}

// authorize returns 0 when the caller may mutate, else the status and message. The token
// is compared by its SHA-256, in constant time: neither its bytes nor its length leak.
func (g *Guard) authorize(r *http.Request) (int, string) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		if g.opts.Token == "" {
			return http.StatusUnauthorized, "Authorization: no token is configured (--token); send none, from loopback"
		}
		token, ok := strings.CutPrefix(auth, "Bearer ")
		given := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(given[:], g.token[:]) != 1 {
			return http.StatusUnauthorized, "Authorization: the bearer token is not " + g.opts.Server + "'s token (--token)"
		}
		return 0, ""
	}
	if IsLoopback(r.RemoteAddr) {
		return 0, ""
	}
	if g.opts.Token != "" {
		return http.StatusUnauthorized, "Authorization: a bearer token is required from outside loopback"
	}
	return http.StatusForbidden, "allowed only from loopback: no token is configured (--token); kubectl port-forward counts as loopback"
}

// IsLoopback reports whether a remote address is a loopback address.
func IsLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// ownOrigin is the origin a browser gives pages of this server, as reached by r:
// scheme://host:port. A TLS-terminating proxy on loopback may say https.
func ownOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || (r.Header.Get("X-Forwarded-Proto") == "https" && IsLoopback(r.RemoteAddr)) {
		scheme = "https"
	}
	return scheme + "://" + withPort(scheme, r.Host)
}

// sameOrigin compares an Origin with the server's own origin as scheme, host and port
// (a default port written or not).
func sameOrigin(origin, own string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false // includes "null"
	}
	scheme := strings.ToLower(u.Scheme)
	return strings.EqualFold(scheme+"://"+withPort(scheme, u.Host), own)
}

func withPort(scheme, hostport string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.ToLower(hostport)
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return strings.ToLower(net.JoinHostPort(strings.Trim(hostport, "[]"), port))
}

// WriteJSON answers with v as JSON; a figure JSON cannot hold is left out rather than
// failing the answer (wire.Marshal).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, _, err := wire.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// WriteError answers with {"error": message}: a message meant for the client.
func WriteError(w http.ResponseWriter, status int, format string, args ...any) {
	WriteJSON(w, status, struct {
		Error string `json:"error"`
	}{fmt.Sprintf(format, args...)})
}

// ObjectOrEmpty reports what is wrong with a body that must be a JSON object or empty;
// an object naming a member twice is refused, as every decoding of faultline refuses it.
func ObjectOrEmpty(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return errors.New("body: must be a JSON object or empty")
	}
	if err := wire.CheckNames(body); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

// Route is one path pattern and the methods it serves.
type Route struct {
	Pattern  string
	Methods  []string // sorted; GET implies HEAD
	Mutating bool
}

// Mux routes by path, then by method, and answers unknown paths with a JSON 404.
type Mux struct {
	mux      *http.ServeMux
	routes   []Route
	root     http.Handler // what no route matches
	listener string       // set by Guard.Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux {
	m := &Mux{mux: http.NewServeMux(), root: http.HandlerFunc(NotFound)}
	m.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.root.ServeHTTP(w, r) }))
	return m
}

// NotFound answers with a JSON 404 naming the path.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
}

// Handle serves pattern (a ServeMux pattern without method) with a handler per method.
func (m *Mux) Handle(pattern string, methods map[string]http.HandlerFunc) {
	m.add(pattern, methods, false)
}

// Get serves pattern with h for GET (and HEAD).
func (m *Mux) Get(pattern string, h http.HandlerFunc) {
	m.Handle(pattern, map[string]http.HandlerFunc{http.MethodGet: h})
}

// Mutate serves pattern with mutating handlers, each behind the guard's checks of
// mutations; a handler finds the body with Body.
func (m *Mux) Mutate(g *Guard, pattern string, methods map[string]http.HandlerFunc) {
	guarded := make(map[string]http.HandlerFunc, len(methods))
	for k, h := range methods {
		guarded[k] = g.mutation(m, h)
	}
	m.add(pattern, guarded, true)
}

// Fallback serves what no route matches under prefix, a path ending in "/" (default: a
// JSON 404 everywhere).
func (m *Mux) Fallback(prefix string, h http.Handler) {
	if prefix == "/" {
		m.root = h
		return
	}
	m.mux.Handle(prefix, h)
}

func (m *Mux) add(pattern string, methods map[string]http.HandlerFunc, mutating bool) {
	allowed := make([]string, 0, len(methods)+1)
	for k := range methods {
		allowed = append(allowed, k)
		if k == http.MethodGet {
			allowed = append(allowed, http.MethodHead)
		}
	}
	sort.Strings(allowed)
	allow := strings.Join(allowed, ", ")
	m.routes = append(m.routes, Route{Pattern: pattern, Methods: allowed, Mutating: mutating})
	m.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		h, ok := methods[method]
		if !ok {
			w.Header().Set("Allow", allow)
			WriteError(w, http.StatusMethodNotAllowed, "method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow)
			return
		}
		h(w, r)
	}))
}

// Routes lists the routes, in the order they were added.
func (m *Mux) Routes() []Route { return slices.Clone(m.routes) }

func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

// ServerOptions are an http.Server's timeouts; zero values take the defaults.
type ServerOptions struct {
	ReadHeaderTimeout time.Duration // default 5 s
	ReadTimeout       time.Duration // default 15 s
	WriteTimeout      time.Duration // default 30 s; stream routes clear their own deadline
	IdleTimeout       time.Duration // default 2 min
	ErrorLog          hclog.Logger
}

// Server returns a server for h with timeouts set and the guard's header limit (which
// the server enforces as a backstop, 4 KiB above it; the guard answers first in JSON and
// counts it).
func (g *Guard) Server(h http.Handler, o ServerOptions) *http.Server {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, 5*time.Second)
	def(&o.ReadTimeout, 15*time.Second)
	def(&o.WriteTimeout, 30*time.Second)
	def(&o.IdleTimeout, 2*time.Minute)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    g.opts.MaxHeaderBytes,
	}
	if o.ErrorLog != nil {
		srv.ErrorLog = o.ErrorLog.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	}
	return srv
}

// Limits returns the body and header limits in effect.
func (g *Guard) Limits() (body int64, header int) { return g.opts.MaxBodyBytes, g.opts.MaxHeaderBytes }
