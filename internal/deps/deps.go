//go:build tools

// Package deps pins the modules the project's packages are being built on, so that
// `go mod tidy` keeps them while those packages are written.
package deps

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/go-logr/logr"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/hashicorp/go-hclog"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/common/expfmt"
	_ "github.com/shirou/gopsutil/v4/cpu"
	_ "github.com/shirou/gopsutil/v4/process"
	_ "github.com/sony/gobreaker/v2"
	_ "github.com/tmaxmax/go-sse"
	_ "k8s.io/api/core/v1"
	_ "k8s.io/client-go/kubernetes"
	_ "sigs.k8s.io/controller-runtime"
	_ "sigs.k8s.io/controller-runtime/pkg/envtest"
	_ "sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	_ "sigs.k8s.io/yaml"
)
