package pool

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readAll(input string, max, bufSize int) ([]event, error) {
	r := newReader(bufio.NewReaderSize(strings.NewReader(input), bufSize), max)
	var out []event
	for {
		ev, err := r.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		ev.Data = append([]byte(nil), ev.Data...)
		out = append(out, ev)
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []event
		err   error
	}{
		{"one event", "id: e-1\nevent: metrics\ndata: {}\n\n", []event{{ID: "e-1", Name: "metrics", Data: []byte("{}")}}, nil},
		{"crlf, comment, retry, multi-line data", "retry: 2000\r\n\r\n: heartbeat\r\n\r\nid: e-2\r\nevent: snapshot\r\ndata: a\r\ndata: b\r\n\r\n",
			[]event{{ID: "e-2", Name: "snapshot", Data: []byte("a\nb")}}, nil},
		{"id carries over; no space after colon", "id:e-3\ndata:x\n\ndata: y\n\n",
			[]event{{ID: "e-3", Data: []byte("x")}, {ID: "e-3", Data: []byte("y")}}, nil},
		{"event without data is not dispatched", "event: metrics\n\ndata: z\n\n", []event{{Data: []byte("z")}}, nil},
		{"unknown fields ignored", "foo: bar\ndata: 1\n\n", []event{{Data: []byte("1")}}, nil},
		{"truncated event", "data: partial", nil, io.ErrUnexpectedEOF},
		{"too large", "data: " + strings.Repeat("x", 100) + "\n\n", nil, errTooLarge},
		{"too large over lines", strings.Repeat("data: xxxxxxxxxx\n", 20) + "\n", nil, errTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(tt.input, 64, 16)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error = %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzReader feeds the reader arbitrary streams: it must never panic, never hand out an
// event larger than its limit, and always end.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"id: e-1\nevent: metrics\ndata: {}\n\n",
		"retry: 10\r\n: c\r\ndata: a\r\ndata: b\r\n\r\n",
		"data:" + strings.Repeat("y", 300) + "\n\n",
		"\x00\xff\n\n\n:",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		events, _ := readAll(input, 256, 16)
		for _, ev := range events {
			if len(ev.Data) > 256 {
				t.Fatalf("event of %d bytes passed a 256-byte limit", len(ev.Data))
			}
		}
	})
}
