// Command fleet is faultline's fleet benchmark (make bench-fleet): N simulated agents
// (real HTTP SSE streams, one listener per agent on its own 127.x.y.z address, each
// sending a realistic wire.Snapshot metrics event with 10 breakers every second, plus
// breaker transitions) against the real aggregator process with M SSE clients. It
// reports the aggregator's CPU and RSS (from /proc) per agent, broadcast latency (the
// metrics event's time to a client receiving it) and breaker flip latency (the agent
// emitting a transition to a client receiving it), and, from the same run, a baseline:
// a bare Go client reading the same agent streams and discarding them.
//
// With -role=compare (make bench-fleet-prometheus) it puts the peer in the same run:
// against the same simulated agents, which also serve the agent's /metrics, it measures
// the aggregator reading their streams and, at the same time, Prometheus scraping them
// every second, and reports each one's CPU and RSS per agent sample and the age of the
// samples its consumer sees; then, as the baseline of each, bare Go readers of the same
// data.
//
// One binary plays every role: the orchestrator (default) starts simulator processes
// (-role=sim) and the baseline readers (-role=baseline, -role=scrapers) by running
// itself again.
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.role, "role", "run", "run (orchestrate), compare (orchestrate the aggregator against Prometheus), sim, baseline, clients or scrapers")
	flag.IntVar(&o.agents, "agents", 10000, "simulated agents")
	flag.IntVar(&o.clients, "clients", 1000, "SSE clients of the aggregator")
	flag.IntVar(&o.perSim, "agents-per-sim", 4000, "agents per simulator process (each agent holds two file descriptors)")
	flag.Float64Var(&o.flips, "flips", 20, "breaker transitions per second over the whole fleet")
	flag.DurationVar(&o.warmup, "warmup", 15*time.Second, "time after everything connected before measuring (16m reaches the history's steady state: 15 minutes of one-second points)")
	flag.DurationVar(&o.baseWarmup, "baseline-warmup", 15*time.Second, "time after the baseline connected before measuring it")
	flag.DurationVar(&o.measure, "measure", 30*time.Second, "measurement window")
	flag.StringVar(&o.aggregator, "aggregator", "bin/faultline-aggregator", "aggregator binary")
	flag.IntVar(&o.port, "port", 19800, "port every simulated agent listens on (each on its own address)")
	flag.IntVar(&o.first, "first", 0, "sim: index of the first agent")
	flag.IntVar(&o.count, "count", 0, "sim: number of agents")
	flag.StringVar(&o.out, "out", "", "also write the report (markdown) to this file")
	flag.BoolVar(&o.skipBaseline, "skip-baseline", false, "do not run the baseline")
	flag.StringVar(&o.url, "url", "", "clients: the stream URL")
	flag.IntVar(&o.nice, "clients-nice", 10, "niceness of the SSE clients' process (so that the load generator yields to the aggregator)")
	flag.StringVar(&o.aggEnv, "aggregator-env", "", "extra environment for the aggregator, comma-separated (e.g. GOGC=50)")
	flag.StringVar(&o.profile, "profile", "", "save the aggregator's CPU profile of the measurement window and its heap and goroutine profiles at the end into this directory")
	flag.StringVar(&o.prometheus, "prometheus", "bin/prometheus", "compare: Prometheus binary")
	flag.BoolVar(&o.ageProbe, "age-probe", false, "sim: agents of namespace "+probeNamespace+" report their sample time as their working set (see ageMarker)")
	flag.Parse()
	raiseFDLimit()
	var err error
	switch o.role {
	case "run":
		err = run(o)
	case "sim":
		err = simulate(o)
	case "baseline":
		err = baseline(o)
	case "clients":
		err = clients(o)
	case "compare":
		err = compare(o)
	case "scrapers":
		err = scrapers(o)
	default:
		err = fmt.Errorf("unknown role %q", o.role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fleet %s: %v\n", o.role, err)
		os.Exit(1)
	}
}

type options struct {
	role                    string
	agents, clients, perSim int
	flips                   float64
	warmup, measure         time.Duration
	baseWarmup              time.Duration
	aggregator, out         string
	port, first, count      int
	skipBaseline            bool
	url                     string
	aggEnv                  string
	profile                 string
	nice                    int
	prometheus              string
	ageProbe                bool
}

// raiseFDLimit lifts the soft limit on open files to the hard limit: every agent
// connection is a file descriptor on both ends.
func raiseFDLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// agentAddr is agent i's address: 127.1.x.y, one per agent.
func agentAddr(i, port int) string {
	return fmt.Sprintf("127.1.%d.%d:%d", i/250, i%250+1, port)
}
