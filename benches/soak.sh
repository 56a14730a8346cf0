#!/usr/bin/env bash
# Soak: run loadgate for 10 minutes at a moderate rate against the embedded target and
# sample its resident memory every 10 s. Prints the RSS series and the growth ratio
# (last sample / first sample after the 60 s warm-up). Target: flat (growth < 10%).
#
#   benches/soak.sh [DURATION_S=600] [RPS=500]
#
# Loopback only; the run is bounded by DURATION_S and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-600}
rps=${2:-500}
cargo build --release -q
out=$(mktemp -d)
./target/release/loadgate run scenarios/smoke.toml --rps "$rps" --duration "${duration}s" \
  -q --no-report --out "$out/run" > "$out/stdout" 2>&1 &
pid=$!
echo "loadgate pid $pid, ${duration}s at ${rps} rps, run directory $out/run"
echo "t_s rss_kib"
samples=()
t=0
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  if [ -n "$rss" ]; then
    echo "$t $rss"
    samples+=("$t:$rss")
  fi
  sleep 10
  t=$((t + 10))
done
wait "$pid" || true
tail -3 "$out/stdout"
# Growth: the last sample against the first one taken after 60 s of warm-up.
first="" last=""
for s in "${samples[@]}"; do
  ts=${s%%:*}; v=${s##*:}
  if [ "$ts" -ge 60 ] && [ -z "$first" ]; then first=$v; fi
  last=$v
done
if [ -n "$first" ] && [ -n "$last" ]; then
  awk -v a="$first" -v b="$last" 'BEGIN { printf "rss after warm-up %d KiB, at the end %d KiB, growth %.1f%%\n", a, b, (b / a - 1) * 100 }'
fi
