package config

import (
	"fmt"
	"net"
	"net/url"
	"time"
)

func checkListen(key, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s: %q is not a host:port address: %w", key, addr, err)
	}
	return nil
}

func checkURL(key, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http or https URL", key, raw)
	}
	return nil
}

func checkRange(key string, d, lo, hi time.Duration) error {
	if d < lo || d > hi {
		return fmt.Errorf("%s: %v is outside the allowed range %v to %v", key, d, lo, hi)
	}
	return nil
}

func checkOneOf(key, value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return fmt.Errorf("%s: %q is not one of %q", key, value, allowed)
}

// InCluster reports whether the process runs in a Kubernetes pod.
func InCluster(getenv func(string) string) bool {
	return getenv("KUBERNETES_SERVICE_HOST") != "" && getenv("KUBERNETES_SERVICE_PORT") != ""
}
