package stream

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/internal/wire"
)

func publishN(t *testing.T, h *Hub, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := h.Publish(wire.EventMetrics, "", "", map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
}

func seqs(frames [][]byte) []string {
	var out []string
	for _, f := range frames {
		id, _, _ := strings.Cut(strings.TrimPrefix(string(f), "id: "), "\n")
		_, seq, _ := strings.Cut(id, "-")
		out = append(out, seq)
	}
	return out
}

func TestSubscribeResume(t *testing.T) {
	h := New(Options{RingEvents: 4})
	publishN(t, h, 6) // ring holds 3..6
	tests := []struct {
		name         string
		lastID       string
		wantReplay   []string
		wantSnapshot bool
	}{
		{"new client", "", nil, true},
		{"up to date", h.ID(6), nil, false},
		{"missed two", h.ID(4), []string{"5", "6"}, false},
		{"oldest still in ring", h.ID(2), []string{"3", "4", "5", "6"}, false},
		{"older than ring", h.ID(1), nil, true},
		{"from the future", h.ID(7), nil, true},
		{"other epoch", "zzz-5", nil, true},
		{"garbage", "not an id", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.Subscribe(tt.lastID, nil)
			defer h.Unsubscribe(s)
			if s.NeedSnapshot != tt.wantSnapshot {
				t.Fatalf("NeedSnapshot = %v, want %v", s.NeedSnapshot, tt.wantSnapshot)
			}
			if tt.wantSnapshot && s.SnapshotID != h.ID(6) {
				t.Errorf("SnapshotID = %q, want %q", s.SnapshotID, h.ID(6))
			}
			if diff := cmp.Diff(tt.wantReplay, seqs(s.Replay)); diff != "" {
				t.Errorf("replay (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRingBytesBound(t *testing.T) {
	h := New(Options{RingEvents: 100, RingBytes: 200})
	publishN(t, h, 50)
	if h.ringBytes > 200 {
		t.Fatalf("ring holds %d bytes, bound is 200", h.ringBytes)
	}
	if h.n == 0 || h.ring[(h.head+h.n-1)%len(h.ring)].Seq != 50 {
		t.Fatal("newest event is not in the ring")
	}
}

func TestSlowSubscriberIsCutOffFastOneContinues(t *testing.T) {
	h := New(Options{SubscriberBuffer: 8})
	slow := h.Subscribe("", nil)
	fast := h.Subscribe("", nil)
	got := make(chan int, 100)
	go func() {
		n := 0
		for range fast.C {
			n++
			got <- n
		}
	}()
	for i := 0; i < 50; i++ {
		publishN(t, h, 1)
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("fast subscriber stopped receiving")
		}
	}
	n := 0
	for range slow.C { // closed by the cut-off: the loop ends
		n++
	}
	if n != 8 {
		t.Errorf("slow subscriber got %d events before the cut-off, want its buffer of 8", n)
	}
	if h.Dropped() != 1 || h.Subscribers() != 1 {
		t.Errorf("dropped = %d, subscribers = %d; want 1, 1", h.Dropped(), h.Subscribers())
	}
	h.Unsubscribe(slow) // after a cut-off: no panic
}

func TestFilter(t *testing.T) {
	h := New(Options{})
	s := h.Subscribe("", func(e *Event) bool { return e.Namespace == "" || e.Namespace == "shop" })
	h.Publish(wire.EventAlert, "shop", "cart", 1)
	h.Publish(wire.EventAlert, "other", "x", 2)
	h.Publish(wire.EventMetrics, "", "", 3)
	var names []string
	for len(s.C) > 0 {
		e := <-s.C
		names = append(names, e.Name+"/"+e.Namespace)
	}
	if diff := cmp.Diff([]string{"alert/shop", "metrics/"}, names); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

// readStream reads events from a real HTTP stream until n have arrived.
func readStream(t *testing.T, url, lastID string, n int) []wire.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, k := range []string{"Content-Type", "Cache-Control", "X-Accel-Buffering"} {
		if resp.Header.Get(k) == "" {
			t.Errorf("missing header %s", k)
		}
	}
	var out []wire.Event
	for ev, err := range wire.ReadEvents(resp.Body, 0) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
		if len(out) == n {
			break
		}
	}
	return out
}

func TestServeSnapshotThenResume(t *testing.T) {
	h := New(Options{})
	state := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Serve(w, r, nil, func() ([]byte, error) { return []byte(fmt.Sprint(state)), nil })
	}))
	defer srv.Close()
	defer h.Close()

	state = 3
	publishN(t, h, 3)
	first := readStream(t, srv.URL, "", 1)
	if first[0].Name != wire.EventSnapshot || first[0].ID != h.ID(3) || string(first[0].Data) != "3" {
		t.Fatalf("first event = %+v, want a snapshot with id %s", first[0], h.ID(3))
	}
	publishN(t, h, 4)
	resumed := readStream(t, srv.URL, first[0].ID, 4)
	var ids []string
	for _, ev := range resumed {
		ids = append(ids, ev.ID)
	}
	if diff := cmp.Diff([]string{h.ID(4), h.ID(5), h.ID(6), h.ID(7)}, ids); diff != "" {
		t.Errorf("resumed ids (-want +got):\n%s", diff)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	h := New(Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Serve(w, r, nil, func() ([]byte, error) { return []byte("{}"), nil })
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan struct{})
	go func() {
		for range wire.ReadEvents(resp.Body, 0) {
		}
		close(done)
	}()
	h.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Close")
	}
}

func BenchmarkPublish1000Subscribers(b *testing.B) {
	h := New(Options{SubscriberBuffer: 1 << 16})
	for i := 0; i < 1000; i++ {
		s := h.Subscribe("", nil)
		go func() {
			for range s.C {
			}
		}()
	}
	payload := map[string]string{"cpu": strings.Repeat("x", 512)}
	b.ReportAllocs()
	for b.Loop() {
		h.Publish(wire.EventMetrics, "", "", payload)
	}
}

// A client that stops reading is cut off by the write timeout even when its queue has
// room, and counted as dropped like one whose queue overflowed.
func TestWriteTimeoutCutOffIsCounted(t *testing.T) {
	h := New(Options{WriteTimeout: 100 * time.Millisecond, SubscriberBuffer: 1 << 16})
	defer h.Close()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Serve(w, r, nil, func() ([]byte, error) { return []byte("{}"), nil })
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			_ = c.(*net.TCPConn).SetWriteBuffer(4096)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	payload := strings.Repeat("x", 32<<10)
	deadline := time.Now().Add(10 * time.Second)
	for h.Dropped() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a client that reads nothing was not cut off; subscribers %d", h.Subscribers())
		}
		if _, err := h.Publish(wire.EventMetrics, "", "", payload); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if h.Dropped() != 1 {
		t.Errorf("dropped = %d, want 1", h.Dropped())
	}
	for start := time.Now(); h.Subscribers() != 0 && time.Since(start) < 5*time.Second; {
		time.Sleep(10 * time.Millisecond)
	}
	if h.Subscribers() != 0 {
		t.Errorf("%d subscribers after the cut-off", h.Subscribers())
	}
}
