#!/usr/bin/env bash
# Builds the binaries of the test cluster (hack/cluster/up.sh) from the Go module proxy
# into a per-user cache outside the repository, and prints that directory on stdout:
#
#   kube-apiserver, etcd, kube-controller-manager
#                             from hack/envtest-assets.sh (the same builds envtest uses)
#   kubelet, kube-scheduler, kube-proxy, kubectl
#                             from hack/envtest/apiserver (k8s.io/kubernetes, tool lines)
#   coredns                   from hack/cluster/coredns
#
# The first build takes about 15 minutes on 2 cores (kube-apiserver alone about 12);
# later runs are a no-op while the stamp matches a hash of the tools modules.
# Progress goes to stderr.
#
# Environment:
#   XDG_CACHE_HOME         cache root (default: $HOME/.cache)
set -euo pipefail

hack_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
k8s_mod="${hack_dir}/envtest/apiserver"
coredns_mod="${hack_dir}/cluster/coredns"

log() { printf 'cluster-assets: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

envtest_dir="$("${hack_dir}/envtest-assets.sh")"
k8s_version="$(basename "${envtest_dir}")"
k8s_version="v${k8s_version}"
cache_dir="${XDG_CACHE_HOME:-${HOME}/.cache}/faultline/cluster/${k8s_version#v}"
ldflags="-X k8s.io/component-base/version.gitVersion=${k8s_version}"
ldflags+=" -X k8s.io/component-base/version.gitMajor=$(cut -d. -f1 <<<"${k8s_version#v}")"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"${k8s_version#v}")"

k8s_cmds=(kubelet kube-scheduler kube-proxy kubectl)
stamp_file="${cache_dir}/.stamp"
stamp="$(
  {
    printf 'recipe 1\nldflags %s\ncmds %s\n' "${ldflags}" "${k8s_cmds[*]}"
    sha256sum "${k8s_mod}/go.mod" "${k8s_mod}/go.sum" "${coredns_mod}"/go.mod "${coredns_mod}"/go.sum "${coredns_mod}"/*.go
  } | sed "s|${hack_dir}/||" | sha256sum | cut -d' ' -f1
)"

mkdir -p "${cache_dir}"
exec 9>"${cache_dir}/.lock"
flock 9

if [[ -f "${stamp_file}" && "$(cat "${stamp_file}")" == "${stamp}" ]]; then
  log "up to date in ${cache_dir}"
else
  tmp_dir="$(mktemp -d "${cache_dir}/.build.XXXXXX")"
  trap 'rm -rf "${tmp_dir}"' EXIT
  export CGO_ENABLED=0 GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"
  for cmd in "${k8s_cmds[@]}"; do
    start=${SECONDS}
    (cd "${k8s_mod}" && go build -trimpath -ldflags "${ldflags}" -o "${tmp_dir}/${cmd}" "k8s.io/kubernetes/cmd/${cmd}") >&2
    log "built ${cmd} in $((SECONDS - start))s"
  done
  start=${SECONDS}
  (cd "${coredns_mod}" && go build -trimpath -o "${tmp_dir}/coredns" .) >&2
  log "built coredns in $((SECONDS - start))s"

  out="$("${tmp_dir}/kubelet" --version 2>&1)" || die "kubelet --version: ${out}"
  [[ "${out}" == *"${k8s_version}"* ]] || die "kubelet --version printed '${out}', want ${k8s_version}"
  rm -f "${stamp_file}"
  for cmd in "${k8s_cmds[@]}" coredns; do mv -f "${tmp_dir}/${cmd}" "${cache_dir}/${cmd}"; done
  printf '%s\n' "${stamp}" >"${stamp_file}"
  log "installed ${k8s_cmds[*]} coredns into ${cache_dir}"
fi
for cmd in kube-apiserver etcd kube-controller-manager; do
  ln -sf "${envtest_dir}/${cmd}" "${cache_dir}/${cmd}"
done
printf '%s\n' "${cache_dir}"
