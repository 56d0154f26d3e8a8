// Command faultline-demo is a real workload for trying faultline: a frontend calls a
// checkout service, which calls three flaky dependencies (payments, inventory,
// shipping), each hop over HTTP through a sony/gobreaker breaker reported to the local
// faultline agent with the agent/client package. A load generator drives the frontend;
// a control API changes how each dependency fails, so breakers open because calls
// really fail.
//
// --role says which of the services a process runs. With --role=all (the default, for
// `make run`) one process runs all five, each on a loopback listener of its own, the
// frontend and the control API on --listen. With --role=frontend, checkout, payments,
// inventory or shipping a process runs that service alone on --listen and calls the
// services after it at --checkout-url, --payments-url, --inventory-url and
// --shipping-url: one Deployment per service, as the Helm chart installs it. Either way
// the breakers are named after the service they call ("checkout" in the frontend;
// "payments", "inventory" and "shipping" in the checkout), so the aggregator merges the
// same breaker across the pods of a workload.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

func main() { os.Exit(run()) }

func run() int {
	cfg, err := LoadConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stdout, "Usage: faultline-demo [flags]\n\nEvery flag can also be set as FAULTLINE_<NAME> in the environment.\n\n")
		Usage(os.Stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "faultline-demo: invalid configuration:\n%v\n", err)
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "faultline-demo", Level: hclog.LevelFromString(cfg.LogLevel), Output: os.Stderr})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, log); err != nil {
		log.Error("demo failed", "error", err)
		return 1
	}
	return 0
}
