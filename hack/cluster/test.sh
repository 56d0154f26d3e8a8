#!/usr/bin/env bash
# make test-cluster: brings the test cluster up, runs the e2e suite inside its network
# namespace and always tears it down, also after a failure or an interrupt.
set -euo pipefail
cd "$(dirname "$0")/../.."
source hack/cluster/lib.sh
if [[ -n "$(missing_tools)" && "${FAULTLINE_REQUIRE_ALL:-0}" != 1 && "$(id -u)" -ne 0 ]]; then
  log "skipping the cluster tests: they need root (and containerd, runc, the CNI plugins, iptables)"
  exit 0
fi
trap 'hack/cluster/down.sh' EXIT
hack/cluster/up.sh
e2e_start=${SECONDS}
hack/cluster/exec.sh go test -tags e2e -count=1 -timeout 20m -v ./test/e2e/... ${E2E_ARGS:-}
log "e2e suite took $((SECONDS - e2e_start))s"
