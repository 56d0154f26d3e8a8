package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/faultline-dev/faultline/agent/breaker"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/cause"
	"github.com/faultline-dev/faultline/internal/wire"
)

// MaxExpositionBytes bounds one scrape. An Envoy sidecar with many clusters writes a
// few MiB; more than this is refused rather than held in memory.
const MaxExpositionBytes = 16 << 20

// acceptHeader asks for the Prometheus protobuf format first (several times cheaper to
// decode than text, and served by the Go and Java 1.x clients), then the text format,
// then OpenMetrics 1.0, whose parser is the slowest.
const acceptHeader = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=1," +
	"text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"

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
	wanted func(name []byte) bool
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
	return &Prometheus{
		opts:   opts,
		health: newHealthEmpty(NamePrometheus, "scrape", "series", "no resilience4j, Envoy or mapped breaker metrics found", opts.MaxBreakers),
		cap:    newCapper(opts.MaxBreakers),
		wanted: wantedNames(opts.Mappings),
	}
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
		return nil, fmt.Errorf("scrape %s: %w", p.opts.URL, cause.Status(resp.StatusCode))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" || mt == "application/json" {
		return nil, fmt.Errorf("content type %s is not a metrics exposition", mt)
	}
	return parseFiltered(resp.Body, resp.Header.Get("Content-Type"), p.wanted)
}

// ErrTooLarge is returned for an exposition over MaxExpositionBytes.
var ErrTooLarge = fmt.Errorf("exposition larger than %d MiB", MaxExpositionBytes>>20)

// ParseExposition parses a scrape body in the format its Content-Type names: OpenMetrics
// 1.0, Prometheus protobuf, or (for anything else) the Prometheus text format.
func ParseExposition(body io.Reader, contentType string) (map[string]*dto.MetricFamily, error) {
	return parseFiltered(body, contentType, nil)
}

// parseFiltered is ParseExposition that, for the text format, hands expfmt only the
// lines of the metric names wanted reports true for (all lines when wanted is nil).
func parseFiltered(body io.Reader, contentType string, wanted func(name []byte) bool) (map[string]*dto.MetricFamily, error) {
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
		var text []byte
		if text, err = io.ReadAll(lr); err != nil {
			break
		}
		if wanted != nil {
			text = keepLines(text, wanted)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err = parser.TextToMetricFamilies(bytes.NewReader(text))
	}
	if lr.N <= 0 {
		return nil, ErrTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("malformed exposition: %w", err)
	}
	return fams, nil
}

// wantedNames reports whether MapFamilies reads a metric name: a sample's name or the
// family name on a # TYPE or # HELP line. Everything else an application exposes (JVM,
// HTTP server, the Envoy stats of every listener) is skipped before parsing.
func wantedNames(mappings []config.BreakerMapping) func(name []byte) bool {
	names := map[string]bool{}
	add := func(family string, suffixes ...string) {
		names[family] = true
		for _, s := range suffixes {
			names[family+s] = true
		}
	}
	add(r4jState)
	add(r4jCallsSeconds, "_count")
	add(r4jCalls, "_count")
	add(r4jNotPermitted, "_total")
	add(r4jFailureRate)
	add(r4jSlowCallRate)
	add(r4jBufferedCalls)
	for _, f := range []string{envoyRqXX, envoyPendingOverflow, envoyRqTimeout, envoyEjectionsActive} {
		add(f, "_total")
	}
	for _, m := range mappings {
		add(m.Metric, "_total", "_count")
	}
	return func(name []byte) bool {
		if names[string(name)] {
			return true
		}
		return bytes.HasPrefix(name, []byte(envoyBreakerPrefix)) && hasAnySuffix(string(name), envoyOpenGauges)
	}
}

// keepLines keeps the lines of a text exposition whose metric name wanted accepts, in
// place. It only finds each line's name (the first token, or the third of a # HELP or
// # TYPE line); expfmt parses what is kept. Lines it cannot name cheaply (a quoted
// UTF-8 name inside the braces) are kept; other comments and blank lines are dropped.
func keepLines(text []byte, wanted func(name []byte) bool) []byte {
	out := text[:0] // writes never overtake reads: out only shrinks the text
	for len(text) > 0 {
		line, rest, nl := bytes.Cut(text, []byte{'\n'})
		text = rest
		if !nl {
			// The format ends every line with a newline: a last line without one
			// was cut short, and is kept for the parser to refuse.
			out = append(out, line...)
			break
		}
		if name, ok := lineName(line); ok && (name == nil || wanted(name)) {
			out = append(append(out, line...), '\n')
		}
	}
	return out
}

// lineName returns a line's metric name; nil with ok for a line to keep unnamed; ok
// false for a line to drop.
func lineName(line []byte) ([]byte, bool) {
	line = bytes.TrimLeft(line, " \t")
	if len(line) == 0 {
		return nil, false
	}
	switch line[0] {
	case '#':
		f := bytes.Fields(line[1:])
		if len(f) < 2 || (string(f[0]) != "HELP" && string(f[0]) != "TYPE") {
			return nil, false
		}
		return bytes.Trim(f[1], `"`), true
	case '{':
		return nil, true
	}
	if i := bytes.IndexAny(line, "{ \t"); i > 0 {
		return line[:i], true
	}
	return line, true
}
