#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""`make demo`: the live mesh on one machine. meshd with its store in a temporary directory;
mesh-echo apps for payment-v1, payment-v2 and orders, each behind a meshproxy sidecar; the
external gateway; examples/ applied through meshd; 1,000 requests from orders through the mesh
and 1,000 through the gateway, with the split each saw. Then it keeps running until Ctrl-C (when
started from a terminal, or with --wait) so that meshctl and curl can look at it; every process
it started is stopped by its PID on the way out.

Usage: scripts/demo.py BUILD_DIR [--wait | --no-wait]"""

import collections
import http.client
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUESTS = 1000

# The seed's payment-security lets only orders call payment. Requests from outside come through
# the external gateway, whose workload identity is spiffe://cluster.local/ns/default/sa/
# external-gateway: the demo adds this rule for it, as an operator would.
GATEWAY_ACCESS = """\
apiVersion: mesh.clusterdb.io/v1
kind: SecurityPolicy
metadata:
  name: payment-gateway-access
  namespace: default
spec:
  authorization:
    - from: [external-gateway.default]
      to: [payment.default.svc]
      methods: [GET]
      paths: [/api/v1/*]
"""
START_TIMEOUT = 10.0

# The addresses a user types, fixed so that the commands printed at the end work as written.
# The sidecars' inbound listeners are the endpoints examples/services.yaml declares, so the
# static Services and the registered sidecars name the same addresses.
MESHD = "127.0.0.1:15010"
GATEWAY = "127.0.0.1:8080"
ORDERS_OUTBOUND = "127.0.0.1:15001"
ORDERS_ADMIN = "127.0.0.1:15000"
SIDECARS = [  # service, version, inbound (= its static endpoint in examples/services.yaml)
    ("payment-v1", "v1", "127.0.0.1:18081"),
    ("payment-v2", "v2", "127.0.0.1:18082"),
    ("orders", None, "127.0.0.1:18085"),
]


class DemoError(Exception):
    pass


def section(title):
    print(f"\n== {title} ==\n", flush=True)


def host_port(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def port_in_use(addr):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(host_port(addr))
        except OSError:
            return True
    return False


def free_address():
    """A port nobody listens on now, for what the user never types (apps, other admin ports)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def get(addr, path, host="localhost", conn=None, timeout=5, method="GET"):
    """One request; returns (status, body text). Reuses conn when given (keep-alive)."""
    c = conn or http.client.HTTPConnection(*host_port(addr), timeout=timeout)
    try:
        c.request(method, path, headers={"Host": host})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        if conn is None:
            c.close()


class Demo:
    def __init__(self, build, work):
        self.build = build
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir()
        self.data = work / "meshd"
        self.procs = []  # (name, Popen), stopped in reverse order

    # --- processes ---

    def start(self, name, argv):
        log = open(self.logs / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
        log.close()
        self.procs.append((name, proc))
        return proc

    def log_text(self, name):
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait_for(self, name, proc, ready, what):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise DemoError(f"{name} exited with status {proc.returncode}:\n"
                                + self.log_text(name))
            try:
                if ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise DemoError(f"{name}: no {what} within {START_TIMEOUT:.0f} s; its log:\n"
                                + self.log_text(name))
            time.sleep(0.05)

    def stop_all(self):
        """SIGTERM to every process, newest first (sidecars deregister while meshd still runs);
        SIGKILL for one that has not exited within 5 s. Each should exit 0: one that does not
        is reported with its log, and the result is False."""
        clean = True
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    print(f"demo: {name} (pid {proc.pid}) ignored SIGTERM; killing it",
                          file=sys.stderr)
                    proc.kill()
                    proc.wait()
            # A Ctrl-C from the terminal reaches every process of the group: that exit is fine.
            if proc.returncode not in (0, -signal.SIGINT):
                clean = False
                print(f"demo: {name} exited with status {proc.returncode}; its log:\n"
                      + self.log_text(name), file=sys.stderr)
        self.procs.clear()
        return clean

    # --- the mesh ---

    def meshctl(self, *args, show=True, stdin=None):
        argv = [str(self.build / "meshctl"), "--server", f"http://{MESHD}",
                "--token", str(self.data / "token"), *args]
        if show:
            print("$ meshctl " + " ".join(args), flush=True)
        r = subprocess.run(argv, input=stdin if stdin is not None else "", capture_output=True,
                           text=True, timeout=30)
        if show:
            sys.stdout.write(r.stdout)
            sys.stdout.write(r.stderr)
            sys.stdout.flush()
        return r

    def start_meshd(self):
        proc = self.start("meshd", [str(self.build / "meshd"), "--data-dir", str(self.data),
                                    "--listen", MESHD])
        self.wait_for("meshd", proc, lambda: get(MESHD, "/v1/health", timeout=1)[0] == 200,
                      "answer on /v1/health")
        print(f"meshd on {MESHD}, its store and token in {self.data}")

    def start_sidecar(self, service, version, inbound):
        app = free_address()
        echo = self.start(f"{service}-app", [str(self.build / "mesh-echo"), "--listen", app,
                                             "--name", service])
        self.wait_for(f"{service}-app", echo, lambda: get(app, "/", timeout=1)[0] == 200,
                      "answer")
        outbound = ORDERS_OUTBOUND if service == "orders" else free_address()
        admin = ORDERS_ADMIN if service == "orders" else free_address()
        argv = [str(self.build / "meshproxy"), "--control", f"http://{MESHD}",
                "--token", str(self.data / "token"), "--service", service,
                "--namespace", "default", "--app", app, "--outbound", outbound,
                "--inbound", inbound, "--admin", admin, "--workers", "1"]
        if version:
            argv += ["--version", version]
        self.start(f"{service}-sidecar", argv)
        print(f"{service:<11} app (mesh-echo) on {app}, sidecar inbound {inbound}, "
              f"outbound {outbound}, admin {admin}")
        return admin

    def start_gateway(self):
        admin = free_address()
        self.start("gateway", [str(self.build / "meshproxy"), "--control", f"http://{MESHD}",
                               "--token", str(self.data / "token"),
                               "--gateway", "external-gateway", "--namespace", "default",
                               "--listen", GATEWAY, "--admin", admin, "--workers", "1"])
        print(f"{'gateway':<11} external-gateway on {GATEWAY}, admin {admin}")
        return admin

    def wait_serving(self, admins):
        """Every proxy answers /ready 200 once it has its first config from meshd."""
        for name, admin in admins:
            proc = dict(self.procs)[name]
            self.wait_for(name, proc, lambda a=admin: get(a, "/ready", timeout=1)[0] == 200,
                          "config from meshd (/ready)")

    def wait_synced(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            r = self.meshctl("proxy-status", show=False)
            lines = [ln for ln in r.stdout.splitlines()[1:] if ln.strip()]
            if r.returncode == 0 and len(lines) == len(SIDECARS) + 1 and \
                    all("SYNCED" in ln for ln in lines):
                return
            if time.monotonic() > deadline:
                raise DemoError("the proxies did not all acknowledge the applied config:\n"
                                + r.stdout + r.stderr)
            time.sleep(0.05)


def traffic(addr, host, path, n, method="GET"):
    """n requests on one keep-alive connection; counts answers by the app that served them."""
    seen = collections.Counter()
    conn = http.client.HTTPConnection(*host_port(addr), timeout=10)
    try:
        for _ in range(n):
            status, body = get(addr, path, host=host, conn=conn, method=method)
            seen[body.strip() if status == 200 else f"HTTP {status}"] += 1
    finally:
        conn.close()
    return seen


def plaintext_refused(addr):
    """What a plaintext client gets from a strict mTLS port: the connection closed unanswered."""
    try:
        status, _ = get(addr, "/api/v1/process", host="payment.default.svc", timeout=2)
        return f"{status} (answered in plaintext!)"
    except (OSError, http.client.HTTPException):
        return "connection closed: plaintext on a strict mTLS port"


def print_split(seen, n):
    for who, count in sorted(seen.items(), key=lambda kv: -kv[1]):
        print(f"    {count:>5} answered by {who:<11} {100.0 * count / n:5.1f}%")


def check_ports():
    fixed = [MESHD, GATEWAY, ORDERS_OUTBOUND, ORDERS_ADMIN] + [s[2] for s in SIDECARS]
    taken = [a for a in fixed if port_in_use(a)]
    if taken:
        raise DemoError("these addresses are in use: " + ", ".join(taken) +
                        "; the demo needs " + ", ".join(fixed) +
                        " (stop what holds them, or another running demo)")


def where_next(demo, wait):
    if wait:
        intro = "The mesh keeps running. In another terminal:"
    else:
        intro = ("Started from a terminal (or with --wait) the demo keeps the mesh running; then, "
                 "in another terminal:")
    print(f"""
{intro}

    export MESH_SERVER=http://{MESHD} MESH_TOKEN_FILE={demo.data / "token"}
    build/meshctl proxy-status                  # every proxy, SYNCED or STALE
    build/meshctl proxy-config PROXY routes     # what one proxy routes by (PROXY: an ID above)
    build/meshctl explain GET http://payment.default.svc/api/v1/pay --from orders
    build/meshctl analyze                       # problems in the stored config
    curl -X POST -H 'Host: payment.default.svc' http://{ORDERS_OUTBOUND}/api/v1/process  # as orders
    curl -H 'Host: payment.example.com' http://{GATEWAY}/api/v1/pay     # as a client
    curl http://{ORDERS_ADMIN}/metrics                   # orders' sidecar, Prometheus text

To change the split, edit examples/payment-mesh-route.yaml and run
`build/meshctl apply -f examples/payment-mesh-route.yaml`: the sidecars route by it within
milliseconds. Logs: {demo.logs}. More in docs/meshd.md, docs/meshproxy.md and docs/cli.md.""",
          flush=True)


def run(demo, wait):
    check_ports()
    section("meshd: the control plane, with an embedded store in a temporary directory")
    demo.start_meshd()

    section("Apps behind sidecars, and the external gateway")
    admins = [(f"{svc}-sidecar", demo.start_sidecar(svc, ver, inbound))
              for svc, ver, inbound in SIDECARS]
    admins.append(("gateway", demo.start_gateway()))
    demo.wait_serving(admins)

    section("Apply examples/ through meshd")
    if demo.meshctl("apply", "-f", "examples/").returncode != 0:
        raise DemoError("meshctl apply failed")
    demo.wait_synced()

    section("Every proxy has acknowledged the new config")
    demo.meshctl("proxy-status")

    section(f"{REQUESTS} requests from orders to payment, through orders' sidecar, over mTLS")
    print(f"$ curl -X POST -H 'Host: payment.default.svc' "
          f"http://{ORDERS_OUTBOUND}/api/v1/process   # x {REQUESTS}")
    print_split(traffic(ORDERS_OUTBOUND, "payment.default.svc", "/api/v1/process", REQUESTS,
                        method="POST"), REQUESTS)
    print("  (VirtualService default/payment: 90% payment-v1, 10% payment-v2; SecurityPolicy\n"
          "   default/payment-security: strict mTLS, only orders may POST /api/v1/process)")
    status, body = get(ORDERS_OUTBOUND, "/api/v1/process", host="payment.default.svc")
    print(f"\n$ curl -H 'Host: payment.default.svc' http://{ORDERS_OUTBOUND}/api/v1/process"
          f"   ->  {status} {body.strip()}")
    print(f"$ curl -H 'Host: payment.default.svc' http://{SIDECARS[0][2]}/api/v1/process"
          f"   ->  {plaintext_refused(SIDECARS[0][2])}")

    section("Let the external gateway in: one more authorization rule for payment")
    print(GATEWAY_ACCESS.rstrip())
    if demo.meshctl("apply", "-f", "-", stdin=GATEWAY_ACCESS).returncode != 0:
        raise DemoError("meshctl apply failed")
    demo.wait_synced()

    section(f"{REQUESTS} requests from outside, through the external gateway")
    print(f"$ curl -H 'Host: payment.example.com' http://{GATEWAY}/api/v1/pay   # x {REQUESTS}")
    print_split(traffic(GATEWAY, "payment.example.com", "/api/v1/pay", REQUESTS), REQUESTS)
    print("  (VirtualService default/payment-service on external-gateway: 90/10 too)")

    section("A path no route matches, and what analyze thinks of the config")
    status, _ = get(GATEWAY, "/admin", host="payment.example.com")
    print(f"$ curl -H 'Host: payment.example.com' http://{GATEWAY}/admin   ->  {status}\n")
    demo.meshctl("analyze")

    where_next(demo, wait)
    if wait:
        print("\nPress Ctrl-C to stop every process the demo started.", flush=True)
        signal.pause()


def main():
    args = sys.argv[1:]
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if not args or len(args) > 2 or (len(args) == 2 and args[1] not in ("--wait", "--no-wait")):
        print(__doc__, file=sys.stderr)
        return 2
    build = pathlib.Path(args[0]).resolve()
    wait = args[1] == "--wait" if len(args) == 2 else sys.stdin.isatty()
    for binary in ("meshd", "meshctl", "meshproxy", "mesh-echo"):
        if not os.access(build / binary, os.X_OK):
            print(f"demo: {build / binary} is missing (run make first)", file=sys.stderr)
            return 1
    os.chdir(ROOT)  # so that what is printed names examples/, not a full path
    # Ctrl-C and SIGTERM end the demo through the cleanup below, even when the shell that
    # started it in the background had SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    work = pathlib.Path(tempfile.mkdtemp(prefix="mesh-demo."))
    demo = Demo(build, work)
    status = 0
    try:
        run(demo, wait)
    except KeyboardInterrupt:
        print("\ndemo: stopping", flush=True)
    except DemoError as e:
        print(f"demo: {e}", file=sys.stderr)
        status = 1
    finally:
        if not demo.stop_all():
            status = status or 1
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
