// Command baseline is the footprint baseline for the agent: a bare Go HTTP server with a
// 1 Hz ticker, built and run beside the agent by BenchmarkFootprint.
package main

import (
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	go func() {
		var ticks int
		for range time.Tick(time.Second) {
			ticks++
		}
	}()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	srv.Serve(ln)
}
