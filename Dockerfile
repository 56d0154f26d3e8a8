# syntax=docker/dockerfile:1
#
# faultline's images, one final stage per binary:
#
#   docker build --target agent      --build-arg VERSION=v0.1.0 -t ghcr.io/faultline-dev/faultline-agent:v0.1.0 .
#   docker build --target aggregator --build-arg VERSION=v0.1.0 -t ghcr.io/faultline-dev/faultline-aggregator:v0.1.0 .
#   docker build --target demo       --build-arg VERSION=v0.1.0 -t ghcr.io/faultline-dev/faultline-demo:v0.1.0 .
#   docker build --target injector   --build-arg VERSION=v0.1.0 -t ghcr.io/faultline-dev/faultline-injector:v0.1.0 .
#
# (`make image` runs all four.) The build stage runs `make build`, the very command the
# project's machines build and test the binaries with, so the images hold what was tested:
# CGO_ENABLED=0, -trimpath, the version -ldflags and the agent's build tags (no HTTP/2)
# all come from the Makefile. The final stages are distroless static (no shell, no
# package manager, no libc), run as the numeric non-root user 65532 and write nothing to
# the root filesystem, so they run unchanged under readOnlyRootFilesystem and the
# "restricted" Pod Security profile.

ARG GO_VERSION=1.26.10
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
# faultline-check is the chart's helm test (an HTTP check; the image has no curl).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    export GOOS="${TARGETOS}" GOARCH="${TARGETARCH}" && \
    make build VERSION="${VERSION}" BIN=/out && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/faultline-check ./test/httpcheck

FROM ${BASE_IMAGE} AS agent
COPY --from=build /out/faultline-agent /faultline-agent
USER 65532:65532
# 9800: read API, stream, metrics, probes. The ingest API (9801) listens on loopback only.
EXPOSE 9800
ENTRYPOINT ["/faultline-agent"]

FROM ${BASE_IMAGE} AS demo
COPY --from=build /out/faultline-demo /faultline-demo
USER 65532:65532
ENTRYPOINT ["/faultline-demo"]

FROM ${BASE_IMAGE} AS injector
COPY --from=build /out/faultline-injector /faultline-injector
USER 65532:65532
# 9443: the admission webhook (TLS). 8081: /healthz, /readyz, /metrics.
EXPOSE 9443 8081
ENTRYPOINT ["/faultline-injector"]

# Last, so that a plain `docker build .` builds the aggregator.
FROM ${BASE_IMAGE} AS aggregator
COPY --from=build /out/faultline-aggregator /faultline-aggregator
COPY --from=build /out/faultline-check /faultline-check
USER 65532:65532
# 3001: dashboard, API, stream. 8081: /healthz, /readyz, /metrics.
EXPOSE 3001 8081
ENTRYPOINT ["/faultline-aggregator"]
