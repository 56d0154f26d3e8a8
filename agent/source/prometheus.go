package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/faultline-dev/faultline/agent/breaker"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/wire"
)

// MaxExpositionBytes bounds one scrape. An Envoy sidecar with many clusters writes a
// few MiB; more than this is refused rather than held in memory.
const MaxExpositionBytes = 16 << 20

// acceptHeader asks for the Prometheus text format first: its parser is the cheaper one.
// OpenMetrics 1.0 is understood too.
const acceptHeader = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"

// PrometheusOptions configures a Prometheus scrape source.
type PrometheusOptions struct {
	URL         string
	Interval    time.Duration // time between scrapes; also the scrape timeout, at least 1 s
	Mappings    []config.BreakerMapping
	MaxBreakers int
	Log         hclog.Logger
	Client      *http.Client // nil: a client suited to a pod-local endpoint
}

// Prometheus scrapes an application's metrics endpoint and maps the breaker families it
// understands (see MapFamilies) into the registry.
type Prometheus struct {
	opts   PrometheusOptions
	health *health
	cap    *capper
}

var _ Source = (*Prometheus)(nil)

// NewPrometheus returns a scrape source; Run starts it.
func NewPrometheus(opts PrometheusOptions) *Prometheus {
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	if opts.Client == nil {
		opts.Client = httpClient()
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	return &Prometheus{opts: opts, health: newHealth(NamePrometheus, "scrape", "series", opts.MaxBreakers), cap: newCapper(opts.MaxBreakers)}
}

// Name implements Source.
func (p *Prometheus) Name() string { return NamePrometheus }

// Status implements Source.
func (p *Prometheus) Status() wire.Collector { return p.health.collector() }

// Run implements Source: it scrapes at once, then every interval, until ctx is done.
func (p *Prometheus) Run(ctx context.Context, reg *breaker.Registry) {
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	for {
		p.Scrape(ctx, reg)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Scrape reads the endpoint once and updates reg. A failed scrape marks every breaker
// this source reported stale; a breaker missing from a good scrape is marked stale alone.
func (p *Prometheus) Scrape(ctx context.Context, reg *breaker.Registry) {
	start := time.Now()
	fams, err := p.fetch(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: not the application's fault
		}
		stale := reg.MarkStale(NamePrometheus)
		p.health.failed(time.Since(start), err, reg.Count(NamePrometheus), time.Time{})
		p.opts.Log.Debug("scrape failed", "url", p.opts.URL, "error", err, "marked_stale", stale)
		return
	}
	m := MapFamilies(fams, p.opts.Mappings)
	names := make([]string, len(m.Breakers))
	for i, b := range m.Breakers {
		names[i] = b.Name
	}
	admitted, over := p.cap.admit(names)
	problems := m.Problems
	reported := 0
	for _, b := range m.Breakers {
		if !admitted[b.Name] {
			continue
		}
		b.Source = NamePrometheus
		if _, err := reg.Upsert(b); err != nil {
			problems = append(problems, fmt.Sprintf("breaker %q: %v", b.Name, err))
			delete(admitted, b.Name)
			continue
		}
		reported++
	}
	reg.MarkStaleExcept(NamePrometheus, admitted)
	first := ""
	if len(problems) > 0 {
		first = problems[0]
		p.opts.Log.Debug("series skipped", "count", len(problems), "first", first)
	}
	p.health.succeeded(time.Since(start), reported, over, len(problems), first)
}

func (p *Prometheus) fetch(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, max(p.opts.Interval, time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.opts.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", p.opts.URL, err)
	}
	req.Header.Set("Accept", acceptHeader)
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", p.opts.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("scrape %s: %w", p.opts.URL, statusError{resp.StatusCode})
	}
	return ParseExposition(resp.Body, resp.Header.Get("Content-Type"))
}

// ErrTooLarge is returned for an exposition over MaxExpositionBytes.
var ErrTooLarge = fmt.Errorf("exposition larger than %d MiB", MaxExpositionBytes>>20)

// ParseExposition parses a scrape body in the format its Content-Type names: OpenMetrics
// 1.0, Prometheus protobuf, or (for anything else) the Prometheus text format.
func ParseExposition(body io.Reader, contentType string) (map[string]*dto.MetricFamily, error) {
	lr := &io.LimitedReader{R: body, N: MaxExpositionBytes + 1}
	h := http.Header{}
	h.Set("Content-Type", contentType)
	format := expfmt.ResponseFormat(h)
	var (
		fams map[string]*dto.MetricFamily
		err  error
	)
	switch format.FormatType() {
	case expfmt.TypeOpenMetrics, expfmt.TypeProtoDelim:
		fams = map[string]*dto.MetricFamily{}
		dec := expfmt.NewDecoder(lr, format)
		for {
			mf := &dto.MetricFamily{}
			if err = dec.Decode(mf); err != nil {
				break
			}
			fams[mf.GetName()] = mf
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
	default:
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err = parser.TextToMetricFamilies(lr)
	}
	if lr.N <= 0 {
		return nil, ErrTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("malformed exposition: %w", err)
	}
	return fams, nil
}
