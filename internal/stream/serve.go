package stream

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Snapshot returns the data of a snapshot event standing for the state as of now.
type Snapshot func() ([]byte, error)

// Serve streams the hub to one HTTP client until the client leaves, the hub closes, or the
// client falls behind. It resumes after the request's Last-Event-ID when the ring still
// holds what was missed, and otherwise starts with a snapshot event.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, filter func(*Event) bool, snapshot Snapshot) {
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("lastEventId") // for clients that cannot set headers
	}
	sub := h.Subscribe(lastID, filter)
	defer h.Unsubscribe(sub)

	start := [][]byte{wire.RetryFrame(h.opts.Retry)}
	if sub.NeedSnapshot {
		data, err := snapshot()
		if err != nil {
			http.Error(w, `{"error":"snapshot unavailable"}`, http.StatusInternalServerError)
			return
		}
		start = append(start, snapshotFrame(sub.SnapshotID, data)...)
	} else {
		start = append(start, sub.Replay...)
	}

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Connection", "keep-alive")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	rc := http.NewResponseController(w)
	// write sends frames within the write timeout. A client that does not take them in
	// time is cut off, as one that falls behind the queue is, and counted so.
	write := func(frames ...[]byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
		var err error
		for _, f := range frames {
			if _, err = w.Write(f); err != nil {
				break
			}
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			h.dropped.Add(1)
		}
		return err == nil
	}
	if !write(start...) {
		return
	}

	heartbeat := time.NewTicker(h.opts.Heartbeat)
	defer heartbeat.Stop()
	batch := make([][]byte, 0, 16)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.closed:
			return
		case <-heartbeat.C:
			if !write(wire.CommentFrame("heartbeat")) {
				return
			}
		case ev, ok := <-sub.C:
			if !ok {
				return // cut off for falling behind; the client resumes by id
			}
			batch = append(batch[:0], ev.Frame)
		drain:
			for len(batch) < cap(batch) {
				select {
				case ev, ok := <-sub.C:
					if !ok {
						break drain
					}
					batch = append(batch, ev.Frame)
				default:
					break drain
				}
			}
			if !write(batch...) {
				return
			}
			heartbeat.Reset(h.opts.Heartbeat)
		}
	}
}

// snapshotFrame frames a snapshot event without copying its data when the data is one
// line (JSON always is): a large fleet's snapshot is over a MiB, shared by the clients
// that connect at once, and a copy per client would be garbage by the GiB.
func snapshotFrame(id string, data []byte) [][]byte {
	if id == "" || bytes.IndexByte(data, '\n') >= 0 {
		return [][]byte{wire.Frame(id, wire.EventSnapshot, data)}
	}
	return [][]byte{[]byte("id: " + id + "\nevent: " + wire.EventSnapshot + "\ndata: "), data, []byte("\n\n")}
}
