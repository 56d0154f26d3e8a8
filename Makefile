# faultline: `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PKG := github.com/faultline-dev/faultline
LDFLAGS := -s -w -X $(PKG)/internal/version.Version=$(VERSION)
GOBUILD := CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)"
# Build tags of the agent: it serves plain HTTP/1.1 and scrapes pod-local endpoints, so
# it leaves out net/http's bundled HTTP/2. internal/testbin builds the tests' and
# benchmarks' agent with the same tags; test/image fails if the two disagree.
AGENT_TAGS := nethttpomithttp2
BIN := $(CURDIR)/bin
HELM_VERSION := v4.3.1
ALERTMANAGER_VERSION := v0.27.0
# Prometheus: the peer of the fleet benchmark's side-by-side comparison (hack/fleet -role=compare);
# hack/fleet's tests run it against simulated agents, so make tools installs it.
PROMETHEUS_VERSION := v0.316.0
KIND_VERSION := v0.33.0
CONTROLLER_TOOLS_VERSION := v0.23.0
# What make generate writes, from the types in injector/api and internal/wire.
GENERATED = charts/faultline/crds/*.yaml injector/api/*/zz_generated.deepcopy.go aggregator/decode/zz_generated.decode.go
STATICCHECK_VERSION := v0.8.2
GOVULNCHECK_VERSION := v1.10.0
# The Go vulnerability database, as golang.org/x/vulndb publishes it through the module
# proxy (vuln.go.dev is not reachable from every build machine): govulncheck reads an
# index built from its OSV files. Bump it to learn of newer vulnerabilities.
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/faultline/vulndb/$(VULNDB_VERSION)
IMAGE_REPO ?= ghcr.io/faultline-dev
IMAGE_TAG ?= $(VERSION)
KIND_CLUSTER ?= faultline
export PATH := $(BIN):$(PATH)
# Build, test and check with the toolchain go.mod names (a machine may pin its own).
export GOTOOLCHAIN ?= auto

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the binaries into bin/
	@mkdir -p $(BIN)
	$(GOBUILD) -tags "$(AGENT_TAGS)" -o $(BIN)/ ./cmd/faultline-agent
	$(GOBUILD) -o $(BIN)/ $(filter-out ./cmd/faultline-agent,$(patsubst %/,./%,$(wildcard cmd/*/)))

.PHONY: run
run: build ## Run faultline on this machine: aggregator, an agent and the demo; Ctrl-C stops them
	@hack/run.sh

.PHONY: test
test: tools envtest-assets ## Run every test (installs helm, alertmanager, prometheus and the envtest binaries if missing)
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" go test -race -timeout 30m ./...

.PHONY: generate
generate: $(BIN)/controller-gen ## Generate the AgentProfile CRD (charts/faultline/crds) and deep-copy code from injector/api, the aggregator's decoders from internal/wire
	controller-gen object paths=./injector/api/...
	controller-gen crd paths=./injector/api/... output:crd:artifacts:config=charts/faultline/crds
	go generate ./aggregator/decode

.PHONY: verify
verify: $(BIN)/controller-gen $(BIN)/staticcheck $(BIN)/govulncheck $(BIN)/helm $(VULNDB)/index/db.json ## Check formatting, vet and staticcheck (all build tags), go.mod tidiness, that generated files are current, known vulnerabilities (govulncheck), the chart (helm lint --strict)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	go vet ./...
	go vet -tags e2e ./...
	@cp go.mod /tmp/faultline-go.mod.bak && cp go.sum /tmp/faultline-go.sum.bak
	@go mod tidy && if ! git diff --quiet -- go.mod go.sum; then git diff -- go.mod go.sum; cp /tmp/faultline-go.mod.bak go.mod; cp /tmp/faultline-go.sum.bak go.sum; echo "go.mod is not tidy: run go mod tidy"; exit 1; fi
	@before="$$(cat $(GENERATED) | sha256sum)"; $(MAKE) --no-print-directory generate >/dev/null; \
	  if [ "$$before" != "$$(cat $(GENERATED) | sha256sum)" ]; then git diff -- $(GENERATED); echo "generated files were not current: make generate rewrote them"; exit 1; fi
	staticcheck -tags e2e ./...
	govulncheck -db file://$(VULNDB) ./...
	helm lint --strict charts/faultline

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZ_TIME each (default 10s) and print the executions of each
	@hack/fuzz.sh

.PHONY: bench
bench: ## Run the Go benchmarks
	go test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-fleet
bench-fleet: build ## Fleet benchmark: 10,000 simulated agents and 1,000 SSE clients against the real aggregator (FLEET_ARGS to change)
	go run ./hack/fleet -aggregator $(BIN)/faultline-aggregator $(FLEET_ARGS)

.PHONY: bench-fleet-prometheus
bench-fleet-prometheus: build $(BIN)/prometheus ## Fleet benchmark against Prometheus: the aggregator and Prometheus on the same simulated agents, side by side (FLEET_ARGS, e.g. -agents=1000)
	go run ./hack/fleet -role=compare -aggregator $(BIN)/faultline-aggregator -prometheus $(BIN)/prometheus -warmup=60s -measure=90s $(FLEET_ARGS)

.PHONY: tools
tools: $(BIN)/helm $(BIN)/alertmanager $(BIN)/prometheus $(BIN)/staticcheck $(BIN)/govulncheck $(VULNDB)/index/db.json ## Install the test and check tools into bin/ (and the vulnerability database into the cache)

$(BIN)/helm:
	GOBIN=$(BIN) go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)

$(BIN)/controller-gen:
	GOBIN=$(BIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

$(BIN)/alertmanager:
	GOBIN=$(BIN) go install github.com/prometheus/alertmanager/cmd/alertmanager@$(ALERTMANAGER_VERSION)

$(BIN)/prometheus:
	GOBIN=$(BIN) go install github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(BIN)/govulncheck:
	GOBIN=$(BIN) go install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

$(BIN)/indexdb:
	GOBIN=$(BIN) go install golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION)

$(VULNDB)/index/db.json: $(BIN)/indexdb
	@rm -rf $(VULNDB).tmp && mkdir -p $(dir $(VULNDB))
	indexdb -vulns "$$(go mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p')/data/osv" -out $(VULNDB).tmp
	@rm -rf $(VULNDB) && mv $(VULNDB).tmp $(VULNDB)

.PHONY: image
image: ## Build the agent, aggregator, demo and injector images (needs a Docker engine; IMAGE_REPO, IMAGE_TAG)
	@VERSION=$(VERSION) IMAGE_REPO=$(IMAGE_REPO) IMAGE_TAG=$(IMAGE_TAG) hack/image.sh

.PHONY: kind-up
kind-up: $(BIN)/helm $(BIN)/kind image ## Create the kind cluster (hack/kind.yaml), load the images, install the chart with the demo
	@KIND_CLUSTER=$(KIND_CLUSTER) IMAGE_REPO=$(IMAGE_REPO) IMAGE_TAG=$(IMAGE_TAG) hack/kind-up.sh

.PHONY: kind-down
kind-down: $(BIN)/kind ## Delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

.PHONY: cluster-up
cluster-up: tools ## Start a real single-node cluster on this machine without Docker (root; hack/cluster/), install the chart with the demo
	@VERSION=$(VERSION) hack/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the cluster of cluster-up and remove everything it made
	@hack/cluster/down.sh

.PHONY: test-cluster
test-cluster: tools ## cluster-up, the e2e suite against it, cluster-down (always)
	@VERSION=$(VERSION) hack/cluster/test.sh

.PHONY: test-e2e
test-e2e: ## Run the end-to-end tests against the current kubeconfig's cluster (after make kind-up)
	go test -tags e2e -count=1 -timeout 10m -v ./test/e2e/...

$(BIN)/kind:
	GOBIN=$(BIN) go install sigs.k8s.io/kind@$(KIND_VERSION)

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver and etcd for envtest into ~/.cache/faultline/envtest (about 6 min the first time)
	@hack/envtest-assets.sh >/dev/null
