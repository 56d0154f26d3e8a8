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

// mainHandler serves the frontend (/buy), the control API and /healthz on --listen.
func (d *demo) mainHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /buy", d.reporter.Middleware(http.HandlerFunc(d.buy)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "faultline demo: frontend -> checkout -> payments, inventory, shipping\n\n"+
			"GET  /buy                          place an order\n"+
			"GET  /control/dependencies         the dependencies, their failure patterns and breakers\n"+
			"PUT  /control/dependencies/{name}  change a pattern, e.g. {\"pattern\":\"outage\"}\n"+
			"GET  /control/breakers             the breakers' states and counts\n")
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
			writeError(w, http.StatusNotFound, "name: no dependency %q (have payments, inventory, shipping)", r.PathValue("name"))
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
		var out []view
		for _, name := range append([]string{"checkout"}, dependencyNames...) {
			cb := d.breakers[name]
			out = append(out, view{Name: name, State: cb.State().String(), Counts: cb.Counts()})
		}
		writeJSON(w, http.StatusOK, out)
	})
	return errorsAsJSON(mux)
}

// buy is the frontend: it places an order through the checkout service.
func (d *demo) buy(w http.ResponseWriter, r *http.Request) {
	if err := d.call(r.Context(), "checkout", http.MethodPost, d.checkoutURL+"/checkout"); err != nil {
		writeError(w, http.StatusServiceUnavailable, "checkout: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"order": "placed"})
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
		writeError(w, http.StatusNotFound, "name: no dependency %q (have payments, inventory, shipping)", r.PathValue("name"))
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
