#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Control-plane benchmark: config propagation time and meshd's memory.

Run through bench/run.sh (`make bench`) or alone: /usr/bin/python3 bench/propagation.py.

Propagation: meshd, two mesh-echo apps (payment-v1, payment-v2) each behind a sidecar, and N
client sidecars (BENCH_SIDECARS, 50). A VirtualService `payment-service` sends everything to
one version; each of BENCH_APPLIES (20) applies flips it to the other. The time of one apply is
from the moment `POST /v1/apply` returned to the moment every client sidecar answers a request
for payment-service from the new version, observed by requests (each sidecar is asked again
as soon as its previous answer came back, all N at once from one poller). Reported: p50 and
p99 over the per-apply times (the slowest sidecar of each apply), and over every sidecar's own
time.

Memory: a fresh meshd with BENCH_SERVICES (1,000) Services and BENCH_ROUTES (10,000) routes in
1,000 VirtualServices stored; its RSS after the applies.

Every process is started here and stopped by PID, also on error and Ctrl-C.
"""
import json
import os
import pathlib
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("BUILD_DIR", ROOT / "build"))
START_TIMEOUT = 10.0
APPLY_TIMEOUT = 10.0  # an apply not seen by every sidecar by then is a failure


def env_int(name, default):
    raw = os.environ.get(name, "")
    return int(raw) if raw else default


def say(msg):
    print(f"bench: {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    """Every process this harness started, stopped by PID."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.procs = []

    def start(self, name, argv):
        log = open(self.logdir / f"{name}.log", "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        p.name = name
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.remove(p)

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)


def wait_port(port, p):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise SystemExit(f"bench: {p.name} exited with {p.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"bench: {p.name} did not listen on {port}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Meshd:
    def __init__(self, procs, datadir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.p = procs.start("meshd", [str(BUILD / "meshd"), "--data-dir", str(datadir),
                                       "--listen", f"127.0.0.1:{self.port}",
                                       "--rate", "100000", "--burst", "100000"])
        wait_port(self.port, self.p)
        self.token = (datadir / "token").read_text().strip()

    def apply(self, docs):
        body = json.dumps({"items": docs}).encode()
        req = urllib.request.Request(f"{self.url}/v1/apply", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def proxies(self):
        with urllib.request.urlopen(f"{self.url}/v1/proxies", timeout=5) as r:
            return json.load(r)["items"]


def vs_doc(version):
    return {"apiVersion": "mesh.clusterdb.io/v1", "kind": "VirtualService",
            "metadata": {"name": "payment-service", "namespace": "default"},
            "spec": {"hosts": ["payment-service"],
                     "http_routes": [{"name": "all", "destinations": [
                         {"host": f"payment-{version}", "weight": 100}]}]}}


def sidecar(procs, meshd, tokfile, service, app_port):
    ports = {k: free_port() for k in ("outbound", "inbound", "admin")}
    argv = [str(BUILD / "meshproxy"), "--control", meshd.url, "--token", str(tokfile),
            "--service", service, "--namespace", "default", "--workers", "1",
            "--app", f"127.0.0.1:{app_port}",
            "--outbound", f"127.0.0.1:{ports['outbound']}",
            "--inbound", f"127.0.0.1:{ports['inbound']}",
            "--admin", f"127.0.0.1:{ports['admin']}"]
    p = procs.start(f"sidecar-{service}", argv)
    wait_port(ports["admin"], p)
    return ports


REQUEST = b"GET / HTTP/1.1\r\nHost: payment-service\r\n\r\n"


class Poller:
    """One keep-alive connection per client sidecar; asks all of them in parallel."""

    def __init__(self, ports):
        self.sel = selectors.DefaultSelector()
        self.conns = []
        for port in ports:
            s = socket.create_connection(("127.0.0.1", port), 2)
            s.setblocking(False)
            self.conns.append(s)

    @staticmethod
    def body_of(buf):
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            return None
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        return rest[:n] if len(rest) >= n else None

    def until_all(self, want, t0, deadline):
        """Seconds from t0 until each connection's answer body is `want`."""
        done = {}
        bufs = {}
        for i, s in enumerate(self.conns):
            s.send(REQUEST)
            bufs[i] = b""
            self.sel.register(s, selectors.EVENT_READ, i)
        try:
            while len(done) < len(self.conns):
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: {len(self.conns) - len(done)} sidecars never "
                                     f"served {want!r}")
                for key, _ in self.sel.select(0.5):
                    i, s = key.data, key.fileobj
                    chunk = s.recv(65536)
                    if not chunk:
                        raise SystemExit("bench: a sidecar closed its connection")
                    bufs[i] += chunk
                    body = self.body_of(bufs[i])
                    if body is None:
                        continue
                    bufs[i] = b""
                    if body == want:
                        done[i] = time.monotonic() - t0
                        self.sel.unregister(s)
                    else:
                        s.send(REQUEST)
        finally:
            for s in self.conns:
                try:
                    self.sel.unregister(s)
                except KeyError:
                    pass
        return [done[i] for i in range(len(self.conns))]


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def propagation(tmp, procs, n_sidecars, n_applies):
    meshd = Meshd(procs, tmp / "data-prop")
    tokfile = tmp / "data-prop" / "token"
    apps = {}
    for v in ("v1", "v2"):
        port = free_port()
        p = procs.start(f"app-{v}", [str(BUILD / "mesh-echo"), "--listen",
                                      f"127.0.0.1:{port}", "--name", f"payment-{v}"])
        wait_port(port, p)
        apps[v] = port
        sidecar(procs, meshd, tokfile, f"payment-{v}", port)
    clients = [sidecar(procs, meshd, tokfile, f"client-{i}", apps["v1"])["outbound"]
               for i in range(n_sidecars)]
    meshd.apply([vs_doc("v1")])
    poller = Poller(clients)
    poller.until_all(b"payment-v1\n", time.monotonic(), time.monotonic() + 30)
    say(f"{n_sidecars} client sidecars serving payment-v1; {len(meshd.proxies())} proxies "
        f"registered")
    per_apply, per_sidecar = [], []
    for i in range(n_applies):
        version = "v2" if i % 2 == 0 else "v1"
        meshd.apply([vs_doc(version)])
        t0 = time.monotonic()
        times = poller.until_all(f"payment-{version}\n".encode(), t0, t0 + APPLY_TIMEOUT)
        per_apply.append(max(times))
        per_sidecar.extend(times)
    return per_apply, per_sidecar


def meshd_memory(tmp, procs, n_services, n_routes):
    meshd = Meshd(procs, tmp / "data-mem")
    idle = rss_kib(meshd.p.pid)
    routes_per_vs = max(1, n_routes // n_services)
    docs = []
    for i in range(n_services):
        docs.append({"apiVersion": "mesh.clusterdb.io/v1", "kind": "Service",
                     "metadata": {"name": f"svc-{i}", "namespace": "default"},
                     "spec": {"endpoints": [f"127.0.0.1:{20000 + i}"]}})
        docs.append({"apiVersion": "mesh.clusterdb.io/v1", "kind": "VirtualService",
                     "metadata": {"name": f"vs-{i}", "namespace": "default"},
                     "spec": {"hosts": [f"svc-{i}.example.com"], "http_routes": [
                         {"name": f"r{j}", "matches": [{"path": f"/api/v{j}/*"}],
                          "destinations": [{"host": f"svc-{i}", "weight": 100}]}
                         for j in range(routes_per_vs)]}})
    for k in range(0, len(docs), 200):
        meshd.apply(docs[k:k + 200])
    time.sleep(0.5)
    return idle, rss_kib(meshd.p.pid), n_services, routes_per_vs * n_services


def main():
    n_sidecars = env_int("BENCH_SIDECARS", 50)
    n_applies = env_int("BENCH_APPLIES", 20)
    n_services = env_int("BENCH_SERVICES", 1000)
    n_routes = env_int("BENCH_ROUTES_STORED", 10000)
    for b in ("meshd", "meshproxy", "mesh-echo"):
        if not (BUILD / b).exists():
            raise SystemExit(f"bench: {BUILD / b} is missing (run make first)")
    with tempfile.TemporaryDirectory(prefix="mesh-prop.") as d:
        tmp = pathlib.Path(d)
        procs = Procs(tmp)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            per_apply, per_sidecar = propagation(tmp, procs, n_sidecars, n_applies)
            procs.stop_all()
            idle, loaded, svcs, routes = meshd_memory(tmp, procs, n_services, n_routes)
        finally:
            procs.stop_all()
    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    lines = [
        "## Config propagation (meshd -> sidecars, observed by requests)",
        "",
        f"{n_sidecars} client sidecars, {n_applies} applies, each flipping payment-service "
        "between payment-v1 and payment-v2; time from `POST /v1/apply` returning until "
        "the sidecars answer from the new version.",
        "",
        "| measure | p50 | p99 | max |",
        "|---|---:|---:|---:|",
        f"| every sidecar serving it (per apply) | {ms(pct(per_apply, 50))} | "
        f"{ms(pct(per_apply, 99))} | {ms(max(per_apply))} |",
        f"| one sidecar serving it (per sidecar and apply) | {ms(pct(per_sidecar, 50))} | "
        f"{ms(pct(per_sidecar, 99))} | {ms(max(per_sidecar))} |",
        "",
        "## meshd memory",
        "",
        "| stored | RSS |",
        "|---|---:|",
        f"| nothing | {idle / 1024:.1f} MiB |",
        f"| {svcs:,} Services + {routes:,} routes in {svcs:,} VirtualServices | "
        f"{loaded / 1024:.1f} MiB |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = pathlib.Path(os.environ.get("BENCH_CP_OUT", ROOT / "bench" / "results" /
                                      "control-plane.md"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# meshd benchmark: latest results\n\n- command: `make bench` "
                   f"(`BENCH_SIDECARS={n_sidecars} BENCH_APPLIES={n_applies} "
                   f"BENCH_SERVICES={n_services} BENCH_ROUTES_STORED={n_routes} "
                   "bench/propagation.py`)\n- date: "
                   f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n" + text)


if __name__ == "__main__":
    main()
