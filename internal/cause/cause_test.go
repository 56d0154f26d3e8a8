package cause

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "connection refused"},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "connection reset"},
		{syscall.EHOSTUNREACH, "host unreachable"},
		{&net.DNSError{Name: "cart.shop", Err: "no such host"}, "cannot resolve cart.shop: no such host"},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), "timed out"},
		{os.ErrDeadlineExceeded, "timed out"},
		{fmt.Errorf("scrape http://10.0.0.7:9090/metrics: %w", Status(503)), "HTTP 503 Service Unavailable"},
		{errors.New("HTTP 404 from /v1/stream"), "HTTP 404 from /v1/stream"},
	} {
		if got := Of(tt.err); got != tt.want {
			t.Errorf("Of(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// A real refused connection reads as users expect.
func TestOfRefusedDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = net.Dial("tcp", addr)
	if got := Of(err); got != "connection refused" {
		t.Errorf("Of(%v) = %q", err, got)
	}
}
