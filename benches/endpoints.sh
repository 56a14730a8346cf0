#!/usr/bin/env bash
# Memory and time per endpoint: a scenario of N endpoints against the embedded target,
# a short open-model run, its peak RSS and wall time (GNU time). Per-endpoint cost shows
# as the difference between two N.
#
#   benches/endpoints.sh [N...]        (default: 10 1000 2000)
#
# Loopback only; each run is 3 s at 200 rps and stops by itself. Memory is capped at
# 6 GB (ulimit -v) so a regression cannot take the machine down.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
work=$(mktemp -d)
echo "endpoints max_rss_mib wall_s verdict"
for n in "${@:-10 1000 2000}"; do
  for n1 in $n; do
    s="$work/ep$n1.toml"
    {
      printf 'name = "endpoints-%s"\ntarget = "embedded"\n[defaults]\ntimeout = "10s"\n' "$n1"
      for i in $(seq 1 "$n1"); do
        printf '[[endpoint]]\nname = "e%05d"\npath = "/api/health?e=%d"\n' "$i" "$i"
      done
      printf '[load]\nmodel = "open"\nstages = [{ duration = "3s", target_rps = 200 }]\n[slo]\nbudgets = ["p95 < 2s"]\n'
    } > "$s"
    ( ulimit -v 6000000
      /usr/bin/time -f '%M %e' -o "$work/time$n1" ./target/release/loadgate run "$s" -q --no-report --out "$work/run$n1" > "$work/out$n1" 2>&1 ) || true
    read -r kib secs < "$work/time$n1"
    verdict=$(grep -o 'verdict: [A-Z]*' "$work/out$n1" | cut -d' ' -f2 || true)
    echo "$n1 $((kib / 1024)) $secs ${verdict:-none}"
  done
done
rm -rf "$work"
