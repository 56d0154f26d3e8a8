#!/usr/bin/env bash
# Starts a single-node Kubernetes cluster on this machine, without Docker: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, containerd, the kubelet,
# kube-proxy and CoreDNS as plain processes, all in the network namespace
# "faultline-<id>", so nothing of the cluster's network setup touches the machine's.
# Then it builds the agent, aggregator and demo images from the binaries `make build`
# makes, imports them into containerd and installs charts/faultline with the demo into a
# namespace that enforces the restricted Pod Security Standard.
#
# All state lives under FAULTLINE_CLUSTER_DIR (default /tmp/faultline-cluster); down.sh
# stops every process by the PID recorded there and removes everything. exec.sh runs a
# command inside the namespace with KUBECONFIG set. Needs root, containerd, runc, the CNI
# plugins, iptables, ip, nsenter, unshare and openssl (installed by `make cluster-up`
# when missing and running as root).
#
# Rules (the machine is shared): no machine-wide sysctl is changed (the kubelet's three
# are shadowed in its own mount namespace; forwarding is set inside the namespace only),
# pods live on a private bridge with no default route, and the API server reaches the
# node by its InternalIP only.
set -euo pipefail
cd "$(dirname "$0")/../.."
source hack/cluster/lib.sh

start_time=${SECONDS}
require_tools
# A state directory whose processes are all gone (a run cut off before its teardown, or a
# machine restarted) is torn down first; one with a live process belongs to a cluster
# that still runs.
if [[ -e "${state}/pids" || -e "/run/netns/${netns}" ]]; then
  if cluster_alive; then
    die "a cluster runs already (${state}/pids); make cluster-down first"
  fi
  log "removing what a cluster that no longer runs left in ${state}"
  hack/cluster/down.sh
fi

bin="$(hack/cluster/assets.sh)"
log "binaries in ${bin}"

mkdir -p "${state}"
# The kubelet's root must be a shared mount so volume mounts reach containerd.
mount --bind "${state}" "${state}"
mount --make-rshared "${state}"
: >"${state}/pids"
ln -sfn "${bin}" "${state}/bin"
mkdir -p "${state}"/{pki,etcd,logs,containerd,kubelet,cni/net.d,cni/ipam,manifests,proc}

# --- network namespace: a bridge for the pods, loopback, forwarding on the bridge only.
ip netns add "${netns}"
ip -n "${netns}" link set lo up
ip -n "${netns}" link add "${bridge}" type bridge
ip -n "${netns}" addr add "${node_ip}/16" dev "${bridge}"
ip -n "${netns}" link set "${bridge}" up
in_netns sysctl -q -w "net.ipv4.conf.${bridge}.forwarding=1"
# Service addresses are translated by kube-proxy's rules after the route is chosen, so the
# node itself (the API server calling a webhook, the e2e client) needs a route to them.
ip -n "${netns}" route add "${service_cidr}" dev "${bridge}"

# --- certificates
pki="${state}/pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=faultline-test-ca" \
  -keyout "${pki}/ca.key" -out "${pki}/ca.crt" 2>/dev/null
openssl genrsa -out "${pki}/sa.key" 2048 2>/dev/null
openssl rsa -in "${pki}/sa.key" -pubout -out "${pki}/sa.pub" 2>/dev/null
cert apiserver "/CN=kube-apiserver" \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:${node_ip},IP:${service_ip},IP:127.0.0.1"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert admin "/O=system:masters/CN=faultline-admin"
cert node "/O=system:nodes/CN=system:node:${node_name}"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert proxy "/CN=system:kube-proxy"
cert coredns "/CN=faultline-coredns"
for user in admin node controller-manager scheduler proxy coredns; do kubeconfig "${user}"; done

# --- control plane
start etcd "${bin}/etcd" --name node --data-dir "${state}/etcd" --unsafe-no-fsync \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster node=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
start kube-apiserver "${bin}/kube-apiserver" \
  --etcd-servers http://127.0.0.1:2379 \
  --bind-address "${node_ip}" --advertise-address "${node_ip}" --secure-port 6443 \
  --service-cluster-ip-range "${service_cidr}" \
  --client-ca-file "${pki}/ca.crt" \
  --tls-cert-file "${pki}/apiserver.crt" --tls-private-key-file "${pki}/apiserver.key" \
  --kubelet-client-certificate "${pki}/apiserver-kubelet-client.crt" \
  --kubelet-client-key "${pki}/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "${pki}/sa.pub" --service-account-signing-key-file "${pki}/sa.key" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --profiling=false
wait_for "the API server" 60 kubectl get --raw /readyz
kubectl apply -f hack/cluster/coredns-rbac.yaml >/dev/null
start kube-controller-manager "${bin}/kube-controller-manager" \
  --kubeconfig "${state}/controller-manager.kubeconfig" \
  --authentication-kubeconfig "${state}/controller-manager.kubeconfig" \
  --authorization-kubeconfig "${state}/controller-manager.kubeconfig" \
  --root-ca-file "${pki}/ca.crt" --service-account-private-key-file "${pki}/sa.key" \
  --use-service-account-credentials --leader-elect=false --bind-address 127.0.0.1 \
  --cluster-signing-cert-file "${pki}/ca.crt" --cluster-signing-key-file "${pki}/ca.key"
start kube-scheduler "${bin}/kube-scheduler" \
  --kubeconfig "${state}/scheduler.kubeconfig" \
  --authentication-kubeconfig "${state}/scheduler.kubeconfig" \
  --authorization-kubeconfig "${state}/scheduler.kubeconfig" \
  --leader-elect=false --bind-address 127.0.0.1

# --- node: containerd, the kubelet, kube-proxy, CoreDNS
render hack/cluster/containerd.toml >"${state}/containerd.toml"
render hack/cluster/cni.conflist >"${state}/cni/net.d/10-faultline.conflist"
render hack/cluster/kubelet.yaml >"${state}/kubelet.yaml"
render hack/cluster/kube-proxy.yaml >"${state}/kube-proxy.yaml"
render hack/cluster/Corefile >"${state}/Corefile"
: >"${state}/resolv.conf"
start containerd containerd --config "${state}/containerd.toml"
wait_for containerd 30 test -S "${state}/containerd/containerd.sock"

# The kubelet insists on three machine-wide sysctls: in its own mount namespace, /proc
# is private and those files are copies holding the values it wants.
printf '1\n' >"${state}/proc/overcommit_memory"
printf '10\n' >"${state}/proc/panic"
printf '1\n' >"${state}/proc/panic_on_oops"
# Pods go under the cgroup named like the network namespace (kubelet.yaml cgroupRoot),
# which down.sh removes.
for ctl in /sys/fs/cgroup /sys/fs/cgroup/*/; do
  [[ -f "${ctl}/cgroup.procs" ]] || continue
  mkdir -p "${ctl%/}/${netns}"
  if [[ -f "${ctl}/cpuset.cpus" && ! -f "${ctl}/cgroup.controllers" ]]; then
    cat "${ctl}/cpuset.cpus" >"${ctl%/}/${netns}/cpuset.cpus"
    cat "${ctl}/cpuset.mems" >"${ctl%/}/${netns}/cpuset.mems"
  fi
done
for dir in /var/lib/kubelet /var/log/containers; do
  [[ -e "${dir}" ]] || printf '%s\n' "${dir}" >>"${state}/created"
done
start kubelet unshare -m --propagation unchanged -- bash -c '
  set -e
  mount --make-rprivate /proc
  mount --bind "$1/proc/overcommit_memory" /proc/sys/vm/overcommit_memory
  mount --bind "$1/proc/panic" /proc/sys/kernel/panic
  mount --bind "$1/proc/panic_on_oops" /proc/sys/kernel/panic_on_oops
  shift
  exec "$@"' kubelet "${state}" "${bin}/kubelet" \
  --config "${state}/kubelet.yaml" --kubeconfig "${state}/node.kubeconfig" \
  --root-dir "${state}/kubelet" --cert-dir "${state}/kubelet/pki" \
  --container-runtime-endpoint "unix://${state}/containerd/containerd.sock" \
  --node-ip "${node_ip}" --hostname-override "${node_name}"
start kube-proxy "${bin}/kube-proxy" --config "${state}/kube-proxy.yaml"
start coredns "${bin}/coredns" -conf "${state}/Corefile"

wait_for "node ${node_name} Ready" 120 kubectl wait --for condition=Ready --timeout 5s "node/${node_name}"
wait_for "the default ServiceAccount" 60 kubectl get serviceaccount default
log "node Ready $((SECONDS - start_time))s after start"

# --- images: built from `make build`'s binaries, imported under the chart's names.
image_start=${SECONDS}
go run ./hack/cluster/image -out "${state}/images" -tag "${image_tag}" -repo "${image_repo}" -version "${VERSION:-$(git describe --tags --always --dirty)}"
for archive in "${state}"/images/*.tar; do
  ctr -a "${state}/containerd/containerd.sock" -n k8s.io images import "${archive}" >/dev/null
done
log "images built and imported in $((SECONDS - image_start))s"

# --- the chart, as `make kind-up` installs it, with local image names.
kubectl create namespace "${namespace}"
kubectl label namespace "${namespace}" pod-security.kubernetes.io/enforce=restricted
install_start=${SECONDS}
in_netns helm upgrade --install "${release}" charts/faultline \
  --kubeconfig "${state}/admin.kubeconfig" --namespace "${namespace}" \
  --values hack/kind-values.yaml \
  --set aggregator.image.repository="${image_repo}/faultline-aggregator" \
  --set agent.image.repository="${image_repo}/faultline-agent" \
  --set demo.image.repository="${image_repo}/faultline-demo" \
  --set injector.image.repository="${image_repo}/faultline-injector" \
  --set aggregator.image.tag="${image_tag}" --set agent.image.tag="${image_tag}" --set demo.image.tag="${image_tag}" \
  --set injector.image.tag="${image_tag}" \
  --set aggregator.image.pullPolicy=Never --set agent.image.pullPolicy=Never --set demo.image.pullPolicy=Never \
  --set injector.image.pullPolicy=Never \
  --wait=watcher --timeout 5m
log "helm install --wait took $((SECONDS - install_start))s; cluster up in $((SECONDS - start_time))s"

cat <<MSG

faultline runs on a real node in network namespace ${netns} (state in ${state}).

  hack/cluster/exec.sh kubectl get pods -A        # any command, inside the namespace
  hack/cluster/exec.sh make test-e2e               # the e2e suite against this cluster
  make cluster-down                                # stop it and remove everything
MSG
