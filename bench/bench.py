#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark harness: wrk against meshproxy, nginx and HAProxy configured identically.

Run through bench/run.sh (`make bench`), which installs nginx, HAProxy and wrk first. Topology,
all on 127.0.0.1 with ports picked free at start:

    wrk (CPU 0) --> proxy under test (CPU 1) --90%--> upstream nginx "v1" (CPU 1)
                                             --10%--> upstream nginx "v2" (CPU 1)

Every process is ours: started from the configs in bench/configs/ rendered into a temporary
directory, stopped by PID at the end, on error and on Ctrl-C. Each round runs, one proxy at a
time and in a rotating order: a memory phase (RSS idle, then with IDLE_CONNS idle client
connections), a 1-route load phase and a 1,000-route load phase, each on a freshly started
proxy. The report holds the median of the rounds; it is printed and written to
bench/results/latest.md.

Environment: BENCH_DURATION (seconds per measured run, 10), BENCH_WARMUP (seconds, 2),
BENCH_CONNECTIONS (64), BENCH_THREADS (wrk threads, 1), BENCH_ROUNDS (5), BENCH_WORKERS
(workers/threads of every proxy, default 1: one per CPU the proxies are pinned to),
BENCH_IDLE_CONNS (1000),
BENCH_ROUTES (1000), BENCH_PROXIES (meshproxy,nginx,haproxy), MESHPROXY (build/meshproxy),
MESHCTL (build/meshctl), BENCH_OUT (bench/results/latest.md), BENCH_KEEP=1 keeps the temporary
directory with the rendered configs and logs.
"""
import datetime
import os
import pathlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "bench" / "configs"
HOST = "payment.example.com"
PATH = "/api/v1/payments"
START_TIMEOUT = 10.0  # seconds for a proxy or upstream to answer after it was started
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
SPLIT_PROBES = 100  # requests of the split sanity check before each load run


def env_int(name, default):
    raw = os.environ.get(name, "")
    raw = raw[:-1] if raw.endswith("s") else raw  # BENCH_DURATION=10s reads as 10
    return int(raw) if raw else default


def say(msg):
    print(f"bench: {msg}", flush=True)


class Settings:
    def __init__(self):
        ncpu = os.cpu_count() or 1
        self.duration = env_int("BENCH_DURATION", 10)
        self.warmup = env_int("BENCH_WARMUP", 2)
        self.connections = env_int("BENCH_CONNECTIONS", 64)
        self.threads = env_int("BENCH_THREADS", 1)
        self.rounds = env_int("BENCH_ROUNDS", 5)
        # Every proxy runs pinned to one CPU (proxy_cpu below), so each gets one worker per CPU
        # it may run on, as each project advises (nginx's worker_processes auto, HAProxy's
        # nbthread default, meshproxy's default): more would only take turns on that CPU.
        self.workers = env_int("BENCH_WORKERS", 1)
        self.idle_conns = env_int("BENCH_IDLE_CONNS", 1000)
        self.routes = env_int("BENCH_ROUTES", 1000)
        self.proxies = os.environ.get("BENCH_PROXIES", "meshproxy,nginx,haproxy").split(",")
        self.meshproxy = pathlib.Path(os.environ.get("MESHPROXY", ROOT / "build" / "meshproxy"))
        self.meshctl = pathlib.Path(os.environ.get("MESHCTL", ROOT / "build" / "meshctl"))
        default_out = ROOT / "bench" / "results" / "latest.md"
        self.out = pathlib.Path(os.environ.get("BENCH_OUT", default_out))
        self.keep = os.environ.get("BENCH_KEEP") == "1"
        # Anything else running skews the figures; the report shows how busy the machine was.
        self.load_before = os.getloadavg()
        # Load generator alone on CPU 0; proxy and upstreams share CPU 1. On one CPU all share it.
        self.load_cpu = "0"
        self.proxy_cpu = "1" if ncpu >= 2 else "0"
        if self.connections < self.threads:
            raise SystemExit("bench: BENCH_CONNECTIONS must be at least BENCH_THREADS")

    def env_line(self):
        return (f"BENCH_DURATION={self.duration} BENCH_WARMUP={self.warmup} "
                f"BENCH_CONNECTIONS={self.connections} BENCH_THREADS={self.threads} "
                f"BENCH_ROUNDS={self.rounds} BENCH_WORKERS={self.workers} "
                f"BENCH_IDLE_CONNS={self.idle_conns} BENCH_ROUTES={self.routes}")


# ---------------------------------------------------------------------------------------------
# Processes


class Procs:
    """Every process the harness started, so that each is stopped by its PID, whatever happens."""

    def __init__(self):
        self.live = []

    def start(self, name, argv, log_path):
        log = open(log_path, "wb")
        # Own session: Ctrl-C reaches only the harness, which then stops each child itself.
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        log.close()
        p.bench_name, p.bench_log = name, log_path
        self.live.append(p)
        return p

    def stop(self, p):
        if p not in self.live:
            return
        self.live.remove(p)
        if p.poll() is not None:
            return
        # nginx's master stops its workers on SIGTERM; should it need SIGKILL, its workers would
        # be orphaned, so they are collected first and killed by PID too.
        family = tree_pids(p.pid)
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            say(f"{p.bench_name} (pid {p.pid}) ignored SIGTERM for {STOP_TIMEOUT}s: SIGKILL")
            p.kill()
            p.wait(timeout=STOP_TIMEOUT)
        for pid in family[1:]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop_all(self):
        for p in list(reversed(self.live)):
            self.stop(p)


def log_tail(p, lines=15):
    try:
        text = pathlib.Path(p.bench_log).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def tree_pids(root):
    """The PID `root` and all its descendants, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def proc_kib(pid, path, field):
    try:
        for line in pathlib.Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def memory_kib(root):
    """(RSS, PSS) summed over a process and its children, in KiB. RSS counts pages shared by
    nginx's master and workers once per process; PSS splits them, so both are reported."""
    pids = tree_pids(root)
    rss = sum(proc_kib(pid, "status", "VmRSS") for pid in pids)
    pss = sum(proc_kib(pid, "smaps_rollup", "Pss") for pid in pids)
    return rss, pss


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, sock=None, path=PATH, timeout=2.0):
    """One GET on `sock` (a new connection when None): (status, body, sock)."""
    if sock is None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed inside the response body")
        body += chunk
    return int(lines[0].split()[1]), body[:length], sock


def wait_ready(p, port):
    """Waits until `port` answers the benchmark request with 200; raises with the log if not."""
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{p.bench_name} exited with {p.returncode}:\n{log_tail(p)}")
        try:
            status, _, sock = http_get(port, timeout=1.0)
            sock.close()
            if status == 200:
                return
            last = f"status {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.05)
    raise RuntimeError(f"{p.bench_name} not ready on 127.0.0.1:{port} after "
                       f"{START_TIMEOUT}s ({last}):\n{log_tail(p)}")


def check_split(name, port):
    """Sends SPLIT_PROBES requests on one connection and checks the 90/10 split, so that a
    misconfigured proxy is caught before it is measured."""
    counts = {b"v1\n": 0, b"v2\n": 0}
    sock = None
    try:
        for _ in range(SPLIT_PROBES):
            status, body, sock = http_get(port, sock)
            if status != 200 or body not in counts:
                raise RuntimeError(f"{name}: split check got status {status} body {body!r}")
            counts[body] += 1
    finally:
        if sock is not None:
            sock.close()
    v2 = counts[b"v2\n"]
    if not SPLIT_PROBES * 5 // 100 <= v2 <= SPLIT_PROBES * 15 // 100:
        raise RuntimeError(f"{name}: {v2} of {SPLIT_PROBES} requests went to v2, expected ~10%")


# ---------------------------------------------------------------------------------------------
# Configs


def render(template, dest, values, extra=""):
    text = (CONFIGS / template).read_text()
    lines = []
    for line in text.splitlines(keepends=True):
        lines.append(extra if "@EXTRA_ROUTES@" in line else line)
    text = "".join(lines)
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    leftover = re.search(r"@[A-Z_]+@", text)
    if leftover:
        raise RuntimeError(f"{template}: placeholder {leftover.group(0)} has no value")
    dest.write_text(text)


def extra_routes(proxy, n):
    """`n` routes on payment.example.com that never match PATH, declared before the real one.
    A third each: glob /api/v1/rN/*, prefix /api/v1/pN/, exact /api/v1/eN, all sharing the
    real path's first 8 bytes so that matching cannot reject them on the first byte."""
    out = []
    for i in range(1, n + 1):
        kind = i % 3
        if proxy == "meshproxy":
            path = (f"/api/v1/r{i}/*", f"{{prefix: /api/v1/p{i}/}}", f"{{exact: /api/v1/e{i}}}")
            out.append(f"    - name: r{i}\n      matches:\n        - path: {path[kind]}\n"
                       f"      destinations:\n        - host: payment-v1\n")
        elif proxy == "nginx":
            loc = (f"/api/v1/r{i}/", f"/api/v1/p{i}/", f"= /api/v1/e{i}")
            out.append(f"        location {loc[kind]} {{ proxy_pass http://payment_v1; }}\n")
        else:
            acl = (f"path_beg /api/v1/r{i}/", f"path_beg /api/v1/p{i}/", f"path /api/v1/e{i}")
            # Path first: HAProxy evaluates the condition left to right and stops at the first
            # false term, as meshproxy checks the host once and then only the paths.
            out.append(f"    use_backend payment_v1 if {{ {acl[kind]} }} host_payment\n")
    return "".join(out)


class Bench:
    def __init__(self, settings):
        self.s = settings
        self.procs = Procs()
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="meshbench."))
        self.upstreams = []
        self.results = {}  # (phase, proxy) -> list of per-round dicts
        self.runs = []  # every measured run, for the raw table

    def pinned(self, cpu, argv):
        return ["taskset", "-c", cpu] + argv

    def work_dir(self, name):
        """A fresh directory under the temporary one, with the temp paths nginx insists on."""
        d = self.tmp / name
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        return d

    def start_upstreams(self):
        for name in ("v1", "v2"):
            port = free_port()
            d = self.work_dir(f"upstream-{name}")
            render("upstream.nginx.conf", d / "nginx.conf",
                   {"DIR": d, "LISTEN": f"127.0.0.1:{port}", "NAME": name})
            p = self.procs.start(f"upstream {name}", self.pinned(self.s.proxy_cpu, [
                "nginx", "-p", str(d), "-c", str(d / "nginx.conf"), "-g", "daemon off;"]),
                d / "log")
            self.upstreams.append((name, port, p))
        for name, port, p in self.upstreams:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    status, body, sock = http_get(port, timeout=1.0)
                    sock.close()
                    if status == 200 and body == f"{name}\n".encode():
                        break
                except OSError:
                    pass
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"upstream {name} did not start:\n{log_tail(p)}")
                time.sleep(0.05)
        say("upstreams: " + ", ".join(f"{n} on 127.0.0.1:{port}" for n, port, _ in self.upstreams))

    def start_proxy(self, proxy, routes):
        """Starts a fresh instance of `proxy` pinned to the proxy CPU; returns (proc, port)."""
        d = self.work_dir(f"{proxy}-{routes}")
        port = free_port()
        values = {"DIR": d, "WORKERS": self.s.workers, "LISTEN": f"127.0.0.1:{port}",
                  "UPSTREAM_A": f"127.0.0.1:{self.upstreams[0][1]}",
                  "UPSTREAM_B": f"127.0.0.1:{self.upstreams[1][1]}"}
        extra = extra_routes(proxy, routes - 1) if routes > 1 else ""
        if proxy == "meshproxy":
            cfg = d / "meshproxy.yaml"
            render("meshproxy.yaml", cfg, values, extra)
            argv = [str(self.s.meshproxy), "--config", str(cfg), "--listen", f"127.0.0.1:{port}",
                    "--admin", f"127.0.0.1:{free_port()}", "--workers", str(self.s.workers)]
        elif proxy == "nginx":
            cfg = d / "nginx.conf"
            render("nginx.conf", cfg, values, extra)
            argv = ["nginx", "-p", str(d), "-c", str(cfg), "-g", "daemon off;"]
        else:
            cfg = d / "haproxy.cfg"
            render("haproxy.cfg", cfg, values, extra)
            argv = ["haproxy", "-db", "-f", str(cfg)]
        p = self.procs.start(proxy, self.pinned(self.s.proxy_cpu, argv), d / "log")
        try:
            wait_ready(p, port)
        except BaseException:
            self.procs.stop(p)
            raise
        return p, port

    # -----------------------------------------------------------------------------------------
    # Phases

    def wrk_argv(self, port, seconds):
        return self.pinned(self.s.load_cpu, [
            "wrk", f"-t{self.s.threads}", f"-c{self.s.connections}", f"-d{seconds}s", "--latency",
            "-H", f"Host: {HOST}", f"http://127.0.0.1:{port}{PATH}"])

    def run_wrk(self, p, port, seconds):
        """Runs wrk for `seconds` while sampling the proxy's memory; returns the parsed result
        with the last sample taken while wrk was still running."""
        sample = {}
        done = threading.Event()

        def sampler():
            while not done.wait(0.25):
                rss, pss = memory_kib(p.pid)
                if rss:
                    sample["rss"], sample["pss"] = rss, pss

        t = threading.Thread(target=sampler, daemon=True)
        t.start()
        try:
            out = subprocess.run(self.wrk_argv(port, seconds), capture_output=True, text=True,
                                 timeout=seconds + 30, start_new_session=True)
        finally:
            done.set()
            t.join()
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}{out.stderr}")
        res = parse_wrk(out.stdout)
        res.update(sample)
        if p.poll() is not None:
            raise RuntimeError(f"{p.bench_name} died under load:\n{log_tail(p)}")
        return res

    def phase_memory(self, proxy, rnd):
        p, port = self.start_proxy(proxy, 1)
        try:
            time.sleep(1.0)  # let start-up allocations settle before the idle sample
            idle_rss, idle_pss = memory_kib(p.pid)
            helper = subprocess.Popen(
                self.pinned(self.s.load_cpu, [sys.executable, str(ROOT / "bench" / "idle_conns.py"),
                                              str(port), str(self.s.idle_conns), HOST, PATH]),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
            try:
                ready = helper.stdout.readline().split()
                if ready[:1] != ["ready"]:
                    raise RuntimeError(f"idle_conns.py failed: {ready}")
                time.sleep(0.5)
                conns_rss, conns_pss = memory_kib(p.pid)
                helper.stdin.write("close\n")
                helper.stdin.flush()
                still = helper.stdout.readline().split()
                helper.wait(timeout=10)
            finally:
                if helper.poll() is None:
                    helper.kill()
                    helper.wait()
            served, still_open = int(ready[1]), int(still[1]) if len(still) == 2 else 0
        finally:
            self.procs.stop(p)
        res = {"idle_rss": idle_rss, "idle_pss": idle_pss, "conns_rss": conns_rss,
               "conns_pss": conns_pss, "served": served, "open": still_open}
        self.record("memory", proxy, rnd, res)
        say(f"round {rnd + 1} {proxy:9s} memory: idle {mib(idle_rss)}, with "
            f"{self.s.idle_conns} idle connections {mib(conns_rss)} "
            f"({served} served, {still_open} still open)")

    def phase_load(self, proxy, rnd, routes):
        p, port = self.start_proxy(proxy, routes)
        try:
            check_split(proxy, port)
            if self.s.warmup > 0:
                self.run_wrk(p, port, self.s.warmup)
            res = self.run_wrk(p, port, self.s.duration)
        finally:
            self.procs.stop(p)
        phase = "load" if routes == 1 else "routes"
        self.record(phase, proxy, rnd, res)
        say(f"round {rnd + 1} {proxy:9s} {routes:5d} route(s): {res['rps']:,.0f} req/s, "
            f"p50 {fmt_us(res['p50'])}, p99 {fmt_us(res['p99'])}, RSS {mib(res.get('rss', 0))}"
            + (f", ERRORS {res['errors']}" if res["errors"] else ""))

    def record(self, phase, proxy, rnd, res):
        self.results.setdefault((phase, proxy), []).append(res)
        self.runs.append((rnd + 1, phase, proxy, res))

    def run(self, proxies):
        self.start_upstreams()
        for rnd in range(self.s.rounds):
            # Rotate the order each round so that no proxy always runs first or last.
            order = proxies[rnd % len(proxies):] + proxies[:rnd % len(proxies)]
            for proxy in order:
                self.phase_memory(proxy, rnd)
            for proxy in order:
                self.phase_load(proxy, rnd, 1)
            if self.s.routes > 1:
                for proxy in order:
                    self.phase_load(proxy, rnd, self.s.routes)

    def close(self):
        self.procs.stop_all()
        if self.s.keep:
            say(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# wrk output and the report

UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unknown wrk duration {text!r}")
    return float(m.group(1)) * UNITS_US[m.group(2)]


def parse_wrk(out):
    """requests/s, p50/p99 in microseconds, total requests and errors from `wrk --latency`."""
    def grab(pattern):
        m = re.search(pattern, out)
        if not m:
            raise RuntimeError(f"wrk output without {pattern!r}:\n{out}")
        return m

    res = {"rps": float(grab(r"Requests/sec:\s+([\d.]+)").group(1)),
           "p50": to_us(grab(r"\n\s+50%\s+(\S+)").group(1)),
           "p99": to_us(grab(r"\n\s+99%\s+(\S+)").group(1)),
           "requests": int(grab(r"(\d+) requests in").group(1))}
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    res["errors"] = errors
    return res


def mib(kib):
    return f"{kib / 1024:.1f} MiB" if kib else "n/a"


def fmt_us(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} us"


def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def ratio(a_rows, b_rows, key):
    """Median over rounds of a/b within each round. The proxies of a round run back to back, so
    a ratio taken inside a round is far less exposed to the machine's load drifting between
    rounds than a ratio of the medians."""
    pairs = [a[key] / b[key] for a, b in zip(a_rows, b_rows) if a.get(key) and b.get(key)]
    return statistics.median(pairs) if pairs else None


def fmt_ratio(x):
    return f"{x:.2f}x" if x is not None else "n/a"


def tool_version(argv, pattern):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(0).strip() if m else "unknown"


def machine():
    model = "unknown"
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = 0
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1])
    return f"{os.cpu_count()} CPUs ({model}), {mem / 1048576:.0f} GiB, Linux {os.uname().release}"


def report(bench, proxies, skipped):
    s = bench.s
    have_mesh = "meshproxy" in proxies
    lines = []
    add = lines.append
    add("# meshproxy benchmark: latest results\n")
    add(f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}")
    add(f"- command: `make bench` (`{s.env_line()} bench/run.sh`)")
    add(f"- load: `taskset -c {s.load_cpu} wrk -t{s.threads} -c{s.connections} -d{s.duration}s "
        f"--latency -H 'Host: {HOST}' http://127.0.0.1:PORT{PATH}` after a {s.warmup}s warm-up; "
        f"{s.rounds} round(s), median shown")
    add(f"- proxy and both upstream nginx pinned to CPU {s.proxy_cpu}; every proxy with "
        f"{s.workers} workers/threads; configs in bench/configs/")
    add(f"- machine: {machine()}")
    before, after = s.load_before, os.getloadavg()
    add(f"- load average (1/5/15 min) before: {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, "
        f"after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f} (the harness itself keeps about "
        "2 CPUs busy while it runs)")
    add(f"- versions: {tool_version(['nginx', '-v'], r'nginx/[^ ]+')}, "
        f"{tool_version(['haproxy', '-v'], r'HAProxy version [^ ]+')}, "
        f"{tool_version(['wrk', '-v'], r'wrk [^ ]+')}, meshproxy "
        + (git_rev() if have_mesh else "not measured"))
    for name, why in skipped:
        add(f"- **{name} skipped**: {why}")
    add("")

    add(f"## Throughput, latency and memory under load (1 route, {s.connections} connections)\n")
    add("| proxy | requests/s | p50 | p99 | RSS under load | PSS under load | errors |")
    add("|---|---:|---:|---:|---:|---:|---:|")
    load = {p: bench.results.get(("load", p), []) for p in proxies}
    for p in proxies:
        rows = load[p]
        add(f"| {p} | {med(rows, 'rps'):,.0f} | {fmt_us(med(rows, 'p50'))} | "
            f"{fmt_us(med(rows, 'p99'))} | {mib(med(rows, 'rss'))} | {mib(med(rows, 'pss'))} | "
            f"{sum(r['errors'] for r in rows)} |")
    add("")

    add("## Ratios (meshproxy / other; requests/s higher is better, the rest lower is better)\n")
    add("Each ratio is the median over rounds of the ratio within a round, where the proxies ran "
        "back to back.\n")
    add("| ratio | requests/s | p50 | p99 | RSS under load | RSS idle | RSS with idle conns |")
    add("|---|---:|---:|---:|---:|---:|---:|")
    memr = {p: bench.results.get(("memory", p), []) for p in proxies}
    for other in ("nginx", "haproxy"):
        if not have_mesh or other not in proxies:
            add(f"| meshproxy/{other} | n/a | n/a | n/a | n/a | n/a | n/a |")
            continue
        m, o = load["meshproxy"], load[other]
        mm, om = memr["meshproxy"], memr[other]
        cells = [ratio(m, o, "rps"), ratio(m, o, "p50"), ratio(m, o, "p99"), ratio(m, o, "rss"),
                 ratio(mm, om, "idle_rss"), ratio(mm, om, "conns_rss")]
        add(f"| meshproxy/{other} | " + " | ".join(fmt_ratio(c) for c in cells) + " |")
    if not have_mesh:
        add("\nmeshproxy was not measured, so there are no ratios yet: this is the nginx/HAProxy "
            "baseline.")
    add("")

    add(f"## Memory: idle and with {s.idle_conns} idle keep-alive client connections\n")
    add("RSS is VmRSS summed over the proxy's processes (nginx: master + workers); PSS splits "
        "pages shared between them.\n")
    add(f"| proxy | RSS idle | RSS with {s.idle_conns} conns | PSS idle | "
        f"PSS with {s.idle_conns} conns | conns served / still open |")
    add("|---|---:|---:|---:|---:|---:|")
    for p in proxies:
        rows = memr[p]
        add(f"| {p} | {mib(med(rows, 'idle_rss'))} | {mib(med(rows, 'conns_rss'))} | "
            f"{mib(med(rows, 'idle_pss'))} | {mib(med(rows, 'conns_pss'))} | "
            f"{min(r['served'] for r in rows)} / {min(r['open'] for r in rows)} |")
    add("")

    if s.routes > 1:
        add(f"## Route table size: 1 route vs {s.routes} routes\n")
        add(f"The {s.routes - 1} extra routes (globs, prefixes and exact paths on the same host "
            "that never match) come before the real one: meshproxy and HAProxy try them in "
            "order; nginx keeps prefix and exact locations in a static tree, so order does not "
            "matter to it.\n")
        add("The change is the median over rounds of the change within a round.\n")
        add(f"| proxy | requests/s, 1 route | requests/s, {s.routes} routes | change | "
            f"p99, {s.routes} routes | errors |")
        add("|---|---:|---:|---:|---:|---:|")
        for p in proxies:
            one, many = load[p], bench.results.get(("routes", p), [])
            a, b = med(one, "rps"), med(many, "rps")
            change = ratio(many, one, "rps")
            add(f"| {p} | {a:,.0f} | {b:,.0f} | {(change - 1) * 100:+.1f}% | "
                f"{fmt_us(med(many, 'p99'))} | {sum(r['errors'] for r in many)} |")
        add("")

    add("## Every run\n")
    add("| round | phase | proxy | requests/s | p50 | p99 | RSS | idle RSS | conns RSS |")
    add("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for rnd, phase, p, r in bench.runs:
        if phase == "memory":
            add(f"| {rnd} | memory | {p} | | | | | {mib(r['idle_rss'])} | {mib(r['conns_rss'])} |")
        else:
            label = "1 route" if phase == "load" else f"{s.routes} routes"
            add(f"| {rnd} | {label} | {p} | {r['rps']:,.0f} | {fmt_us(r['p50'])} | "
                f"{fmt_us(r['p99'])} | {mib(r.get('rss', 0))} | | |")
    return "\n".join(lines) + "\n"


def git_rev():
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "(no git)"
    return out.stdout.strip() if out.returncode == 0 else "(no commit yet)"


def validate_meshproxy_configs(bench):
    """meshctl validate on both rendered meshproxy configs, so that a schema drift is caught
    even before meshproxy reads them."""
    if not bench.s.meshctl.exists():
        return
    d = bench.tmp / "validate"
    d.mkdir(exist_ok=True)
    values = {"UPSTREAM_A": "127.0.0.1:1", "UPSTREAM_B": "127.0.0.1:2"}
    for routes in (1, bench.s.routes):
        cfg = d / f"meshproxy-{routes}.yaml"
        render("meshproxy.yaml", cfg, values, extra_routes("meshproxy", routes - 1))
        out = subprocess.run([str(bench.s.meshctl), "validate", "-f", str(cfg)],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"meshctl validate {cfg.name} failed:\n{out.stdout}{out.stderr}")


def main():
    s = Settings()
    proxies, skipped = [], []
    for p in s.proxies:
        if p == "meshproxy" and not os.access(s.meshproxy, os.X_OK):
            why = f"{s.meshproxy} not built yet (run `make`)"
            say(f"meshproxy: SKIPPED, {why}; measuring nginx and HAProxy only")
            skipped.append((p, why))
        elif p not in ("meshproxy", "nginx", "haproxy"):
            raise SystemExit(f"bench: unknown proxy {p!r} in BENCH_PROXIES")
        else:
            proxies.append(p)
    if not proxies:
        raise SystemExit("bench: no proxy to measure")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    # The harness's own work (the memory sampler reads /proc 4 times a second) stays off the
    # proxy's CPU; every child is pinned explicitly with taskset.
    os.sched_setaffinity(0, {int(s.load_cpu)})
    if s.load_before[0] > 0.5:
        say(f"warning: load average {s.load_before[0]:.2f} before the start: something else is "
            "running, the figures will be noisy")
    bench = Bench(s)
    try:
        validate_meshproxy_configs(bench)
        say(f"{s.rounds} round(s) of {', '.join(proxies)}: wrk {s.duration}s x "
            f"{s.connections} connections on CPU {s.load_cpu}, proxies on CPU {s.proxy_cpu}")
        bench.run(proxies)
    except KeyboardInterrupt:
        say("interrupted: stopping every process started")
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        say(f"FAILED: {e}")
        return 1
    finally:
        bench.close()

    text = report(bench, proxies, skipped)
    s.out.parent.mkdir(parents=True, exist_ok=True)
    s.out.write_text(text)
    print()
    print(text)
    say(f"written to {s.out.relative_to(ROOT) if s.out.is_relative_to(ROOT) else s.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
