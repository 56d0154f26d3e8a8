// Package source holds the breaker sources an agent can read besides the push API: a
// Prometheus scrape (resilience4j, Envoy, generic mappings) and a hystrix.stream. Each
// source writes into the agent's breaker registry and reports its own health.
package source

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/agent/breaker"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Source reads breaker state from one place in the application.
type Source interface {
	// Name is the source's name in breaker reports and the sample ("prometheus").
	Name() string
	// Run reads until ctx is done, writing into reg. It returns nothing: failures are
	// reported through Status, never by stopping.
	Run(ctx context.Context, reg *breaker.Registry)
	// Status is the source's health for the sample, e.g. "last scrape 1.2 s ago, 14
	// breakers" or "unavailable: connection refused".
	Status() wire.Collector
}

// FromConfig builds the sources the configuration asks for.
func FromConfig(cfg config.Agent, log hclog.Logger) []Source {
	return nil
}
