#!/usr/bin/env bash
# Creates the kind cluster of hack/kind.yaml if it is absent, loads the images `make image`
# built, installs the chart with the demo and waits for the rollout. Called by
# `make kind-up`, which sets KIND_CLUSTER, IMAGE_REPO and IMAGE_TAG and puts bin/ (kind,
# helm) first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${KIND_CLUSTER:?}" "${IMAGE_REPO:?}" "${IMAGE_TAG:?}"
namespace="${FAULTLINE_NAMESPACE:-faultline}"
release="${FAULTLINE_RELEASE:-faultline}"

for tool in kind helm kubectl; do
  command -v "${tool}" >/dev/null 2>&1 || { echo "make kind-up: ${tool} not found on PATH" >&2; exit 1; }
done

if kind get clusters 2>/dev/null | grep -qx "${KIND_CLUSTER}"; then
  echo "kind cluster ${KIND_CLUSTER} exists" >&2
else
  kind create cluster --name "${KIND_CLUSTER}" --config hack/kind.yaml --wait 120s
fi
context="kind-${KIND_CLUSTER}"

for target in agent aggregator demo injector; do
  kind load docker-image --name "${KIND_CLUSTER}" "${IMAGE_REPO}/faultline-${target}:${IMAGE_TAG}"
done

kubectl --context "${context}" create namespace "${namespace}" --dry-run=client -o yaml |
  kubectl --context "${context}" apply -f -
kubectl --context "${context}" label --overwrite namespace "${namespace}" \
  pod-security.kubernetes.io/enforce=restricted

# --wait=watcher waits until every Deployment has rolled out (the demo shows data within
# a minute of that).
helm upgrade --install "${release}" charts/faultline \
  --kube-context "${context}" --namespace "${namespace}" \
  --values hack/kind-values.yaml \
  --set aggregator.image.repository="${IMAGE_REPO}/faultline-aggregator" \
  --set aggregator.image.tag="${IMAGE_TAG}" \
  --set agent.image.repository="${IMAGE_REPO}/faultline-agent" \
  --set agent.image.tag="${IMAGE_TAG}" \
  --set demo.image.repository="${IMAGE_REPO}/faultline-demo" \
  --set demo.image.tag="${IMAGE_TAG}" \
  --set injector.image.repository="${IMAGE_REPO}/faultline-injector" \
  --set injector.image.tag="${IMAGE_TAG}" \
  --wait=watcher --timeout 5m

service="$(kubectl --context "${context}" --namespace "${namespace}" get services \
  -l "app.kubernetes.io/instance=${release},app.kubernetes.io/component=aggregator" \
  -o jsonpath='{.items[0].metadata.name}')"

cat <<MSG

faultline is running in kind cluster ${KIND_CLUSTER}, namespace ${namespace}.

  Dashboard:   http://127.0.0.1:3001/
  Test page:   http://127.0.0.1:3001/test-realtime.html
  Stream:      curl -N http://127.0.0.1:3001/api/v1/performance/stream

The dashboard's memory-cleanup button needs a loopback client; use a port-forward for it:

  kubectl --context ${context} --namespace ${namespace} port-forward service/${service} 3002:3001   # then http://127.0.0.1:3002/

End-to-end tests against this cluster: make test-e2e
MSG
