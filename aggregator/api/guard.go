package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// guard admits a mutating request only when it is from loopback (which includes
// kubectl port-forward) or carries the configured bearer token, has a JSON content type
// (a cross-site form cannot send one without a CORS preflight), comes from the same
// origin if the browser says where it comes from, and has a small JSON body or none.
func (s *server) guard(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r) {
			writeError(w, http.StatusForbidden, "cross-origin request refused: Origin "+origin+" is not this server")
			return
		}
		if status, msg := s.authorize(r); status != 0 {
			writeError(w, status, msg)
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "Content-Type: must be application/json")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, http.StatusRequestEntityTooLarge, "body: larger than 64 KiB")
				return
			}
			writeError(w, http.StatusBadRequest, "body: could not be read")
			return
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(body, &obj); err != nil {
				writeError(w, http.StatusBadRequest, "body: must be a JSON object or empty")
				return
			}
		}
		next(w, r)
	}
}

// authorize returns 0 when the caller may mutate, else the status and message.
func (s *server) authorize(r *http.Request) (int, string) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || s.Token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.Token)) != 1 {
			return http.StatusUnauthorized, "Authorization: bearer token not accepted"
		}
		return 0, ""
	}
	if isLoopback(r.RemoteAddr) {
		return 0, ""
	}
	if s.Token == "" {
		return http.StatusForbidden, "mutating requests are accepted only from loopback (for example through kubectl port-forward) unless a token is configured"
	}
	return http.StatusUnauthorized, "Authorization: bearer token required from outside loopback"
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// sameOrigin reports whether the Origin header names the server the request was sent to.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // includes "null"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if fwd := r.Header.Get("X-Forwarded-Proto"); fwd == "https" && isLoopback(r.RemoteAddr) {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}
