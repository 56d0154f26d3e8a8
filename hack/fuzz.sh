#!/usr/bin/env bash
# Runs every fuzz target of the module (every func Fuzz* of a _test.go file tracked by
# git) for a bounded time each, one after the other, and prints the executions each made. A
# failure stops the run with the fuzzer's report; the input is written under the
# package's testdata/fuzz, where it stays as a seed once fixed.
#
# Environment:
#   FUZZ_TIME      time per target (default 10s)
#   FUZZ_MINIMIZE  time to minimise an interesting input (default 2s; the fuzzer's
#                  default of 60 s would spend the budget minimising)
set -euo pipefail
cd "$(dirname "$0")/.."
time_per="${FUZZ_TIME:-10s}"
minimize="${FUZZ_MINIMIZE:-2s}"

summary=()
start=$(date +%s)
for file in $(git grep -l '^func Fuzz[A-Z][A-Za-z0-9]*(f \*testing\.F)' -- '*_test.go'); do
  pkg="./$(dirname "$file")"
  for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9]*\)(f \*testing\.F).*/\1/p' "$file"); do
    out=$(mktemp)
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time_per" -fuzzminimizetime "$minimize" "$pkg" >"$out" 2>&1; then
      cat "$out"
      rm -f "$out"
      echo "fuzz: ${target} (${pkg}) failed" >&2
      exit 1
    fi
    execs=$(grep -o 'execs: [0-9]*' "$out" | tail -1 | cut -d' ' -f2)
    rm -f "$out"
    line=$(printf '%-24s %-28s %10s execs in %s' "$target" "${pkg#./}" "${execs:-?}" "$time_per")
    echo "$line"
    summary+=("$line")
  done
done
echo "fuzz: ${#summary[@]} targets in $(( $(date +%s) - start )) s"
