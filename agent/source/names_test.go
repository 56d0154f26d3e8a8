package source

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/faultline-dev/faultline/internal/names/namestest"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Every name an application's metrics or stream carry reaches the registry byte for
// byte, whatever the format escapes on the way: the Prometheus text format (quotes,
// backslashes), its protobuf form, and hystrix.stream's JSON.
func TestNamesAsReported(t *testing.T) {
	series := map[string]func(name string) []*dto.MetricFamily{
		FormatResilience4j: func(name string) []*dto.MetricFamily {
			return []*dto.MetricFamily{gauges(r4jState, []sample{{map[string]string{"name": name, "state": "open"}, 1}, {map[string]string{"name": name, "state": "closed"}, 0}})}
		},
		FormatResilience4jLegacy: func(name string) []*dto.MetricFamily {
			return []*dto.MetricFamily{gauges(r4jState, []sample{{map[string]string{"name": name}, 1}})}
		},
		FormatEnvoy: func(name string) []*dto.MetricFamily {
			return []*dto.MetricFamily{gauges(envoyBreakerPrefix+"default_rq_open", []sample{{map[string]string{"envoy_cluster_name": name}, 1}})}
		},
	}
	for format, build := range series {
		for _, encoding := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeProtoDelim)} {
			t.Run(format+"/"+string(encoding), func(t *testing.T) {
				for _, name := range namestest.Hostile() {
					var buf bytes.Buffer
					enc := expfmt.NewEncoder(&buf, encoding)
					for _, mf := range build(name) {
						if err := enc.Encode(mf); err != nil {
							t.Fatal(err)
						}
					}
					app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("Content-Type", string(encoding))
						w.Write(buf.Bytes())
					}))
					reg := newRecorder()
					NewPrometheus(PrometheusOptions{URL: app.URL, MaxBreakers: 10}).Scrape(context.Background(), reg.Registry)
					app.Close()
					if b, ok := reg.Get(name); !ok || b.State != wire.StateOpen {
						t.Errorf("name %q: registry holds %v", name, reg.states())
					}
				}
			})
		}
	}
	t.Run("hystrix", func(t *testing.T) {
		var frames bytes.Buffer
		for _, name := range namestest.Hostile() {
			data, _ := json.Marshal(map[string]any{"type": "HystrixCommand", "name": name, "isCircuitBreakerOpen": true, "requestCount": 3})
			frames.Write(wire.Frame("", "", data))
		}
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write(frames.Bytes())
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}))
		defer app.Close()
		reg := newRecorder()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go NewHystrix(HystrixOptions{URL: app.URL, MaxBreakers: 100}).Run(ctx, reg.Registry)
		waitFor(t, "every command", func() bool { return reg.Len() == len(namestest.Hostile()) })
		for _, name := range namestest.Hostile() {
			if b, ok := reg.Get(name); !ok || b.State != wire.StateOpen {
				t.Errorf("name %q: registry holds %v", name, reg.states())
			}
		}
	})
}

type sample struct {
	labels map[string]string
	value  float64
}

func gauges(name string, samples []sample) *dto.MetricFamily {
	mf := &dto.MetricFamily{Name: &name, Help: new("help"), Type: dto.MetricType_GAUGE.Enum()}
	for _, s := range samples {
		m := &dto.Metric{Gauge: &dto.Gauge{Value: new(s.value)}}
		for k, v := range s.labels {
			m.Label = append(m.Label, &dto.LabelPair{Name: new(k), Value: new(v)})
		}
		mf.Metric = append(mf.Metric, m)
	}
	return mf
}
