// Package backoff is the one retry schedule of faultline: exponential from a base,
// capped, with jitter, so that many clients that failed together do not retry together.
// The aggregator's agent connections, its Alertmanager delivery and the agent's hystrix
// stream all retry by it.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is a retry schedule: Base doubled for each failed attempt, up to Max.
type Policy struct {
	Base, Max time.Duration
}

// Delay is the wait before retry attempt n (0 after the first failure): Base doubled n
// times and capped at Max, drawn at random from the upper half of that step.
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	for i := 0; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	return d/2 + rand.N(d/2+1)
}
