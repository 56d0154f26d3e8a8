#!/usr/bin/env bash
# Runs a command inside the test cluster's network namespace with KUBECONFIG set to its
# admin, e.g. hack/cluster/exec.sh kubectl get pods -A
set -euo pipefail
cd "$(dirname "$0")/../.."
source hack/cluster/lib.sh
[[ -e "/run/netns/${netns}" ]] || die "no test cluster runs (make cluster-up)"
export PATH="${state}/bin:${PATH}"
cd "${OLDPWD}"
exec nsenter --net="/run/netns/${netns}" -- "$@"
