#!/usr/bin/env bash
# Times `kt policy lint` on a generated config with 1 000 provider targets.
#
#   bench/lint_1000_targets/run.sh            # builds target/release/kt if needed
#   KT=/path/to/kt RUNS=11 bench/lint_1000_targets/run.sh
#
# Two configs: a valid one (every rule runs on every target, nothing to report) and one
# where every target has two mistakes (2 000 findings: the repair loop at its busiest).
# Times the whole command, process start included. The result is recorded in
# docs/readme/lint.md.
set -euo pipefail

cd "$(dirname "$0")/../.."
KT=${KT:-target/release/kt}
RUNS=${RUNS:-7}
if [ ! -x "$KT" ]; then
  cargo build --release
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# $1: "valid" or "broken"
generate() {
  local kind=$1 providers=(openai anthropic groq mistral openai-compatible)
  printf 'pack:\n  name: bench-1000\n  version: 1.0.0\nproviders:\n  strategy: weighted_round_robin\n  targets:\n'
  for i in $(seq 0 999); do
    local p=${providers[$((i % 5))]}
    printf '    - id: target-%d\n      provider: %s\n      model: model-%d\n' "$i" "$p" "$((i % 100))"
    printf '      base_url: https://llm-%d.example.com/v1\n' "$i"
    printf '      secret_key_ref:\n        env: KT_BENCH_KEY\n'
    printf '      timeout_seconds: 60\n      weight: %d\n' "$((i % 3 + 1))"
    printf '      headers:\n        X-Team: team-%d\n' "$((i % 10))"
    printf '      pricing:\n        prompt: 2.5\n        completion: 10\n'
    if [ "$kind" = broken ]; then
      printf '      timout_seconds: 30\n      region: [eu]\n'
    fi
  done
  printf 'models:\n  aliases:\n'
  for i in $(seq 0 99); do
    printf '    alias-%d: model-%d\n' "$i" "$i"
  done
  printf 'policies:\n  chain:\n    - audit-logger\npolicy:\n  audit-logger:\n    retention_days: 30\n'
}

# Prints the median and slowest wall-clock time, and the median CPU time (user + sys),
# of RUNS runs. CPU time is what to compare on a busy machine: wall time there includes
# waiting for a core.
measure() {
  local cfg=$1 walls=() cpus=() wall user sys
  local TIMEFORMAT='%3R %3U %3S'
  for _ in $(seq "$RUNS"); do
    read -r wall user sys < <({ time KT_BENCH_KEY=sk-bench "$KT" policy lint --file "$cfg" >/dev/null || true; } 2>&1)
    walls+=("$wall")
    cpus+=("$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')")
  done
  local mid=$(((RUNS + 1) / 2))
  local wall_median wall_max cpu_median
  wall_median=$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "${mid}p")
  wall_max=$(printf '%s\n' "${walls[@]}" | sort -n | tail -1)
  cpu_median=$(printf '%s\n' "${cpus[@]}" | sort -n | sed -n "${mid}p")
  printf '%-30s wall median %s s, max %s s; cpu median %s s (%d runs)\n' \
    "$2" "$wall_median" "$wall_max" "$cpu_median" "$RUNS"
}

generate valid >"$dir/valid.yaml"
generate broken >"$dir/broken.yaml"
KT_BENCH_KEY=sk-bench "$KT" policy lint --file "$dir/valid.yaml" | head -1
KT_BENCH_KEY=sk-bench "$KT" policy lint --file "$dir/broken.yaml" | head -1
echo "$(wc -l <"$dir/valid.yaml") lines, $(wc -c <"$dir/valid.yaml") bytes; $(nproc) cores, load $(cut -d" " -f1 /proc/loadavg)"
measure "$dir/valid.yaml" "1000 targets, valid"
measure "$dir/broken.yaml" "1000 targets, 2000 findings"
