//go:build unix && !linux

package reader

import (
	"sync"
	"syscall"
	"time"
)

// poller finds the loop's descriptors with bytes by trying each in turn, every few
// milliseconds. It stands in for epoll where there is none: it costs a system call per
// stream and turn, which a laptop's few agents never notice; a fleet is read on Linux.
type poller struct {
	mu    sync.Mutex
	fds   map[int]uint32
	woken chan struct{}
	peek  [1]byte
}

// pollEvery is how long a wait lasts at most before every descriptor is tried again.
const pollEvery = 5 * time.Millisecond

func newPoller() (*poller, error) {
	return &poller{fds: map[int]uint32{}, woken: make(chan struct{}, 1)}, nil
}

func (p *poller) add(fd int, id uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fds[fd] = id
	return nil
}

func (p *poller) remove(fd int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.fds, fd)
}

func (p *poller) wait(timeout time.Duration, ready []uint32) ([]uint32, error) {
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		for fd, id := range p.fds {
			n, _, err := syscall.Recvfrom(fd, p.peek[:], syscall.MSG_PEEK)
			if n > 0 || (err != syscall.EAGAIN && err != syscall.EINTR) {
				ready = append(ready, id) // bytes, the end, or an error to read
			}
		}
		p.mu.Unlock()
		if len(ready) > 0 || !time.Now().Before(deadline) {
			return ready, nil
		}
		select {
		case <-p.woken:
			return ready, nil
		case <-time.After(min(pollEvery, time.Until(deadline))):
		}
	}
}

func (p *poller) wake() {
	select {
	case p.woken <- struct{}{}:
	default:
	}
}

func (p *poller) close() {}
