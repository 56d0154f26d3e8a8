package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/sony/gobreaker/v2"
)

// maxControlBody bounds a control request.
const maxControlBody = 4 << 10

// mainHandler serves, on --listen, the routes of the process's main service (the
// frontend for role all), the control API, the usage text and /healthz. The main
// service's requests are the throughput the process reports to its agent.
func (d *demo) mainHandler() http.Handler {
	mux := http.NewServeMux()
	d.serviceRoutes(mux, d.main, d.reporter.Middleware)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		d.usage(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /control/dependencies", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.views())
	})
	mux.HandleFunc("GET /control/dependencies/{name}", func(w http.ResponseWriter, r *http.Request) {
		dep, ok := d.deps[r.PathValue("name")]
		if !ok {
			d.noDependency(w, r.PathValue("name"))
			return
		}
		writeJSON(w, http.StatusOK, d.view(dep))
	})
	mux.HandleFunc("PUT /control/dependencies/{name}", d.putPattern)
	mux.HandleFunc("GET /control/breakers", func(w http.ResponseWriter, r *http.Request) {
		type view struct {
			Name   string           `json:"name"`
			State  string           `json:"state"`
			Counts gobreaker.Counts `json:"window_counts"`
		}
		out := []view{}
		for _, name := range serviceNames {
			if cb, ok := d.breakers[name]; ok {
				out = append(out, view{Name: name, State: cb.State().String(), Counts: cb.Counts()})
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	return errorsAsJSON(mux)
}

// usage is the text of GET /: what this process serves and where its calls go.
func (d *demo) usage(w io.Writer) {
	line := func(method, path, what string) { fmt.Fprintf(w, "%-4s %-32s %s\n", method, path, what) }
	if d.cfg.Role == RoleAll {
		fmt.Fprintf(w, "faultline demo (--role=all): frontend -> checkout -> payments, inventory, shipping, in one process\n\n")
	} else {
		fmt.Fprintf(w, "faultline demo (--role=%s): ", d.main)
		if callees := calls[d.main]; len(callees) > 0 {
			var to []string
			for _, name := range callees {
				to = append(to, name+" at "+d.peers[name])
			}
			fmt.Fprintf(w, "%s -> %s\n\n", d.main, strings.Join(to, ", "))
		} else {
			fmt.Fprintf(w, "the %s dependency, called by %s\n\n", d.main, callerOf(d.main))
		}
	}
	switch d.main {
	case "frontend":
		line("GET", "/buy", "place an order")
	case "checkout":
		line("POST", "/checkout", "place an order: reserve the stock, charge the card, quote shipping")
	default:
		route := dependencyRoutes[d.main]
		line(route.method, route.path, route.what+", failing as the pattern says")
	}
	switch len(d.deps) {
	case 0:
	case 1:
		line("GET", "/control/dependencies/"+d.main, "its failure pattern and counts")
		line("PUT", "/control/dependencies/"+d.main, `change the pattern, e.g. {"pattern":"outage"}`)
	default:
		line("GET", "/control/dependencies", "the dependencies, their failure patterns and breakers")
		line("PUT", "/control/dependencies/{name}", `change a pattern, e.g. {"pattern":"outage"}`)
	}
	if len(d.breakers) > 0 {
		line("GET", "/control/breakers", "the breakers' states and counts")
	}
	line("GET", "/healthz", "liveness and readiness")
	if d.cfg.Role == RoleAll {
		fmt.Fprintf(w, "\nOne service per process: --role=%s with --<service>-url for the services it calls.\n", strings.Join(serviceNames, "|"))
	}
}

// noDependency answers a control request for a dependency this process does not serve.
func (d *demo) noDependency(w http.ResponseWriter, name string) {
	var have []string
	for _, n := range dependencyNames {
		if _, ok := d.deps[n]; ok {
			have = append(have, n)
		}
	}
	if len(have) == 0 {
		writeError(w, http.StatusNotFound, "name: no dependency %q here (--role=%s serves none; ask the dependency's own service)", name, d.cfg.Role)
		return
	}
	writeError(w, http.StatusNotFound, "name: no dependency %q (have %s)", name, strings.Join(have, ", "))
}

// putPattern is PUT /control/dependencies/{name}: a new failure pattern, in the JSON
// of Pattern. Only callers on this machine (or through kubectl port-forward) may change
// the workload, and only with a JSON body.
func (d *demo) putPattern(w http.ResponseWriter, r *http.Request) {
	if !fromLoopback(r) {
		writeError(w, http.StatusForbidden, "the control API accepts changes from loopback only")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "content type: want application/json")
		return
	}
	dep, ok := d.deps[r.PathValue("name")]
	if !ok {
		d.noDependency(w, r.PathValue("name"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	if err != nil || len(body) > maxControlBody {
		writeError(w, http.StatusRequestEntityTooLarge, "body: larger than %d bytes", maxControlBody)
		return
	}
	var p Pattern
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if field, ok := strings.CutPrefix(msg, "unknown field "); ok {
			msg = strings.Trim(field, `"`) + ": unknown field"
		}
		writeError(w, http.StatusBadRequest, "body: %s", msg)
		return
	}
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	dep.setPattern(p)
	d.log.Info("dependency pattern changed", "dependency", dep.name, "pattern", p.String())
	writeJSON(w, http.StatusOK, d.view(dep))
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// errorsAsJSON turns the mux's plain-text 404 and 405 answers into the JSON error every
// other answer uses.
func errorsAsJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&jsonErrorWriter{ResponseWriter: w, r: r}, r)
	})
}

type jsonErrorWriter struct {
	http.ResponseWriter
	r       *http.Request
	swallow bool
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) &&
		!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		msg := fmt.Sprintf("no route %s %s", w.r.Method, w.r.URL.Path)
		if code == http.StatusMethodNotAllowed {
			msg = "method not allowed; allowed: " + w.Header().Get("Allow")
		}
		w.swallow = true
		w.Header().Del("X-Content-Type-Options")
		w.Header().Set("Content-Type", "application/json")
		w.ResponseWriter.WriteHeader(code)
		_ = json.NewEncoder(w.ResponseWriter).Encode(map[string]string{"error": msg})
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
