// Command faultline-injector adds the faultline agent to pods as they are created (a
// mutating admission webhook) and keeps the status of AgentProfile resources. Settings:
// flags, FAULTLINE_* environment variables or a YAML file (--config); the chart renders
// the file. See docs/kubernetes.md.
package main

import (
	"context"
	"os"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/injector"
	"github.com/faultline-dev/faultline/internal/command"
)

func main() {
	os.Exit(command.Main("faultline-injector", config.LoadInjector, config.InjectorUsage, func(ctx context.Context, cfg config.Injector) error {
		return injector.Run(ctx, cfg, injector.Options{})
	}))
}
