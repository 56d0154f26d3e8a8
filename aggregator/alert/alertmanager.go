package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/internal/backoff"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Delivery is the state of Alertmanager delivery, shown in GET /api/v1/alerts and the
// aggregator's own metrics: a failure is visible, never silent.
type Delivery struct {
	Enabled     bool      `json:"enabled"`
	URL         string    `json:"url,omitempty"`
	Leader      bool      `json:"leader"` // only the leader delivers
	Pending     int       `json:"pending"`
	Sent        uint64    `json:"sent"`
	Failures    uint64    `json:"failures"`
	LastAttempt wire.Time `json:"last_attempt"`
	LastSuccess wire.Time `json:"last_success"`
	LastError   string    `json:"last_error,omitempty"`
}

// Notifier posts alerts to Alertmanager's v2 API (POST {url}/api/v2/alerts). Changes are
// sent at once; firing alerts are sent again every Resend so Alertmanager keeps them;
// failed posts are retried with exponential backoff and jitter, keeping the newest state of each
// alert. Only the leader replica delivers.
type Notifier struct {
	url      string
	client   *http.Client
	isLeader func() bool
	log      hclog.Logger
	// Resend is how often firing alerts are posted again (default 1 min).
	Resend time.Duration
	// BackoffBase and BackoffMax bound the retry delay (defaults 1 s, 1 min).
	BackoffBase, BackoffMax time.Duration
	// GeneratorURL is linked from each alert in Alertmanager.
	GeneratorURL string

	mu      sync.Mutex
	pending map[string]wire.Alert
	status  Delivery
	kick    chan struct{}
}

// NewNotifier delivers to the Alertmanager at baseURL when isLeader says so.
func NewNotifier(baseURL string, isLeader func() bool, log hclog.Logger) *Notifier {
	if isLeader == nil {
		isLeader = func() bool { return true }
	}
	return &Notifier{
		url: strings.TrimSuffix(baseURL, "/"), client: &http.Client{Timeout: 10 * time.Second},
		isLeader: isLeader, log: log, Resend: time.Minute, BackoffBase: time.Second, BackoffMax: time.Minute,
		pending: map[string]wire.Alert{}, status: Delivery{Enabled: true, URL: baseURL}, kick: make(chan struct{}, 1),
	}
}

// Enqueue schedules alerts for delivery; the newest state of each alert wins.
func (n *Notifier) Enqueue(alerts ...wire.Alert) {
	if len(alerts) == 0 {
		return
	}
	n.mu.Lock()
	for _, a := range alerts {
		n.pending[a.ID] = a
	}
	n.status.Pending = len(n.pending)
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Status returns the delivery state.
func (n *Notifier) Status() Delivery {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.status
	st.Leader = n.isLeader()
	return st
}

// Run delivers until ctx is done. firing returns the alerts firing now, for the resend.
func (n *Notifier) Run(ctx context.Context, firing func() []wire.Alert) {
	resend := time.NewTicker(n.Resend)
	defer resend.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		case <-retry.C:
		case <-resend.C:
			n.Enqueue(firing()...)
			continue
		}
		if !n.isLeader() {
			// Another replica delivers; what is pending here is dropped so that a
			// replica that becomes leader does not replay stale changes.
			n.mu.Lock()
			clear(n.pending)
			n.status.Pending = 0
			n.mu.Unlock()
			continue
		}
		if err := n.flush(ctx); err != nil {
			d := backoff.Policy{Base: n.BackoffBase, Max: n.BackoffMax}.Delay(failures)
			failures++
			n.log.Warn("alert delivery failed; will retry", "url", n.url, "error", err, "retry_in", d)
			retry.Reset(d)
			continue
		}
		failures = 0
	}
}

// postable is Alertmanager's v2 PostableAlert.
type postable struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     string            `json:"startsAt,omitempty"`
	EndsAt       string            `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func (n *Notifier) flush(ctx context.Context) error {
	n.mu.Lock()
	if len(n.pending) == 0 {
		n.mu.Unlock()
		return nil
	}
	batch := make([]wire.Alert, 0, len(n.pending))
	for _, a := range n.pending {
		batch = append(batch, a)
	}
	n.status.LastAttempt = wire.Now()
	n.mu.Unlock()

	body := make([]postable, 0, len(batch))
	for _, a := range batch {
		p := postable{Labels: a.Labels, Annotations: map[string]string{"summary": a.Summary}, GeneratorURL: n.GeneratorURL}
		if p.Labels == nil {
			p.Labels = map[string]string{"alertname": a.Rule}
		}
		if !a.Started.IsZero() {
			p.StartsAt = a.Started.UTC().Format(time.RFC3339Nano)
		}
		if a.Resolved != nil {
			p.EndsAt = a.Resolved.UTC().Format(time.RFC3339Nano)
		}
		body = append(body, p)
	}
	err := n.post(ctx, body)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		n.status.Failures++
		n.status.LastError = err.Error()
		return err
	}
	for _, a := range batch {
		if cur, ok := n.pending[a.ID]; ok && cur.State == a.State && cur.Summary == a.Summary {
			delete(n.pending, a.ID)
		}
	}
	n.status.Pending = len(n.pending)
	n.status.Sent += uint64(len(batch))
	n.status.LastSuccess = wire.Now()
	n.status.LastError = ""
	return nil
}

func (n *Notifier) post(ctx context.Context, body []postable) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode alerts: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url+"/api/v2/alerts", bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("alertmanager request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("post alerts: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post alerts: alertmanager answered %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}
