package main

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// promAccept is the Accept header Prometheus 3 sends with a scrape by default.
const promAccept = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

// promConfig is a Prometheus configuration scraping every simulated agent each second,
// each target labelled with its namespace, workload and pod as Kubernetes service
// discovery and relabelling would label it.
func promConfig(agents, port int) string {
	b := &strings.Builder{}
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: faultline-agent\n    static_configs:\n")
	for i := 0; i < agents; i++ {
		id := newSimAgent(i).snap.Agent
		fmt.Fprintf(b, "      - targets: ['%s']\n        labels: {namespace: %s, workload: %s, pod: %s}\n", agentAddr(i, port), id.Namespace, id.Workload, id.Pod)
	}
	return b.String()
}

// startPrometheus starts Prometheus scraping every simulated agent, its configuration
// and its storage in dir, and waits until it has scraped each of them once, or for 3
// minutes: a Prometheus that cannot keep up is measured as it is. It returns the
// address of its HTTP API and the targets scraped; the process, once started, even with
// an error.
func startPrometheus(o options, dir string) (p *proc, addr string, scraped int, err error) {
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(promConfig(o.agents, o.port)), 0o600); err != nil {
		return nil, "", 0, err
	}
	addr = freeAddr()
	p, err = start(o.prometheus, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "prometheus"),
		"--web.listen-address="+addr, "--log.level=warn")
	if err != nil {
		return nil, "", 0, err
	}
	err = waitFor(3*time.Minute, func() error {
		n, err := promQuery(addr, "count(up)", time.Time{})
		if err == nil {
			if scraped = int(n); scraped < o.agents {
				err = fmt.Errorf("%d of %d targets scraped", scraped, o.agents)
			}
		}
		return err
	})
	if err != nil && scraped == 0 {
		return p, addr, 0, fmt.Errorf("prometheus: %w", err)
	}
	return p, addr, scraped, nil
}

// promConsumer queries Prometheus four times a second for the age probes' mean sample
// time (their working set, see ageMarker) and their mean scrape time, until ctx ends.
// The age is the receive time minus the former; Prometheus's own share is the receive
// time minus the latter (the time since the scrape that took it).
func promConsumer(ctx context.Context, addr string, rec *ageRecorder) {
	const series = `faultline_agent_memory_working_set_bytes{namespace="` + probeNamespace + `"}`
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		marker, err1 := promQuery(addr, "avg("+series+")", time.Time{})
		got := time.Now()
		scraped, err2 := promQuery(addr, "avg(timestamp("+series+"))", time.Time{})
		got2 := time.Now()
		if err := errors.Join(err1, err2); err != nil {
			if ctx.Err() == nil { // not Prometheus shutting down at the end
				fmt.Fprintln(os.Stderr, "prometheus consumer:", err)
			}
			continue
		}
		rec.add(reading{at: got, age: markerAge(got, marker), own: got2.Sub(time.UnixMilli(int64(scraped * 1000)))})
	}
}

// promQuery evaluates an instant query whose answer is one number, at time at (now if
// zero), through Prometheus's HTTP API.
func promQuery(addr, query string, at time.Time) (float64, error) {
	q := url.Values{"query": {query}}
	if !at.IsZero() {
		q.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	client := &http.Client{Timeout: 30 * time.Second} // an overloaded Prometheus answers late
	resp, err := client.Get("http://" + addr + "/api/v1/query?" + q.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return 0, fmt.Errorf("query %s: %w", query, err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("query %s: %s %s", query, resp.Status, r.Error)
	}
	if len(r.Data.Result) != 1 {
		return 0, fmt.Errorf("query %s: %d results, want 1", query, len(r.Data.Result))
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

// promVersion is the module version and Go version bin was built from (go install
// stamps no version into Prometheus's own --version).
func promVersion(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown version: " + err.Error()
	}
	return fmt.Sprintf("%s %s, %s", info.Main.Path, info.Main.Version, info.GoVersion)
}

// scrapeResult is what the scrapers process reports: scrapes between "start" and "stop".
type scrapeResult struct {
	Scrapes int64 `json:"scrapes"`
	Failed  int64 `json:"failed"`
}

// scrapers fetches every agent's /metrics once a second, as Prometheus does (its Accept
// header, the agents' scrapes spread over the second), and discards it: the cost of just
// receiving what Prometheus receives. It stops when stdin closes.
func scrapers(o options) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{MaxIdleConns: o.agents, MaxIdleConnsPerHost: 1, DisableCompression: true}}
	var counting atomic.Bool
	var ok, failed, firstRound atomic.Int64
	for i := 0; i < o.agents; i++ {
		target := "http://" + agentAddr(i, o.port) + "/metrics"
		go func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(i) * time.Second / time.Duration(o.agents)):
			}
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for n := 0; ; n++ {
				err := scrapeOnce(ctx, client, target)
				if n == 0 {
					firstRound.Add(1)
				}
				if counting.Load() {
					if err == nil {
						ok.Add(1)
					} else {
						failed.Add(1)
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	for firstRound.Load() < int64(o.agents) {
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("scraping")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "start":
			ok.Store(0)
			failed.Store(0)
			counting.Store(true)
		case "stop":
			counting.Store(false)
			b, err := json.Marshal(scrapeResult{Scrapes: ok.Load(), Failed: failed.Load()})
			if err != nil {
				return err
			}
			fmt.Println(string(b))
		}
	}
	return nil
}

func scrapeOnce(ctx context.Context, client *http.Client, target string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	req.Header.Set("Accept", promAccept)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", target, resp.Status)
	}
	return nil
}
