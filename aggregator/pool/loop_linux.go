package pool

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/faultline-dev/faultline/aggregator/decode"
	"github.com/faultline-dev/faultline/internal/health"
)

// loop reads many agents' streams from one goroutine with epoll, as an event loop per
// core does. Compared with a goroutine per stream it keeps no stack and no read buffer
// per agent (the loop's buffer serves every stream it reads), reads each event with about
// one system call, and decodes it at once, without handing it to another goroutine.
//
// A stream is adopted after its response header was read through the Go runtime: the loop
// takes a duplicate of the socket's descriptor and the runtime's one is closed, so the
// socket is watched by the loop's epoll only. The loop alone closes adopted descriptors;
// stop only shuts the socket down (under conn.mu), which the loop sees as the end of the
// stream.
type loop struct {
	p    *Pool
	epfd int
	wake [2]int // pipe that interrupts epoll_wait on close
	buf  []byte
	dec  *decode.Decoder

	beat *health.Beat // nil without a health monitor

	mu     sync.Mutex
	conns  map[uint32]*conn
	nextID uint32
	quit   bool
	done   chan struct{}
}

const loopBuffer = 64 << 10

// loopWithin is how long an event loop may take to go round (it wakes at least four
// times a second) before the pool counts as stuck.
const loopWithin = 5 * time.Second

func newLoops(p *Pool, n int) ([]*loop, error) {
	loops := make([]*loop, 0, n)
	for range n {
		l, err := newLoop(p)
		if err != nil {
			for _, l := range loops {
				l.close()
			}
			return nil, err
		}
		loops = append(loops, l)
	}
	for i, l := range loops {
		if h := p.opts.Health; h != nil {
			l.beat = h.Beat(fmt.Sprintf("pool event loop %d", i+1), "turn", loopWithin)
		}
		go l.run()
	}
	return loops, nil
}

func newLoop(p *Pool) (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	l := &loop{p: p, epfd: epfd, buf: make([]byte, loopBuffer), dec: decode.New(), conns: map[uint32]*conn{}, done: make(chan struct{})}
	if err := syscall.Pipe2(l.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("pipe: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: 0} // id 0 is the wake pipe
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, l.wake[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(l.wake[0])
		syscall.Close(l.wake[1])
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return l, nil
}

// adopt takes the connection's socket over from the Go runtime.
func (l *loop) adopt(c *conn) error {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return nil // not a socket: stay in goroutine mode
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("adopt connection: %w", err)
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			dupErr = errno
			return
		}
		fd = int(r)
	}); err != nil {
		return fmt.Errorf("adopt connection: %w", err)
	}
	if dupErr != nil {
		return fmt.Errorf("adopt connection: %w", dupErr)
	}
	// The duplicate shares the socket, which the runtime made non-blocking.
	c.nc.Close()
	c.nc, c.fd, c.loop = nil, fd, l
	return nil
}

// add starts watching an adopted connection.
func (l *loop) add(c *conn) {
	c.dec = l.dec
	l.mu.Lock()
	if l.quit {
		l.mu.Unlock()
		c.close()
		c.a.ended(c.connectedAt, errStopped)
		return
	}
	l.nextID++
	if l.nextID == 0 {
		l.nextID = 1
	}
	c.id = l.nextID
	c.last = time.Now().UnixNano()
	l.conns[c.id] = c
	l.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.id)}
	c.mu.Lock()
	err := error(os.ErrClosed)
	if c.fd >= 0 {
		err = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev)
	}
	c.mu.Unlock()
	if err != nil {
		l.mu.Lock()
		delete(l.conns, c.id)
		l.mu.Unlock()
		c.close()
		c.a.ended(c.connectedAt, fmt.Errorf("epoll: %w", err))
	}
}

func (l *loop) run() {
	defer close(l.done)
	if l.beat != nil {
		defer l.beat.Stop()
	}
	events := make([]syscall.EpollEvent, 256)
	sweepEvery := min(250*time.Millisecond, l.p.opts.StallFloor/4)
	next := time.Now().Add(sweepEvery)
	busy := false
	for {
		// While there is work, poll without waiting: a wait blocks the thread, and the
		// loop then queues for a processor again behind every other goroutine (a
		// thousand stream clients' writers, say) before it reads anything.
		wait := time.Duration(0)
		if !busy {
			wait = max(time.Until(next), 0)
		}
		n, err := syscall.EpollWait(l.epfd, events, int(wait.Milliseconds()))
		busy = n > 0
		if l.beat != nil {
			l.beat.Tick()
		}
		if err != nil && err != syscall.EINTR {
			l.p.opts.Logger.Error("event loop", "error", err)
			n = 0
		}
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == 0 {
				if l.stopping() {
					l.closeAll()
					return
				}
				continue
			}
			l.mu.Lock()
			c := l.conns[uint32(ev.Fd)]
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

// read takes what the socket holds (up to the loop's buffer; epoll reports the socket
// again while more is waiting) and hands it to the stream's parser. It reports whether
// the socket had nothing to give.
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
		if err := c.feed(l.buf[:n]); err != nil {
			l.drop(c, err)
		}
	}
	return false
}

// sweep drops streams that showed no progress (no event, no comment) for longer than
// their agent's stall timeout. A stream whose bytes are waiting, unread because the loop
// fell behind, is read instead: it is not the agent that stalled, unless those bytes make
// no event either.
func (l *loop) sweep(now time.Time) {
	var late []*conn
	l.mu.Lock()
	for _, c := range l.conns {
		if time.Duration(now.UnixNano()-c.last) > c.a.stallTimeout() {
			late = append(late, c)
		}
	}
	l.mu.Unlock()
	for _, c := range late {
		empty := l.read(c)
		l.mu.Lock()
		_, open := l.conns[c.id]
		l.mu.Unlock()
		if open && (empty || time.Duration(time.Now().UnixNano()-c.last) > c.a.stallTimeout()) {
			l.drop(c, os.ErrDeadlineExceeded)
		}
	}
}

// drop stops watching a stream, closes it and reports why it ended.
func (l *loop) drop(c *conn, err error) {
	l.mu.Lock()
	delete(l.conns, c.id)
	l.mu.Unlock()
	c.mu.Lock()
	if c.fd >= 0 {
		_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
		closeFD(c.fd)
		c.fd = -1
	}
	c.mu.Unlock()
	c.a.ended(c.connectedAt, err)
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

// stop ends the loop (once every agent was stopped) and waits for it.
func (l *loop) stop() {
	l.mu.Lock()
	l.quit = true
	l.mu.Unlock()
	_, _ = syscall.Write(l.wake[1], []byte{1})
	<-l.done
	l.close()
}

func (l *loop) close() {
	syscall.Close(l.epfd)
	syscall.Close(l.wake[0])
	syscall.Close(l.wake[1])
}

func shutdownFD(fd int) { _ = syscall.Shutdown(fd, syscall.SHUT_RDWR) }

func closeFD(fd int) { _ = syscall.Close(fd) }
