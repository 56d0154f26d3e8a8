//go:build unix

package reader

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/faultline-dev/faultline/aggregator/decode"
	"github.com/faultline-dev/faultline/internal/health"
)

// loop reads many streams from one goroutine: it waits until some of their descriptors
// have bytes (poller), reads each into the loop's buffer, and decodes their events at
// once with the loop's decoder, without handing them to another goroutine. The loop alone
// closes the descriptors it watches; Close only shuts a socket down, which the loop sees
// as the end of the stream.
type loop struct {
	r    *Reader
	poll *poller
	buf  []byte
	dec  *decode.Decoder

	beat *health.Beat // nil without a health monitor

	mu      sync.Mutex
	conns   map[uint32]*conn
	added   []*conn // streams to feed their first bytes to, before anything read
	nextID  uint32
	quit    bool
	stopped bool
	done    chan struct{}
}

const loopBuffer = 64 << 10

// loopWithin is how long an event loop may take to go round (it wakes at least at every
// sweep) before the reader counts as stuck.
const loopWithin = 5 * time.Second

func newLoop(r *Reader, i int) (*loop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	l := &loop{r: r, poll: p, buf: make([]byte, loopBuffer), dec: decode.New(), conns: map[uint32]*conn{}, done: make(chan struct{})}
	if h := r.opts.Health; h != nil {
		l.beat = h.Beat(fmt.Sprintf("pool event loop %d", i+1), "turn", loopWithin)
	}
	return l, nil
}

// adopt takes the connection's socket over from the Go runtime: the loop reads a
// duplicate of its descriptor, and the runtime's is closed, so that the socket is
// watched by the loop's poller only.
func (c *conn) adopt(nc net.Conn) error {
	defer nc.Close()
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return fmt.Errorf("adopt connection: %T is not a socket", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("adopt connection: %w", err)
	}
	var dupErr error
	if err := rc.Control(func(s uintptr) { c.fd, dupErr = dupFD(int(s)) }); err != nil {
		return fmt.Errorf("adopt connection: %w", err)
	}
	if dupErr != nil {
		return fmt.Errorf("adopt connection: %w", dupErr)
	}
	return nil // the duplicate shares the socket, which the runtime made non-blocking
}

// pump decrypts an https stream on a goroutine of its own into one end of a socket pair;
// the loop reads the other end. What ends the decryption is kept as why the stream ended.
func (c *conn) pump(tc net.Conn) error {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		tc.Close()
		return fmt.Errorf("socket pair: %w", err)
	}
	for _, fd := range fds {
		syscall.CloseOnExec(fd)
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		tc.Close()
		return fmt.Errorf("socket pair: %w", err)
	}
	f := os.NewFile(uintptr(fds[1]), "https stream")
	w, err := net.FileConn(f)
	f.Close()
	if err != nil {
		syscall.Close(fds[0])
		tc.Close()
		return fmt.Errorf("socket pair: %w", err)
	}
	c.fd, c.pumped = fds[0], tc
	go func() {
		_, err := io.Copy(w, tc)
		if err == nil {
			err = io.EOF
		}
		c.pumpErr.Store(&err)
		w.Close()
		tc.Close()
	}()
	return nil
}

// add starts watching a stream.
func (l *loop) add(c *conn) {
	l.mu.Lock()
	if l.quit {
		l.mu.Unlock()
		l.release(c)
		c.rc.Ended(errStopped)
		return
	}
	l.nextID++
	if l.nextID == 0 {
		l.nextID = 1
	}
	c.id = l.nextID
	c.last = time.Now().UnixNano()
	l.conns[c.id] = c
	first := len(c.leftover) > 0
	if first {
		l.added = append(l.added, c)
	}
	l.mu.Unlock()
	c.mu.Lock()
	err := error(os.ErrClosed)
	if c.fd >= 0 {
		err = l.poll.add(c.fd, c.id)
	}
	c.mu.Unlock()
	if err != nil {
		l.drop(c, fmt.Errorf("poll: %w", err))
		return
	}
	if first {
		l.poll.wake()
	}
}

// errStopped ends the streams of a reader that was closed.
var errStopped = errors.New("reader closed")

func (l *loop) run() {
	defer close(l.done)
	if l.beat != nil {
		defer l.beat.Stop()
	}
	sweepEvery := l.r.opts.Sweep
	next := time.Now().Add(sweepEvery)
	busy := false
	var ready []uint32
	for {
		// While there is work, poll without waiting: a wait blocks the thread, and the
		// loop then queues for a processor again behind every other goroutine (the stream
		// clients' writers, say) before it reads anything.
		wait := time.Duration(0)
		if !busy {
			wait = max(time.Until(next), 0)
		}
		var err error
		ready, err = l.poll.wait(wait, ready[:0])
		busy = len(ready) > 0
		if l.beat != nil {
			l.beat.Tick()
		}
		if err != nil {
			l.r.opts.Logger.Error("event loop", "error", err)
		}
		if l.stopping() {
			l.closeAll()
			return
		}
		l.feedAdded()
		for _, id := range ready {
			l.mu.Lock()
			c := l.conns[id]
			l.mu.Unlock()
			if c != nil {
				l.read(c)
			}
		}
		if now := time.Now(); !now.Before(next) {
			l.sweep(now)
			next = now.Add(sweepEvery)
		}
	}
}

// feedAdded feeds the streams added since the last turn what their header's reader took
// of their body, before anything read from their sockets.
func (l *loop) feedAdded() {
	l.mu.Lock()
	added := l.added
	l.added = nil
	l.mu.Unlock()
	for _, c := range added {
		raw := c.leftover
		c.leftover = nil
		if err := c.feed(raw, l.dec); err != nil {
			l.drop(c, err)
		}
	}
}

// read takes what the socket holds (up to the loop's buffer; the poller reports the
// socket again while more is waiting) and hands it to the stream's parser. It reports
// whether the socket had nothing to give.
func (l *loop) read(c *conn) (empty bool) {
	n, err := syscall.Read(c.fd, l.buf)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return true
	case err != nil:
		l.drop(c, os.NewSyscallError("read", err))
	case n == 0:
		l.drop(c, c.p.eof())
	default:
		if err := c.feed(l.buf[:n], l.dec); err != nil {
			l.drop(c, err)
		}
	}
	return false
}

// sweep drops streams that showed no progress (no event, no comment) for longer than
// their receiver's stall timeout. A stream whose bytes are waiting, unread because the
// loop fell behind, is read instead: it is not the agent that stalled, unless those bytes
// make no event either.
func (l *loop) sweep(now time.Time) {
	var late []*conn
	l.mu.Lock()
	for _, c := range l.conns {
		if time.Duration(now.UnixNano()-c.last) > c.rc.StallTimeout() {
			late = append(late, c)
		}
	}
	l.mu.Unlock()
	for _, c := range late {
		empty := l.read(c)
		l.mu.Lock()
		_, open := l.conns[c.id]
		l.mu.Unlock()
		if open && (empty || time.Duration(time.Now().UnixNano()-c.last) > c.rc.StallTimeout()) {
			l.drop(c, os.ErrDeadlineExceeded)
		}
	}
}

// drop stops watching a stream, closes it and reports why it ended.
func (l *loop) drop(c *conn, err error) {
	l.mu.Lock()
	_, watched := l.conns[c.id]
	delete(l.conns, c.id)
	l.mu.Unlock()
	if !watched {
		return
	}
	l.release(c)
	c.rc.Ended(c.why(err))
}

// release closes the stream's descriptor (and its decryption, for https).
func (l *loop) release(c *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd >= 0 {
		l.poll.remove(c.fd)
		closeFD(c.fd)
		c.fd = -1
	}
	if c.pumped != nil {
		c.pumped.Close()
	}
}

func (l *loop) stopping() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.quit
}

// closeAll drops every stream; the loop is ending.
func (l *loop) closeAll() {
	l.mu.Lock()
	conns := make([]*conn, 0, len(l.conns))
	for _, c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		l.drop(c, errStopped)
	}
}

// stop ends the loop and waits for it.
func (l *loop) stop() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.stopped, l.quit = true, true
	l.mu.Unlock()
	l.poll.wake()
	<-l.done
	l.poll.close()
}

func dupFD(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

func shutdownFD(fd int) { _ = syscall.Shutdown(fd, syscall.SHUT_RDWR) }

func closeFD(fd int) { _ = syscall.Close(fd) }
