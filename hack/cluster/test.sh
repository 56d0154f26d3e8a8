#!/usr/bin/env bash
# make test-cluster: brings a test cluster up, runs the e2e suite inside its network
# namespace (TestUninstall last) and always tears it down, also after a failure or an
# interrupt. The cluster gets a state directory and a network namespace of its own, so it
# never meets one that `make cluster-up` started (or one a stopped run left behind).
#
# E2E_ARGS are added to the suite's flags, e.g. E2E_ARGS='-test.run TestOutage'.
set -euo pipefail
cd "$(dirname "$0")/../.."
source hack/cluster/lib.sh
if [[ "$(id -u)" -ne 0 ]]; then
  [[ "${FAULTLINE_REQUIRE_ALL:-0}" == 1 ]] && die "the cluster tests need root"
  log "skipping the cluster tests: they need root (and containerd, runc, the CNI plugins, iptables)"
  exit 0
fi
FAULTLINE_CLUSTER_DIR="$(mktemp -d /tmp/faultline-test-cluster.XXXXXX)"
FAULTLINE_CLUSTER_NETNS="faultline-test-$$"
export FAULTLINE_CLUSTER_DIR FAULTLINE_CLUSTER_NETNS
trap "${PWD}/hack/cluster/down.sh" EXIT

# The suite is built before it enters the namespace, which has no route to the module proxy.
suite="${FAULTLINE_CLUSTER_DIR}/e2e.test"
go test -c -tags e2e -o "${suite}" ./test/e2e
hack/cluster/up.sh

e2e_start=${SECONDS}
export FAULTLINE_E2E_CONTAINERD="${FAULTLINE_CLUSTER_DIR}/containerd/containerd.sock"
# As go test runs it: in the package's directory.
(
  cd test/e2e
  ../../hack/cluster/exec.sh "${suite}" -test.v -test.count=1 -test.timeout 30m -test.skip '^TestUninstall$' ${E2E_ARGS:-}
  FAULTLINE_E2E_UNINSTALL=1 ../../hack/cluster/exec.sh "${suite}" -test.v -test.count=1 -test.timeout 10m -test.run '^TestUninstall$'
)
log "e2e suite took $((SECONDS - e2e_start))s"
