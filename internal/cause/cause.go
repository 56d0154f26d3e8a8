// Package cause is the one mapping of faultline from a failed connection or read to the
// short reason users see: the aggregator's agent states and the agent's breaker sources
// both show it ("unavailable: connection refused").
package cause

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
)

// Status is an HTTP answer other than success, as a cause: "HTTP 503 Service Unavailable".
type Status int

func (s Status) Error() string { return fmt.Sprintf("HTTP %d %s", int(s), http.StatusText(int(s))) }

// Of returns the reason err stands for: "connection refused", "connection reset", "host
// unreachable", "timed out", "cannot resolve <name>: <why>", the HTTP status it wraps, or
// err's own text.
func Of(err error) string {
	var dns *net.DNSError
	var status Status
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &status):
		return status.Error()
	case errors.As(err, &dns):
		return "cannot resolve " + dns.Name + ": " + dns.Err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	}
	return err.Error()
}
