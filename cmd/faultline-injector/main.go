// Command faultline-injector adds the faultline agent to pods as they are created (a
// mutating admission webhook) and keeps the status of AgentProfile resources. Settings:
// flags, FAULTLINE_* environment variables or a YAML file (--config); the chart renders
// the file. See docs/kubernetes.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/injector"
	"github.com/faultline-dev/faultline/internal/version"
)

func main() {
	for _, arg := range os.Args[1:] {
		if arg == "--version" || arg == "-version" {
			fmt.Println("faultline-injector", version.Version)
			return
		}
	}
	cfg, err := config.LoadInjector(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "Usage: faultline-injector [flags]")
		config.InjectorUsage(os.Stderr)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "faultline-injector: invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := injector.Run(ctx, cfg, injector.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "faultline-injector: %v\n", err)
		os.Exit(1)
	}
}
