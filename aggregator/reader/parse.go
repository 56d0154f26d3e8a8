package reader

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/faultline-dev/faultline/internal/wire"
)

// Errors that end a stream whose agent misbehaves.
//
// ErrTooLarge ends a stream whose event exceeds the size limit.
var ErrTooLarge = errors.New("event exceeds the size limit")

// ErrChunked ends a stream whose chunked transfer encoding is malformed.
var ErrChunked = errors.New("malformed chunked encoding")

// ErrGarbage ends a stream that sent more bytes that are not Server-Sent Events (lines
// of fields the format does not have) than MaxGarbageBytes.
var ErrGarbage = errors.New("not an event stream")

// DefaultMaxGarbageBytes is how many bytes of lines that are no Server-Sent Events field
// an agent's stream may hold before it is dropped, unless told otherwise. An agent sends
// none.
const DefaultMaxGarbageBytes = 4 << 10

// Event is one SSE event read from an agent. Data is only valid during the call that
// hands it out.
type Event struct {
	ID   string
	Name string
	Data []byte
}

// body modes of an agent's response.
const (
	bodyChunked  = iota // Transfer-Encoding: chunked (what a Go server streams with)
	bodyUntilEOF        // no length: the body lasts as long as the connection
	bodyLength          // Content-Length
)

// chunk decoder states.
const (
	chunkSize    = iota // reading the hex size
	chunkSizeEnd        // after the size: extensions up to the line end
	chunkData           // inside a chunk's data
	chunkDataCR         // after the data: CR or LF
	chunkDataLF         // after the data's CR: LF
	chunkLast           // the zero-size chunk was read: the body is over
)

// parser turns the bytes of an agent's response body, as they arrive in pieces of any
// size, into SSE events (the subset agents write: id, event, data, retry and comments;
// CRLF or LF line ends). It decodes chunked transfer encoding itself, in place, and keeps
// only the incomplete end of the stream between reads, so that an idle connection holds
// no buffer: with thousands of agents most connections are idle most of the time.
type parser struct {
	max    int
	mode   int
	remain int64 // bodyLength: bytes left

	chunk  int   // chunk decoder state
	size   int64 // size being read, or data left in the current chunk
	digits int

	tail   []byte // decoded bytes of an event not complete yet
	lastID string
	multi  []byte // scratch for events with several data lines

	garbage    int // bytes of lines that are no SSE field, on this stream
	maxGarbage int
	progress   uint64 // events and comments read: what shows the stream is alive
}

func newParser(mode int, length int64, max, maxGarbage int) *parser {
	return &parser{mode: mode, remain: length, max: max, maxGarbage: maxGarbage}
}

// ended reports whether the body is over (last chunk read, or length reached).
func (p *parser) ended() bool {
	return (p.mode == bodyChunked && p.chunk == chunkLast) || (p.mode == bodyLength && p.remain <= 0)
}

// eof is the error for the connection ending now.
func (p *parser) eof() error {
	if p.mode == bodyUntilEOF && len(p.tail) == 0 {
		return io.EOF
	}
	return io.ErrUnexpectedEOF
}

// feed takes the next bytes read from the connection (raw is modified) and calls emit for
// every event they complete, in order. It returns io.EOF once the body is over, emit's
// error, or why the stream cannot be read.
func (p *parser) feed(raw []byte, emit func(Event) error) error {
	body, err := p.decode(raw)
	if err != nil {
		return err
	}
	region := body
	if len(p.tail) > 0 {
		p.tail = append(p.tail, body...)
		region = p.tail
	}
	used, err := p.events(region, emit)
	if err != nil {
		return err
	}
	rest := region[used:]
	if len(rest) > p.max {
		return fmt.Errorf("%w (%d bytes)", ErrTooLarge, p.max)
	}
	switch {
	case len(rest) == 0:
		p.tail = nil // an idle connection keeps nothing
	case len(p.tail) > 0:
		p.tail = append(p.tail[:0], rest...) // regions overlap: copy moves forward
	default:
		p.tail = append(make([]byte, 0, len(rest)+len(rest)/2), rest...)
	}
	if p.ended() {
		return io.EOF
	}
	return nil
}

// decode strips the transfer encoding from raw, in place, and returns the body bytes.
func (p *parser) decode(raw []byte) ([]byte, error) {
	switch p.mode {
	case bodyUntilEOF:
		return raw, nil
	case bodyLength:
		if int64(len(raw)) > p.remain {
			raw = raw[:p.remain]
		}
		p.remain -= int64(len(raw))
		return raw, nil
	}
	w := 0
	for r := 0; r < len(raw); {
		switch p.chunk {
		case chunkSize:
			c := raw[r]
			r++
			switch {
			case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
				if p.digits == 15 {
					return nil, ErrChunked
				}
				p.size = p.size<<4 | int64(unhex(c))
				p.digits++
			case p.digits == 0:
				return nil, ErrChunked
			case c == '\n':
				p.endSize()
			case c == ';' || c == ' ' || c == '\t' || c == '\r':
				p.chunk = chunkSizeEnd
			default:
				return nil, ErrChunked
			}
		case chunkSizeEnd:
			i := bytes.IndexByte(raw[r:], '\n')
			if i < 0 {
				r = len(raw)
				continue
			}
			r += i + 1
			p.endSize()
		case chunkData:
			n := min(int64(len(raw)-r), p.size)
			w += copy(raw[w:], raw[r:r+int(n)])
			r += int(n)
			if p.size -= n; p.size == 0 {
				p.chunk = chunkDataCR
			}
		case chunkDataCR, chunkDataLF:
			c := raw[r]
			r++
			switch {
			case c == '\n':
				p.chunk, p.size, p.digits = chunkSize, 0, 0
			case c == '\r' && p.chunk == chunkDataCR:
				p.chunk = chunkDataLF
			default:
				return nil, ErrChunked
			}
		case chunkLast:
			return raw[:w], nil // trailers are of no interest
		}
	}
	return raw[:w], nil
}

func (p *parser) endSize() {
	if p.size == 0 {
		p.chunk = chunkLast
		return
	}
	p.chunk = chunkData
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// events hands out every complete event of region and returns how many bytes they took;
// the rest is the start of an event not complete yet.
func (p *parser) events(region []byte, emit func(Event) error) (int, error) {
	start := 0 // of the event being read
	var name, data []byte
	var id string
	lines, junk := 0, 0
	hasID := false
	for pos := 0; ; {
		nl := bytes.IndexByte(region[pos:], '\n')
		if nl < 0 {
			return start, nil
		}
		line, lineStart := region[pos:pos+nl], pos
		pos += nl + 1
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 { // the event is complete
			if pos-start > p.max {
				return 0, fmt.Errorf("%w (%d bytes)", ErrTooLarge, p.max)
			}
			if hasID {
				p.lastID = id
			}
			p.garbage += junk
			if lines > 0 {
				if lines > 1 {
					data = p.multi
				}
				p.progress++
				if err := emit(Event{ID: p.lastID, Name: eventName(name), Data: data}); err != nil {
					return 0, err
				}
			}
			start, name, data, lines, hasID, junk = pos, nil, nil, 0, false, 0
			continue
		}
		if line[0] == ':' {
			if lineStart == start { // a comment between events (a heartbeat): taken once
				start = pos
				p.progress++
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "retry":
		case "data":
			switch lines {
			case 0:
				data = value
			case 1:
				p.multi = append(append(append(p.multi[:0], data...), '\n'), value...)
			default:
				p.multi = append(append(p.multi, '\n'), value...)
			}
			lines++
		case "event":
			name = value
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				if string(value) != p.lastID {
					id = string(value)
				} else {
					id = p.lastID
				}
				hasID = true
			}
		default: // counted once the event is complete, as the rest may be read again
			if junk += len(line) + 1; p.garbage+junk > p.maxGarbage {
				return 0, fmt.Errorf("%w: %d bytes that are not Server-Sent Events", ErrGarbage, p.garbage+junk)
			}
		}
	}
}

// eventName avoids a string allocation per event for the names agents send.
func eventName(b []byte) string {
	for _, n := range []string{wire.EventMetrics, wire.EventCircuitBreaker, wire.EventSnapshot} {
		if string(b) == n {
			return n
		}
	}
	return string(b)
}
