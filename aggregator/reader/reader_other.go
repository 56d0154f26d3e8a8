//go:build !unix

package reader

import (
	"errors"
	"net"
)

// The event loops read sockets by their descriptors, which only Unix systems have.

type loop struct{ poll *poller }

type poller struct{}

func (*poller) close() {}

func newLoop(*Reader, int) (*loop, error) {
	return nil, errors.New("reading agent streams needs a Unix system")
}

func (*loop) run()                 {}
func (*loop) stop()                {}
func (*loop) add(*conn)            {}
func (*conn) adopt(net.Conn) error { return nil }
func (*conn) pump(net.Conn) error  { return nil }
func shutdownFD(int)               {}
