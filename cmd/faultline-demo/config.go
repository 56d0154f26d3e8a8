package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/config"
)

// Config is the demo's settings. Like faultline's own binaries, every flag can also be
// set as FAULTLINE_<NAME> in the environment (flags win).
type Config struct {
	Listen       string        // frontend, control API and probes
	IngestURL    string        // the agent's ingest API
	LoadRPS      float64       // requests per second the load generator sends to the frontend
	CallTimeout  time.Duration // each call to a dependency
	BreakerOpen  time.Duration // how long a breaker stays open before trying again
	MinRequests  uint          // calls in the window before a breaker may trip
	FailureRatio float64       // share of failed calls in the window that trips a breaker (percent)
	LogLevel     string
	Dependencies map[string]Pattern
}

// dependencyNames are the flaky services the checkout calls.
var dependencyNames = []string{"payments", "inventory", "shipping"}

// defaultPatterns give each dependency some realistic trouble to begin with.
var defaultPatterns = map[string]string{
	"payments":  "steady,errors=2%,latency=25ms",
	"inventory": "steady,errors=0.5%,latency=8ms",
	"shipping":  "bursts,errors=70%,every=60s,for=8s,latency=15ms",
}

// flags binds c's settings to a flag set; specs receive the dependencies' patterns.
func (c *Config) flags() (*flag.FlagSet, map[string]*string) {
	fs := flag.NewFlagSet("faultline-demo", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", ":9810", "address of the frontend, the control API and /healthz")
	fs.StringVar(&c.IngestURL, "ingest-url", "http://127.0.0.1:9801", "the faultline agent's ingest API")
	fs.Float64Var(&c.LoadRPS, "load-rps", 20, "requests per second sent to the frontend (0: no load)")
	fs.DurationVar(&c.CallTimeout, "call-timeout", 300*time.Millisecond, "timeout of each call to a dependency")
	fs.DurationVar(&c.BreakerOpen, "breaker-open-timeout", 5*time.Second, "how long a breaker stays open before letting trial calls through")
	fs.UintVar(&c.MinRequests, "breaker-min-requests", 10, "calls in the 10 s window before a breaker may trip")
	fs.Float64Var(&c.FailureRatio, "breaker-failure-percent", 50, "failed calls in the window, in percent, that trip a breaker")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	specs := map[string]*string{}
	for _, name := range dependencyNames {
		specs[name] = fs.String(name, defaultPatterns[name], "failure pattern of the "+name+" dependency, e.g. steady,errors=2%,latency=20ms or outage")
	}
	return fs, specs
}

// LoadConfig reads flags from args and FAULTLINE_* variables through getenv, and
// reports every problem, each naming its setting.
func LoadConfig(args []string, getenv func(string) string) (Config, error) {
	c := Config{Dependencies: map[string]Pattern{}}
	fs, specs := c.flags()
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
	if u, err := url.Parse(c.IngestURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("ingest-url: %q is not an http URL", c.IngestURL))
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
	fs, _ := c.flags()
	fs.SetOutput(w)
	fs.PrintDefaults()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
