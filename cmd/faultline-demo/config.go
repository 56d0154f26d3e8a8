package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/config"
)

// Config is the demo's settings. Like faultline's own binaries, every flag can also be
// set as FAULTLINE_<NAME> in the environment (flags win).
type Config struct {
	Role         string            // RoleAll, or the one service this process serves
	Listen       string            // the role's service, the control API and probes
	IngestURL    string            // the agent's ingest API
	PeerURLs     map[string]string // base URL of each service the role calls over the network, by service name
	LoadRPS      float64           // requests per second the load generator sends to the frontend
	CallTimeout  time.Duration     // each call to a dependency
	BreakerOpen  time.Duration     // how long a breaker stays open before trying again
	MinRequests  uint              // calls in the window before a breaker may trip
	FailureRatio float64           // share of failed calls in the window that trips a breaker (percent)
	LogLevel     string
	Dependencies map[string]Pattern
}

// RoleAll runs every service in one process, wired over loopback listeners.
const RoleAll = "all"

// serviceNames are the demo's services, callers before the services they call. Each is
// a --role of its own.
var serviceNames = []string{"frontend", "checkout", "payments", "inventory", "shipping"}

// dependencyNames are the flaky services the checkout calls.
var dependencyNames = []string{"payments", "inventory", "shipping"}

// calls are the services each service calls. Every call goes through a breaker named
// after the service called, in whichever process the caller runs, so the breakers of
// one workload's pods have the same names and the aggregator merges them.
var calls = map[string][]string{
	"frontend": {"checkout"},
	"checkout": {"inventory", "payments", "shipping"},
}

// callerOf is the service that calls name ("" for the frontend).
func callerOf(name string) string {
	for caller, callees := range calls {
		if slices.Contains(callees, name) {
			return caller
		}
	}
	return ""
}

// services are the services a process of this role serves, the services called before
// their callers: the last one is served on --listen, the others (role all) on loopback
// listeners of their own.
func (c Config) services() []string {
	if c.Role != RoleAll {
		return []string{c.Role}
	}
	out := slices.Clone(serviceNames)
	slices.Reverse(out)
	return out
}

// defaultPatterns give each dependency some realistic trouble to begin with.
var defaultPatterns = map[string]string{
	"payments":  "steady,errors=2%,latency=25ms",
	"inventory": "steady,errors=0.5%,latency=8ms",
	"shipping":  "bursts,errors=70%,every=60s,for=8s,latency=15ms",
}

// flags binds c's settings to a flag set; specs receive the dependencies' patterns.
func (c *Config) flags() (fs *flag.FlagSet, specs, peers map[string]*string) {
	fs = flag.NewFlagSet("faultline-demo", flag.ContinueOnError)
	fs.StringVar(&c.Role, "role", RoleAll, "the service to run: "+RoleAll+" (every service in this process) or one of "+strings.Join(serviceNames, ", "))
	fs.StringVar(&c.Listen, "listen", ":9810", "address of the role's service (the frontend for role all), the control API and /healthz")
	fs.StringVar(&c.IngestURL, "ingest-url", "http://127.0.0.1:9801", "the faultline agent's ingest API")
	peers = map[string]*string{}
	for _, name := range serviceNames {
		if caller := callerOf(name); caller != "" {
			peers[name] = fs.String(name+"-url", "", "base URL of the "+name+" service, e.g. http://faultline-demo-"+name+":9810 (required with --role="+caller+", the role that calls it)")
		}
	}
	fs.Float64Var(&c.LoadRPS, "load-rps", 20, "requests per second sent to the frontend, by the roles that serve it (all, frontend); 0: no load")
	fs.DurationVar(&c.CallTimeout, "call-timeout", 300*time.Millisecond, "timeout of each call to a dependency")
	fs.DurationVar(&c.BreakerOpen, "breaker-open-timeout", 5*time.Second, "how long a breaker stays open before letting trial calls through")
	fs.UintVar(&c.MinRequests, "breaker-min-requests", 10, "calls in the 10 s window before a breaker may trip")
	fs.Float64Var(&c.FailureRatio, "breaker-failure-percent", 50, "failed calls in the window, in percent, that trip a breaker")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	specs = map[string]*string{}
	for _, name := range dependencyNames {
		specs[name] = fs.String(name, defaultPatterns[name], "failure pattern of the "+name+" dependency (roles all and "+name+"), e.g. steady,errors=2%,latency=20ms or outage")
	}
	return fs, specs, peers
}

// LoadConfig reads flags from args and FAULTLINE_* variables through getenv, and
// reports every problem, each naming its setting.
func LoadConfig(args []string, getenv func(string) string) (Config, error) {
	c := Config{Dependencies: map[string]Pattern{}, PeerURLs: map[string]string{}}
	fs, specs, peers := c.flags()
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(config.EnvName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s (env %s): %w", f.Name, config.EnvName(f.Name), err))
			}
		}
	})
	fs.SetOutput(discard{})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		errs = append(errs, err)
	}
	for _, name := range dependencyNames {
		p, err := ParsePattern(*specs[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		c.Dependencies[name] = p
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q is not a host:port address", c.Listen))
	}
	if !isHTTPURL(c.IngestURL) {
		errs = append(errs, fmt.Errorf("ingest-url: %q is not an http URL", c.IngestURL))
	}
	roleOK := c.Role == RoleAll || slices.Contains(serviceNames, c.Role)
	if !roleOK {
		errs = append(errs, fmt.Errorf("role: %q is not one of %s, %s", c.Role, RoleAll, strings.Join(serviceNames, ", ")))
	}
	for _, name := range serviceNames {
		raw, ok := peers[name]
		if !ok {
			continue
		}
		setting, caller := name+"-url", callerOf(name)
		switch {
		case *raw == "":
			if c.Role == caller {
				errs = append(errs, fmt.Errorf("%s: required with --role=%s: the base URL of the %s service, e.g. http://faultline-demo-%s:9810", setting, caller, name, name))
			}
		case !isHTTPURL(*raw) || strings.ContainsAny(*raw, "?#"):
			errs = append(errs, fmt.Errorf("%s: %q is not an http URL (scheme http or https, a host, no query)", setting, *raw))
		case c.Role == RoleAll:
			errs = append(errs, fmt.Errorf("%s: --role=%s serves %s itself; the URL is only for --role=%s", setting, RoleAll, name, caller))
		case roleOK && c.Role != caller:
			errs = append(errs, fmt.Errorf("%s: --role=%s does not call %s; the URL is only for --role=%s", setting, c.Role, name, caller))
		default:
			c.PeerURLs[name] = strings.TrimSuffix(*raw, "/")
		}
	}
	if c.LoadRPS < 0 || c.LoadRPS > 10000 {
		errs = append(errs, fmt.Errorf("load-rps: %v is not between 0 and 10000", c.LoadRPS))
	}
	if c.CallTimeout < time.Millisecond || c.CallTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("call-timeout: %v is not between 1ms and 1m", c.CallTimeout))
	}
	if c.BreakerOpen < 10*time.Millisecond || c.BreakerOpen > 10*time.Minute {
		errs = append(errs, fmt.Errorf("breaker-open-timeout: %v is not between 10ms and 10m", c.BreakerOpen))
	}
	if hclog.LevelFromString(c.LogLevel) == hclog.NoLevel {
		errs = append(errs, fmt.Errorf("log-level: %q is not one of trace, debug, info, warn, error", c.LogLevel))
	}
	if c.MinRequests < 1 {
		errs = append(errs, errors.New("breaker-min-requests: must be at least 1"))
	}
	if c.FailureRatio <= 0 || c.FailureRatio > 100 {
		errs = append(errs, fmt.Errorf("breaker-failure-percent: %v is not a percentage above 0", c.FailureRatio))
	}
	return c, errors.Join(errs...)
}

// Usage prints the flags and their defaults.
func Usage(w io.Writer) {
	var c Config
	fs, _, _ := c.flags()
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// isHTTPURL reports whether s is an absolute http or https URL with a host.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
