package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// MaxEventBytes is the largest event a reader accepts unless told otherwise.
const MaxEventBytes = 1 << 20

// Frame encodes one SSE event. Data may span lines; each line becomes a data field, so
// a reader gets the same bytes back. id and event must be single lines.
func Frame(id, event string, data []byte) []byte {
	b := make([]byte, 0, len(id)+len(event)+len(data)+32)
	if id != "" {
		b = append(append(append(b, "id: "...), id...), '\n')
	}
	if event != "" {
		b = append(append(append(b, "event: "...), event...), '\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		b = append(append(append(b, "data: "...), line...), '\n')
		if !more {
			break
		}
		data = rest
	}
	return append(b, '\n')
}

// EncodeEvent marshals v as JSON and frames it.
func EncodeEvent(id, event string, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", event, err)
	}
	return Frame(id, event, data), nil
}

// RetryFrame tells an EventSource how long to wait before reconnecting. It carries no
// data, so it dispatches no event.
func RetryFrame(d time.Duration) []byte {
	return []byte("retry: " + strconv.FormatInt(d.Milliseconds(), 10) + "\n\n")
}

// CommentFrame is a comment line, used as a heartbeat; readers ignore it.
func CommentFrame(text string) []byte {
	return []byte(": " + strings.ReplaceAll(text, "\n", " ") + "\n\n")
}

// Event is one decoded SSE event.
type Event struct {
	ID   string // the last id seen on the stream, as EventSource keeps it
	Name string // empty when the event had no event field
	Data []byte
}

// ErrEventTooLarge is returned when an event exceeds the reader's size limit.
var ErrEventTooLarge = errors.New("event exceeds the size limit")

// ReadEvents decodes an SSE stream, yielding each complete event. Comments and unknown
// fields are skipped; an event larger than maxBytes (MaxEventBytes when 0) ends the
// stream with ErrEventTooLarge. Iteration stops at the first error; EOF is not one.
func ReadEvents(r io.Reader, maxBytes int) iter.Seq2[Event, error] {
	if maxBytes <= 0 {
		maxBytes = MaxEventBytes
	}
	return func(yield func(Event, error) bool) {
		for ev, err := range sse.Read(r, &sse.ReadConfig{MaxEventSize: maxBytes}) {
			if err != nil {
				if errors.Is(err, bufio.ErrTooLong) {
					err = fmt.Errorf("%w (%d bytes)", ErrEventTooLarge, maxBytes)
				}
				yield(Event{}, err)
				return
			}
			if !yield(Event{ID: ev.LastEventID, Name: ev.Type, Data: []byte(ev.Data)}, nil) {
				return
			}
		}
	}
}

// Decode unmarshals an event's data into v and, for the wire's message types, checks
// that the message is of this version.
func Decode(ev Event, v any) error {
	if err := json.Unmarshal(ev.Data, v); err != nil {
		return fmt.Errorf("decode %s event: %w", ev.Name, err)
	}
	if m, ok := v.(interface{ WireVersion() int }); ok && m.WireVersion() != Version {
		return fmt.Errorf("decode %s event: wire version %d, want %d", ev.Name, m.WireVersion(), Version)
	}
	return nil
}
