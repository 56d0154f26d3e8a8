package reader

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/faultline-dev/faultline/internal/wire"
)

// parseAll feeds input to a parser in pieces of at most piece bytes, as reads from a
// connection would, and collects the events up to the end of the input.
func parseAll(input string, mode int, max, piece int) ([]Event, error) {
	p := newParser(mode, int64(len(input)), max, DefaultMaxGarbageBytes)
	var out []Event
	emit := func(ev Event) error {
		ev.Data = append([]byte(nil), ev.Data...)
		out = append(out, ev)
		return nil
	}
	raw := []byte(input)
	for len(raw) > 0 {
		n := min(piece, len(raw))
		chunk := append([]byte(nil), raw[:n]...) // the parser works in place
		raw = raw[n:]
		if err := p.feed(chunk, emit); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
	}
	if err := p.eof(); !errors.Is(err, io.EOF) {
		return out, err
	}
	return out, nil
}

// chunked encodes body with chunked transfer encoding, in chunks of size n.
func chunked(body string, n int) string {
	b := &strings.Builder{}
	for len(body) > 0 {
		k := min(n, len(body))
		fmt.Fprintf(b, "%x\r\n%s\r\n", k, body[:k])
		body = body[k:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func TestParser(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []Event
		err   error
	}{
		{"one event", "id: e-1\nevent: metrics\ndata: {}\n\n", []Event{{ID: "e-1", Name: "metrics", Data: []byte("{}")}}, nil},
		{"crlf, comment, retry, multi-line data", "retry: 2000\r\n\r\n: heartbeat\r\n\r\nid: e-2\r\nevent: snapshot\r\ndata: a\r\ndata: b\r\n\r\n",
			[]Event{{ID: "e-2", Name: "snapshot", Data: []byte("a\nb")}}, nil},
		{"id carries over; no space after colon", "id:e-3\ndata:x\n\ndata: y\n\n",
			[]Event{{ID: "e-3", Data: []byte("x")}, {ID: "e-3", Data: []byte("y")}}, nil},
		{"event without data is not dispatched", "event: metrics\n\ndata: z\n\n", []Event{{Data: []byte("z")}}, nil},
		{"id of an event without data counts", "id: e-4\n\ndata: z\n\n", []Event{{ID: "e-4", Data: []byte("z")}}, nil},
		{"unknown fields ignored", "foo: bar\ndata: 1\n\n", []Event{{Data: []byte("1")}}, nil},
		{"three data lines", "data: 1\ndata: 2\ndata: 3\n\n", []Event{{Data: []byte("1\n2\n3")}}, nil},
		{"truncated event", "data: partial", nil, io.ErrUnexpectedEOF},
		{"truncated after a complete event", "data: 1\n\ndata: 2\n", []Event{{Data: []byte("1")}}, io.ErrUnexpectedEOF},
		{"too large", "data: " + strings.Repeat("x", 100) + "\n\n", nil, ErrTooLarge},
		{"too large, incomplete", "data: " + strings.Repeat("x", 100), nil, ErrTooLarge},
		{"too large over lines", strings.Repeat("data: xxxxxxxxxx\n", 20) + "\n", nil, ErrTooLarge},
	}
	for _, tt := range tests {
		for _, piece := range []int{1, 3, 16, 1 << 20} {
			t.Run(fmt.Sprintf("%s/%d-byte reads", tt.name, piece), func(t *testing.T) {
				got, err := parseAll(tt.input, bodyUntilEOF, 64, piece)
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				// The same stream, chunked as a Go server sends it, and with a length.
				for _, mode := range []int{bodyChunked, bodyLength} {
					in := tt.input
					if mode == bodyChunked {
						in = chunked(in, 5)
					}
					got, err := parseAll(in, mode, 64, piece)
					if !errors.Is(err, tt.err) && !(tt.err == io.ErrUnexpectedEOF && err == nil) {
						t.Fatalf("mode %d: error = %v, want %v", mode, err, tt.err)
					}
					if diff := cmp.Diff(tt.want, got); diff != "" {
						t.Errorf("mode %d: events (-want +got):\n%s", mode, diff)
					}
				}
			})
		}
	}
}

func TestChunkedEncoding(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []Event
		err   error
	}{
		{"extensions and upper-case sizes", "A;x=y\r\ndata: 12\n\n\r\n0\r\n\r\n", []Event{{Data: []byte("12")}}, nil},
		{"bare LF line ends", "9\ndata: 1\n\n\n0\n\n", []Event{{Data: []byte("1")}}, nil},
		{"ends at the last chunk", "5\r\ndata:\r\n0\r\n\r\ndata: never\n\n", nil, nil},
		{"not a size", "zz\r\n", nil, ErrChunked},
		{"size overflow", strings.Repeat("f", 20) + "\r\n", nil, ErrChunked},
		{"no CRLF after data", "2\r\nabX", nil, ErrChunked},
		{"ends inside a chunk", "10\r\ndata: 1", nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		for _, piece := range []int{1, 4, 1 << 20} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, piece), func(t *testing.T) {
				got, err := parseAll(tt.input, bodyChunked, 1024, piece)
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// An idle stream keeps no buffer: the parser holds bytes only while an event is
// incomplete.
func TestParserKeepsNothingBetweenEvents(t *testing.T) {
	p := newParser(bodyChunked, 0, 1024, DefaultMaxGarbageBytes)
	in := []byte(chunked("id: 1\nevent: metrics\ndata: {\"v\":1}\n\n", 7))
	half := len(in) / 2
	emit := func(Event) error { return nil }
	if err := p.feed(append([]byte(nil), in[:half]...), emit); err != nil {
		t.Fatal(err)
	}
	if len(p.tail) == 0 {
		t.Fatal("incomplete event not kept")
	}
	if err := p.feed(append([]byte(nil), in[half:]...), emit); !errors.Is(err, io.EOF) {
		t.Fatalf("end of body: %v", err)
	}
	if p.tail != nil {
		t.Errorf("%d bytes kept after the last event", cap(p.tail))
	}
}

// FuzzParser feeds the parser arbitrary streams, plain and chunked, in reads of several
// sizes: it must never panic, never hand out an event larger than its limit, and see the
// same events whatever the reads and the transfer encoding. On every stream in the
// subset of the format agents write (line ends LF or CRLF, no byte order mark) it hands
// out the events the reference reader (wire.ReadEvents) reads, up to where it stops.
// inSubset reports whether a stream is of the subset of Server-Sent Events agents write:
// every CR is followed by LF, and there is no byte order mark.
func inSubset(s string) bool {
	if strings.HasPrefix(s, "\ufeff") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' && (i+1 == len(s) || s[i+1] != '\n') {
			return false
		}
	}
	return true
}

func FuzzParser(f *testing.F) {
	for _, s := range []string{
		"id: e-1\nevent: metrics\ndata: {}\n\n",
		"retry: 10\r\n: c\r\ndata: a\r\ndata: b\r\n\r\n",
		"data:" + strings.Repeat("y", 300) + "\n\n",
		"\x00\xff\n\n\n:",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		want, wantErr := parseAll(input, bodyUntilEOF, 256, len(input)+1)
		if inSubset(input) {
			// Events without data carry nothing for the pool; the reference hands out an
			// event for an id alone, which the format does not dispatch. Both are left
			// out of the comparison.
			var ref []Event
			for ev, err := range wire.ReadEvents(strings.NewReader(input), 1<<20) {
				if err != nil {
					t.Fatalf("reference reader: %v", err)
				}
				if len(ev.Data) > 0 {
					ref = append(ref, Event{ID: ev.ID, Name: ev.Name, Data: ev.Data})
				}
			}
			want := slices.DeleteFunc(slices.Clone(want), func(ev Event) bool { return len(ev.Data) == 0 })
			if wantErr == nil || errors.Is(wantErr, io.ErrUnexpectedEOF) {
				// The parser read the whole stream: the same events.
				if diff := cmp.Diff(ref, want, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("events of %q (-reference +parser):\n%s", input, diff)
				}
			} else if len(want) > len(ref) || !cmp.Equal(ref[:len(want)], want, cmpopts.EquateEmpty()) {
				// It stopped (an event over its limit, bytes that are no SSE): the
				// same events up to there.
				t.Fatalf("events of %q before %v: %v, reference %v", input, wantErr, want, ref)
			}
		}
		for _, ev := range want {
			if len(ev.Data) > 256 {
				t.Fatalf("event of %d bytes passed a 256-byte limit", len(ev.Data))
			}
		}
		for _, piece := range []int{1, 7, 64} {
			got, err := parseAll(input, bodyUntilEOF, 256, piece)
			if (err == nil) != (wantErr == nil) || !cmp.Equal(want, got) {
				t.Fatalf("%d-byte reads: %v, %v; whole: %v, %v", piece, got, err, want, wantErr)
			}
			got, err = parseAll(chunked(input, piece), bodyChunked, 256, piece+3)
			if wantErr != nil && errors.Is(wantErr, io.ErrUnexpectedEOF) {
				continue // a truncated event is just left over when the body ends cleanly
			}
			if (err == nil) != (wantErr == nil) || !cmp.Equal(want, got) {
				t.Fatalf("chunked by %d: %v, %v; plain: %v, %v", piece, got, err, want, wantErr)
			}
		}
		// Malformed chunked input fails cleanly.
		_, _ = parseAll(input, bodyChunked, 256, 5)
	})
}
