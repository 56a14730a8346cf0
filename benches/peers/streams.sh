#!/usr/bin/env bash
# Streamed responses (issue 21): loadgate's time to first token, gaps between tokens,
# whole-stream latency and output tokens/s against the known truth of a mock LLM server,
# and against GuideLLM run on the same server at the same constant rate. Loopback only;
# every run is bounded in time.
#
#   benches/peers/streams.sh   # SECS=20 WARMUP=0 RATE=10 PORT=18090 GUIDELLM_VENV=<temp dir> GUIDELLM_WORKERS=<GuideLLM's default, 10> WITNESS=1 KEEP=0 LG_FLAGS=
#
# WARMUP=N leaves the first N of the SECS seconds out of both tools' figures (loadgate's
# `warmup`, GuideLLM's profile `warmup=N`): the mock's own start-up stall is then judged
# by neither. LG_FLAGS are passed to `loadgate run` (e.g. `--no-pin`).
#
# - Makes a Python venv (in a temp dir removed at the end, or at GUIDELLM_VENV, kept and
#   reused) and `pip install guidellm` from PyPI. GuideLLM pulls torch and its CUDA
#   wheels: about 6 GB installed. If that fails, the script says why and compares
#   loadgate with the truth on its embedded target only.
# - Starts `guidellm mock-server` on 127.0.0.1:PORT (first token 300 ms after the
#   request, then a token every 30 ms, 40 tokens, no jitter) and runs loadgate, then
#   GuideLLM, against it. Beside each, a witness (a raw socket, one stream at a time, in
#   Python) reads the mock's streams too: what the mock really sent while that client
#   loaded it. It also reads six streams from the idle mock first (the first warms it).
# - Runs loadgate against its embedded target's stream route with the same shape.
# - Prints one markdown table (truth, loadgate, GuideLLM, the differences, the embedded
#   target), and one of the witness's readings with the CPU each process used.
#
# KEEP=1 keeps the temp dir (scenarios, run directories, GuideLLM's report, the witness's
# readings; and the venv when it is there) and prints its path.
#
# Stops only what it started, by PID: the mock runs in a session of its own (`setsid`)
# and its group is stopped; GuideLLM's worker processes run under `timeout`, which
# signals its own process group; the witness stops by itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

secs=${SECS:-20}
warmup=${WARMUP:-0}
rate=${RATE:-10}
port=${PORT:-18090}
witness=${WITNESS:-1}
ttft_ms=300
itl_ms=30
tokens=40

(cd "$root" && cargo build --release -q -p loadgate)
lg="${CARGO_TARGET_DIR:-$root/target}/release/loadgate"

work=$(mktemp -d)
venv=${GUIDELLM_VENV:-$work/venv}
mock_pid=
cleanup() {
  if [ -n "$mock_pid" ]; then
    kill -TERM -- "-$mock_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$mock_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$mock_pid" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# CPU seconds (user + system) a process has used so far, and a difference of two.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { print a - b }'; }
# Runs a command, writing its CPU seconds (user, system; waited-for descendants included)
# to $1 when GNU time is there.
cpu_timed() {
  local out=$1
  shift
  if [ -x /usr/bin/time ]; then /usr/bin/time -f '%U %S' -o "$out" "$@"; else "$@"; fi
}

# 1. GuideLLM in a venv, from PyPI.
gl_status=ok
if [ ! -x "$venv/bin/guidellm" ]; then
  echo "installing guidellm into $venv (pip, PyPI; about 6 GB with torch) ..." >&2
  if ! python3 -m venv "$venv" >"$work/venv.log" 2>&1; then
    gl_status="python3 -m venv failed: $(tail -n 3 "$work/venv.log" | tr '\n' ' ')"
  elif ! "$venv/bin/pip" install -q --no-cache-dir guidellm >"$work/pip.log" 2>&1; then
    gl_status="pip install guidellm failed: $(grep -iE 'error|no matching|requires' "$work/pip.log" | tail -n 5 | tr '\n' ' ')"
  fi
fi
if [ "$gl_status" = ok ] && ! "$venv/bin/guidellm" --version >"$work/glv.log" 2>&1; then
  gl_status="guidellm does not start: $(tail -n 3 "$work/glv.log" | tr '\n' ' ')"
fi
if [ "$gl_status" = ok ]; then
  ver() { "$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || echo none; }
  echo "guidellm $(ver guidellm), python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')," \
    "torch $(ver torch), sanic $(ver sanic), httpx $(ver httpx); venv $(du -sh "$venv" | cut -f1)" | tee "$work/versions" >&2
else
  echo "GuideLLM unavailable: $gl_status" >&2
  echo "comparing loadgate with the truth on its embedded target only" >&2
fi

# The loadgate scenario: one streamed chat endpoint, open model.
write_scenario() { # $1 file, $2 target line(s)
  cat >"$1" <<EOF
name = "streams"
$2

[defaults]
timeout = "60s"

[[endpoint]]
name = "chat"
method = "POST"
path = "/v1/chat/completions"
stream = "sse"
json = { model = "llama-3.1-8b-instruct", messages = [{ role = "user", content = "hi" }], stream = true, stream_options = { include_usage = true }, max_tokens = $tokens }

[load]
model = "open"
stages = [{ duration = "${secs}s", target_rps = $rate }]
$( [ "$warmup" -gt 0 ] && echo "warmup = \"${warmup}s\"" )
EOF
}

run_loadgate() { # $1 scenario, $2 out dir
  local rc=0
  cpu_timed "$2.cpu" timeout -k 10 $((secs + 120)) "$lg" run "$1" --out "$2" ${LG_FLAGS:-} >"$2.log" 2>&1 || rc=$?
  if [ ! -f "$2/summary.json" ]; then
    echo "loadgate wrote no summary (exit $rc):" >&2
    tail -n 20 "$2.log" >&2
  fi
}

# The witness: reads the mock's streams one at a time over a raw socket, for at most
# $2 seconds or $3 streams, until the file $4 exists; writes one JSON line per stream.
cat >"$work/witness.py" <<'EOF'
import json, os, socket, sys, time
port, secs, most, stop, tokens = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
body = json.dumps({"model": "llama-3.1-8b-instruct", "messages": [{"role": "user", "content": "hi"}],
                   "stream": True, "stream_options": {"include_usage": True}, "max_tokens": tokens}).encode()
head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
end = time.monotonic() + secs
n = 0
while n < most and time.monotonic() < end and not os.path.exists(stop):
    n += 1
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    wall, t0 = time.time(), time.perf_counter()
    s.sendall(head + body)
    times, got = [], b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        t = time.perf_counter()
        got += d
        # Content deltas completed so far: `"delta": {"content": "..."}` (the mock's shape).
        times += [t] * (got.count(b'"delta": {"content": "') - len(times))
    s.close()
    if len(times) > 1:
        print(json.dumps({"at": wall, "ttft": times[0] - t0, "last": times[-1] - t0,
                          "gaps": [b - a for a, b in zip(times, times[1:])]}), flush=True)
EOF
witness_start() { # $1 name, $2 seconds
  rm -f "$work/stop"
  if [ "$witness" = 1 ]; then
    python3 "$work/witness.py" "$port" "$2" 100000 "$work/stop" "$tokens" >"$work/witness-$1.jsonl" 2>/dev/null &
    witness_pid=$!
  fi
}
witness_stop() {
  touch "$work/stop"
  if [ "$witness" = 1 ]; then wait "$witness_pid" || true; fi
}

if [ "$gl_status" = ok ]; then
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "something already answers on 127.0.0.1:$port; set PORT" >&2
    exit 2
  fi
  # 2. The mock, in a session of its own so that its group can be stopped whole.
  setsid "$venv/bin/guidellm" mock-server --host 127.0.0.1 --port "$port" \
    --ttft-ms "$ttft_ms" --itl-ms "$itl_ms" --output-tokens "$tokens" >"$work/mock.log" 2>&1 &
  mock_pid=$!
  up=
  for _ in $(seq 120); do
    if curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$mock_pid" 2>/dev/null || break
    sleep 0.5
  done
  if [ -z "$up" ]; then
    echo "the mock server did not come up:" >&2
    tail -n 20 "$work/mock.log" >&2
    exit 1
  fi
  # The idle mock, six streams one at a time (the first warms it up).
  python3 "$work/witness.py" "$port" 60 6 "$work/none" "$tokens" >"$work/witness-idle.jsonl"

  # 3. loadgate against the mock.
  write_scenario "$work/mock.toml" "target = \"http://127.0.0.1:$port\""
  echo "loadgate -> mock, ${rate}/s for ${secs}s ..." >&2
  c0=$(cpu_of "$mock_pid")
  witness_start loadgate "$secs"
  run_loadgate "$work/mock.toml" "$work/lg-mock"
  witness_stop
  minus "$(cpu_of "$mock_pid")" "$c0" >"$work/mock-cpu-loadgate"
  cat /proc/loadavg >"$work/loadavg-loadgate"

  # 4. GuideLLM against the same mock. Its synthetic data needs a tokenizer; a small
  # byte-level BPE trained here on Faker text needs no download (prompt token counts
  # do not matter to the mock's timing).
  "$venv/bin/python" - "$work/tok" <<'EOF'
import sys
from faker import Faker
from tokenizers import ByteLevelBPETokenizer
from transformers import PreTrainedTokenizerFast
fake = Faker()
fake.seed_instance(7)
tok = ByteLevelBPETokenizer()
tok.train_from_iterator([fake.text(max_nb_chars=2000) for _ in range(200)], vocab_size=2000,
                        min_frequency=2, show_progress=False)
PreTrainedTokenizerFast(tokenizer_object=tok).save_pretrained(sys.argv[1])
EOF
  echo "GuideLLM -> mock, constant ${rate}/s for ${secs}s ..." >&2
  gl_rc=0
  c0=$(cpu_of "$mock_pid")
  # GuideLLM starts its workers for a while before it sends; the witness runs all along
  # and its streams are kept for GuideLLM's measured window only.
  witness_start guidellm $((secs + 300))
  (
    cd "$work"
    if [ -n "${GUIDELLM_WORKERS:-}" ]; then export GUIDELLM__MAX_WORKER_PROCESSES=$GUIDELLM_WORKERS; fi
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    cpu_timed "$work/guidellm.cpu" timeout -k 10 $((secs + 300)) "$venv/bin/guidellm" run \
      --backend "kind=openai_http,target=http://127.0.0.1:$port,request_format=/v1/chat/completions" \
      --profile "kind=constant,rate=$rate$( [ "$warmup" -gt 0 ] && echo ",warmup=$warmup" )" \
      --constraint "kind=max_duration,seconds=$secs" \
      --data "kind=synthetic_text,prompt_tokens=32,output_tokens=$tokens" \
      --tokenizer "kind=huggingface_auto,model=$work/tok" \
      --output "kind=json,path=$work/guidellm.json" \
      --disable-console-interactive >"$work/guidellm.log" 2>&1
  ) || gl_rc=$?
  witness_stop
  minus "$(cpu_of "$mock_pid")" "$c0" >"$work/mock-cpu-guidellm"
  cat /proc/loadavg >"$work/loadavg-guidellm"
  if [ ! -f "$work/guidellm.json" ]; then
    gl_status="guidellm run exited $gl_rc without a report: $(tail -n 5 "$work/guidellm.log" | tr '\n' ' ')"
    echo "$gl_status" >&2
  fi
fi

# 5. loadgate against its embedded target, streaming the same shape.
cat >"$work/llm.toml" <<EOF
[[route]]
method = "POST"
path = "/v1/chat/completions"
[route.stream]
format = "sse"
first_token = { dist = "fixed", value = "${ttft_ms}ms" }
token_gap = { dist = "fixed", value = "${itl_ms}ms" }
tokens = $tokens
EOF
write_scenario "$work/emb.toml" "target = \"embedded\"
target_profile = \"llm.toml\""
echo "loadgate -> embedded target, ${rate}/s for ${secs}s ..." >&2
run_loadgate "$work/emb.toml" "$work/lg-emb"
cat /proc/loadavg >"$work/loadavg-embedded"

# 6. The tables.
python3 - "$work" "$ttft_ms" "$itl_ms" "$tokens" "$rate" "$secs" "$gl_status" <<'EOF'
import json, os, sys
work, ttft, itl, tokens, rate, secs, gl_status = sys.argv[1:]
ttft, itl, tokens, rate, secs = float(ttft), float(itl), int(tokens), float(rate), int(secs)

def read(path):
    try:
        with open(os.path.join(work, path)) as f:
            return f.read()
    except OSError:
        return None

def load(path):
    try:
        return json.loads(read(path) or "")
    except ValueError:
        return None

STATS = ("p50", "p95", "p99")
ROWS = ([("ttft " + s, " ms") for s in STATS]
        + [("ttft from the actual send " + s, " ms") for s in STATS]
        + [("token gap " + s, " ms") for s in STATS] + [("token gap mean", " ms")]
        + [("time per token " + s, " ms") for s in STATS]
        + [("whole stream " + s, " ms") for s in STATS]
        + [("output tokens/s", ""), ("output tokens per stream", "")])

def lg_figures(summary):
    if summary is None:
        return {}
    o = summary["overall"]
    ms = lambda key, stat: o[key][stat] / 1000 if o.get(key, {}).get("count") else None
    f = {}
    for s in STATS:
        f["ttft " + s] = ms("ttft_us", s)
        f["ttft from the actual send " + s] = ms("ttft_service_us", s)
        f["token gap " + s] = ms("itl_us", s)
        f["whole stream " + s] = ms("latency_us", s)
        f["time per token " + s] = ms("tpot_us", s)
    f["token gap mean"] = ms("itl_us", "mean")
    st = o.get("stream") or {}
    f["output tokens/s"] = st.get("tokens_per_s")
    f["output tokens per stream"] = st["tokens"] / st["streams"] if st.get("streams") else None
    r, p = summary["rate"], summary.get("pauses") or {}
    lag = r.get("send_lag_us") or {}
    f["_n"] = ("%d requests, %d succeeded, outcomes %s, verdict %s; late sends %d (send lag p99 %.1f ms, "
               "max %.1f ms), dropped %d; loadgate's pause meter: %s pauses over 1 ms, %.1f ms in all, "
               "the longest %.1f ms") % (
        o["requests"], o["requests"] - o["errors"], {k: v for k, v in o["outcomes"].items() if v},
        summary["verdict"], r["late"], lag.get("p99", 0) / 1000, lag.get("max", 0) / 1000, r["dropped"],
        p.get("count", 0), p.get("total_us", 0) / 1000, p.get("max_us", 0) / 1000)
    return f

def gl_figures(report):
    if report is None:
        return {}
    b = report["benchmarks"][0]
    m = b["metrics"]
    ok = lambda key: m[key]["successful"]
    f = {}
    for s in STATS:
        f["ttft " + s] = ok("time_to_first_token_ms")["percentiles"][s]
        f["ttft from the actual send " + s] = f["ttft " + s]
        # GuideLLM's inter-token latency is one value per request, its mean gap
        # ((end - first token) / (tokens - 1)): loadgate's time per token, not its gaps.
        f["time per token " + s] = ok("inter_token_latency_ms")["percentiles"][s]
        f["whole stream " + s] = ok("request_latency")["percentiles"][s] * 1000
    f["token gap mean"] = ok("inter_token_latency_ms")["mean"]
    # As its console's throughput table: the tokens of all requests, the ones still in
    # flight at its stop included, that arrived in its window.
    f["output tokens/s"] = m["output_tokens_per_second"]["total"]["mean"]
    f["output tokens per stream"] = ok("output_token_count")["mean"]
    t = m["request_totals"]
    f["_n"] = "%d requests, %d succeeded, %d incomplete (in flight at its stop), %d errored" % (
        t["total"], t["successful"], t["incomplete"], t["errored"])
    f["_window"] = (b["start_time"], b["end_time"])
    return f

last = ttft + (tokens - 1) * itl
truth = {}
for s in STATS:
    truth["ttft " + s] = ttft
    truth["ttft from the actual send " + s] = ttft
    truth["token gap " + s] = itl
    truth["whole stream " + s] = last
    truth["time per token " + s] = itl
truth["token gap mean"] = itl
truth["output tokens/s"] = rate * tokens
truth["output tokens per stream"] = tokens

lg, gl = lg_figures(load("lg-mock/summary.json")), gl_figures(load("guidellm.json"))
emb = lg_figures(load("lg-emb/summary.json"))

def num(v):
    return "" if v is None else ("%.1f" % v)

def pct(a, b):
    if a is None or b is None or b == 0:
        return ""
    d = (a - b) / b * 100
    return ("**%+.1f%%**" if abs(d) > 5 else "%+.1f%%") % d

print()
print("First token %g ms, a token every %g ms, %d tokens; %g requests/s for %d s." % (ttft, itl, tokens, rate, secs))
versions = read("versions")
if versions:
    print(versions.strip())
print()
print("| metric | truth | loadgate | GuideLLM | loadgate vs truth % | loadgate vs GuideLLM % | loadgate, embedded target | embedded vs truth % |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for k, unit in ROWS:
    print("| %s%s | %s | %s | %s | %s | %s | %s | %s |" % (
        k, unit, num(truth[k]), num(lg.get(k)), num(gl.get(k)), pct(lg.get(k), truth[k]),
        pct(lg.get(k), gl.get(k)), num(emb.get(k)), pct(emb.get(k), truth[k])))
print()
print("Bold: more than 5%% apart. Whole stream: from the send to the end of the body (truth: the first token and %d gaps, %g ms)." % (tokens - 1, last))
print("GuideLLM times the first token from the actual send (its request_start), so its figure stands in both ttft rows.")
print("Token gap: loadgate's, one value per gap (GuideLLM has none per gap; the witness below reads the mock's own gaps).")
print("Time per token: one value per request, (end - first token) / (tokens - 1): GuideLLM's inter-token latency, loadgate's tpot.")
print("GuideLLM's output tokens/s counts the tokens that arrived in its %d s window, those of the requests it cut off" % secs)
print("at its stop included; loadgate's, the tokens of the streams due in its %d s (each read to its end), over %d s." % (secs, secs))
print()
for name, f in (("loadgate → mock", lg), ("GuideLLM → mock", gl), ("loadgate → embedded target", emb)):
    if f:
        print("- %s: %s" % (name, f["_n"]))
if gl_status != "ok":
    print("- GuideLLM: " + gl_status)

def witness(path, window=None):
    runs = [json.loads(l) for l in (read(path) or "").splitlines() if l.strip()]
    if window:
        runs = [r for r in runs if window[0] <= r["at"] and r["at"] + r["last"] <= window[1]]
    return runs

def pctl(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None

def cpu(path):
    v = read(path)
    try:
        return sum(float(x) for x in v.split()) if v else None
    except ValueError:
        return None

phases = [("idle, one stream at a time", witness("witness-idle.jsonl")[1:], None, None, None),
          ("while loadgate sent", witness("witness-loadgate.jsonl"), cpu("mock-cpu-loadgate"), cpu("lg-mock.cpu"), read("loadavg-loadgate")),
          ("while GuideLLM sent", witness("witness-guidellm.jsonl", gl.get("_window")), cpu("mock-cpu-guidellm"), cpu("guidellm.cpu"), read("loadavg-guidellm"))]
if any(p[1] for p in phases):
    print()
    print("What the mock sent, read by the witness (a raw socket, one stream at a time, beside the client), and the CPU each used:")
    print()
    print("| phase | witness streams | first token p50 / max ms | gap mean / p50 / p99 / max ms | whole stream mean ms | mock CPU s | client CPU s (whole process) | load average after |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, runs, mock_cpu, client_cpu, la in phases:
        if not runs:
            continue
        ft = [r["ttft"] * 1000 for r in runs]
        gaps = [g * 1000 for r in runs for g in r["gaps"]]
        print("| %s | %d | %.1f / %.1f | %.2f / %.1f / %.1f / %.1f | %.1f | %s | %s | %s |" % (
            name, len(runs), pctl(ft, 0.5), max(ft), sum(gaps) / len(gaps), pctl(gaps, 0.5), pctl(gaps, 0.99), max(gaps),
            sum(r["last"] for r in runs) / len(runs) * 1000, num(mock_cpu), num(client_cpu),
            " ".join((la or "").split()[:3])))
EOF
