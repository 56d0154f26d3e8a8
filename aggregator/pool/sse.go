package pool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/faultline-dev/faultline/internal/wire"
)

// errTooLarge ends a stream whose event exceeds the size limit.
var errTooLarge = errors.New("event exceeds the size limit")

// event is one SSE event read from an agent. Data is only valid until the next read.
type event struct {
	ID   string
	Name string
	Data []byte
}

// bufPool holds data buffers between events, so an idle connection keeps none: with
// thousands of agents most connections are idle most of the time.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// reader decodes an SSE stream (the subset agents write: id, event, data, retry and
// comments; CRLF or LF line ends). Unlike a general SSE client it counts every byte,
// comments included, as a sign of life, which the stall detection needs.
type reader struct {
	br      *bufio.Reader
	max     int
	lastID  string
	data    *[]byte
	line    *[]byte // scratch for lines longer than the read buffer
	hasData bool
	name    []byte
}

func newReader(br *bufio.Reader, max int) *reader { return &reader{br: br, max: max} }

// next returns the next event. The returned Data is valid until the following call.
func (r *reader) next() (event, error) {
	r.release()
	r.name = r.name[:0]
	r.hasData = false
	for {
		line, err := r.readLine()
		if err != nil {
			return event{}, err
		}
		if len(line) == 0 {
			if !r.hasData {
				r.name = r.name[:0]
				continue
			}
			d := *r.data
			if len(d) > 0 {
				d = d[:len(d)-1] // the last data line's newline
			}
			return event{ID: r.lastID, Name: eventName(r.name), Data: d}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "data":
			if r.data == nil {
				r.data = bufPool.Get().(*[]byte)
				*r.data = (*r.data)[:0]
			}
			if len(*r.data)+len(value)+1 > r.max {
				return event{}, fmt.Errorf("%w (%d bytes)", errTooLarge, r.max)
			}
			*r.data = append(append(*r.data, value...), '\n')
			r.hasData = true
		case "event":
			r.name = append(r.name[:0], value...)
		case "id":
			if bytes.IndexByte(value, 0) < 0 && string(value) != r.lastID {
				r.lastID = string(value)
			}
		}
	}
}

// release hands the buffers back to the pool once the event has been used.
func (r *reader) release() {
	putBuf(r.data)
	r.data = nil
	putBuf(r.line)
	r.line = nil
}

// take hands the current event's data buffer to the caller, who returns it to the pool
// (putBuf) when done: the event is passed on without a copy.
func (r *reader) take() *[]byte {
	d := r.data
	r.data = nil
	return d
}

func putBuf(b *[]byte) {
	if b != nil && cap(*b) <= 64<<10 {
		bufPool.Put(b)
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

// readLine returns one line without its end. Lines longer than the reader's buffer are
// assembled up to the size limit.
func (r *reader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err == nil {
		return trimEOL(line), nil
	}
	if err == io.EOF && len(line) > 0 {
		return nil, io.ErrUnexpectedEOF
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	// A line longer than the read buffer (an agent's data line usually is) is assembled
	// in a pooled buffer, not a new one per event.
	if r.line == nil {
		r.line = bufPool.Get().(*[]byte)
	}
	long := append((*r.line)[:0], line...)
	defer func() { *r.line = long[:0] }()
	for {
		line, err = r.br.ReadSlice('\n')
		long = append(long, line...)
		if len(long) > r.max {
			return nil, fmt.Errorf("%w (%d bytes)", errTooLarge, r.max)
		}
		if err == nil {
			return trimEOL(long), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}
