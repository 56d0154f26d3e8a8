//go:build !linux

package pool

// Event loops use epoll; elsewhere every stream is read by a goroutine of its own.
type loop struct{}

func newLoops(*Pool, int) ([]*loop, error) { return nil, nil }
func (*loop) adopt(*conn) error            { return nil }
func (*loop) add(*conn)                    {}
func (*loop) stop()                        {}
func shutdownFD(int)                       {}
func closeFD(int)                          {}
