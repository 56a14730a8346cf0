#!/usr/bin/env python3
"""Runs loadgate and its peers alternately against the nginx that compare.sh started and
prints one table: requests/s, p50/p99, client CPU seconds and max RSS (medians over the
rounds), with loadgate's ratio to each peer; then a fixed-rate comparison.

Every run is bounded (the tool's own duration, plus a subprocess timeout)."""
import argparse, json, os, re, statistics, subprocess, tempfile, time

URL = "http://127.0.0.1:18080/"


def ms(value, unit):
    return float(value) * {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "secs": 1e3}[unit]


def timed(cmd, limit):
    """Runs cmd under /usr/bin/time -v; returns (stdout, cpu_s, max_rss_kib)."""
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, timeout=limit)
    err = p.stderr
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", err).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", err).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
    return p.stdout, user + system, rss


def run_wrk(a, threads):
    out, cpu, rss = timed(["wrk", f"-t{threads}", f"-c{a.conns}", f"-d{a.secs}s", "--latency", URL], a.secs + 30)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+(?:us|ms|s))", out, re.M))
    conv = lambda v: ms(*re.match(r"([\d.]+)(us|ms|s)", v).groups())
    return rps, conv(p["50"]), conv(p["99"]), cpu, rss


def run_oha(a, threads):
    out, cpu, rss = timed(["oha", "--no-tui", "--output-format", "json", "--worker-threads", str(threads), "-c", str(a.conns), "-z", f"{a.secs}s", URL], a.secs + 30)
    j = json.loads(out)
    lp = j["latencyPercentiles"]
    return j["summary"]["requestsPerSec"], lp["p50"] * 1e3, lp["p99"] * 1e3, cpu, rss


def run_hey(a, threads):
    out, cpu, rss = timed(["hey", "-cpus", str(threads), "-z", f"{a.secs}s", "-c", str(a.conns), URL], a.secs + 30)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p = dict(re.findall(r"^\s+(50|99)%+ in ([\d.]+) secs", out, re.M))
    return rps, float(p["50"]) * 1e3, float(p["99"]) * 1e3, cpu, rss


def run_ab(a, threads):
    # ab has one thread, whatever `threads` says: it runs only in the one-thread table.
    out, cpu, rss = timed(["ab", "-k", "-q", "-c", str(a.conns), "-t", str(a.secs), "-n", "100000000", URL], a.secs + 30)
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    p = dict(re.findall(r"^\s+(50|99)%\s+(\d+)", out, re.M))
    return rps, float(p["50"]), float(p["99"]), cpu, rss


def run_loadgate(a, threads):
    with tempfile.TemporaryDirectory() as d:
        _, cpu, rss = timed([a.loadgate, "run", a.scenario, "--vus", str(a.conns), "--workers", str(threads), "--duration", f"{a.secs}s",
                             "-q", "--no-report", "--out", d], a.secs + 60)
        s = json.load(open(os.path.join(d, "summary.json")))
        o = s["overall"]
        return o["rps"], o["latency_us"]["p50"] / 1e3, o["latency_us"]["p99"] / 1e3, cpu, rss


def _watch_cpu(cpu, stop, out):
    """One probe process, pinned to `cpu` and real-time if allowed: sleeps 1 ms at a time
    and reports every wake-up more than 2 ms late as a (start, end) pair of wall-clock
    seconds."""
    os.sched_setaffinity(0, {cpu})
    try:
        # SCHED_FIFO 90 preempts every ordinary task (loadgate, nginx, ksoftirqd), so
        # nothing they do can delay it: only interrupts, or the host not running the CPU.
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(90))
    except (PermissionError, OSError):
        pass
    stalls, last = [], time.time()
    while not stop.is_set():
        time.sleep(0.001)
        now = time.time()
        if now - last > 0.002:
            stalls.append((last, now))
        last = now
    out.put((cpu, stalls))


class StallProbe:
    """One sleeper process pinned to each CPU (real-time when run as root), each noting
    when it was kept from running for more than 2 ms. A stretch in which every CPU's
    sleeper was stalled at once is a stall of the whole machine (on a virtual machine,
    every vCPU descheduled by the host): nothing on the machine ran, loadgate included.
    Seen from outside loadgate, in separate processes so that no interpreter lock ties
    them together."""

    def __enter__(self):
        import multiprocessing as mp
        ctx = mp.get_context("fork")
        self.stop, self.out = ctx.Event(), ctx.Queue()
        self.procs = [ctx.Process(target=_watch_cpu, args=(c, self.stop, self.out), daemon=True)
                      for c in sorted(os.sched_getaffinity(0))]
        for p in self.procs:
            p.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.per_cpu = dict(self.out.get(timeout=30) for _ in self.procs)
        for p in self.procs:
            p.join()

    def machine_stalls(self, min_ms=1.0):
        """Stretches (start, end) of wall-clock seconds in which every CPU was stalled,
        at least `min_ms` long."""
        spans = None
        for stalls in self.per_cpu.values():
            if spans is None:
                spans = list(stalls)
                continue
            spans = [(max(a, c), min(b, d)) for a, b in spans for c, d in stalls if max(a, c) < min(b, d)]
        return [(a, b) for a, b in (spans or []) if (b - a) * 1e3 >= min_ms]

    def summary(self, start):
        """Every CPU's stalls over 5 ms and the machine-wide ones, timed from `start`."""
        parts = []
        for cpu, stalls in sorted(self.per_cpu.items()):
            long = sorted(((b - a) * 1e3, a - start) for a, b in stalls if b - a > 0.005)
            worst = ", ".join(f"{ms:.0f} ms at s{t:.1f}" for ms, t in long[::-1][:2])
            parts.append(f"cpu{cpu} {len(long)}" + (f" (longest {worst})" if worst else ""))
        both = self.machine_stalls()
        total = stall_ms(both)
        return "over 5 ms: " + "; ".join(parts) + f"; every CPU at once (1 ms or more): {len(both)}, {total:.0f} ms in all"


def stall_ms(stalls):
    return sum(b - a for a, b in stalls) * 1e3


def forced_late(stalls, rps, secs):
    """The share of a run's arrivals that whole-machine stalls alone make late (more than
    1 ms behind): those due in a stall's span but for its last millisecond."""
    return sum(max(0.0, (b - a) * 1e3 - 1.0) for a, b in stalls) * rps / 1e3 / (rps * secs)


def hlog_start(path):
    """The wall-clock start of a run (its schedule's start) from its interval log."""
    for line in open(path):
        if line.startswith("#[StartTime:"):
            return float(line.split()[1])
    raise ValueError(f"{path}: no StartTime")


TOOLS = [("loadgate", run_loadgate), ("wrk", run_wrk), ("oha", run_oha), ("hey", run_hey), ("ab", run_ab)]


def closed_loop(a, threads):
    """One table: every tool with `threads` client threads (loadgate --workers, wrk -t,
    oha --worker-threads, hey -cpus), alternating over the rounds. ab has one thread, so
    it is in the one-thread table only. With nginx on the same two cores, the thread
    count decides how much CPU is left to nginx, so tools are compared at equal counts."""
    tools = [(n, f) for n, f in TOOLS if n != "ab" or threads == 1]
    results = {name: [] for name, _ in tools}
    for r in range(a.rounds):
        # Alternate the order each round so no tool always runs on a warmer machine.
        order = tools if r % 2 == 0 else list(reversed(tools))
        for name, fn in order:
            row = fn(a, threads)
            results[name].append(row)
            print(f"threads {threads} round {r + 1} {name:9s} {row[0]:10.0f} req/s  p50 {row[1]:7.3f} ms  p99 {row[2]:7.3f} ms  cpu {row[3]:5.2f} s  rss {row[4] // 1024} MiB", flush=True)

    med = {n: [statistics.median(col) for col in zip(*rows)] for n, rows in results.items()}
    lg = med["loadgate"]
    lg_per_req = lg[3] / (lg[0] * a.secs)
    print(f"\nClosed loop, {threads} client thread{'s' if threads > 1 else ''}, {a.conns} keep-alive connections, {a.secs} s, "
          f"GET of a ~200-byte JSON body from nginx (1 worker), medians of {a.rounds} rounds\n")
    print("| tool | requests/s | p50 ms | p99 ms | client CPU s | CPU µs/request | max RSS MiB | loadgate req/s ratio | loadgate CPU/request ÷ tool's |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, _ in tools:
        rps, p50, p99, cpu, rss = med[name]
        per_req = cpu / (rps * a.secs) if rps else 0
        ratio = "—" if name == "loadgate" else f"{lg[0] / rps:.2f}x"
        cpu_ratio = "—" if name == "loadgate" else f"{lg_per_req / per_req:.2f}x"
        print(f"| {name} | {rps:,.0f} | {p50:.3f} | {p99:.3f} | {cpu:.2f} | {per_req * 1e6:.2f} | {rss / 1024:.0f} | {ratio} | {cpu_ratio} |")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loadgate", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=lambda v: [int(t) for t in v.split(",")], default=[2, 1],
                    help="client thread counts, one closed-loop table each (comma-separated)")
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--fixed-rps", type=int, default=20000)
    ap.add_argument("--fixed-secs", type=int, default=30)
    ap.add_argument("--fixed-rounds", type=int, default=3)
    ap.add_argument("--long-secs", type=int, default=60)
    a = ap.parse_args()

    for threads in a.threads:
        closed_loop(a, threads)

    if a.long_secs > 0:
        # Memory must not grow with the run: one long closed-loop run at full throughput,
        # with its report written, as a CI gate would run it.
        with tempfile.TemporaryDirectory() as d:
            _, cpu, rss = timed([a.loadgate, "run", a.scenario, "--vus", str(a.conns), "--duration", f"{a.long_secs}s",
                                 "-q", "--out", d], a.long_secs + 120)
            o = json.load(open(os.path.join(d, "summary.json")))["overall"]
            report = os.path.getsize(os.path.join(d, "report.html"))
        print(f"\nloadgate for {a.long_secs} s at full throughput (closed loop, report written): {o['rps']:,.0f} req/s, "
              f"{o['sent']:,} requests, cpu {cpu:.2f} s, max RSS {rss / 1024:.0f} MiB (issue 5's budget: 32 MiB), report.html {report // 1024} KiB")

    print(f"\nFixed rate: {a.fixed_rps} requests/s for {a.fixed_secs} s, {a.fixed_rounds} runs\n")
    print("Beside each run, one sleeper process per CPU (SCHED_FIFO 90 when run as root, so no ordinary task can delay it)")
    print("wakes every 1 ms and notes when it was kept from running.")
    print("When every CPU's sleeper is stalled at once, the whole machine stood still (loadgate could not send either).\n")
    print("Arrivals due while the whole machine stands still are late whatever the generator does: a stall of")
    print("S ms (S > 1) forces (S - 1) x rate/1000 late sends. 'forced' below is that floor as a share of the run.\n")
    with StallProbe() as probe:
        time.sleep(a.fixed_secs)
    idle = probe.machine_stalls()
    print(f"idle machine (nothing running), {a.fixed_secs} s: {len(idle)} whole-machine stalls ({stall_ms(idle):.0f} ms), "
          f"which at {a.fixed_rps}/s would force {forced_late(idle, a.fixed_rps, a.fixed_secs) * 100:.3f}% late")
    lates, clear_lates, cpus, stall_counts, forced = [], [], [], [], []
    for r in range(a.fixed_rounds):
        with tempfile.TemporaryDirectory() as d, StallProbe() as probe:
            _, cpu, rss = timed([a.loadgate, "run", a.scenario, "--rps", str(a.fixed_rps), "--duration", f"{a.fixed_secs}s",
                                 "-q", "--no-report", "--out", d], a.fixed_secs + 60)
            s = json.load(open(os.path.join(d, "summary.json")))
            rows = [json.loads(line) for line in open(os.path.join(d, "timeseries.jsonl"))]
            start = hlog_start(os.path.join(d, "intervals.hlog"))
        r_ = s["rate"]
        lates.append(r_["late_ratio"])
        cpus.append(cpu)
        # Seconds of the run in which the whole machine stood still for 1 ms or more.
        stalls = probe.machine_stalls()
        stall_counts.append((len(stalls), stall_ms(stalls)))
        forced.append(forced_late(stalls, a.fixed_rps, a.fixed_secs))
        frozen = {int(t - start) for span in stalls for t in span}
        clear = [j for j in rows if j["t"] not in frozen]
        clear_late = sum(j["late"] for j in clear) / max(1, sum(j["sent"] for j in clear))
        clear_lates.append(clear_late)
        # Seconds in which no CPU at all was held more than 2 ms: what is late there
        # cannot be put down to the host.
        held = {int(t - start) for spans in probe.per_cpu.values() for span in spans for t in span}
        quiet = [j for j in rows if j["t"] not in held]
        quiet_late = sum(j["late"] for j in quiet) / max(1, sum(j["sent"] for j in quiet))
        bursts = [(j["t"], j["late"]) for j in rows if j["late"] >= 50]
        print(f"loadgate run {r + 1}: sent {r_['achieved_rps']:.0f}/s ({r_['achieved_ratio'] * 100:.2f}% of target), late {r_['late_ratio'] * 100:.3f}%, "
              f"dropped {r_['dropped']}, p50 {s['overall']['latency_us']['p50'] / 1e3:.3f} ms, p99 {s['overall']['latency_us']['p99'] / 1e3:.3f} ms, "
              f"cpu {cpu:.2f} s, rss {rss // 1024} MiB, verdict {s['verdict']}")
        print(f"    seconds with 50+ late sends: {', '.join(f's{t}: {n}' for t, n in bursts) or 'none'}")
        print(f"    machine stalls: {probe.summary(start)}")
        p = s.get("pauses") or {}
        print(f"    loadgate's own pause meter: {p.get('count', 0)} pauses over {p.get('threshold_us', 0) / 1e3:g} ms, "
              f"{p.get('total_us', 0) / 1e3:.1f} ms in all, the longest {p.get('max_us', 0) / 1e3:.1f} ms")
        print(f"    late in the {len(clear)} seconds without a whole-machine stall: {clear_late * 100:.3f}%; "
              f"forced by the stalls: {forced[-1] * 100:.3f}% of the run")
        print(f"    late in the {len(quiet)} seconds in which no CPU was held over 2 ms: {quiet_late * 100:.3f}%")
    under = sum(1 for x in lates if x < 0.001)
    clear_under = sum(1 for x in clear_lates if x < 0.001)
    print(f"loadgate late sends: median {statistics.median(lates) * 100:.3f}%, under 0.1% in {under} of {len(lates)} runs; "
          f"outside whole-machine stalls: median {statistics.median(clear_lates) * 100:.3f}%, under 0.1% in {clear_under} of {len(lates)} runs; "
          f"the stalls alone forced over 0.1% in {sum(1 for f in forced if f >= 0.001)} of {len(lates)} runs")
    # The control: the same load from oha, with the same probe beside it. oha does not
    # count late sends, but the machine's stalls under its load can be compared.
    with StallProbe() as probe:
        out, cpu, rss = timed(["oha", "--no-tui", "--output-format", "json", "-q", str(a.fixed_rps), "--latency-correction",
                               "-c", str(a.conns * 4), "-z", f"{a.fixed_secs}s", URL], a.fixed_secs + 60)
    j = json.loads(out)
    oha_stalls = probe.machine_stalls()
    print(f"oha:      {j['summary']['requestsPerSec']:.0f}/s, p50 {j['latencyPercentiles']['p50'] * 1e3:.3f} ms, p99 {j['latencyPercentiles']['p99'] * 1e3:.3f} ms, cpu {cpu:.2f} s, rss {rss // 1024} MiB")
    print(f"whole-machine stalls (1 ms or more) during each {a.fixed_secs} s run: loadgate "
          + ", ".join(f"{n} ({ms:.0f} ms)" for n, ms in stall_counts)
          + f"; oha {len(oha_stalls)} ({stall_ms(oha_stalls):.0f} ms)")
    print(f"client CPU at {a.fixed_rps} requests/s: loadgate {statistics.median(cpus):.2f} s (median), oha {cpu:.2f} s; loadgate/oha {statistics.median(cpus) / cpu:.2f}")
    freeze_check(a)


def freeze_check(a):
    """Coordinated omission: a target that freezes every response for 1.0 s every 5 s,
    1000 requests/s for 15 s (three whole periods, so exactly 20% of arrivals wait
    uniformly 0..1 s). Starts its own embedded target for each tool, so the freeze phase
    is the same relative to each run."""
    here = os.path.dirname(os.path.abspath(__file__))
    truth = {"p90": 500.0, "p99": 950.0, "p99.9": 995.0, "mean": 100.0}
    print("\nCoordinated omission: every response frozen 1.0 s every 5 s, 1000 requests/s for 15 s\n")
    print("The analytic truth assumes the ~1000 held responses leave at the freeze's end all at once. The target")
    print("lets them go one after another over some milliseconds, in about the order they arrived, and measures")
    print("that release lag itself (GET /__loadgate/release-lag): the request at fraction u of the freeze waits")
    print("(1 - u) s plus the lag at quantile u (p90: the median lag, p99: its 5th percentile, p99.9: its 0.5th).")
    print("The last column is each tool's error against that: what it measured beyond what the target did.\n")
    print("| tool | p90 ms | p99 ms | p99.9 ms | mean ms | error vs analytic truth | target's release lag p50/p5/p0.5 ms | error vs truth + lag |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| analytic truth | {truth['p90']:.1f} | {truth['p99']:.1f} | {truth['p99.9']:.1f} | {truth['mean']:.1f} | — | — | — |")

    def serve():
        p = subprocess.Popen([a.loadgate, "serve-target", "--profile", os.path.join(here, "freeze-profile.toml"),
                              "--addr", "127.0.0.1:18081", "--threads", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                import socket
                socket.create_connection(("127.0.0.1", 18081), timeout=0.1).close()
                return p
            except OSError:
                import time
                time.sleep(0.05)
        p.kill()
        raise SystemExit("the embedded target did not start")

    def release_lag():
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:18081/__loadgate/release-lag", timeout=5) as r:
            lag = json.load(r)["lag_us"]
        return {"p90": lag["p50"] / 1e3, "p99": lag["p5"] / 1e3, "p99.9": lag["p0.5"] / 1e3}

    def errors(got, ref):
        worst = max(abs(got[k] - ref[k]) / max(ref[k] * 0.02, 10.0) for k in ("p90", "p99", "p99.9"))
        verdict = "within 2% or 10 ms" if worst <= 1.0 else "outside 2% or 10 ms"
        return ", ".join(f"{k} {got[k] - ref[k]:+.1f}" for k in ("p90", "p99", "p99.9")) + f" ms ({verdict})"

    def row(name, got, lag):
        lagged = {k: truth[k] + lag[k] for k in lag}
        print(f"| {name} | {got['p90']:.1f} | {got['p99']:.1f} | {got['p99.9']:.1f} | {got['mean']:.1f} | {errors(got, truth)} | "
              f"{lag['p90']:.1f}/{lag['p99']:.1f}/{lag['p99.9']:.1f} | {errors(got, lagged)} |")

    target = serve()
    try:
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([a.loadgate, "run", os.path.join(here, "freeze.toml"), "-q", "--no-report", "--out", d],
                           capture_output=True, timeout=60)
            h = json.load(open(os.path.join(d, "summary.json")))["overall"]["latency_us"]
            row("loadgate", {"p90": h["p90"] / 1e3, "p99": h["p99"] / 1e3, "p99.9": h["p999"] / 1e3, "mean": h["mean"] / 1e3},
                release_lag())
    finally:
        target.kill()
        target.wait()
    target = serve()
    try:
        out = subprocess.run(["oha", "--no-tui", "--output-format", "json", "-q", "1000", "--latency-correction",
                              "-c", "1200", "-z", "15s", "http://127.0.0.1:18081/"],
                             capture_output=True, text=True, timeout=60).stdout
        j = json.loads(out)
        lp = j["latencyPercentiles"]
        row("oha --latency-correction", {"p90": lp["p90"] * 1e3, "p99": lp["p99"] * 1e3, "p99.9": lp["p99.9"] * 1e3,
                                          "mean": j["summary"]["average"] * 1e3}, release_lag())
    finally:
        target.kill()
        target.wait()


if __name__ == "__main__":
    main()
