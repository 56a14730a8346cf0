#!/usr/bin/env bash
# What a flow costs the generator (issue 22): loadgate's CPU per request for a 3-step
# flow (a login whose token a JSON path captures, then two requests sending it in a
# header) against the same three requests sent as independent endpoints, at the same
# request rate for the same time, both open model. Loopback only; every run is bounded
# in time.
#
#   benches/peers/flows.sh   # ROUNDS=3 SECS=20 FLOWS=2000 THINK= COOKIES=1 PORT=18085 TARGET=nginx|loadgate KEEP=0 LG_FLAGS=
#
# COOKIES=0 turns the flow's cookie jar off (`cookies = false`): what the jar (and the
# response headers it makes every step keep) costs of the difference.
#
# THINK=10ms gives the flow that think time between its steps (each later step then
# waits on a timer of its own, as an independent request does); none by default.
# - The target is a process of its own on 127.0.0.1:PORT, so that loadgate's CPU is
#   measured alone: nginx (one worker, no access log; `apt-get install nginx-light`)
#   when installed, else (or with TARGET=loadgate) a second loadgate serving its
#   embedded target (`loadgate serve-target --threads 1`). Three routes: POST
#   /api/auth/login answers `{"token": ...}`; GET /api/items and GET /api/done answer
#   401 unless sent `Authorization: Bearer <that token>`.
# - Each round runs loadgate (release, `--no-report`) twice, alternating which goes
#   first: (a) the flow at FLOWS iterations/s, (b) the three requests as independent
#   endpoints of equal weight at 3 x FLOWS requests/s with the token as a static header.
# - Measures loadgate's CPU (user + system, from /proc/<pid>/stat polled every 10 ms)
#   over the load phase (from run.json, written just before the load, to summary.json,
#   written after the drain), its worker threads' CPU alone, and the whole process's
#   (wait4); the requests completed (summary.json `overall.requests`); and prints CPU
#   µs per request of each run, their ratio (flow ÷ independent), the achieved request
#   rate and the late-send ratio. A run that did not hold its rate (under 99% of the
#   requests, over 1% late sends, or a verdict other than pass) is marked: the
#   comparison of that round means nothing. The achieved share is the script's own
#   (`overall.requests` ÷ 3 x FLOWS x SECS): a flow run's `rate` in summary.json counts every step as sent but only the
#   iterations as scheduled (achieved_ratio 3.0 for this flow), and its late sends
#   include the later steps, each timed from the end of the step before.
# - Prints each round and the medians; the load average before each run (other work on
#   the same cores moves the figures: prefer a quiet machine).
#
# KEEP=1 keeps the temp dir (scenarios, run directories, logs) and prints its path.
# Stops only what it started, by PID: the target (nginx's master stops its worker).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

secs=${SECS:-20}
flows=${FLOWS:-2000}
rounds=${ROUNDS:-3}
think=${THINK:-}
port=${PORT:-18085}
target=${TARGET:-}
if [ -z "$target" ]; then
  if command -v nginx >/dev/null; then target=nginx; else target=loadgate; fi
fi
case "$target" in
  nginx)
    if ! command -v nginx >/dev/null; then
      echo "TARGET=nginx needs nginx: apt-get install nginx-light (or TARGET=loadgate)" >&2
      exit 2
    fi
    ;;
  loadgate) ;;
  *) echo "TARGET must be nginx or loadgate, not $target" >&2; exit 2 ;;
esac

(cd "$root" && cargo build --release -q -p loadgate)
lg="${CARGO_TARGET_DIR:-$root/target}/release/loadgate"

work=$(mktemp -d)
target_pid=
cleanup() {
  if [ -n "$target_pid" ]; then
    kill -TERM "$target_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$target_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$target_pid" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

url="http://127.0.0.1:$port"
if curl -s -o /dev/null "$url/"; then
  echo "something already answers on 127.0.0.1:$port; set PORT" >&2
  exit 2
fi

# 1. The target.
if [ "$target" = nginx ]; then
  # A JWT-shaped token as long as the embedded target's.
  token="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJiZW5jaCIsImlhdCI6MTc2NDQ5NjAwMCwiZXhwIjoxNzY0NDk5NjAwfQ.Zm9yLXRoZS1iZW5jaC1vbmx5LW5vdC1hLXNpZ25hdHVyZQ"
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    default_type application/json;
    server {
        listen 127.0.0.1:$port;
        location = /api/auth/login {
            return 200 '{"token":"$token","token_type":"Bearer","expires_in":3600}';
        }
        location = /api/items {
            if (\$http_authorization != "Bearer $token") { return 401 '{"error":"who are you"}'; }
            return 200 '{"items":[{"id":7,"name":"bench"}],"next":null}';
        }
        location = /api/done {
            if (\$http_authorization != "Bearer $token") { return 401 '{"error":"who are you"}'; }
            return 200 '{"status":"ok"}';
        }
    }
}
EOF
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/target.log" 2>&1 &
  target_pid=$!
  echo "target: $(nginx -v 2>&1 | sed 's/.*: //'), 1 worker, on $url" >&2
else
  cat >"$work/profile.toml" <<'EOF'
[auth]
token_ttl = "3600s"
protect = ["/api/items", "/api/done"]

[[route]]
method = "GET"
path = "/api/items"
latency = { dist = "fixed", value = "0ms" }
response = '{"items":[{"id":7,"name":"bench"}],"next":null}'

[[route]]
method = "GET"
path = "/api/done"
latency = { dist = "fixed", value = "0ms" }
response = '{"status":"ok"}'
EOF
  "$lg" serve-target --profile "$work/profile.toml" --addr "127.0.0.1:$port" --threads 1 >"$work/target.log" 2>&1 &
  target_pid=$!
  echo "target: loadgate serve-target --threads 1 on $url" >&2
fi
login() { curl -fs -X POST -H 'content-type: application/json' -d '{"username":"bench","password":"demo"}' "$url/api/auth/login"; }
up=
for _ in $(seq 100); do
  if login >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$target_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "the target did not come up:" >&2
  tail -n 20 "$work/target.log" >&2
  exit 1
fi
# The independent requests send the token the login gives, as a static header.
token=$(login | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
if [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url/api/items")" != 200 ] ||
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/api/items")" != 401 ]; then
  echo "the target does not check the token as it should" >&2
  exit 1
fi

# 2. The two scenarios: the same three requests, at the same request rate.
rps=$((flows * 3))
common="target = \"$url\"

[defaults]
timeout = \"10s\"
"
load="[load]
model = \"open\"
stages = [{ duration = \"${secs}s\", target_rps = RATE }]
"
cat >"$work/flow.toml" <<EOF
name = "flow"
$common
[[flow]]
name = "journey"
$( [ -n "$think" ] && echo "think_time = \"$think\"" )
$( [ "${COOKIES:-1}" = 0 ] && echo "cookies = false" )

[[flow.step]]
name = "login"
method = "POST"
path = "/api/auth/login"
json = { username = "bench", password = "demo" }
capture = { token = "\$.token" }

[[flow.step]]
name = "items"
path = "/api/items"
headers = { Authorization = "Bearer {{token}}" }

[[flow.step]]
name = "done"
path = "/api/done"
headers = { Authorization = "Bearer {{token}}" }

${load/RATE/$flows}
EOF
cat >"$work/independent.toml" <<EOF
name = "independent"
$common
[[endpoint]]
name = "login"
method = "POST"
path = "/api/auth/login"
json = { username = "bench", password = "demo" }

[[endpoint]]
name = "items"
path = "/api/items"
headers = { Authorization = "Bearer $token" }

[[endpoint]]
name = "done"
path = "/api/done"
headers = { Authorization = "Bearer $token" }

${load/RATE/$rps}
EOF
for s in flow independent; do
  "$lg" validate "$work/$s.toml" >"$work/validate-$s.log" 2>&1 || {
    cat "$work/validate-$s.log" >&2
    exit 1
  }
done

echo "loadgate $("$lg" --version | sed 's/.* //'), $(nproc) CPUs; $rounds round(s) of ${secs}s each:" \
  "a flow of 3 steps at $flows flows/s${think:+ (think time $think)} against 3 endpoints at $rps requests/s" >&2

# 3. The rounds, and the table.
python3 - "$lg" "$work" "$rounds" "$secs" "$flows" "${LG_FLAGS:-}" <<'EOF'
import json, os, statistics, subprocess, sys, time

lg, work, rounds, secs, flows, lg_flags = sys.argv[1:]
rounds, secs, flows = int(rounds), int(secs), int(flows)
rps = 3 * flows
hz = os.sysconf("SC_CLK_TCK")

def cpu_of(stat_path):
    """User + system CPU seconds of a process or thread, and its name."""
    with open(stat_path) as f:
        s = f.read()
    name = s[s.index("(") + 1 : s.rindex(")")]
    fields = s[s.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / hz, name

runs = 0

def run(kind):
    global runs
    runs += 1
    out = os.path.join(work, "%s-%d" % (kind, runs))
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    argv = [lg, "run", os.path.join(work, kind + ".toml"), "--out", out, "--no-report", "--quiet"]
    argv += lg_flags.split()
    with open(out + ".log", "w") as log:
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    stat = "/proc/%d/stat" % p.pid
    workers = {}  # tid -> the last CPU seconds seen of each worker thread
    c0 = c1 = None
    deadline = time.monotonic() + secs + 120
    while True:
        try:
            now, _ = cpu_of(stat)
            for tid in os.listdir("/proc/%d/task" % p.pid):
                try:
                    c, name = cpu_of("/proc/%d/task/%s/stat" % (p.pid, tid))
                except OSError:
                    continue
                if name.startswith("loadgate-worke"):
                    workers[tid] = c
        except (OSError, ValueError):
            pass
        else:
            if c0 is None and os.path.exists(os.path.join(out, "run.json")):
                c0 = now
            if c1 is None and os.path.exists(os.path.join(out, "summary.json")):
                c1 = now
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            p.kill()
        time.sleep(0.01)
    r = {"kind": kind, "out": out, "load": load, "exit": p.returncode,
         "whole_cpu": ru.ru_utime + ru.ru_stime}
    try:
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
    except (OSError, ValueError):
        print("%s: no summary (exit %s); see %s.log" % (kind, p.returncode, out), file=sys.stderr)
        return r
    o, rate = s["overall"], s["rate"]
    r.update(verdict=s["verdict"], requests=o["requests"], errors=o["errors"],
             late_ratio=rate.get("late_ratio") or 0, dropped=rate.get("dropped") or 0,
             phase_cpu=(c1 - c0) if c0 is not None and c1 is not None else None,
             worker_cpu=sum(workers.values()))
    r["achieved"] = r["requests"] / (rps * secs)
    return r

def us(cpu, n):
    return cpu / n * 1e6 if cpu is not None and n else None

def held(r):
    return (r.get("verdict") == "pass" and r["achieved"] >= 0.99 and r["late_ratio"] <= 0.01)

def fmt(v, f="%.2f"):
    return "" if v is None else f % v

rows = []
print()
print("| round | run | load avg before | verdict | requests | of scheduled | errors | late sends | CPU s: load phase / workers / whole process | µs/request (load phase) | µs/request (workers) | µs/request (whole process) | held the rate |")
print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
ratios, wratios, pratios = [], [], []
per = {"flow": [], "independent": []}
for n in range(1, rounds + 1):
    order = ("flow", "independent") if n % 2 else ("independent", "flow")
    got = {}
    for kind in order:
        r = run(kind)
        got[kind] = r
        if "requests" not in r:
            print("| %d | %s | %s | no summary (exit %s) | | | | | | | | | no |" % (n, kind, r["load"], r["exit"]))
            continue
        r["us"] = us(r["phase_cpu"], r["requests"])
        r["wus"] = us(r["worker_cpu"], r["requests"])
        r["pus"] = us(r["whole_cpu"], r["requests"])
        per[kind].append(r)
        print("| %d | %s | %s | %s | %d | %.2f%% | %d | %.3f%% | %s / %.2f / %.2f | %s | %s | %s | %s |" % (
            n, kind, r["load"], r["verdict"], r["requests"], 100 * r["achieved"], r["errors"],
            100 * r["late_ratio"], fmt(r["phase_cpu"]), r["worker_cpu"], r["whole_cpu"], fmt(r["us"]),
            fmt(r["wus"]), fmt(r["pus"]),
            "yes" if held(r) else "**no: this round's comparison means nothing**"), flush=True)
    f, i = got.get("flow", {}), got.get("independent", {})
    if f.get("us") and i.get("us") and held(f) and held(i):
        ratios.append(f["us"] / i["us"])
        wratios.append(f["wus"] / i["wus"])
        pratios.append(f["pus"] / i["pus"])
        print("| %d | **flow ÷ independent** | | | | | | | | **%.3fx** | **%.3fx** | **%.3fx** | |" % (
            n, ratios[-1], wratios[-1], pratios[-1]), flush=True)

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

print()
for kind in ("flow", "independent"):
    rs = per[kind]
    if rs:
        print("- %s (median of %d): %s µs/request over the load phase, %s µs/request in the workers, %.2f%% of scheduled requests, %.3f%% late" % (
            kind, len(rs), fmt(med([r["us"] for r in rs])), fmt(med([r["wus"] for r in rs])),
            100 * med([r["achieved"] for r in rs]), 100 * med([r["late_ratio"] for r in rs])))
if ratios:
    print("- **median ratio, flow ÷ independent: %.3fx over the load phase, %.3fx in the workers, %.3fx for the whole process** (%d round(s) that held the rate; issue 22 asks at most 1.2x)" % (
        med(ratios), med(wratios), med(pratios), len(ratios)))
else:
    print("- no round held the rate in both runs: no ratio (see the load average: wait for a quieter machine, or lower FLOWS)")
EOF
