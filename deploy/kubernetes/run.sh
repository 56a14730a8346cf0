#!/usr/bin/env bash
# Runs one split load on the current kubectl context and exits with the merged verdict:
#   IMAGE=registry.example.com/loadgate:1.2.3 TARGET_URL=https://staging.example.com \
#     STORAGE_CLASS=efs-sc deploy/kubernetes/run.sh
# 0 pass, 1 an SLO budget breached, 3 invalid (a generator could not hold its share),
# 2 incomplete or mismatched segments; anything else: the Jobs themselves failed.
#
# Env: IMAGE, TARGET_URL and STORAGE_CLASS (a ReadWriteMany class) are required;
# NAMESPACE (default: the context's), LEAD_SECONDS (how far ahead the shared start is,
# default 90: long enough to pull the image and schedule every pod). API_TOKEN comes from
# the optional Secret loadgate-api-token.
# A cluster needs: the image pullable by its nodes, a ReadWriteMany storage class, room
# for N segment pods at once (the Job's parallelism), and network egress to the
# target. Runs with GNU or BSD date, bash and kubectl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${IMAGE:?set IMAGE to the loadgate image, e.g. registry.example.com/loadgate:1.2.3}"
: "${TARGET_URL:?set TARGET_URL to the base URL to load, e.g. https://staging.example.com}"
: "${STORAGE_CLASS:?set STORAGE_CLASS to a ReadWriteMany storage class (NFS, CephFS, EFS, Filestore, Azure Files)}"
lead=${LEAD_SECONDS:-90}
k=(kubectl ${NAMESPACE:+--namespace "$NAMESPACE"})
# GNU date takes -d @EPOCH, BSD date -r EPOCH.
at=$(( $(date -u +%s) + lead ))
start_at=$(date -u -d "@$at" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$at" +%Y-%m-%dT%H:%M:%SZ)
fill() {
  sed -e "s|__IMAGE__|${IMAGE}|g" -e "s|__START_AT__|${start_at}|g" \
      -e "s|__TARGET_URL__|${TARGET_URL}|g" -e "s|__STORAGE_CLASS__|${STORAGE_CLASS}|g" "$here/$1"
}

"${k[@]}" apply -f "$here/configmap.yaml"
fill pvc.yaml | "${k[@]}" apply -f -
"${k[@]}" delete job loadgate-segments loadgate-merge --ignore-not-found --wait=true
echo "segments begin their schedule at $start_at"
fill segments-job.yaml | "${k[@]}" apply -f -
# Until every segment completed, or one failed (no retries: a failed measurement is not
# run again), bounded by the profile plus the lead time and the grace.
deadline=$(( $(date -u +%s) + 900 ))
while :; do
  done_n=$("${k[@]}" get job loadgate-segments -o jsonpath='{.status.succeeded}' 2>/dev/null || true)
  failed_n=$("${k[@]}" get job loadgate-segments -o jsonpath='{.status.failed}' 2>/dev/null || true)
  want=$("${k[@]}" get job loadgate-segments -o jsonpath='{.spec.completions}' 2>/dev/null || echo 0)
  if [ "${done_n:-0}" = "$want" ] && [ "$want" != 0 ]; then break; fi
  if [ "${failed_n:-0}" != 0 ] || [ "$(date -u +%s)" -ge "$deadline" ]; then
    echo "loadgate-segments did not complete (${failed_n:-0} failed); its pods:" >&2
    "${k[@]}" logs -l app.kubernetes.io/component=segment --tail=50 --prefix >&2 || true
    break
  fi
  sleep 5
done
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
