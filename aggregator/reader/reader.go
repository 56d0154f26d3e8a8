// Package reader opens the agents' event streams (GET /v1/stream) and reads them: the
// pool's transport. A few event loops, one per core, read every stream's socket when it
// has bytes, without a goroutine, a stack or a read buffer per stream: with ten thousand
// agents, most streams are idle most of the time. Each stream's bytes go through its
// parser (chunked transfer encoding decoded in place, Server-Sent Events split out) and
// each event is handed to the stream's receiver on the loop's goroutine, with the loop's
// decoder. An https stream is decrypted by a goroutine of its own into a socket pair,
// whose other end the loops read as they read any stream.
//
// A stream that shows no progress (no event, no comment) for longer than its receiver's
// stall timeout is dropped; so is one that misbehaves (an event over the size limit,
// bytes that are not Server-Sent Events, malformed chunking) or whose receiver refuses an
// event. Nothing a stream sends costs more than one event's memory.
package reader

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/aggregator/decode"
	"github.com/faultline-dev/faultline/internal/health"
	"github.com/faultline-dev/faultline/internal/version"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Receiver is what a stream hands its events to.
type Receiver interface {
	// Event handles one event, in the stream's order; dec is the decoder of the loop
	// reading the stream. An error ends the stream with it.
	Event(ev Event, dec *decode.Decoder) error
	// Ended is called once when the stream ends, with why (io.EOF: the agent ended it;
	// os.ErrDeadlineExceeded: it stalled).
	Ended(err error)
	// StallTimeout is how long the stream may show no progress before it is dropped.
	StallTimeout() time.Duration
}

// Options tune a Reader; zero values take the defaults.
type Options struct {
	MaxEventBytes int // default wire.MaxEventBytes (1 MiB)
	// MaxGarbageBytes bounds the bytes of lines that are no Server-Sent Events field a
	// stream may carry before it is dropped (default 4 KiB).
	MaxGarbageBytes int
	DialTimeout     time.Duration // default 5 s
	// Sweep is how often streams are checked for a stall (default 250 ms).
	Sweep time.Duration
	// Loops is the number of event loops (default GOMAXPROCS).
	Loops int
	// TLS is the client configuration for https agents (default: the system's roots).
	TLS    *tls.Config
	Logger hclog.Logger
	// Health, when set, learns whether each event loop goes round.
	Health *health.Monitor
}

// Reader reads streams with its event loops.
type Reader struct {
	opts  Options
	loops []*loop
	next  atomic.Uint32 // the loop of the next stream
}

// New starts the event loops.
func New(opts Options) (*Reader, error) {
	if opts.MaxEventBytes <= 0 {
		opts.MaxEventBytes = wire.MaxEventBytes
	}
	if opts.MaxGarbageBytes <= 0 {
		opts.MaxGarbageBytes = DefaultMaxGarbageBytes
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.Sweep <= 0 {
		opts.Sweep = 250 * time.Millisecond
	}
	if opts.Loops <= 0 {
		opts.Loops = runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	r := &Reader{opts: opts}
	for i := range opts.Loops {
		l, err := newLoop(r, i)
		if err != nil {
			for _, l := range r.loops {
				l.poll.close()
			}
			return nil, err
		}
		r.loops = append(r.loops, l)
	}
	for _, l := range r.loops {
		go l.run()
	}
	return r, nil
}

// Close ends every stream and stops the loops.
func (r *Reader) Close() {
	for _, l := range r.loops {
		l.stop()
	}
}

// Stream is one open stream.
type Stream interface {
	// Close ends the stream from outside its reader; its receiver's Ended follows.
	Close()
}

// Open connects to the agent at baseURL, asks for its event stream resuming after
// lastID ("" for none), and hands the stream to a loop, which reads it from then on. It
// returns once the stream is open, or why it could not be opened (the receiver hears of
// the stream only once it is open).
func (r *Reader) Open(ctx context.Context, baseURL, lastID string, rc Receiver) (Stream, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/") + "/v1/stream")
	if err != nil {
		return nil, fmt.Errorf("bad agent url: %w", err)
	}
	nc, err := r.dial(ctx, u)
	if err != nil {
		return nil, err
	}
	c, err := r.request(nc, u, lastID, rc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if _, ok := nc.(*tls.Conn); ok {
		err = c.pump(nc)
	} else {
		err = c.adopt(nc)
	}
	if err != nil {
		return nil, err
	}
	c.loop = r.loops[int(r.next.Add(1))%len(r.loops)]
	c.loop.add(c)
	return c, nil
}

func (r *Reader) dial(ctx context.Context, u *url.URL) (net.Conn, error) {
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	d := net.Dialer{Timeout: r.opts.DialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" {
		return conn, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.opts.TLS != nil {
		cfg = r.opts.TLS.Clone()
	}
	cfg.ServerName = u.Hostname()
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, r.opts.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// request sends the request and reads the response's header. The stream it returns
// holds what the header's reader took of the body: usually the first event.
func (r *Reader) request(nc net.Conn, u *url.URL, lastID string, rc Receiver) (*conn, error) {
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: faultline-aggregator/" + version.Version + "\r\n"
	if lastID != "" {
		req += "Last-Event-ID: " + lastID + "\r\n"
	}
	_ = nc.SetDeadline(time.Now().Add(r.opts.DialTimeout))
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		return nil, fmt.Errorf("send request: %w", err)
	}
	br := bufio.NewReaderSize(nc, 1024)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	// The body is read from the connection by a loop; resp.Body is never used.
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d from %s", resp.StatusCode, u.Path)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return nil, fmt.Errorf("%s answered with content type %q, not an event stream", u.Path, resp.Header.Get("Content-Type"))
	}
	mode, length := bodyUntilEOF, int64(0)
	switch {
	case len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked":
		mode = bodyChunked
	case resp.ContentLength >= 0:
		mode, length = bodyLength, resp.ContentLength
	}
	_ = nc.SetDeadline(time.Time{})
	c := &conn{rc: rc, p: newParser(mode, length, r.opts.MaxEventBytes, r.opts.MaxGarbageBytes), fd: -1}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		c.leftover = append([]byte(nil), b...)
	}
	return c, nil
}

// conn is one stream, read by a loop from a descriptor of its own.
type conn struct {
	rc       Receiver
	p        *parser
	loop     *loop
	id       uint32
	leftover []byte // the body read with the header, fed before anything else
	last     int64  // when the stream last showed progress, an event or a comment (Unix ns); the loop's own

	// mu guards fd against being closed while Close shuts it down.
	mu sync.Mutex
	fd int
	// pumped is set for an https stream: the decrypting goroutine's connection, and why
	// its reading ended.
	pumped  net.Conn
	pumpErr atomic.Pointer[error]
}

// feed hands bytes read from the stream to the parser and the events they complete to
// the receiver, and notes when they showed progress: bytes that form no event or comment
// do not keep a stream alive.
func (c *conn) feed(raw []byte, dec *decode.Decoder) error {
	before := c.p.progress
	err := c.p.feed(raw, func(ev Event) error { return c.rc.Event(ev, dec) })
	if c.p.progress != before {
		c.last = time.Now().UnixNano()
	}
	return err
}

// Close shuts the stream's socket down; its loop sees the stream end and reports it.
func (c *conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd >= 0 {
		shutdownFD(c.fd)
	}
	if c.pumped != nil {
		c.pumped.Close()
	}
}

// why is the error a stream ended with: for an https stream, what ended its decryption.
func (c *conn) why(err error) error {
	if p := c.pumpErr.Load(); p != nil && (err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return *p
	}
	return err
}
