// Package command is what every faultline binary does around its own work: --version,
// the settings loaded from flags, environment and --config file (--help lists them; an
// invalid one is named, exit status 2), and the work run until SIGINT or SIGTERM (exit
// status 1 when it fails).
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/faultline-dev/faultline/internal/version"
)

// Main runs the binary called name and returns its exit status: load reads the settings
// from the arguments and the environment, usage lists the flags, run does the work.
func Main[C any](name string, load func(args []string, getenv func(string) string) (C, error), usage func(io.Writer), run func(context.Context, C) error) int {
	for _, arg := range os.Args[1:] {
		if arg == "--version" || arg == "-version" {
			fmt.Println(name, version.Version)
			return 0
		}
	}
	cfg, err := load(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Printf("Usage: %s [flags]\n\nEvery flag can also be set as FAULTLINE_<NAME> in the environment or as <name> in the --config file.\n\n", name)
		usage(os.Stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid configuration:\n%v\n", name, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
