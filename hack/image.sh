#!/usr/bin/env bash
# Builds faultline's four images (targets agent, aggregator, demo and injector of the
# Dockerfile)
# with a Docker engine. Called by `make image`, which sets:
#   VERSION     version stamped into the binaries (git describe)
#   IMAGE_REPO  image name prefix, e.g. ghcr.io/faultline-dev
#   IMAGE_TAG   tag of the images
#   DOCKER      docker CLI (default docker; podman works too)
set -euo pipefail
cd "$(dirname "$0")/.."

: "${VERSION:?}" "${IMAGE_REPO:?}" "${IMAGE_TAG:?}"
docker="${DOCKER:-docker}"

if ! command -v "${docker}" >/dev/null 2>&1; then
  echo "make image: '${docker}' is not installed; building the images needs a container engine (Docker, or DOCKER=podman)." >&2
  exit 1
fi
if ! "${docker}" info >/dev/null 2>&1; then
  echo "make image: no container engine answers ('${docker} info' failed): start Docker (or set DOCKER=podman) and retry." >&2
  echo "            The binaries themselves build without one: make build." >&2
  exit 1
fi

for target in agent aggregator demo injector; do
  image="${IMAGE_REPO}/faultline-${target}:${IMAGE_TAG}"
  echo "building ${image}" >&2
  "${docker}" build --target "${target}" --build-arg VERSION="${VERSION}" -t "${image}" .
done
