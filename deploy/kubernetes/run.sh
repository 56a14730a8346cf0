#!/usr/bin/env bash
# Runs one split load on the current kubectl context and exits with the merged verdict:
#   IMAGE=registry.example.com/loadgate:1.2.3 deploy/kubernetes/run.sh
# 0 pass, 1 an SLO budget breached, 3 invalid (a generator could not hold its share),
# 2 incomplete or mismatched segments; anything else: the Jobs themselves failed.
#
# Env: IMAGE (required), NAMESPACE (default: the context's), LEAD_SECONDS (how far ahead
# the shared start is, default 90: long enough to pull the image and schedule every pod).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${IMAGE:?set IMAGE to the loadgate image, e.g. registry.example.com/loadgate:1.2.3}"
lead=${LEAD_SECONDS:-90}
k=(kubectl ${NAMESPACE:+--namespace "$NAMESPACE"})
start_at=$(date -u -d "+${lead} seconds" +%Y-%m-%dT%H:%M:%SZ)
fill() { sed -e "s|__IMAGE__|${IMAGE}|g" -e "s|__START_AT__|${start_at}|g" "$here/$1"; }

"${k[@]}" apply -f "$here/configmap.yaml" -f "$here/pvc.yaml"
"${k[@]}" delete job loadgate-segments loadgate-merge --ignore-not-found --wait=true
echo "segments begin their schedule at $start_at"
fill segments-job.yaml | "${k[@]}" apply -f -
# The profile plus the lead time and the grace for in-flight requests, bounded.
if ! "${k[@]}" wait --for=condition=complete job/loadgate-segments --timeout=900s; then
  echo "loadgate-segments did not complete; its pods:" >&2
  "${k[@]}" logs -l app.kubernetes.io/component=segment --tail=50 --prefix >&2 || true
fi
fill merge-job.yaml | "${k[@]}" apply -f -
"${k[@]}" wait --for=jsonpath='{.status.active}'=0 job/loadgate-merge --timeout=300s >/dev/null 2>&1 || true
for _ in $(seq 300); do
  code=$("${k[@]}" get pods -l job-name=loadgate-merge \
    -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}' 2>/dev/null || true)
  [ -n "$code" ] && break
  sleep 1
done
"${k[@]}" logs job/loadgate-merge || true
echo "merged run: /results/$start_at/merged on the loadgate-results volume"
exit "${code:-70}"
