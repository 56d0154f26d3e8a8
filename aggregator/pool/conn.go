package pool

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/faultline-dev/faultline/aggregator/decode"
	"github.com/faultline-dev/faultline/internal/version"
)

// conn is one open stream to an agent. A plain-HTTP stream on Linux is read by one of the
// pool's event loops from a descriptor of its own (fd), without a goroutine or a buffer of
// its own; an https stream, or any stream elsewhere, is read by a goroutine (nc).
type conn struct {
	a           *agent
	p           *parser
	dec         *decode.Decoder // the reader's
	connectedAt time.Time

	nc net.Conn // goroutine mode

	// Event-loop mode: mu guards fd against being closed while stop shuts it down.
	mu   sync.Mutex
	fd   int
	loop *loop
	id   uint32
	last int64 // when the stream last showed progress, an event or a comment (Unix ns); the reader's own
}

// open connects, sends the request and reads the response header. leftover is what the
// header's reader took from the body.
func (a *agent) open() (c *conn, leftover []byte, err error) {
	u, err := url.Parse(strings.TrimSuffix(a.target.URL, "/") + "/v1/stream")
	if err != nil {
		return nil, nil, fmt.Errorf("bad agent url: %w", err)
	}
	nc, err := a.dial(a.ctx, u)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			nc.Close()
		}
	}()
	a.sinkMu.Lock()
	lastID := a.lastID
	a.sinkMu.Unlock()
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: faultline-aggregator/" + version.Version + "\r\n"
	if lastID != "" {
		req += "Last-Event-ID: " + lastID + "\r\n"
	}
	_ = nc.SetDeadline(time.Now().Add(a.p.opts.DialTimeout))
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		return nil, nil, fmt.Errorf("send request: %w", err)
	}
	br := bufio.NewReaderSize(nc, 1024)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, nil, fmt.Errorf("read response: %w", err)
	}
	// The body is read below, from the connection; resp.Body is never used.
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("HTTP %d from %s", resp.StatusCode, u.Path)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return nil, nil, fmt.Errorf("%s answered with content type %q, not an event stream", u.Path, resp.Header.Get("Content-Type"))
	}
	mode, length := bodyUntilEOF, int64(0)
	switch {
	case len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked":
		mode = bodyChunked
	case resp.ContentLength >= 0:
		mode, length = bodyLength, resp.ContentLength
	}
	_ = nc.SetDeadline(time.Time{})
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		leftover = append([]byte(nil), b...)
	}
	c = &conn{a: a, p: newParser(mode, length, a.p.opts.MaxEventBytes, a.p.opts.MaxGarbageBytes), dec: decode.New(), connectedAt: time.Now(), nc: nc, fd: -1}
	if l := a.p.loopFor(a); l != nil && u.Scheme == "http" {
		if err := l.adopt(c); err != nil {
			return nil, nil, err
		}
	}
	return c, leftover, nil
}

func (a *agent) dial(ctx context.Context, u *url.URL) (net.Conn, error) {
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	d := net.Dialer{Timeout: a.p.opts.DialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" {
		return conn, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.p.opts.TLS != nil {
		cfg = a.p.opts.TLS.Clone()
	}
	cfg.ServerName = u.Hostname()
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, a.p.opts.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// feed hands bytes read from the connection to the parser and the events they complete
// to the agent, and notes when they showed progress: bytes that form no event or comment
// do not keep a stream alive.
func (c *conn) feed(raw []byte) error {
	before := c.p.progress
	err := c.p.feed(raw, c.event)
	if c.p.progress != before {
		c.last = time.Now().UnixNano()
	}
	return err
}

func (c *conn) event(ev event) error { return c.a.event(ev, c.dec) }

// serve reads the stream until it ends: from an event loop, or in this goroutine.
func (c *conn) serve() {
	if c.loop != nil {
		c.loop.add(c)
		return
	}
	c.read()
}

// read is goroutine mode: one read at a time, each with the stall timeout as deadline.
// The goroutine's stack grows with the decoding it does, which is why plain-HTTP streams
// are read by the event loops instead.
func (c *conn) read() {
	buf := make([]byte, 4<<10)
	var err error
	c.last = time.Now().UnixNano()
	for {
		_ = c.nc.SetReadDeadline(time.Unix(0, c.last).Add(c.a.stallTimeout()))
		var n int
		n, err = c.nc.Read(buf)
		if n > 0 {
			if ferr := c.feed(buf[:n]); ferr != nil {
				err = ferr
				break
			}
		}
		if err == io.EOF {
			err = c.p.eof()
		}
		if err != nil {
			break
		}
	}
	c.nc.Close()
	c.a.ended(c.connectedAt, err)
}

// shutdown ends the stream from outside its reader (the agent was stopped); the reader
// sees the stream end and reports it.
func (c *conn) shutdown() { c.end(false) }

// close releases the connection before it was handed to its reader.
func (c *conn) close() { c.end(true) }

// end closes a goroutine-read connection; a loop-read one's socket is shut down, or with
// release closed and forgotten.
func (c *conn) end(release bool) {
	if c.loop == nil {
		c.nc.Close()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.fd < 0:
	case release:
		closeFD(c.fd)
		c.fd = -1
	default:
		shutdownFD(c.fd)
	}
}
