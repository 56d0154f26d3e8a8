package reader

import (
	"fmt"
	"syscall"
	"time"
)

// poller waits until some of the loop's descriptors have bytes, with epoll.
type poller struct {
	epfd   int
	wakeFD [2]int // pipe that interrupts a wait
	events []syscall.EpollEvent
}

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	p := &poller{epfd: epfd, events: make([]syscall.EpollEvent, 256)}
	if err := syscall.Pipe2(p.wakeFD[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("pipe: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: 0} // id 0 is the wake pipe
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wakeFD[0], &ev); err != nil {
		p.close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return p, nil
}

// add watches fd, reported as id (never 0).
func (p *poller) add(fd int, id uint32) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(id)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
}

// remove stops watching fd.
func (p *poller) remove(fd int) { _ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil) }

// wait appends the ids of the descriptors with bytes (or an end) to ready, waiting up to
// timeout for one; wake ends a wait early.
func (p *poller) wait(timeout time.Duration, ready []uint32) ([]uint32, error) {
	n, err := syscall.EpollWait(p.epfd, p.events, int(timeout.Milliseconds()))
	if err != nil && err != syscall.EINTR {
		return ready, fmt.Errorf("epoll wait: %w", err)
	}
	for _, ev := range p.events[:max(n, 0)] {
		if ev.Fd == 0 {
			var b [64]byte
			_, _ = syscall.Read(p.wakeFD[0], b[:])
			continue
		}
		ready = append(ready, uint32(ev.Fd))
	}
	return ready, nil
}

// wake ends the current or next wait.
func (p *poller) wake() { _, _ = syscall.Write(p.wakeFD[1], []byte{1}) }

func (p *poller) close() {
	syscall.Close(p.epfd)
	syscall.Close(p.wakeFD[0])
	syscall.Close(p.wakeFD[1])
}
