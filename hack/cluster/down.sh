#!/usr/bin/env bash
# Stops the test cluster of up.sh and removes everything it made: the pods (so their
# network is torn down), every process by the PID up.sh recorded, the containerd shims
# of its socket, the mounts and cgroups, the network namespace and the state directory.
# Safe to run again, and after a failed or partial up.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
source hack/cluster/lib.sh
[[ -d "${state}" ]] || { log "nothing to stop (${state} does not exist)"; exit 0; }
start_time=${SECONDS}

# Pods first, while the kubelet and containerd run: their sandboxes and networks go too.
if [[ -x "${state}/bin/kubectl" ]] && kubectl get --raw /readyz >/dev/null 2>&1; then
  kubectl delete deployments,daemonsets,statefulsets,replicasets,jobs --all --all-namespaces --wait=false >/dev/null 2>&1
  kubectl delete pods --all --all-namespaces --grace-period 1 --timeout 60s >/dev/null 2>&1 ||
    log "pods did not all go within 60s; stopping the node anyway"
fi

# The network namespaces of the sandboxes that are left, as containerd knows them.
if [[ -S "${state}/containerd/containerd.sock" ]]; then
  ctr=(ctr -a "${state}/containerd/containerd.sock" -n k8s.io)
  for id in $("${ctr[@]}" containers ls -q 2>/dev/null); do
    "${ctr[@]}" containers info "${id}" 2>/dev/null | grep -o '/var/run/netns/cni-[0-9a-f-]*'
  done | sort -u >"${state}/sandbox-netns"
fi

# The processes, the node's before the control plane's.
if [[ -f "${state}/pids" ]]; then
  tac "${state}/pids" | while read -r pid name; do
    kill -TERM "${pid}" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pid}" 2>/dev/null && log "killed ${name} (${pid})"
  done
fi

# What the pods left: their processes (in the cluster's cgroup), then the shims.
for root in /sys/fs/cgroup/*/"${netns}" /sys/fs/cgroup/"${netns}"; do
  [[ -d "${root}" ]] || continue
  find "${root}" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null
done
pkill -KILL -f -- "-address ${state}/containerd/containerd.sock( |$)" 2>/dev/null
sleep 0.5
for root in /sys/fs/cgroup/*/"${netns}" /sys/fs/cgroup/"${netns}"; do
  [[ -d "${root}" ]] && find "${root}" -depth -type d -exec rmdir {} + 2>/dev/null
done

# Mounts under the state directory, the sandboxes' network namespaces, then ours.
umount -R "${state}" 2>/dev/null
while read -r mnt; do umount -l "${mnt}" 2>/dev/null; done < <(awk -v s="${state}" 'index($5, s) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
[[ -f "${state}/sandbox-netns" ]] && while read -r ns; do umount "${ns}" 2>/dev/null; rm -f "${ns}"; done <"${state}/sandbox-netns"
ip netns delete "${netns}" 2>/dev/null

[[ -f "${state}/created" ]] && while read -r dir; do rm -rf "${dir}"; done <"${state}/created"
if awk -v s="${state}" 'index($5, s) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
  die "mounts remain under ${state}; not removing it"
fi
rm -rf --one-file-system "${state}"
log "cluster down in $((SECONDS - start_time))s"
