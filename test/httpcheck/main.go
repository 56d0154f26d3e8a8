// Command faultline-check is the chart's helm test: it GETs each URL until every one
// answers 2xx (and a JSON content type comes with a body that parses as JSON), or the
// timeout passes. It ships in the aggregator image because distroless images have no
// shell, curl or wget, and a test that needs no other image works air-gapped.
//
//	faultline-check [--timeout=60s] URL...
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the exit code: 0 when every URL passed, 1 when one did not, 2 on bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("faultline-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", time.Minute, "how long to keep retrying a URL that fails")
	interval := fs.Duration("interval", time.Second, "time between attempts")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: faultline-check [--timeout=60s] URL...")
		return 2
	}
	deadline := time.Now().Add(*timeout)
	client := &http.Client{Timeout: 5 * time.Second}
	for _, url := range fs.Args() {
		if err := waitOK(client, url, deadline, *interval); err != nil {
			fmt.Fprintf(stderr, "FAIL %s: %v\n", url, err)
			return 1
		}
		fmt.Fprintf(stdout, "ok   %s\n", url)
	}
	return 0
}

// waitOK retries check until it passes or the deadline passes, returning the last
// failure. The deadline bounds the retries, not an attempt: every URL gets at least one.
func waitOK(client *http.Client, url string, deadline time.Time, interval time.Duration) error {
	for {
		err := check(client, url)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

func check(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" && !json.Valid(body) {
		return errors.New("content type is application/json but the body is not valid JSON")
	}
	return nil
}
