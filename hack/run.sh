#!/usr/bin/env bash
# `make run`: faultline on this machine in single-node mode. Starts one agent sampling this
# machine, the demo workload reporting its breakers to that agent, and the aggregator
# watching the agent; prints the dashboard URL; Ctrl-C stops everything. The aggregator's
# embedded agent (--local-agent) is not used here: it would sample the same machine a
# second time and count its CPU and memory twice in the cluster totals.
# Addresses can be changed with FAULTLINE_RUN_* variables (see below).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}

UI=${FAULTLINE_RUN_LISTEN:-127.0.0.1:3001}          # dashboard, API, stream
PROBE=${FAULTLINE_RUN_PROBE_LISTEN:-127.0.0.1:8081} # /healthz /readyz /metrics
AGENT=${FAULTLINE_RUN_AGENT_LISTEN:-127.0.0.1:9800}  # the agent's read API and stream
INGEST=${FAULTLINE_RUN_AGENT_INGEST:-127.0.0.1:9801} # where the demo reports breakers
DEMO=${FAULTLINE_RUN_DEMO_LISTEN:-127.0.0.1:9810}    # the demo's frontend and control API

for b in faultline-aggregator faultline-agent faultline-demo; do
  if [ ! -x "$BIN/$b" ]; then
    echo "run: $BIN/$b is missing; run 'make build' first" >&2
    exit 1
  fi
done

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping faultline..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$BIN/faultline-agent" --listen="$AGENT" --ingest-listen="$INGEST" --mode=host --workload=demo &
pids+=($!)

"$BIN/faultline-demo" --listen="$DEMO" --ingest-url="http://$INGEST" &
pids+=($!)

"$BIN/faultline-aggregator" --listen="$UI" --probe-listen="$PROBE" --mode=static --agents="http://$AGENT" &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS "http://$PROBE/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
port=${UI##*:}
echo
echo "faultline is running: open http://localhost:$port"
echo "  stream:  http://localhost:$port/api/v1/performance/stream"
echo "  agent:   http://$AGENT/v1/snapshot   (push breakers to http://$INGEST/v1/breakers/{name})"
echo "  demo:    http://$DEMO/control/dependencies   (PUT {\"pattern\":\"outage\"} to .../payments to open a breaker)"
echo "  metrics: http://$PROBE/metrics"
echo "Ctrl-C stops everything."
wait -n "${pids[@]}" || true
