# SPDX-License-Identifier: Apache-2.0
"""The live mesh, end to end with real processes: meshd, mesh-echo apps each behind a meshproxy
sidecar, and a gateway. Resources are applied through meshd's REST API; traffic goes from one
sidecar's outbound listener to the other sidecars' inbound listeners and on to their apps.

Covered: apply -> split observed; weights changed -> new split observed within a second; a
deleted VirtualService -> 404; meshd killed -> traffic keeps flowing on the last good config;
meshd restarted on the same data dir and port -> proxies register again and new applies reach
them; a sidecar killed with SIGKILL -> its endpoint leaves the registry after the heartbeat TTL
and traffic shifts with no failed request; a draining sidecar deregisters at once; the gateway
routes by host; a sidecar started before meshd; static mode untouched.

Every process is started on loopback ports the kernel picks (meshd on a port picked free), and
stopped by PID when its test ends; every wait is bounded.
"""
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request

import pytest

from conftest import EXAMPLES, SAN, build_dir
from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    API,
    START_TIMEOUT,
    Process,
    free_ports,
    lab,
    meshproxy_path,
    proxy_binaries,
    request,
    route,
    virtual_service,
    wait_until,
)

PROPAGATION_LIMIT = 3.0 if SAN else 1.0  # seconds from apply returning to traffic following it
SETTLE = 15.0  # bound for registrations, TTL expiry, reconnect backoff (at most 5 s a try)


def meshd_path():
    return build_dir() / "meshd"


# What a proxy's config watch logs when it loses meshd, once per outage.
WATCH_OUTAGE = 'msg="meshd unreachable: serving the last good config'

# --- processes ---


class Meshd(Process):
    """meshd on a fixed port (a restart must come back on the same one) and a data dir."""

    def __init__(self, data_dir, port, log_dir, flags=(), name="meshd"):
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        argv = [meshd_path(), "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}", *flags]
        super().__init__(name, argv, log_dir)

    def wait_ready(self, may_fail=False):
        def ready():
            if not self.alive():
                if may_fail and "in use" in self.stderr().lower():
                    return "port taken"
                pytest.fail(f"meshd exited ({self.proc.poll()}) at start:\n{self.stderr()}")
            try:
                return self.call("GET", "/v1/health", timeout=1)[0] == 200
            except OSError:
                return False

        return wait_until(ready, START_TIMEOUT * 2, what="meshd /v1/health") is True

    @property
    def token_path(self):
        return self.data_dir / "token"

    def call(self, method, path, body=None, timeout=10):
        """One API request with the bearer token; returns (status, decoded JSON or None)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token_path.read_text().strip())
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw) if raw else None
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def apply(self, docs):
        status, body = self.call("POST", "/v1/apply", {"items": docs})
        assert status == 200, f"apply: {status} {body}"
        return body

    def apply_file(self, path):
        """POST /v1/apply with a YAML file as it is on disk."""
        req = urllib.request.Request(self.url + "/v1/apply", data=path.read_bytes(),
                                     method="POST")
        req.add_header("Authorization", "Bearer " + self.token_path.read_text().strip())
        req.add_header("Content-Type", "application/yaml")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200

    def delete(self, kind, name, ns="default"):
        status, body = self.call("DELETE", f"/v1/namespaces/{ns}/{kind}/{name}")
        assert status == 200, f"delete {kind} {name}: {status} {body}"

    def proxy_ids(self):
        status, body = self.call("GET", "/v1/proxies")
        assert status == 200, body
        return sorted(p["id"] for p in body["items"])


_READY = re.compile(
    r"meshproxy (sidecar|gateway) (\S+) .*?(?:outbound on (\S+), inbound on (\S+) -> app \S+|"
    r"listening on (\S+)) with \d+ workers, admin on (\S+),")


class MeshProxy(Process):
    """meshproxy in sidecar or gateway mode, on kernel-picked ports (read from its ready line)."""

    def __init__(self, meshd, log_dir, name, mode_args, workers=2, flags=()):
        self.meshd_url = meshd.url
        argv = [meshproxy_path(), "--control", meshd.url, "--token", meshd.token_path,
                *mode_args, "--admin", "127.0.0.1:0", "--workers", workers,
                "--drain-timeout", "3s", "--deregister-wait", "200ms", *flags]
        super().__init__(name, argv, log_dir)
        self.expect_death = False
        self.wait_started()

    def wait_started(self):
        def started():
            if not self.alive():
                pytest.fail(f"{self.name} exited ({self.proc.poll()}) at start:\n{self.stderr()}")
            return _READY.search(self.stderr())

        m = wait_until(started, START_TIMEOUT, what=f"{self.name} ready line")
        self.id = m.group(2)
        self.outbound = m.group(3) or m.group(5)
        self.inbound = m.group(4)
        self.port = int(self.outbound.rsplit(":", 1)[1])
        self.admin_port = int(m.group(6).rsplit(":", 1)[1])

    def request(self, host, path="/", **kw):
        return request(self.port, "GET", path, host, **kw)

    def admin(self, path, timeout=5):
        return request(self.admin_port, "GET", path, "localhost", timeout=timeout)

    def dump(self):
        resp = self.admin("/config_dump?format=json")
        assert resp.status == 200, resp
        return json.loads(resp.body)

    def wait_dump(self, pred, what, timeout=SETTLE):
        def check():
            if not self.alive():
                pytest.fail(f"{self.name} exited ({self.proc.poll()}):\n{self.stderr()}")
            return pred(self.dump())

        return wait_until(check, timeout, interval=0.02, what=f"{self.name}: {what}")


class Live:
    """The processes of one test, stopped in reverse order (sidecars deregister from a meshd
    that is still up), each by PID; a proxy that was not meant to die must exit 0 on SIGTERM."""

    def __init__(self, lab, tmp_path):
        self.lab = lab
        self.tmp = tmp_path
        self.procs = []
        self.data_dir = tmp_path / "meshd-data"
        self.data_dir.mkdir()
        self.meshd = None
        self.meshd_flags = ()
        self.port = None
        self.restarts = 0

    def start_meshd(self, flags=None):
        if flags is not None:
            self.meshd_flags = tuple(flags)
        for attempt in range(3):
            if self.port is None or attempt:
                if self.restarts:
                    pytest.fail("meshd cannot get its port back after a restart")
                self.port = free_ports(1)[0]
            name = "meshd" if not self.restarts else f"meshd-{self.restarts + 1}"
            m = Meshd(self.data_dir, self.port, self.tmp, self.meshd_flags, name=name)
            self.procs.append(m)
            self.lab.procs.append(m)
            if m.wait_ready(may_fail=attempt < 2):
                self.restarts += 1
                self.meshd = m
                return m
            m.stop()

    def kill_meshd(self):
        self.meshd.signal(signal.SIGKILL)
        self.meshd.wait(5)

    def echo(self, name):
        return self.lab.echo(name)

    def sidecar(self, service, app, version=None, name=None, workers=2, flags=()):
        args = ["--service", service, "--namespace", "default", "--app", app.addr,
                "--outbound", "127.0.0.1:0", "--inbound", "127.0.0.1:0"]
        if version:
            args += ["--version", version]
        return self._proxy(name or f"sidecar-{service}", args, workers, flags)

    def gateway(self, gateway, name="gateway", flags=()):
        return self._proxy(name, ["--gateway", gateway, "--listen", "127.0.0.1:0"], 2, flags)

    def _proxy(self, name, args, workers, flags):
        p = MeshProxy(self.meshd, self.tmp, name, args, workers=workers, flags=flags)
        self.procs.append(p)
        self.lab.procs.append(p)
        return p

    def close(self):
        problems = []
        for p in reversed(self.procs):
            was_running = p.alive()
            rc = p.stop()
            if isinstance(p, MeshProxy) and not p.expect_death:
                if not was_running and not p.stopped_by_us:
                    problems.append(f"{p.name} died during the test (exit {rc})")
                elif p.killed or rc != 0:
                    problems.append(f"{p.name} {'had to be killed' if p.killed else f'exited {rc}'}"
                                    " after SIGTERM")
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def meshd_binary():
    path = meshd_path()
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built: run `make` first (or set MESH_BUILD)")


@pytest.fixture
def live(lab, meshd_binary, tmp_path):
    m = Live(lab, tmp_path)
    try:
        yield m
    finally:
        m.close()


# --- documents and traffic ---


def vs(name, hosts, *routes, gateways=None):
    doc = virtual_service(name, hosts, *routes)
    if gateways:
        doc["spec"]["gateways"] = gateways
    return doc


def split(v1, v2):
    return vs("payment", ["payment"], route(("payment-v1", v1), ("payment-v2", v2), name="split"))


def weights_of(dump, route_name="split"):
    for r in dump["routes"]:
        if r["name"] == route_name and r["virtual_service"]:
            return {d["host"]: d["weight"] for d in r["destinations"]}
    return None


def count(proxy, host, n, path="/"):
    """Sends n requests (fresh connection each); returns {x-echo-name or status: count}."""
    seen = {}
    for _ in range(n):
        r = proxy.request(host, path)
        key = r.header("x-echo-name") if r.status == 200 else r.status
        seen[key] = seen.get(key, 0) + 1
    return seen


def mesh_of_payment(live, client_service="orders"):
    """meshd, payment-v1 and payment-v2 apps each behind a sidecar, and a client sidecar whose
    outbound listener the test sends through."""
    live.start_meshd(["--heartbeat-ttl", "3s", "--heartbeat-interval", "500ms"])
    apps = {n: live.echo(n) for n in ("payment-v1", "payment-v2", client_service)}
    v1 = live.sidecar("payment-v1", apps["payment-v1"], version="v1")
    v2 = live.sidecar("payment-v2", apps["payment-v2"], version="v2")
    client = live.sidecar(client_service, apps[client_service])
    return v1, v2, client


def endpoints_of(dump, cluster):
    return sorted(e["address"] for e in dump["endpoints"] if e["cluster"] == cluster)


def has_endpoints(dump, want):
    """Whether every (cluster, address) pair in want is in the dump's outbound endpoints."""
    have = {(e["cluster"], e["address"]) for e in dump["endpoints"] if e["direction"] == "outbound"}
    return all(w in have for w in want)


# --- tests ---


def test_apply_split_observed_through_sidecars(live):
    v1, v2, orders = mesh_of_payment(live)
    # Before any VirtualService the Services that sidecars registered are routable already.
    orders.wait_dump(lambda d: has_endpoints(d, [("payment-v1", v1.inbound),
                                                ("payment-v2", v2.inbound)]),
                     "both payment sidecars as endpoints")
    live.meshd.apply([split(90, 10)])
    orders.wait_dump(lambda d: weights_of(d) == {"payment-v1": 90, "payment-v2": 10},
                     "the 90/10 route")
    seen = count(orders, "payment.default.svc", 200)
    assert set(seen) == {"payment-v1", "payment-v2"}, seen
    assert 170 <= seen["payment-v1"] <= 190, seen  # smooth WRR per worker: exact per 10 or so

    # Every spelling of the host, with or without a port, reaches the VirtualService; a Service
    # named directly goes to that Service.
    for host in ("payment", "payment.default", "payment.default.svc.cluster.local:80",
                 "payment:8080"):
        assert orders.request(host).status == 200, host
    for host, app in (("payment-v1", "payment-v1"), ("payment-v2.default.svc", "payment-v2"),
                      ("payment-v2.default:9000", "payment-v2")):
        r = orders.request(host)
        assert (r.status, r.header("x-echo-name")) == (200, app), host
    assert orders.request("nothing.example.com").status == 404

    # The requests went through the payment sidecars' inbound listeners, counted as their own
    # destination.
    served = sum(v for _, v in _samples(v1, "mesh_requests_total", service="inbound|payment-v1"))
    assert served >= 170, served

    # What the client sidecar really uses, as meshctl proxy-config reads it.
    dump = orders.dump()
    assert dump["mode"] == "sidecar"
    assert dump["config"]["source"] == "meshd" and re.fullmatch(r"[0-9a-f]{16}",
                                                                dump["config"]["version"])
    assert dump["control"]["registered"] and dump["control"]["connected"]
    ep = [e for e in dump["endpoints"] if e["address"] == v1.inbound][0]
    assert ep["labels"].get("version") == "v1" and ep["health"] == "healthy"
    inbound = [c for c in dump["clusters"] if c["direction"] == "inbound"]
    assert [c["name"] for c in inbound] == ["inbound|orders"]


def _samples(proxy, name, **labels):
    from proxy_fixtures import Metrics

    resp = proxy.admin("/metrics")
    assert resp.status == 200
    return Metrics(resp.text).find(name, **labels)


def test_weight_change_reaches_traffic_within_a_second(live):
    v1, v2, orders = mesh_of_payment(live)
    orders.wait_dump(lambda d: has_endpoints(d, [("payment-v1", v1.inbound),
                                                ("payment-v2", v2.inbound)]),
                     "both payment sidecars as endpoints")
    live.meshd.apply([split(100, 0)])
    orders.wait_dump(lambda d: weights_of(d) == {"payment-v1": 100, "payment-v2": 0}, "100/0")
    assert count(orders, "payment", 50) == {"payment-v1": 50}

    # Everything to v2: the first v2 answer proves the new route is in use.
    live.meshd.apply([split(0, 100)])
    t0 = time.monotonic()
    wait_until(lambda: orders.request("payment").header("x-echo-name") == "payment-v2",
               PROPAGATION_LIMIT, interval=0.001, what="traffic to follow the new weights")
    took = time.monotonic() - t0
    print(f"weights 100/0 -> 0/100 observed by requests after {took * 1000:.1f} ms")
    assert took < PROPAGATION_LIMIT
    assert count(orders, "payment", 50) == {"payment-v2": 50}

    live.meshd.apply([split(30, 70)])
    orders.wait_dump(lambda d: weights_of(d) == {"payment-v1": 30, "payment-v2": 70}, "30/70",
                     timeout=PROPAGATION_LIMIT)
    seen = count(orders, "payment", 100)
    assert 25 <= seen.get("payment-v1", 0) <= 35, seen
    assert seen.get("payment-v1", 0) + seen.get("payment-v2", 0) == 100, seen
    # Nothing was dropped on the way: the sidecars never saw a failed request.
    assert "lvl=error" not in orders.stderr()


def test_deleted_virtual_service_answers_404(live):
    v1, v2, orders = mesh_of_payment(live)
    live.meshd.apply([split(90, 10)])
    orders.wait_dump(lambda d: weights_of(d) is not None and
                     has_endpoints(d, [("payment-v1", v1.inbound)]), "the route")
    assert orders.request("payment").status == 200
    live.meshd.delete("virtualservices", "payment")
    wait_until(lambda: orders.request("payment").status == 404, PROPAGATION_LIMIT,
               what="404 once the VirtualService is gone")
    r = orders.request("payment")
    assert r.header("x-mesh-error") == "no route"
    # The Services the sidecars registered are still there.
    assert orders.request("payment-v1").header("x-echo-name") == "payment-v1"


def test_meshd_killed_then_restarted(live):
    v1, v2, orders = mesh_of_payment(live)
    live.meshd.apply([split(90, 10)])
    orders.wait_dump(lambda d: weights_of(d) == {"payment-v1": 90, "payment-v2": 10} and
                     has_endpoints(d, [("payment-v1", v1.inbound), ("payment-v2", v2.inbound)]),
                     "the 90/10 route with both endpoints")
    ids = sorted([v1.id, v2.id, orders.id])
    assert live.meshd.proxy_ids() == ids

    live.kill_meshd()
    # The last good config serves on: same split, no failure, for longer than several retries.
    deadline = time.monotonic() + 2.5
    total = {}
    while time.monotonic() < deadline:
        for k, v in count(orders, "payment", 20).items():
            total[k] = total.get(k, 0) + v
    assert set(total) == {"payment-v1", "payment-v2"}, total
    assert total["payment-v1"] > 5 * total["payment-v2"], total
    for p in (v1, v2, orders):
        # The watch says it once per outage (a certificate request in flight may say it too).
        assert p.stderr().count(WATCH_OUTAGE) == 1, p.stderr()
        d = p.dump()
        assert not d["control"]["connected"] and d["config"]["source"] == "meshd"

    # Same data dir, same port: the proxies find it, register again, and a new apply reaches
    # them.
    live.start_meshd()
    wait_until(lambda: live.meshd.proxy_ids() == ids, SETTLE, interval=0.1,
               what="every proxy registered with the restarted meshd")
    for p in (v1, v2, orders):
        wait_until(lambda p=p: "meshd reachable again" in p.stderr(), SETTLE,
                   what=f"{p.name} to log its recovery")
        assert p.stderr().count("meshd reachable again") == 1
    orders.wait_dump(lambda d: has_endpoints(d, [("payment-v1", v1.inbound),
                                                ("payment-v2", v2.inbound)]),
                     "both endpoints again")
    live.meshd.apply([split(0, 100)])
    orders.wait_dump(lambda d: weights_of(d) == {"payment-v1": 0, "payment-v2": 100},
                     "the new weights from the restarted meshd", timeout=PROPAGATION_LIMIT + 1)
    assert count(orders, "payment", 30) == {"payment-v2": 30}


def test_killed_sidecar_leaves_the_registry_and_traffic_shifts(live):
    live.start_meshd(["--heartbeat-ttl", "1500ms", "--heartbeat-interval", "300ms"])
    a_app, b_app, orders_app = live.echo("payment-a"), live.echo("payment-b"), live.echo("orders")
    a = live.sidecar("payment", a_app, version="v1", name="sidecar-payment-a")
    b = live.sidecar("payment", b_app, version="v1", name="sidecar-payment-b")
    orders = live.sidecar("orders", orders_app)
    orders.wait_dump(lambda d: has_endpoints(d, [("payment", a.inbound), ("payment", b.inbound)]),
                     "both payment endpoints")
    assert set(count(orders, "payment", 40)) == {"payment-a", "payment-b"}

    b.expect_death = True
    b.signal(signal.SIGKILL)
    b.wait(5)
    t0 = time.monotonic()
    wait_until(lambda: b.id not in live.meshd.proxy_ids(), SETTLE, interval=0.05,
               what="the killed sidecar to leave meshd's registry")
    print(f"killed sidecar left the registry after {time.monotonic() - t0:.2f}s")
    assert a.id in live.meshd.proxy_ids()
    orders.wait_dump(lambda d: endpoints_of(d, "payment") == [a.inbound],
                     "the killed sidecar's endpoint to leave the client's config",
                     timeout=PROPAGATION_LIMIT)
    # After the ejection: every request succeeds, all on the survivor.
    assert count(orders, "payment", 100) == {"payment-a": 100}


def test_draining_sidecar_deregisters_at_once(live):
    live.start_meshd(["--heartbeat-ttl", "30s"])  # so that only deregistration can remove it
    a_app, b_app, orders_app = live.echo("payment-a"), live.echo("payment-b"), live.echo("orders")
    a = live.sidecar("payment", a_app, name="sidecar-payment-a")
    b = live.sidecar("payment", b_app, name="sidecar-payment-b")
    orders = live.sidecar("orders", orders_app)
    orders.wait_dump(lambda d: has_endpoints(d, [("payment", a.inbound), ("payment", b.inbound)]),
                     "both payment endpoints")
    t0 = time.monotonic()
    assert b.stop() == 0
    assert b.id not in live.meshd.proxy_ids()
    assert "deregistered from meshd" in b.stderr()
    orders.wait_dump(lambda d: endpoints_of(d, "payment") == [a.inbound],
                     "the drained sidecar's endpoint to leave the client's config",
                     timeout=PROPAGATION_LIMIT)
    assert time.monotonic() - t0 < 10  # long before the 30 s TTL
    assert count(orders, "payment", 50) == {"payment-a": 50}


def test_gateway_routes_by_host(live):
    v1, v2, orders = mesh_of_payment(live)
    gw = live.gateway("external-gateway")
    # The seed's VirtualService: payment.example.com on external-gateway, 90/10 under /api/v1/.
    live.meshd.apply_file(EXAMPLES / "payment-virtual-service.yaml")
    live.meshd.apply([vs("internal", ["payment"], route("payment-v1", name="internal"))])
    gw.wait_dump(lambda d: weights_of(d, "primary") == {"payment-v1": 90, "payment-v2": 10} and
                 has_endpoints(d, [("payment-v1", v1.inbound), ("payment-v2", v2.inbound)]),
                 "the gateway's VirtualService with both endpoints")
    seen = count(gw, "payment.example.com", 100, "/api/v1/pay")
    assert 85 <= seen.get("payment-v1", 0) <= 95 and \
        seen.get("payment-v1", 0) + seen.get("payment-v2", 0) == 100, seen
    assert gw.request("payment.example.com", "/other").status == 404  # no route matches
    assert gw.request("other.example.com", "/api/v1/pay").status == 404  # no such host
    # VirtualServices without gateways are the sidecars', and the gateway's are not theirs; a
    # gateway exposes no Service by its name either.
    assert gw.request("payment", "/api/v1/pay").status == 404
    assert gw.request("payment-v1", "/api/v1/pay").status == 404
    orders.wait_dump(lambda d: weights_of(d, "internal") is not None, "the mesh VirtualService")
    assert orders.request("payment.example.com", "/api/v1/pay").status == 404
    assert orders.request("payment", "/api/v1/pay").header("x-echo-name") == "payment-v1"
    dump = gw.dump()
    assert dump["mode"] == "gateway" and dump["proxy"]["gateway"] == "external-gateway"
    assert [r["name"] for r in dump["routes"] if r["virtual_service"]] == ["primary"]


def test_sidecar_before_meshd_waits_for_its_first_config(live):
    # meshd once, so that its token exists; then down while the sidecar starts.
    live.start_meshd()
    live.meshd.stop()
    app = live.echo("payment-v1")
    v1 = live.sidecar("payment-v1", app, version="v1")
    r = v1.request("payment-v1")
    assert (r.status, r.header("x-mesh-error")) == (503, "no config yet")
    assert v1.admin("/ready").status == 503
    # The inbound listener does not know its service's SecurityPolicy yet (it may be strict,
    # with authorization rules): nothing reaches the app, and the caller is told why.
    port = int(v1.inbound.rsplit(":", 1)[1])
    r = request(port, host="whatever")
    assert (r.status, r.header("x-mesh-error")) == (503, "no config yet")
    assert v1.dump()["config"]["source"] == "none"

    live.start_meshd()
    wait_until(lambda: v1.admin("/ready").status == 200, SETTLE, interval=0.05,
               what="the sidecar's first config")
    r = v1.request("payment-v1")
    assert (r.status, r.header("x-echo-name")) == (200, "payment-v1")
    assert request(port, host="whatever").header("x-echo-name") == "payment-v1"
    assert v1.stderr().count(WATCH_OUTAGE) == 1


def test_wrong_token_is_reported_and_retried(live, tmp_path):
    live.start_meshd()
    bad = tmp_path / "bad-token"
    bad.write_text("0" * 64 + "\n")
    app = live.echo("payment-v1")
    # The last --token wins: this sidecar presents a token meshd never issued.
    v1 = live.sidecar("payment-v1", app, flags=("--token", bad))
    wait_until(lambda: "meshd refused a request" in v1.stderr(), SETTLE,
               what="the refusal in the log")
    time.sleep(0.5)  # a few retries
    assert v1.stderr().count("meshd refused a request") == 1, v1.stderr()
    assert "0" * 64 not in v1.stderr()  # the token is never logged
    dump = v1.dump()
    assert not dump["control"]["registered"] and dump["config"]["source"] == "none"
    assert "token is wrong" in dump["control"]["last_error"]
    assert v1.request("payment-v1").header("x-mesh-error") == "no config yet"
    assert live.meshd.proxy_ids() == []


def test_static_mode_unchanged(lab, tmp_path):
    a, b = lab.echos("payment-v1", "payment-v2")
    docs = [{"apiVersion": API, "kind": "Service", "metadata": {"name": e.echo_name},
             "spec": {"endpoints": [e.addr]}} for e in (a, b)]
    docs.append(vs("payment", ["payment.example.com"],
                   route(("payment-v1", 90), ("payment-v2", 10))))
    p = lab.proxy(docs)
    assert p.request(host="payment.example.com").status == 200
    dump = json.loads(p.admin("/config_dump?format=json").body)
    assert dump["mode"] == "static" and dump["config"]["source"] == "file"
    assert dump["control"] is None
    assert p.admin("/config_dump").body.startswith(b"apiVersion")  # YAML as before
    # A file and meshd at once make no sense: refused before anything starts.
    proc = Process("both", [meshproxy_path(), "--config", p.config_path, "--control",
                            "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--admin",
                            "127.0.0.1:0"], tmp_path)
    assert proc.wait(10) == 2
    assert "exclude each other" in proc.stderr()
