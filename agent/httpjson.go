package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"
)

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// writeError answers with {"error": msg}: a message meant for the client.
func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// methods routes a path by method and answers other methods with 405.
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m[r.Method]; ok {
		h(w, r)
		return
	}
	allowed := make([]string, 0, len(m))
	for k := range m {
		allowed = append(allowed, k)
	}
	sort.Strings(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method %s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allowed, " or "))
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
}

// readJSONBody reads a request body of at most limit bytes sent as application/json,
// answering the client itself (415, 413, 400) and returning false when it cannot.
func readJSONBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if !isJSON(r) {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type: want application/json, got %q", r.Header.Get("Content-Type"))
		return nil, false
	}
	size := r.ContentLength // sized once when known, rather than grown by doubling
	if size < 0 || size > limit {
		size = 0
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	body := buf.Bytes()
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "body: larger than %d bytes", limit)
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "body: cannot be read: %v", err)
		return nil, false
	}
	return body, true
}

// isJSON reports whether the request says its body is JSON. Requiring it keeps plain
// browser form posts (which need no CORS preflight) from writing to the agent.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
