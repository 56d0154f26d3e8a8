# Shared by up.sh, down.sh and exec.sh: names, addresses and helpers of the test cluster.
state="${FAULTLINE_CLUSTER_DIR:-/tmp/faultline-cluster}"
netns="${FAULTLINE_CLUSTER_NETNS:-faultline}"
bridge=flbr0
node_name=faultline-node
node_ip=10.88.0.1
pod_cidr=10.88.0.0/16
service_cidr=10.96.0.0/24
service_ip=10.96.0.1
namespace="${FAULTLINE_NAMESPACE:-faultline}"
release="${FAULTLINE_RELEASE:-faultline}"
image_repo=faultline.test
image_tag=cluster
export KUBECONFIG="${state}/admin.kubeconfig"
export PATH="${PWD}/bin:${PATH}"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The packages and tools the cluster needs, by command.
declare -A tool_package=(
  [containerd]=containerd [ctr]=containerd [runc]=runc [iptables]=iptables
  [/usr/lib/cni/bridge]=containernetworking-plugins [ip]=iproute2 [nsenter]=util-linux
  [unshare]=util-linux [openssl]=openssl [flock]=util-linux
)

# missing_tools prints the packages of the missing tools, and "root" when not root.
missing_tools() {
  [[ "$(id -u)" -eq 0 ]] || echo root
  local tool
  for tool in "${!tool_package[@]}"; do
    command -v "${tool}" >/dev/null 2>&1 || [[ -x "${tool}" ]] || echo "${tool_package[${tool}]}"
  done | sort -u
}

# require_tools installs the missing packages (as root, with apt-get) or fails naming them.
require_tools() {
  local missing
  missing="$(missing_tools | tr '\n' ' ')"
  [[ -z "${missing}" ]] && return
  [[ "${missing}" != *root* ]] || die "the test cluster needs root (missing: ${missing})"
  command -v apt-get >/dev/null 2>&1 || die "missing packages: ${missing}"
  log "installing ${missing}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing} >/dev/null
}

in_netns() { nsenter --net="/run/netns/${netns}" -- "$@"; }
kubectl() { in_netns "${state}/bin/kubectl" "$@"; }

# cluster_alive succeeds when a process recorded in the state directory still runs.
cluster_alive() {
  local pid name
  [[ -f "${state}/pids" ]] || return 1
  while read -r pid name; do
    [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null && return 0
  done <"${state}/pids"
  return 1
}

# start NAME COMMAND... runs COMMAND in the namespace in the background, logging to
# logs/NAME.log, and records its PID.
start() {
  local name="$1"
  shift
  nsenter --net="/run/netns/${netns}" -- setsid "$@" >"${state}/logs/${name}.log" 2>&1 </dev/null &
  printf '%s %s\n' "$!" "${name}" >>"${state}/pids"
}

# wait_for WHAT SECONDS COMMAND... retries COMMAND until it succeeds.
wait_for() {
  local what="$1" deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for ${what} (logs in ${state}/logs)"
    sleep 0.5
  done
}

# cert NAME SUBJECT [SANS] writes pki/NAME.{key,crt} signed by the cluster CA.
cert() {
  local name="$1" subject="$2" sans="${3:-}" ext
  ext="$(mktemp)"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' >"${ext}"
  [[ -z "${sans}" ]] || printf 'subjectAltName=%s\n' "${sans}" >>"${ext}"
  openssl req -newkey rsa:2048 -nodes -subj "${subject}" -keyout "${pki}/${name}.key" -out "${pki}/${name}.csr" 2>/dev/null
  openssl x509 -req -in "${pki}/${name}.csr" -CA "${pki}/ca.crt" -CAkey "${pki}/ca.key" -CAcreateserial \
    -days 2 -extfile "${ext}" -out "${pki}/${name}.crt" 2>/dev/null
  rm -f "${ext}" "${pki}/${name}.csr"
}

# kubeconfig USER writes USER.kubeconfig for the certificate pki/USER.
kubeconfig() {
  cat >"${state}/$1.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: faultline
  cluster:
    server: https://${node_ip}:6443
    certificate-authority: ${pki}/ca.crt
users:
- name: $1
  user:
    client-certificate: ${pki}/$1.crt
    client-key: ${pki}/$1.key
contexts:
- name: faultline
  context: {cluster: faultline, user: $1}
current-context: faultline
KUBECONFIG
}

# render FILE prints FILE with @state@, @node_ip@, @node_name@, @bridge@, @netns@, @pod_cidr@
# and @service_cidr@ replaced.
render() {
  sed -e "s|@state@|${state}|g" -e "s|@node_ip@|${node_ip}|g" -e "s|@node_name@|${node_name}|g" \
    -e "s|@bridge@|${bridge}|g" -e "s|@netns@|${netns}|g" -e "s|@pod_cidr@|${pod_cidr}|g" -e "s|@service_cidr@|${service_cidr}|g" "$1"
}
