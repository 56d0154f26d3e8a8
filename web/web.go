// Package web is the browser dashboard, embedded into the aggregator and served at /.
// Plain ES modules, no build step, no CDN: it works in an air-gapped cluster.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/faultline-dev/faultline/internal/httpx"
)

//go:embed static
var files embed.FS

// CSP forbids inline script and any origin but our own.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// Handler serves the dashboard with its security headers. It serves files only: a
// directory other than the root (/js/, /css/) is not listed but answered with 404.
func Handler() http.Handler {
	sub, _ := fs.Sub(files, "static")
	fileServer := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/"); name != "" {
			if fi, err := fs.Stat(sub, name); err == nil && fi.IsDir() {
				httpx.NotFound(w, r)
				return
			}
		}
		fileServer.ServeHTTP(w, r)
	})
}
