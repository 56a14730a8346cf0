#!/usr/bin/env bash
# Side-by-side: loadgate against wrk, oha, hey and ab on this machine, same nginx, same
# connections, alternating rounds. Loopback only; every run is bounded in time.
#
#   benches/peers/compare.sh   # ROUNDS=3 THREADS=2,1 SECS=10 CONNS=50 FIXED_RPS=20000 FIXED_SECS=30 FIXED_ROUNDS=3 LONG_SECS=60
#
# Installs what it needs: nginx, wrk, apache2-utils (ab), hey and time from Debian's
# packages, oha with `cargo install --locked`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

need_apt=()
command -v nginx >/dev/null || need_apt+=(nginx-light)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v ab >/dev/null || need_apt+=(apache2-utils)
command -v hey >/dev/null || need_apt+=(hey)
[ -x /usr/bin/time ] || need_apt+=(time)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v oha >/dev/null || cargo install oha --locked
(cd "$root" && cargo build --release -q)

prefix=$(mktemp -d)
cp "$here/nginx.conf" "$prefix/nginx.conf"
nginx -p "$prefix" -c "$prefix/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
trap 'kill "$nginx_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -fs http://127.0.0.1:18080/ >/dev/null 2>&1 && break
  sleep 0.1
done

python3 "$here/compare.py" --loadgate "$root/target/release/loadgate" --scenario "$here/nginx.toml" \
  --rounds "${ROUNDS:-3}" --threads "${THREADS:-2,1}" --secs "${SECS:-10}" --conns "${CONNS:-50}" \
  --fixed-rps "${FIXED_RPS:-20000}" --fixed-secs "${FIXED_SECS:-30}" --fixed-rounds "${FIXED_ROUNDS:-3}" \
  --long-secs "${LONG_SECS:-60}"
