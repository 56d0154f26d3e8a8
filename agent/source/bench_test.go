package source

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/faultline-dev/faultline/agent/breaker"
)

// micrometer200 is what Spring Boot's actuator writes for 200 resilience4j breakers:
// every family TaggedCircuitBreakerMetrics registers, with an application tag.
func micrometer200() []byte {
	var b bytes.Buffer
	states := []string{"closed", "disabled", "forced_open", "half_open", "metrics_only", "open"}
	family := func(name, typ, help string, each func(n string)) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for i := range 200 {
			each(fmt.Sprintf("backend-%03d", i))
		}
	}
	family("resilience4j_circuitbreaker_buffered_calls", "gauge", "The number of buffered failed calls stored in the ring buffer", func(n string) {
		for _, k := range []string{"failed", "successful"} {
			fmt.Fprintf(&b, "resilience4j_circuitbreaker_buffered_calls{application=\"checkout\",kind=%q,name=%q,} 12.0\n", k, n)
		}
	})
	family("resilience4j_circuitbreaker_calls_seconds", "summary", "Total number of successful calls", func(n string) {
		for _, k := range []string{"successful", "failed", "ignored"} {
			fmt.Fprintf(&b, "resilience4j_circuitbreaker_calls_seconds_count{application=\"checkout\",kind=%q,name=%q,} 1204.0\n", k, n)
			fmt.Fprintf(&b, "resilience4j_circuitbreaker_calls_seconds_sum{application=\"checkout\",kind=%q,name=%q,} 18.407\n", k, n)
		}
	})
	family("resilience4j_circuitbreaker_calls_seconds_max", "gauge", "Total number of successful calls", func(n string) {
		for _, k := range []string{"successful", "failed", "ignored"} {
			fmt.Fprintf(&b, "resilience4j_circuitbreaker_calls_seconds_max{application=\"checkout\",kind=%q,name=%q,} 0.044\n", k, n)
		}
	})
	family("resilience4j_circuitbreaker_failure_rate", "gauge", "The failure rate of the circuit breaker", func(n string) {
		fmt.Fprintf(&b, "resilience4j_circuitbreaker_failure_rate{application=\"checkout\",name=%q,} 12.5\n", n)
	})
	family("resilience4j_circuitbreaker_not_permitted_calls_total", "counter", "Total number of not permitted calls", func(n string) {
		fmt.Fprintf(&b, "resilience4j_circuitbreaker_not_permitted_calls_total{application=\"checkout\",kind=\"not_permitted\",name=%q,} 3.0\n", n)
	})
	family("resilience4j_circuitbreaker_slow_call_rate", "gauge", "The slow call of the circuit breaker", func(n string) {
		fmt.Fprintf(&b, "resilience4j_circuitbreaker_slow_call_rate{application=\"checkout\",name=%q,} -1.0\n", n)
	})
	family("resilience4j_circuitbreaker_slow_calls", "gauge", "The number of slow successful which were slower than a certain threshold", func(n string) {
		for _, k := range []string{"successful", "failed"} {
			fmt.Fprintf(&b, "resilience4j_circuitbreaker_slow_calls{application=\"checkout\",kind=%q,name=%q,} 0.0\n", k, n)
		}
	})
	family("resilience4j_circuitbreaker_state", "gauge", "The states of the circuit breaker", func(n string) {
		for _, s := range states {
			v := 0
			if s == "closed" {
				v = 1
			}
			fmt.Fprintf(&b, "resilience4j_circuitbreaker_state{application=\"checkout\",name=%q,state=%q,} %d.0\n", n, s, v)
		}
	})
	return b.Bytes()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the process CPU time per operation (user + system) to the result.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkParse200 is the baseline: expfmt's text parser alone on the exposition.
func BenchmarkParse200(b *testing.B) {
	body := micrometer200()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		p := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := p.TextToMetricFamilies(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}

// BenchmarkParseMap200 parses and maps to 200 breakers.
func BenchmarkParseMap200(b *testing.B) {
	body := micrometer200()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		fams, err := ParseExposition(bytes.NewReader(body), ctText)
		if err != nil {
			b.Fatal(err)
		}
		if m := MapFamilies(fams, nil); len(m.Breakers) != 200 {
			b.Fatalf("%d breakers", len(m.Breakers))
		}
	}
	reportCPU(b, start)
}

// BenchmarkScrape200 is one whole scrape: HTTP GET over loopback, parse (skipping the
// families faultline does not read), map and write 200 breakers into the registry.
func BenchmarkScrape200(b *testing.B) {
	benchScrape(b, ctText, micrometer200())
}

// BenchmarkScrape200Proto is the same scrape from an application that serves the
// Prometheus protobuf format (client_golang, Prometheus Java client 1.x).
func BenchmarkScrape200Proto(b *testing.B) {
	fams, err := ParseExposition(bytes.NewReader(micrometer200()), ctText)
	if err != nil {
		b.Fatal(err)
	}
	var body bytes.Buffer
	enc := expfmt.NewEncoder(&body, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, mf := range fams {
		if err := enc.Encode(mf); err != nil {
			b.Fatal(err)
		}
	}
	benchScrape(b, string(expfmt.NewFormat(expfmt.TypeProtoDelim)), body.Bytes())
}

func benchScrape(b *testing.B, contentType string, body []byte) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Write(body)
	}))
	defer srv.Close()
	p := NewPrometheus(PrometheusOptions{URL: srv.URL, MaxBreakers: 500})
	reg := breaker.New("bench", nil)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		p.Scrape(context.Background(), reg)
	}
	reportCPU(b, start)
	if reg.Len() != 200 {
		b.Fatalf("%d breakers", reg.Len())
	}
}
