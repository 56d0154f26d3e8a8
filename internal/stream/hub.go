// Package stream fans Server-Sent Events out to many subscribers: each event is encoded
// once and the same bytes go to everyone, events are kept in a bounded ring so that a
// client that reconnects with Last-Event-ID gets exactly what it missed, and a subscriber
// that falls behind is cut off rather than slowing the others. The agent's /v1/stream and
// the aggregator's /api/v1/performance/stream both serve from a Hub.
package stream

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Options bound a Hub's memory and set its timing. Zero values take the defaults.
type Options struct {
	RingEvents       int           // events kept for replay (default 1024)
	RingBytes        int           // encoded bytes kept for replay (default 16 MiB)
	SubscriberBuffer int           // events queued per subscriber before it is cut off (default 256)
	Heartbeat        time.Duration // comment sent when idle (default 15 s)
	Retry            time.Duration // reconnect delay suggested to EventSource (default 2 s)
	WriteTimeout     time.Duration // one write to one client (default 10 s)
}

func (o Options) withDefaults() Options {
	if o.RingEvents <= 0 {
		o.RingEvents = 1024
	}
	if o.RingBytes <= 0 {
		o.RingBytes = 16 << 20
	}
	if o.SubscriberBuffer <= 0 {
		o.SubscriberBuffer = 256
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = 2 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	return o
}

// Event is one published event. Frame is the complete SSE encoding, id included.
type Event struct {
	Seq       uint64
	Name      string
	Namespace string // scope for subscriber filters; empty means cluster-wide
	Workload  string
	Time      time.Time
	Frame     []byte
}

// Hub is a publisher with a replay ring and any number of subscribers.
type Hub struct {
	opts  Options
	epoch string

	mu        sync.Mutex
	seq       uint64
	ring      []*Event // circular, oldest at head
	head, n   int
	ringBytes int
	subs      map[*Subscription]struct{}

	closed    chan struct{}
	closeOnce sync.Once
	dropped   atomic.Uint64
}

// New returns a Hub whose epoch is unique to this process start, so ids from an earlier
// run are never mistaken for current ones.
func New(opts Options) *Hub {
	opts = opts.withDefaults()
	return &Hub{
		opts:   opts,
		epoch:  strconv.FormatInt(time.Now().UnixNano(), 36),
		ring:   make([]*Event, opts.RingEvents),
		subs:   make(map[*Subscription]struct{}),
		closed: make(chan struct{}),
	}
}

// Epoch is the first part of every event id.
func (h *Hub) Epoch() string { return h.epoch }

// Options returns the options in effect.
func (h *Hub) Options() Options { return h.opts }

// ID formats the id of event seq.
func (h *Hub) ID(seq uint64) string { return h.epoch + "-" + strconv.FormatUint(seq, 10) }

// LastID is the id of the newest event: the id a snapshot taken now stands for.
func (h *Hub) LastID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ID(h.seq)
}

// Publish encodes v as JSON once and sends it to every subscriber whose filter accepts
// it. The caller updates its own state before publishing, so that a snapshot taken after
// an event's id was assigned always includes that event. A figure JSON cannot hold is
// left out (wire.Marshal): the event is published, and the error names the figure.
func (h *Hub) Publish(name, namespace, workload string, v any) (*Event, error) {
	data, dropped, err := wire.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", name, err)
	}
	ev := h.PublishData(name, namespace, workload, data)
	if len(dropped) > 0 {
		return ev, fmt.Errorf("encode %s event: figures that are not numbers left out: %v", name, dropped)
	}
	return ev, nil
}

// PublishData is Publish for data already encoded.
func (h *Hub) PublishData(name, namespace, workload string, data []byte) *Event {
	ev := &Event{Name: name, Namespace: namespace, Workload: workload, Time: time.Now()}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev.Seq = h.seq
	ev.Frame = wire.Frame(h.ID(ev.Seq), name, data)
	h.push(ev)
	for s := range h.subs {
		if s.filter != nil && !s.filter(ev) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			h.cutOff(s)
		}
	}
	return ev
}

// push appends ev to the ring, evicting the oldest events beyond either bound.
func (h *Hub) push(ev *Event) {
	for h.n > 0 && (h.n == len(h.ring) || h.ringBytes+len(ev.Frame) > h.opts.RingBytes) {
		old := h.ring[h.head]
		h.ring[h.head] = nil
		h.head = (h.head + 1) % len(h.ring)
		h.n--
		h.ringBytes -= len(old.Frame)
	}
	h.ring[(h.head+h.n)%len(h.ring)] = ev
	h.n++
	h.ringBytes += len(ev.Frame)
}

// cutOff removes a subscriber that fell behind; its reader sees the channel close.
// Called with h.mu held.
func (h *Hub) cutOff(s *Subscription) {
	delete(h.subs, s)
	close(s.ch)
	h.dropped.Add(1)
}

// Subscription is one subscriber. Replay holds the frames it missed, or is nil with
// NeedSnapshot set when it must start from a fresh snapshot whose id is SnapshotID.
type Subscription struct {
	C            <-chan *Event
	Replay       [][]byte
	NeedSnapshot bool
	SnapshotID   string

	ch     chan *Event
	filter func(*Event) bool
}

// Subscribe registers a subscriber resuming after lastID ("" for a new one). filter may
// be nil to receive everything.
func (h *Hub) Subscribe(lastID string, filter func(*Event) bool) *Subscription {
	ch := make(chan *Event, h.opts.SubscriberBuffer)
	s := &Subscription{C: ch, ch: ch, filter: filter}
	h.mu.Lock()
	defer h.mu.Unlock()
	if replay, ok := h.replayAfter(lastID); ok {
		for _, ev := range replay {
			if filter == nil || filter(ev) {
				s.Replay = append(s.Replay, ev.Frame)
			}
		}
	} else {
		s.NeedSnapshot = true
		s.SnapshotID = h.ID(h.seq)
	}
	h.subs[s] = struct{}{}
	return s
}

// replayAfter returns the events after lastID, or false when lastID is empty, from
// another epoch, malformed, or older than the ring. Called with h.mu held.
func (h *Hub) replayAfter(lastID string) ([]*Event, bool) {
	epoch, seqText, ok := strings.Cut(lastID, "-")
	if !ok || epoch != h.epoch {
		return nil, false
	}
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil || seq > h.seq {
		return nil, false
	}
	oldest := h.seq + 1 // with an empty ring, only an up-to-date id can resume
	if h.n > 0 {
		oldest = h.ring[h.head].Seq
	}
	if seq+1 < oldest {
		return nil, false
	}
	var out []*Event
	for i := 0; i < h.n; i++ {
		if ev := h.ring[(h.head+i)%len(h.ring)]; ev.Seq > seq {
			out = append(out, ev)
		}
	}
	return out, true
}

// Unsubscribe removes s; it is safe to call after s was cut off.
func (h *Hub) Unsubscribe(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// Subscribers is the number of current subscribers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Dropped counts subscribers cut off for falling behind: their queue full, or a write
// not taken within the write timeout.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Close ends every stream being served; http.Server.Shutdown does not end streams.
func (h *Hub) Close() { h.closeOnce.Do(func() { close(h.closed) }) }

// Done is closed by Close.
func (h *Hub) Done() <-chan struct{} { return h.closed }
