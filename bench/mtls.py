#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""mTLS benchmark: two sidecars calling each other over mTLS against the same pair in plaintext.

Run through bench/run.sh (`make bench`) or alone: /usr/bin/python3 bench/mtls.py. Topology, all
on 127.0.0.1 with ports picked by the kernel:

    wrk (CPU 0) --> "orders" sidecar --mTLS or plaintext--> "payment" sidecar --> mesh-echo
                    outbound listener (CPU 1)               inbound (CPU 1)        (CPU 1)
    openssl s_time (CPU 0) --mTLS handshakes--> "payment" sidecar inbound (CPU 1)

meshd (CPU 1) is the CA and the control plane. A SecurityPolicy for payment with
`mtls: {mode: disable}` makes the pair talk plaintext; `mode: strict` makes it mTLS. Each
measured run starts both sidecars afresh (one worker each) after the policy was applied, so
that their first config already has it and no connection of the other kind is pooled, and
checks their counters before and after: `mesh_mtls_handshakes_total` of the orders sidecar and
`mesh_inbound_connections_total{security=...}` of the payment sidecar must show only the
expected kind of connection.

Each round measures both modes, in an order that alternates between rounds:
1. keep-alive: `wrk -t1 -cBENCH_CONNS --latency -H 'Host: payment'` against the orders sidecar's
   outbound listener, after a warm-up run; requests/s, p50, p99;
2. (strict only) handshakes: BENCH_HS_CLIENTS `openssl s_time` processes make TLS connections
   straight to the payment sidecar's inbound listener with a client certificate signed by
   meshd's root (SPIFFE ID of orders): full handshakes alone (-new), then full handshakes and
   resumed sessions each carrying one request (-new / -reuse with -www: TLS 1.3 tickets come
   after the handshake, so s_time resumes only when it reads); the sidecar's own success counter
   over its CPU time (/proc/PID/stat) gives handshakes per CPU-second;
3. memory: RSS of both sidecars after the run.
The report holds the medians of the rounds; the mTLS/plaintext ratio and the p99 added are the
medians of those within a round. It is printed and written to bench/results/mtls.md, with every
figure in bench/results/mtls.json.

Environment: BENCH_DURATION (seconds per wrk run, 10), BENCH_WARMUP (seconds, 2), BENCH_CONNS
(50), BENCH_ROUNDS (3), BENCH_HS_TIME (seconds per handshake run, BENCH_DURATION),
BENCH_HS_CLIENTS (parallel s_time processes, 2), BUILD_DIR (build), BENCH_MTLS_OUT
(bench/results/mtls.md; the JSON goes beside it), BENCH_KEEP=1 keeps the temporary directory
with meshd's data, the client certificate and every process's log.

Every process is started here and stopped by PID, also on error and Ctrl-C.
"""
import datetime
import http.client
import json
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
import time

from bench import (
    Procs,
    env_int,
    fmt_us,
    git_rev,
    log_tail,
    machine,
    parse_wrk,
    proc_kib,
    say,
    tool_version,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("BUILD_DIR", ROOT / "build"))
API = "mesh.clusterdb.io/v1"
TRUST_DOMAIN = "cluster.local"  # meshd's default --trust-domain
CLIENT_ID = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/orders"
START_TIMEOUT = 10.0  # seconds for a process to print its ready line
SETTLE_TIMEOUT = 15.0  # seconds for fresh sidecars to hold a certificate, a config and an answer
TOOL_TIMEOUT = 30  # seconds for one meshctl or openssl command that is not a measurement
MODES = {"plaintext": "disable", "mtls": "strict"}
# The handshake runs: s_time flags, label. A TLS 1.3 session ticket arrives after the handshake,
# so s_time resumes only when it reads from the connection: with `-www /` it sends one
# `GET / HTTP/1.0` and reads the answer (the sidecar passes it to mesh-echo and closes). The
# full handshake is measured both bare and with that request, so that the resumed figure has
# its like to compare with.
HANDSHAKES = {
    "full": (["-new"], "full handshake (`-new`)"),
    "full_req": (["-new", "-www", "WWW"], "full handshake + 1 request (`-new -www`)"),
    "resumed_req": (["-reuse", "-www", "WWW"], "resumed session + 1 request (`-reuse -www`)"),
}
# s_time sends "GET {path} HTTP/1.0\r\n\r\n", without a Host header, which mesh-echo answers
# with 400; the path carries one (the trailing " HTTP/1.0" lands in a header of its own).
WWW = "/ HTTP/1.0\r\nHost: payment\r\nX-Bench: s_time"
LABEL = {"plaintext": "plaintext (disable)", "mtls": "mTLS (strict)"}
RATIO_TARGET = 0.85
CLK_TCK = os.sysconf("SC_CLK_TCK")

SIDECAR_READY = re.compile(r"meshproxy sidecar (\S+) .*?outbound on (\S+), inbound on (\S+) -> "
                           r"app \S+, with \d+ workers, admin on (\S+),")
MESHD_READY = re.compile(r"meshd: listening on (\S+)")


class Settings:
    def __init__(self):
        self.duration = env_int("BENCH_DURATION", 10)
        self.warmup = env_int("BENCH_WARMUP", 2)
        self.conns = env_int("BENCH_CONNS", 50)
        self.rounds = env_int("BENCH_ROUNDS", 3)
        self.hs_time = env_int("BENCH_HS_TIME", self.duration)
        self.hs_clients = env_int("BENCH_HS_CLIENTS", 2)
        default_out = ROOT / "bench" / "results" / "mtls.md"
        self.out = pathlib.Path(os.environ.get("BENCH_MTLS_OUT", default_out))
        self.keep = os.environ.get("BENCH_KEEP") == "1"
        self.load_before = os.getloadavg()
        # wrk, s_time and the harness alone on CPU 0; meshd, the sidecars and the app share CPU 1.
        self.load_cpu = "0"
        self.mesh_cpu = "1" if (os.cpu_count() or 1) >= 2 else "0"
        if min(self.duration, self.conns, self.rounds, self.hs_time, self.hs_clients) < 1:
            raise SystemExit("bench: BENCH_DURATION, BENCH_CONNS, BENCH_ROUNDS, BENCH_HS_TIME "
                             "and BENCH_HS_CLIENTS must be at least 1")

    def env_line(self):
        return (f"BENCH_DURATION={self.duration} BENCH_WARMUP={self.warmup} "
                f"BENCH_CONNS={self.conns} BENCH_ROUNDS={self.rounds} "
                f"BENCH_HS_TIME={self.hs_time} BENCH_HS_CLIENTS={self.hs_clients}")


# ---------------------------------------------------------------------------------------------
# Small helpers


def http_get(port, path, host, timeout=2.0):
    """One GET to 127.0.0.1:port on a new connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


METRIC_LINE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
METRIC_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text: a list of (name, {label: value}, value)."""
    out = []
    for line in text.splitlines():
        m = METRIC_LINE.match(line)
        if m:
            out.append((m.group(1), dict(METRIC_LABEL.findall(m.group(2) or "")),
                        float(m.group(3))))
    return out


def cpu_seconds(pid):
    """utime + stime of a process, all its threads, in seconds."""
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def policy_yaml(mode):
    return (f"apiVersion: {API}\nkind: SecurityPolicy\n"
            "metadata: {name: payment-bench, namespace: default}\n"
            f"spec:\n  services: [payment]\n  mtls: {{mode: {mode}}}\n")


class Sidecar:
    def __init__(self, p, ready):
        self.p = p
        self.name = p.bench_name
        self.id, self.outbound, self.inbound, self.admin = ready

    def admin_get(self, path):
        status, body = http_get(port_of(self.admin), path, "localhost", timeout=5.0)
        if status != 200:
            raise RuntimeError(f"{self.name}: GET {path} answered {status}")
        return body

    def counters(self):
        """The sidecar's counters that tell connections and answers apart:
        {("hs", direction, result) | ("conn", security) | ("req", "2xx"...): n}."""
        out = {}
        for name, labels, value in parse_metrics(self.admin_get("/metrics").decode()):
            if name == "mesh_mtls_handshakes_total":
                key = ("hs", labels.get("direction"), labels.get("result"))
            elif name == "mesh_inbound_connections_total":
                key = ("conn", labels.get("security"))
            elif name == "mesh_requests_total":
                key = ("req", labels.get("code", "")[:1] + "xx")
            else:
                continue
            out[key] = out.get(key, 0) + value
        return out

    def dump(self):
        return json.loads(self.admin_get("/config_dump?format=json"))

    def rss_kib(self):
        return proc_kib(self.p.pid, "status", "VmRSS")


def handshakes(counters, direction, success):
    return sum(v for k, v in counters.items()
               if k[0] == "hs" and k[1] == direction and (k[2] == "success") == success)


# ---------------------------------------------------------------------------------------------
# The mesh


class MtlsBench:
    def __init__(self, settings):
        self.s = settings
        self.procs = Procs()
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="meshbench-mtls."))
        self.data = self.tmp / "meshd-data"
        self.meshd_url = None
        self.app = None
        self.cert = self.key = self.root = None
        self.runs = []  # every measured run: dicts with round, mode and figures
        self.ssl_version = tool_version(["openssl", "version"], r"OpenSSL [^ ]+")

    def pinned(self, cpu, argv):
        return ["taskset", "-c", cpu] + [str(a) for a in argv]

    def start(self, name, argv):
        return self.procs.start(name, self.pinned(self.s.mesh_cpu, argv),
                                self.tmp / f"{name}.log")

    def wait_line(self, p, pattern):
        """Waits for pattern in p's log (its ready line); returns the match."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            m = pattern.search(pathlib.Path(p.bench_log).read_text(errors="replace"))
            if m:
                return m
            if p.poll() is not None:
                raise RuntimeError(f"{p.bench_name} exited with {p.returncode}:\n{log_tail(p)}")
            time.sleep(0.02)
        raise RuntimeError(f"{p.bench_name}: no ready line after {START_TIMEOUT}s:\n"
                           f"{log_tail(p)}")

    def start_meshd(self):
        p = self.start("meshd", [BUILD / "meshd", "--data-dir", self.data, "--listen",
                                 "127.0.0.1:0"])
        self.meshd_url = "http://" + self.wait_line(p, MESHD_READY).group(1)
        self.root = self.data / "ca" / "root-cert.pem"
        say(f"meshd on {self.meshd_url}")

    def start_app(self):
        p = self.start("app-payment", [BUILD / "mesh-echo", "--listen", "127.0.0.1:0",
                                       "--name", "payment", "--workers", "1"])
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            m = re.search(r"127\.0\.0\.1:(\d+)", pathlib.Path(p.bench_log).read_text())
            if m:
                self.app = m.group(0)
                return
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mesh-echo did not start:\n{log_tail(p)}")
            time.sleep(0.02)

    def apply(self, mode):
        out = subprocess.run([str(BUILD / "meshctl"), "--server", self.meshd_url, "--token",
                              str(self.data / "token"), "apply", "-f", "-"],
                             input=policy_yaml(mode), capture_output=True, text=True,
                             timeout=TOOL_TIMEOUT)
        if out.returncode != 0:
            raise RuntimeError(f"meshctl apply (mode {mode}) failed:\n{out.stdout}{out.stderr}")

    def start_sidecar(self, service):
        p = self.start(f"sidecar-{service}", [
            BUILD / "meshproxy", "--control", self.meshd_url, "--token", self.data / "token",
            "--service", service, "--namespace", "default", "--app", self.app,
            "--outbound", "127.0.0.1:0", "--inbound", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            "--workers", "1", "--deregister-wait", "1ms", "--drain-timeout", "2s"])
        return Sidecar(p, self.wait_line(p, SIDECAR_READY).groups())

    def wait_settled(self, client, payment, kind):
        """Waits until both sidecars hold a certificate and meshd's config, a request through
        the pair reaches the app, and the payment sidecar counted that connection as `kind`."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        last = "nothing yet"
        while time.monotonic() < deadline:
            for sc in (client, payment):
                if sc.p.poll() is not None:
                    raise RuntimeError(f"{sc.name} exited:\n{log_tail(sc.p)}")
            try:
                dumps = [sc.dump() for sc in (client, payment)]
                if not all(d["identity"]["spiffe_id"] and d["config"]["source"] == "meshd"
                           for d in dumps):
                    last = "waiting for certificates and meshd's config"
                else:
                    status, body = http_get(port_of(client.outbound), "/", "payment")
                    last = f"status {status} body {body[:60]!r}"
                    if status == 200 and body == b"payment\n":
                        counters = payment.counters()
                        if counters.get(("conn", kind), 0) > 0:
                            return
                        last = f"payment's inbound connections {counters}"
            except (OSError, http.client.HTTPException, RuntimeError, KeyError,
                    ValueError) as e:
                last = str(e)
            time.sleep(0.05)
        raise RuntimeError(f"sidecars not ready for {kind} after {SETTLE_TIMEOUT}s ({last})\n"
                           f"{client.name}:\n{log_tail(client.p)}\n"
                           f"{payment.name}:\n{log_tail(payment.p)}")

    def check_kind(self, mode, client, payment):
        """Every connection from orders to payment since the sidecars started was of the
        expected kind: raises otherwise, so that no run is reported under the wrong name."""
        c, p = client.counters(), payment.counters()
        out_ok, out_bad = handshakes(c, "outbound", True), handshakes(c, "outbound", False)
        tls, plain = p.get(("conn", "mtls"), 0), p.get(("conn", "plaintext"), 0)
        if mode == "mtls":
            good = out_ok > 0 and out_bad == 0 and tls > 0 and plain == 0
        else:
            good = out_ok == 0 and out_bad == 0 and tls == 0 and plain > 0
        if not good:
            raise RuntimeError(f"{mode} run with the wrong connections: orders outbound "
                               f"handshakes {out_ok:.0f} ok / {out_bad:.0f} failed, payment "
                               f"inbound {tls:.0f} mtls / {plain:.0f} plaintext")
        return {"outbound_handshakes": out_ok, "inbound_conns": tls if mode == "mtls" else plain}

    # -----------------------------------------------------------------------------------------
    # Measurements

    def run_wrk(self, client, seconds):
        argv = self.pinned(self.s.load_cpu, [
            "wrk", "-t1", f"-c{self.s.conns}", f"-d{seconds}s", "--latency", "-H",
            "Host: payment", f"http://{client.outbound}/"])
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30,
                             start_new_session=True)
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}{out.stderr}")
        return parse_wrk(out.stdout)

    def make_client_cert(self):
        """A client certificate for orders' SPIFFE ID, signed by meshd's root with the openssl
        CLI, as a peer sidecar's would be."""
        d = self.tmp / "client"
        d.mkdir()
        self.key, self.cert = d / "orders.key", d / "orders.pem"
        csr, ext = d / "orders.csr", d / "orders.ext"
        ext.write_text("[leaf]\nbasicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature\n"
                       "extendedKeyUsage=serverAuth,clientAuth\n"
                       f"subjectAltName=URI:{CLIENT_ID}\n")
        for argv in (["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-subj", "/CN=orders", "-keyout", self.key, "-out", csr],
                     ["x509", "-req", "-in", csr, "-CA", self.root, "-CAkey",
                      self.data / "ca" / "root-key.pem", "-set_serial",
                      f"0x{int(time.time() * 1e6):x}", "-days", "1", "-extfile", ext,
                      "-extensions", "leaf", "-out", self.cert]):
            out = subprocess.run(["openssl", *map(str, argv)], capture_output=True, text=True,
                                 timeout=TOOL_TIMEOUT)
            if out.returncode != 0:
                raise RuntimeError(f"openssl {argv[0]} failed:\n{out.stderr}")

    def run_handshakes(self, payment, kind):
        """BENCH_HS_CLIENTS `openssl s_time` at once against payment's inbound listener, with
        the flags of HANDSHAKES[kind]. The handshakes counted are the payment sidecar's own
        successes, so a refused client certificate can never pass as a handshake."""
        flags = [WWW if f == "WWW" else f for f in HANDSHAKES[kind][0]]
        before_c, before_cpu = payment.counters(), cpu_seconds(payment.p.pid)
        t0 = time.monotonic()
        clients = []
        try:
            for i in range(self.s.hs_clients):
                log = open(self.tmp / f"s_time-{kind}-{i}.log", "w+")
                clients.append((subprocess.Popen(
                    self.pinned(self.s.load_cpu, [
                        "openssl", "s_time", "-connect", payment.inbound, *flags,
                        "-cert", self.cert, "-key", self.key, "-CAfile", self.root,
                        "-time", self.s.hs_time]),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True), log))
            client_cpu, outputs = 0.0, []
            deadline = t0 + self.s.hs_time + 30
            for p, log in clients:
                # wait4 for the child's own CPU time: it tells whether the client side (on CPU
                # 0) was the bottleneck rather than the sidecar.
                while True:
                    pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                    if pid:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"s_time ({kind}) still running after "
                                           f"{self.s.hs_time + 30}s")
                    time.sleep(0.05)
                p.returncode = os.waitstatus_to_exitcode(status)
                client_cpu += usage.ru_utime + usage.ru_stime
                log.seek(0)
                outputs.append(log.read())
                if p.returncode != 0:
                    raise RuntimeError(f"openssl s_time ({kind}) exited {p.returncode}:\n"
                                       f"{outputs[-1][-2000:]}")
        finally:
            for p, log in clients:
                if p.returncode is None and p.poll() is None:
                    p.kill()
                    p.wait()
                log.close()
        wall = time.monotonic() - t0
        after_c, after_cpu = payment.counters(), cpu_seconds(payment.p.pid)
        ok = handshakes(after_c, "inbound", True) - handshakes(before_c, "inbound", True)
        failed = handshakes(after_c, "inbound", False) - handshakes(before_c, "inbound", False)
        cpu = after_cpu - before_cpu
        # s_time's own count, and how many of its connections resumed a session: with -reuse
        # it prints a line of one character per connection, 'r' for a resumed one.
        told = sum(int(n) for out in outputs
                   for n in re.findall(r"(\d+) connections in [\d.]+s;", out))
        resumed = sum(line.count("r") for out in outputs for line in out.splitlines()
                      if re.fullmatch(r"[r*123]+", line.strip()))
        if ok == 0:
            raise RuntimeError(f"s_time ({kind}): the payment sidecar counted no successful "
                               f"handshake ({failed:.0f} failed):\n{outputs[0][-2000:]}")
        if "-www" in flags:
            answered = after_c.get(("req", "2xx"), 0) - before_c.get(("req", "2xx"), 0)
            if answered < told:
                raise RuntimeError(f"s_time ({kind}): {told} connections but the payment "
                                   f"sidecar answered only {answered:.0f} requests with 2xx")
        return {"handshakes": ok, "failed": failed, "s_time_connections": told,
                "resumed": resumed, "wall": wall, "rate": ok / wall, "sidecar_cpu": cpu / wall,
                "per_cpu_second": ok / cpu if cpu > 0 else None, "client_cpu": client_cpu / wall}

    def phase(self, mode, rnd):
        self.apply(MODES[mode])
        payment = client = None
        try:
            payment = self.start_sidecar("payment")
            client = self.start_sidecar("orders")
            self.wait_settled(client, payment, "mtls" if mode == "mtls" else "plaintext")
            if self.s.warmup > 0:
                self.run_wrk(client, self.s.warmup)
            res = self.run_wrk(client, self.s.duration)
            res.update(self.check_kind(mode, client, payment))
            res["rss_orders"], res["rss_payment"] = client.rss_kib(), payment.rss_kib()
            for sc in (client, payment):
                if sc.p.poll() is not None:
                    raise RuntimeError(f"{sc.name} died under load:\n{log_tail(sc.p)}")
            run = {"round": rnd + 1, "mode": mode, "keepalive": res}
            say(f"round {rnd + 1} {LABEL[mode]:19s}: {res['rps']:,.0f} req/s, p50 "
                f"{fmt_us(res['p50'])}, p99 {fmt_us(res['p99'])}, RSS orders "
                f"{res['rss_orders'] / 1024:.1f} MiB, payment {res['rss_payment'] / 1024:.1f} MiB"
                + (f", ERRORS {res['errors']}" if res["errors"] else ""))
            if mode == "mtls":
                for kind in HANDSHAKES:
                    hs = self.run_handshakes(payment, kind)
                    run[f"handshakes_{kind}"] = hs
                    say(f"round {rnd + 1} {kind:11s}: {hs['rate']:,.0f} handshakes/s, payment "
                        f"sidecar CPU {hs['sidecar_cpu'] * 100:.0f}% -> "
                        f"{hs['per_cpu_second'] or 0:,.0f} per CPU-second; client CPU "
                        f"{hs['client_cpu'] * 100:.0f}%; {hs['resumed']} of "
                        f"{hs['s_time_connections']} resumed"
                        + (f"; FAILED {hs['failed']:.0f}" if hs["failed"] else ""))
                    if kind == "resumed_req" and hs["resumed"] < hs["s_time_connections"] // 2:
                        raise RuntimeError(f"s_time -reuse resumed only {hs['resumed']} of "
                                           f"{hs['s_time_connections']} connections")
                run["rss_after_handshakes"] = {"orders": client.rss_kib(),
                                               "payment": payment.rss_kib()}
            self.runs.append(run)
        finally:
            # The client first: it deregisters, then payment does, so that the next phase's
            # fresh sidecars never see these endpoints.
            for sc in (client, payment):
                if sc is not None:
                    self.procs.stop(sc.p)

    def run(self):
        self.start_meshd()
        self.start_app()
        self.make_client_cert()
        order = ["plaintext", "mtls"]
        for rnd in range(self.s.rounds):
            # Alternate the order, so that neither mode always runs first on a warm machine.
            for mode in (order if rnd % 2 == 0 else order[::-1]):
                self.phase(mode, rnd)

    def close(self):
        self.procs.stop_all()
        if self.s.keep:
            say(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The report


def pick(runs, mode, *path):
    """The figure at path (keys) of every run of mode that has it."""
    out = []
    for r in runs:
        if r["mode"] != mode:
            continue
        v = r
        for key in path:
            v = v.get(key) if isinstance(v, dict) else None
        if v is not None:
            out.append(v)
    return out


def median(vals):
    return statistics.median(vals) if vals else None


def within_rounds(runs, fn, *path):
    """Median over rounds of fn(mtls figure, plaintext figure) within each round: both modes of
    a round ran back to back, so drift of the machine's load between rounds cancels."""
    vals = []
    for rnd in sorted({r["round"] for r in runs}):
        m = pick([r for r in runs if r["round"] == rnd], "mtls", *path)
        p = pick([r for r in runs if r["round"] == rnd], "plaintext", *path)
        if m and p and p[0]:
            vals.append(fn(m[0], p[0]))
    return median(vals)


def summary(runs):
    out = {}
    for mode in MODES:
        out[mode] = {k: median(pick(runs, mode, "keepalive", k))
                     for k in ("rps", "p50", "p99", "rss_orders", "rss_payment")}
        out[mode]["errors"] = sum(pick(runs, mode, "keepalive", "errors"))
    out["rps_ratio"] = within_rounds(runs, lambda m, p: m / p, "keepalive", "rps")
    out["p99_added_us"] = within_rounds(runs, lambda m, p: m - p, "keepalive", "p99")
    for kind in HANDSHAKES:
        key = f"handshakes_{kind}"
        out[key] = {k: median(pick(runs, "mtls", key, k))
                    for k in ("rate", "sidecar_cpu", "per_cpu_second", "client_cpu")}
        for k in ("failed", "resumed", "s_time_connections"):
            out[key][k] = sum(pick(runs, "mtls", key, k))
    out["rss_after_handshakes"] = {
        k: median(pick(runs, "mtls", "rss_after_handshakes", k)) for k in ("orders", "payment")}
    return out


def mib(kib):
    return f"{kib / 1024:.1f} MiB" if kib else "n/a"


def num(x, fmt="{:,.0f}"):
    return fmt.format(x) if x is not None else "n/a"


def pct(x):
    return f"{x * 100:.0f}%" if x is not None else "n/a"


def report(bench, sm):
    s = bench.s
    lines = []
    add = lines.append
    add("# mTLS between sidecars: latest results\n")
    add(f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}")
    add(f"- command: `make bench` (`{s.env_line()} bench/mtls.py`)")
    add(f"- keep-alive: `taskset -c {s.load_cpu} wrk -t1 -c{s.conns} -d{s.duration}s --latency "
        f"-H 'Host: payment' http://ORDERS_OUTBOUND/` after a {s.warmup}s warm-up, through the "
        "orders sidecar to the payment sidecar and mesh-echo; SecurityPolicy for payment with "
        "`mtls: {mode: disable}` (plaintext) or `{mode: strict}` (mTLS)")
    add(f"- handshakes: {s.hs_clients} x `taskset -c {s.load_cpu} openssl s_time -connect "
        f"PAYMENT_INBOUND FLAGS -cert orders.pem -key orders.key -CAfile root-cert.pem "
        f"-time {s.hs_time}` at once, client certificate for {CLIENT_ID} signed by meshd's "
        "root, FLAGS as in the table")
    add(f"- meshd, both sidecars (`--workers 1`) and mesh-echo pinned to CPU {s.mesh_cpu}; "
        f"{s.rounds} round(s), both modes in each, median shown")
    add(f"- machine: {machine()}")
    before, after = s.load_before, os.getloadavg()
    add(f"- load average (1/5/15 min) before: {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, "
        f"after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")
    add(f"- versions: {bench.ssl_version}, {tool_version(['wrk', '-v'], r'wrk [^ ]+')}, "
        f"meshproxy {git_rev()}")
    add("")

    add(f"## Keep-alive through two sidecars ({s.conns} connections)\n")
    add("| mode | requests/s | p50 | p99 | errors |")
    add("|---|---:|---:|---:|---:|")
    for mode in MODES:
        m = sm[mode]
        add(f"| {LABEL[mode]} | {num(m['rps'])} | {fmt_us(m['p50'])} | {fmt_us(m['p99'])} | "
            f"{m['errors']} |")
    add("")
    ratio = sm["rps_ratio"]
    verdict = "" if ratio is None else (" (met)" if ratio >= RATIO_TARGET else " (NOT met)")
    add(f"- requests/s mTLS / plaintext (median within rounds): **{num(ratio, '{:.2f}')}**, "
        f"target >= {RATIO_TARGET}{verdict}")
    added = sm["p99_added_us"]
    add(f"- p99 added by mTLS (median within rounds of mTLS p99 - plaintext p99): **"
        + (f"{added:+,.0f} us" if added is not None else "n/a") + "**")
    add("")

    add(f"## New mTLS connections at the payment sidecar (1 worker, CPU {s.mesh_cpu})\n")
    add("Handshakes: the payment sidecar's `mesh_mtls_handshakes_total{direction=\"inbound\","
        "result=\"success\"}` over the run; per CPU-second: over the sidecar's CPU time "
        "(utime + stime, /proc/PID/stat) in the run. Client CPU: the s_time processes' CPU time "
        f"over wall time, all on CPU {s.load_cpu} (near 100% means the client side, not the "
        "sidecar, set the pace).\n")
    add("| connection | handshakes/s | sidecar CPU | **handshakes per CPU-second** | "
        "client CPU | resumed / s_time connections | failed |")
    add("|---|---:|---:|---:|---:|---:|---:|")
    for kind, (_, label) in HANDSHAKES.items():
        h = sm[f"handshakes_{kind}"]
        add(f"| {label} | {num(h['rate'])} | {pct(h['sidecar_cpu'])} | "
            f"**{num(h['per_cpu_second'])}** | {pct(h['client_cpu'])} | "
            f"{h['resumed']} / {h['s_time_connections']} | {h['failed']:.0f} |")
    add("")

    add("## Memory (RSS)\n")
    add("| | orders sidecar | payment sidecar |")
    add("|---|---:|---:|")
    for mode in MODES:
        add(f"| after the {LABEL[mode]} keep-alive run | {mib(sm[mode]['rss_orders'])} | "
            f"{mib(sm[mode]['rss_payment'])} |")
    r = sm["rss_after_handshakes"]
    add(f"| after the handshake runs | {mib(r['orders'])} | {mib(r['payment'])} |")
    add("")

    add("## Every run\n")
    add("Handshake columns: handshakes/s (per CPU-second of the payment sidecar).\n")
    add("| round | mode | requests/s | p50 | p99 | full | full + request | resumed + request |")
    add("|---:|---|---:|---:|---:|---:|---:|---:|")
    for run in bench.runs:
        k = run["keepalive"]
        hs = []
        for kind in HANDSHAKES:
            h = run.get(f"handshakes_{kind}")
            hs.append(f"{h['rate']:,.0f} ({num(h['per_cpu_second'])})" if h else "")
        add(f"| {run['round']} | {LABEL[run['mode']]} | {k['rps']:,.0f} | {fmt_us(k['p50'])} | "
            f"{fmt_us(k['p99'])} | " + " | ".join(hs) + " |")
    return "\n".join(lines) + "\n"


def main():
    s = Settings()
    for b in ("meshd", "meshproxy", "meshproxy-tls.so", "mesh-echo", "meshctl"):
        if not (BUILD / b).exists():
            raise SystemExit(f"bench: {BUILD / b} is missing (run make first)")
    for tool in ("wrk", "taskset", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is missing")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    # The harness's own polling stays off the mesh's CPU; every child is pinned with taskset.
    os.sched_setaffinity(0, {int(s.load_cpu)})
    if s.load_before[0] > 0.5:
        say(f"warning: load average {s.load_before[0]:.2f} before the start: something else is "
            "running, the figures will be noisy")
    bench = MtlsBench(s)
    try:
        say(f"mTLS: {s.rounds} round(s) of plaintext and mTLS: wrk {s.duration}s x {s.conns} "
            f"connections and {s.hs_clients} s_time x {s.hs_time}s on CPU {s.load_cpu}, "
            f"meshd, sidecars and app on CPU {s.mesh_cpu}")
        bench.run()
    except KeyboardInterrupt:
        say("interrupted: stopping every process started")
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        say(f"FAILED: {e}")
        return 1
    finally:
        bench.close()

    sm = summary(bench.runs)
    text = report(bench, sm)
    s.out.parent.mkdir(parents=True, exist_ok=True)
    s.out.write_text(text)
    out_json = s.out.with_suffix(".json")
    out_json.write_text(json.dumps({
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "settings": {"duration": s.duration, "warmup": s.warmup, "conns": s.conns,
                     "rounds": s.rounds, "hs_time": s.hs_time, "hs_clients": s.hs_clients,
                     "load_cpu": s.load_cpu, "mesh_cpu": s.mesh_cpu},
        "load_average_before": s.load_before, "load_average_after": os.getloadavg(),
        "meshproxy": git_rev(), "openssl": bench.ssl_version,
        "summary": sm, "runs": bench.runs}, indent=2) + "\n")
    print()
    print(text)
    for path in (s.out, out_json):
        say(f"written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
