// Package config holds the settings of the faultline binaries and loads them in one
// order: defaults, then the YAML file named by --config, then FAULTLINE_* environment
// variables, then flags. Every setting has one name: flag --sample-interval, file key
// sample-interval, env FAULTLINE_SAMPLE_INTERVAL.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"sigs.k8s.io/yaml"

	"github.com/faultline-dev/faultline/internal/httpx"
)

// Common are the settings both binaries have.
type Common struct {
	ConfigFile string
	LogLevel   string
	LogFormat  string
	// HTTP listeners (internal/httpx).
	AllowedHosts   List  // names besides loopback and IP addresses a request's Host may be
	MaxBodyBytes   int64 // largest request body of a mutating endpoint
	MaxHeaderBytes int   // largest request line and headers
}

func (c *Common) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.ConfigFile, "config", c.ConfigFile, "YAML file with settings (keys are the flag names)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: trace, debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.Var(&c.AllowedHosts, "allowed-hosts", "host names, besides loopback and IP addresses, that requests may name in their Host header "+
		"(comma-separated; .example.com for a domain and its subdomains; * for any, which lets a web page read and write through DNS rebinding)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest request body a mutating endpoint takes")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", c.MaxHeaderBytes, "largest request line and headers taken")
}

func defaultCommon() Common {
	return Common{LogLevel: "info", LogFormat: "text", MaxBodyBytes: 64 << 10, MaxHeaderBytes: 16 << 10}
}

func (c Common) validate() []error {
	var errs []error
	if err := httpx.CheckHostList(c.AllowedHosts); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > 16<<20 {
		errs = append(errs, fmt.Errorf("max-body-bytes: %d is outside 1024 to 16777216", c.MaxBodyBytes))
	}
	if c.MaxHeaderBytes < 4<<10 || c.MaxHeaderBytes > 1<<20 {
		errs = append(errs, fmt.Errorf("max-header-bytes: %d is outside 4096 to 1048576", c.MaxHeaderBytes))
	}
	if hclog.LevelFromString(c.LogLevel) == hclog.NoLevel {
		errs = append(errs, fmt.Errorf("log-level: %q is not one of trace, debug, info, warn, error", c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log-format: %q is not one of text, json", c.LogFormat))
	}
	return errs
}

// Guard builds the HTTP guard of the binary's listeners from these settings.
func (c Common) Guard(server, token string, log hclog.Logger) *httpx.Guard {
	return httpx.New(httpx.Options{Server: server, AllowedHosts: c.AllowedHosts, Token: token,
		MaxBodyBytes: c.MaxBodyBytes, MaxHeaderBytes: c.MaxHeaderBytes, Logger: log})
}

// Logger builds the process logger these settings ask for.
func (c Common) Logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.LevelFromString(c.LogLevel),
		JSONFormat: c.LogFormat == "json",
		Output:     os.Stderr,
	})
}

// EnvName is the environment variable of a setting: sample-interval -> FAULTLINE_SAMPLE_INTERVAL.
func EnvName(key string) string {
	return "FAULTLINE_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// fileSection decodes a structured file key that has no flag (lists of rules, mappings).
type fileSection map[string]func(raw json.RawMessage) error

// load applies file, environment and flags to the settings bound on fs, collecting every
// problem rather than stopping at the first. It returns the file's parsed keys so that a
// caller can re-read them later.
func load(fs *flag.FlagSet, args []string, getenv func(string) string, sections fileSection) error {
	var errs []error
	path := configPath(args, getenv)
	if path != "" {
		errs = append(errs, loadFile(fs, path, sections)...)
	}
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s (env %s): %w", f.Name, env, err))
			}
		}
	})
	fs.SetOutput(discard{})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		errs = append(errs, err)
	} else if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	return errors.Join(errs...)
}

// printDefaults prints the flags bind defines, with their defaults: a binary's usage.
func printDefaults(name string, bind func(*flag.FlagSet), w io.Writer) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	bind(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// configPath finds --config before the flags are parsed, as the file comes first.
func configPath(args []string, getenv func(string) string) string {
	path := getenv(EnvName("config"))
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasValue {
			path = value
		} else if i+1 < len(args) {
			path = args[i+1]
		}
	}
	return path
}

func loadFile(fs *flag.FlagSet, path string, sections fileSection) []error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return []error{fmt.Errorf("config: %w", err)}
	}
	var keys map[string]json.RawMessage
	if err := yaml.Unmarshal(raw, &keys); err != nil {
		return []error{fmt.Errorf("config %s: %w", path, err)}
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var errs []error
	for _, key := range names {
		if decode, ok := sections[key]; ok {
			if err := decode(keys[key]); err != nil {
				errs = append(errs, fmt.Errorf("%s (file %s): %w", key, path, err))
			}
			continue
		}
		if key == "config" || fs.Lookup(key) == nil {
			errs = append(errs, fmt.Errorf("%s (file %s): unknown key", key, path))
			continue
		}
		value, err := scalar(keys[key])
		if err == nil {
			err = fs.Set(key, value)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (file %s): %w", key, path, err))
		}
	}
	return errs
}

// scalar turns a YAML value into the text a flag would get; lists become comma lists.
func scalar(raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case nil:
		return "", nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("list items must be strings, got %v", e)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("want a string, number, boolean or list of strings, got %s", raw)
}

// List is a comma-separated flag value.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

// Set replaces the list; empty items are dropped.
func (l *List) Set(s string) error {
	*l = nil
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}
