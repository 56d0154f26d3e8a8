package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestRun(t *testing.T) {
	var readyCalls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		// Not ready on the first two calls, as right after an install.
		if readyCalls.Add(1) <= 2 {
			http.Error(w, "discovery not synced", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"v":1}`))
	})
	mux.HandleFunc("/broken-json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write([]byte(`{"v":`))
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"retries until ready, then checks the next URL", []string{"--interval=10ms", srv.URL + "/readyz", srv.URL + "/status"}, 0, "ok   " + srv.URL + "/status"},
		{"never ready fails at the timeout with the last answer", []string{"--timeout=200ms", "--interval=10ms", srv.URL + "/down"}, 1, "status 503: not ready"},
		{"JSON content type with a broken body fails", []string{"--timeout=100ms", "--interval=10ms", srv.URL + "/broken-json"}, 1, "not valid JSON"},
		{"nothing listening fails", []string{"--timeout=100ms", "--interval=10ms", "http://127.0.0.1:1/readyz"}, 1, "connection refused"},
		{"no URL is a usage error", nil, 2, "usage: faultline-check"},
		{"bad flag is a usage error", []string{"--timeout=soon", srv.URL}, 2, "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(tt.args, &out, &out)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("run(%q) = %d, output:\n%s\nwant code %d and output containing %q", tt.args, code, out.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}
