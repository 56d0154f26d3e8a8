#!/usr/bin/env bash
# Builds the binaries controller-runtime's envtest needs (kube-apiserver and
# etcd), and kube-controller-manager for the tests that need Deployments to make
# pods, from the Go module proxy into a per-user cache outside the repository,
# and prints that directory on stdout, e.g.
#
#   KUBEBUILDER_ASSETS="$(hack/envtest-assets.sh)" go test ./...
#
# Sources are pinned by the tools modules under hack/envtest/:
#   hack/envtest/apiserver  k8s.io/kubernetes (cmd/kube-apiserver,
#                           cmd/kube-controller-manager)
#   hack/envtest/etcd       go.etcd.io/etcd/server/v3 (etcdmain wrapper)
#
# The first build takes several minutes (about 6 on 2 cores, and a few more for
# kube-controller-manager); later runs are a no-op as long as the stamps match a
# hash of the tools modules' go.mod, go.sum and sources, so editing any of them
# triggers a rebuild. kube-controller-manager has a stamp of its own, so adding
# it did not invalidate the kube-apiserver and etcd already built.
#
# Only the cache directory goes to stdout; all progress goes to stderr.
#
# Environment:
#   XDG_CACHE_HOME         cache root (default: $HOME/.cache)
#   ENVTEST_ASSETS_FORCE   set to 1 to rebuild even if the stamp matches
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools_dir="${script_dir}/envtest"
apiserver_mod="${tools_dir}/apiserver"
etcd_mod="${tools_dir}/etcd"

log() { printf 'envtest-assets: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "go not found in PATH"

# The Kubernetes version is whatever hack/envtest/apiserver/go.mod pins.
k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "${apiserver_mod}/go.mod")"
[[ "${k8s_version}" =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] \
  || die "cannot read a k8s.io/kubernetes release version from ${apiserver_mod}/go.mod (got '${k8s_version}')"
k8s_major="${BASH_REMATCH[1]}"
k8s_minor="${BASH_REMATCH[2]}"

cache_dir="${XDG_CACHE_HOME:-${HOME}/.cache}/faultline/envtest/${k8s_version#v}"

apiserver_ldflags="-X k8s.io/component-base/version.gitVersion=${k8s_version}"
apiserver_ldflags+=" -X k8s.io/component-base/version.gitMajor=${k8s_major}"
apiserver_ldflags+=" -X k8s.io/component-base/version.gitMinor=${k8s_minor}"

# Everything that determines the binaries' content goes into the stamp.
stamp_file="${cache_dir}/.stamp"
stamp="$(
  {
    printf 'recipe 1\nldflags %s\n' "${apiserver_ldflags}"
    cd "${tools_dir}"
    sha256sum apiserver/go.mod apiserver/go.sum etcd/go.mod etcd/go.sum etcd/*.go
  } | sha256sum | cut -d' ' -f1
)"

up_to_date() {
  [[ "${ENVTEST_ASSETS_FORCE:-0}" != 1 ]] &&
    [[ -x "${cache_dir}/kube-apiserver" && -x "${cache_dir}/etcd" && -f "${stamp_file}" ]] &&
    [[ "$(cat "${stamp_file}")" == "${stamp}" ]]
}

mkdir -p "${cache_dir}"

if ! up_to_date; then
  # Serialize concurrent builds (e.g. make -j) on the same cache directory.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"${cache_dir}/.lock"
    if ! flock -n 9; then
      log "waiting for another build holding ${cache_dir}/.lock"
      flock 9
    fi
  fi
fi

if up_to_date; then
  log "kube-apiserver and etcd are up to date in ${cache_dir}"
else
  tmp_dir="$(mktemp -d "${cache_dir}/.build.XXXXXX")"
  trap 'rm -rf "${tmp_dir}"' EXIT

  # Build for the host, from the pinned tools modules only.
  export CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"
  GOOS="$(go env GOHOSTOS)"
  GOARCH="$(go env GOHOSTARCH)"
  export GOOS GOARCH

  start=${SECONDS}
  log "building kube-apiserver ${k8s_version} (this takes several minutes on first run)"
  (
    cd "${apiserver_mod}"
    go build -trimpath -ldflags "${apiserver_ldflags}" \
      -o "${tmp_dir}/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  ) >&2
  log "built kube-apiserver in $((SECONDS - start))s"

  start=${SECONDS}
  log "building etcd"
  (
    cd "${etcd_mod}"
    go build -trimpath -o "${tmp_dir}/etcd" .
  ) >&2
  log "built etcd in $((SECONDS - start))s"

  # Sanity-check before installing.
  apiserver_out="$("${tmp_dir}/kube-apiserver" --version 2>&1)" \
    || die "kube-apiserver --version failed: ${apiserver_out}"
  [[ "${apiserver_out}" == *"${k8s_version}"* ]] \
    || die "kube-apiserver --version printed '${apiserver_out}', want ${k8s_version}"
  etcd_out="$("${tmp_dir}/etcd" --version 2>&1)" || die "etcd --version failed: ${etcd_out}"
  log "${apiserver_out}"
  log "$(head -n1 <<<"${etcd_out}")"

  # Invalidate the stamp first, rename each binary into place (atomic on the
  # same filesystem), and write the new stamp last, so an interrupted install
  # is never mistaken for a complete one.
  rm -f "${stamp_file}"
  mv -f "${tmp_dir}/kube-apiserver" "${cache_dir}/kube-apiserver"
  mv -f "${tmp_dir}/etcd" "${cache_dir}/etcd"
  printf '%s\n' "${stamp}" >"${tmp_dir}/stamp"
  mv -f "${tmp_dir}/stamp" "${stamp_file}"
  log "installed kube-apiserver and etcd into ${cache_dir}"
fi

# kube-controller-manager: its own stamp and lock (see above).
kcm_stamp_file="${cache_dir}/.stamp-kube-controller-manager"
kcm_stamp="$(
  {
    printf 'recipe 1\nldflags %s\n' "${apiserver_ldflags}"
    cd "${tools_dir}"
    sha256sum apiserver/go.mod apiserver/go.sum
  } | sha256sum | cut -d' ' -f1
)"
kcm_up_to_date() {
  [[ "${ENVTEST_ASSETS_FORCE:-0}" != 1 ]] && [[ -x "${cache_dir}/kube-controller-manager" && -f "${kcm_stamp_file}" ]] &&
    [[ "$(cat "${kcm_stamp_file}")" == "${kcm_stamp}" ]]
}
if ! kcm_up_to_date && command -v flock >/dev/null 2>&1; then
  exec 8>"${cache_dir}/.lock-kube-controller-manager"
  if ! flock -n 8; then
    log "waiting for another build holding ${cache_dir}/.lock-kube-controller-manager"
    flock 8
  fi
fi
if kcm_up_to_date; then
  log "kube-controller-manager is up to date in ${cache_dir}"
else
  kcm_tmp="$(mktemp -d "${cache_dir}/.build-kcm.XXXXXX")"
  trap 'rm -rf "${kcm_tmp}" "${tmp_dir:-}"' EXIT
  start=${SECONDS}
  log "building kube-controller-manager ${k8s_version}"
  (
    cd "${apiserver_mod}"
    CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" \
      GOOS="$(go env GOHOSTOS)" GOARCH="$(go env GOHOSTARCH)" \
      go build -trimpath -ldflags "${apiserver_ldflags}" \
      -o "${kcm_tmp}/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager
  ) >&2
  log "built kube-controller-manager in $((SECONDS - start))s"
  kcm_out="$("${kcm_tmp}/kube-controller-manager" --version 2>&1)" || die "kube-controller-manager --version failed: ${kcm_out}"
  [[ "${kcm_out}" == *"${k8s_version}"* ]] || die "kube-controller-manager --version printed '${kcm_out}', want ${k8s_version}"
  rm -f "${kcm_stamp_file}"
  mv -f "${kcm_tmp}/kube-controller-manager" "${cache_dir}/kube-controller-manager"
  printf '%s\n' "${kcm_stamp}" >"${kcm_tmp}/stamp"
  mv -f "${kcm_tmp}/stamp" "${kcm_stamp_file}"
  log "installed kube-controller-manager into ${cache_dir}"
fi

printf '%s\n' "${cache_dir}"
