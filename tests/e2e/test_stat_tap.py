# SPDX-License-Identifier: Apache-2.0
"""meshctl stat and meshctl tap, end to end with real processes: meshd, two payment-v1 sidecars
in front of mesh-echo apps, and an orders sidecar whose outbound listener the test sends through.

stat: the test sends a known number of requests with a known share of failures (mesh-echo's
?status=500) and a known latency (?delay=60ms), and stat's request count, success rate, RPS and
p50 bucket must agree; a short window leaves out older traffic. tap: exactly the requests sent
that match the filter appear (never the others, never those from before the tap), --max and
--method are obeyed, several taps run at once, a proxy with no tap session shows no trace of
tapping, and a tapper that stops reading costs the traffic nothing (requests keep succeeding, the
proxy drops and counts the events instead). The proxies' admin /tap and /stats/window are also
checked directly on a static proxy: bad queries, the session limit, and a drain with a session
open.
"""
import json
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import SAN, base_env, check_sanitizer_output, meshctl_path
from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    IO_TIMEOUT,
    Client,
    Metrics,
    echo_services,
    lab,
    proxy_binaries,
    read_head,
    request,
    wait_until,
)
from test_mesh_live import has_endpoints, live, meshd_binary  # noqa: F401 - fixtures

SETTLE = 15.0
TAP_WAIT = 20.0 if SAN else 10.0


# --- meshctl ---


def meshctl(live, *args, timeout=30):
    """meshctl --server MESHD ARGS; returns (rc, stdout, stderr)."""
    argv = [str(meshctl_path()), "--server", live.meshd.url, *map(str, args)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=base_env())
    check_sanitizer_output(proc.stderr, argv[1:])
    return proc.returncode, proc.stdout, proc.stderr


def meshctl_ok(live, *args):
    rc, out, err = meshctl(live, *args)
    assert rc == 0, f"meshctl {args} exited {rc}:\n{out}\n{err}"
    return out


def stat_json(live, *args):
    return json.loads(meshctl_ok(live, "stat", *args, "-o", "json"))


def stat_settled(live, pred, *args):
    """`stat ARGS -o json` once pred(answer) holds, and the monotonic times just before and just
    after that run. A proxy counts a request as it finishes, just after the response's last
    byte went out: the client may have the answer a moment before it is counted."""
    def attempt():
        before = time.monotonic()
        doc = stat_json(live, *args)
        return (doc, before, time.monotonic()) if pred(doc) else None

    return wait_until(attempt, SETTLE, interval=0.05, what="stat to count the requests sent")


class Tap:
    """A `meshctl tap` running in the background, its output in files; stopped by PID."""

    def __init__(self, tmp_path, name, server, *args):
        self.out_path = tmp_path / f"{name}.stdout"
        self.err_path = tmp_path / f"{name}.stderr"
        self.argv = [str(meshctl_path()), "--server", server, "tap", *map(str, args)]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=base_env())

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def lines(self):
        return [ln for ln in self.out_path.read_text().splitlines() if ln.strip()]

    def events(self):
        return [json.loads(ln) for ln in self.lines()]

    def wait_tapping(self):
        """Until every proxy has the session open: from then on, what finishes is seen."""
        def ready():
            if self.proc.poll() is not None:
                pytest.fail(f"meshctl tap exited {self.proc.returncode}:\n{self.stderr()}")
            return "Tapping " in self.stderr()

        wait_until(ready, TAP_WAIT, what="meshctl tap to start")

    def wait_exit(self, timeout=TAP_WAIT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"meshctl tap did not stop by itself:\n{self.stderr()}")

    def interrupt(self):
        """Ctrl-C, as a user stops it."""
        self.proc.send_signal(signal.SIGINT)
        return self.wait_exit()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        check_sanitizer_output(self.stderr(), self.argv[1:])


@pytest.fixture
def taps(tmp_path, live):
    started = []

    def start(name, *args):
        t = Tap(tmp_path, name, live.meshd.url, *args)
        started.append(t)
        return t

    yield start
    for t in started:
        t.stop()


# --- the mesh ---


def payment_mesh(live, sidecars=2):
    """meshd, payment-v1 behind `sidecars` sidecars (each with its own app), and orders, whose
    outbound listener reaches them all."""
    live.start_meshd(["--heartbeat-ttl", "30s"])
    pays = [live.sidecar("payment-v1", live.echo(f"pay-{i}"), name=f"sidecar-pay-{i}")
            for i in range(sidecars)]
    orders = live.sidecar("orders", live.echo("orders"))
    orders.wait_dump(lambda d: has_endpoints(d, [("payment-v1", p.inbound) for p in pays]),
                     "every payment-v1 sidecar as an endpoint")
    return pays, orders


def metric(proxy, name, **labels):
    resp = proxy.admin("/metrics")
    assert resp.status == 200
    return Metrics(resp.text).sum(name, **labels)


def send(orders, path, n=1, method="GET", ids=None):
    """n requests to payment-v1 through orders' outbound listener; returns their statuses."""
    statuses = []
    for i in range(n):
        headers = {"x-request-id": ids[i]} if ids else None
        statuses.append(request(orders.port, method, path, "payment-v1", headers=headers).status)
    return statuses


# --- stat ---


def test_stat_agrees_with_the_traffic_sent(live):
    spawned = time.monotonic()
    pays, orders = payment_mesh(live)
    ok, failed = 30, 10
    t0 = time.monotonic()
    client = Client(orders.port, "payment-v1")
    statuses = []
    for i in range(ok + failed):
        # Every fourth fails; all take 60 ms at the app: the (50ms, 100ms] bucket, with room
        # for the proxies' own time.
        path = "/pay?status=500&delay=60ms" if i % 4 == 3 else "/pay?delay=60ms"
        statuses.append(client.request("GET", path).status)
    client.close()
    t1 = time.monotonic()
    assert statuses.count(200) == ok and statuses.count(500) == failed

    doc, t2a, t2b = stat_settled(live, lambda d: d["items"][0]["requests"] == 40, "svc",
                                 "payment-v1", "--window", "1m")
    assert doc["window_seconds"] == 60 and doc["unreachable"] == []
    [item] = doc["items"]
    assert (item["namespace"], item["service"], item["meshed"]) == ("default", "payment-v1", 2)
    # Measured at its two sidecars, where the requests arrived.
    assert item["measured_at"] == "inbound"
    assert sorted(item["proxies"]) == sorted(p.id for p in pays)
    assert (item["requests"], item["successes"], item["failures"]) == (40, 30, 10)
    assert item["success_rate"] == pytest.approx(0.75)
    # The window reaches back past the sidecars' start: the rate is over their whole life, which
    # began before the first request and ended with the question.
    assert 40 / (t2b - spawned) <= item["rps"] <= 40 / (t2a - t0)
    assert t2a - t0 - 0.1 <= item["span_seconds"] <= t2b - spawned + 0.1
    lat = item["latency_ms"]
    assert 50 < lat["p50"] <= 100, lat
    assert lat["p50"] <= lat["p95"] <= lat["p99"], lat

    # The same as a table.
    out = meshctl_ok(live, "stat")
    rows = [re.split(r" {3,}", ln.strip()) for ln in out.strip().splitlines()]
    assert rows[0] == ["SERVICE", "MESHED", "REQUESTS", "SUCCESS", "RPS", "LATENCY_P50",
                       "LATENCY_P95", "LATENCY_P99"]
    row = {r[0]: r for r in rows[1:]}["payment-v1"]
    assert row[1:4] == ["2", "40", "75.00%"], row
    assert re.fullmatch(r"\d+(\.\d+)?ms", row[5]), row
    # orders has a sidecar too, and nobody called it yet.
    assert {r[0]: r for r in rows[1:]}["orders"][1:4] == ["1", "0", "-"]

    # Per proxy: the two payment sidecars share the 40 inbound; orders sent them all out.
    doc, _, _ = stat_settled(live, lambda d: sum(i["requests"] for i in d["items"]) == 80,
                             "proxy")
    by = {(i["proxy"], i["direction"]): i for i in doc["items"]}
    assert sum(by[(p.id, "inbound")]["requests"] for p in pays) == 40
    assert sum(by[(p.id, "inbound")]["failures"] for p in pays) == 10
    assert by[(orders.id, "outbound")]["requests"] == 40
    assert by[(orders.id, "outbound")]["failures"] == 10
    assert by[(orders.id, "inbound")]["requests"] == 0
    assert by[(orders.id, "inbound")]["latency_ms"] == {"p50": None, "p95": None, "p99": None}
    one = stat_json(live, "proxy", orders.id)["items"]
    assert {(i["proxy"], i["direction"]) for i in one} == {(orders.id, "inbound"),
                                                           (orders.id, "outbound")}

    # A short window leaves the old traffic out: 6 s later, the last second saw nothing ...
    time.sleep(max(0.0, t1 + 6.0 - time.monotonic()))
    [item] = stat_json(live, "svc", "payment-v1", "--window", "1s")["items"]
    assert item["requests"] == 0 and item["rps"] == 0 and item["success_rate"] is None
    assert item["latency_ms"]["p50"] is None
    # ... and new traffic shows up alone in the last 3 s (which start well after the old
    # traffic ended, and well before the new one began).
    assert send(orders, "/again", 5) == [200] * 5
    doc, _, _ = stat_settled(live, lambda d: d["items"][0]["requests"] >= 5, "svc", "payment-v1",
                             "--window", "3s")
    [item] = doc["items"]
    assert (item["requests"], item["failures"]) == (5, 0), item
    assert item["latency_ms"]["p50"] < 50, item  # no delay this time
    [item] = stat_json(live, "svc", "payment-v1", "--window", "10m")["items"]
    assert item["requests"] == 45


def test_stat_usage_and_errors(live, mesh):
    pays, orders = payment_mesh(live, sidecars=1)
    rc, _, err = meshctl(live, "stat", "svc", "nosuch")
    assert rc == 1 and 'no proxy has seen service "nosuch" in namespace default' in err
    rc, _, err = meshctl(live, "stat", "proxy", "nosuch")
    assert rc == 1 and 'no proxy named "nosuch"' in err
    rc, _, err = meshctl(live, "stat", "--window", "11m")
    assert rc == 2 and "from 1s to 10m" in err
    rc, _, err = meshctl(live, "stat", "--window", "soon")
    assert rc == 2 and "invalid duration" in err
    rc, _, err = meshctl(live, "stat", "svc", "a", "b")
    assert rc == 2
    rc, out, _ = meshctl(live, "stat", "--help")
    assert rc == 0 and "meshctl stat [svc|proxy] [NAME] [--window 1m]" in out
    # Another namespace has nothing; -A shows the NAMESPACE column.
    rc, out, err = meshctl(live, "stat", "-n", "other")
    assert rc == 0 and out == "" and "No traffic seen in namespace other" in err
    out = meshctl_ok(live, "stat", "-A")
    assert out.splitlines()[0].split()[:2] == ["NAMESPACE", "SERVICE"]
    # The embedded store has no proxies; a meshd that is down says so.
    rc, _, err = mesh.run("stat")
    assert rc == 2 and "stat needs meshd" in err
    live.kill_meshd()
    rc, _, err = meshctl(live, "stat")
    assert rc == 1 and "cannot reach meshd" in err


# --- tap ---


def test_tap_shows_exactly_the_matching_requests(live, taps):
    pays, orders = payment_mesh(live)
    # Traffic before any tap: no session, so nothing is kept for later, and no trace of tapping.
    assert send(orders, "/tapped/before", 4) == [200] * 4
    for p in pays:
        assert metric(p, "mesh_tap_sessions_active") == 0
        assert metric(p, "mesh_tap_events_total") == 0
        assert metric(p, "mesh_tap_events_dropped_total") == 0

    tap = taps("tap-path", "payment-v1", "--path", "/tapped/", "-o", "json")
    tap.wait_tapping()
    assert "Tapping 2 proxies of payment-v1.default" in tap.stderr()
    want = [f"tap-{i}" for i in range(6)]
    for i in range(6):
        assert send(orders, f"/other/{i}", ids=[f"other-{i}"]) == [200]
        assert send(orders, f"/tapped/{i}", ids=[want[i]]) == [200]
        assert send(orders, f"/tappedX/{i}", ids=[f"x-{i}"]) == [200]  # a prefix, not a match
    wait_until(lambda: len(tap.lines()) >= 6, TAP_WAIT, what="the 6 tapped requests")
    assert tap.interrupt() == 0
    events = tap.events()
    assert sorted(e["request_id"] for e in events) == want, events
    for e in events:
        assert e["path"].startswith("/tapped/") and e["method"] == "GET" and e["status"] == 200
        assert e["direction"] == "inbound" and e["destination"] == "inbound|payment-v1"
        assert e["proxy"] in {p.id for p in pays}
        assert e["authority"] == "payment-v1"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"])
        assert e["latency_ms"] >= 0 and e["source"].startswith("127.0.0.1:")
    assert "6 requests tapped." in tap.stderr()
    # Ctrl-C closed the sessions; the proxies counted what they sent.
    for p in pays:
        wait_until(lambda p=p: metric(p, "mesh_tap_sessions_active") == 0, SETTLE,
                   what=f"{p.name}'s tap session to close")
    assert sum(metric(p, "mesh_tap_events_total") for p in pays) == 6

    # Two taps at once, with other filters: --max ends one by itself, --method the other's.
    by_max = taps("tap-max", "payment-v1", "--path", "/m/", "--max", "3", "-o", "json")
    by_method = taps("tap-method", "payment-v1", "--method", "POST", "-o", "json")
    by_max.wait_tapping()
    by_method.wait_tapping()
    assert send(orders, "/m/get", 6, ids=[f"m-{i}" for i in range(6)]) == [200] * 6
    assert send(orders, "/p/post", 2, method="POST", ids=["p-0", "p-1"]) == [200] * 2
    assert by_max.wait_exit() == 0
    got = by_max.events()
    assert len(got) == 3 and all(e["path"] == "/m/get" for e in got), got
    assert set(e["request_id"] for e in got) <= {f"m-{i}" for i in range(6)}
    wait_until(lambda: len(by_method.lines()) >= 2, TAP_WAIT, what="the 2 POSTs")
    assert by_method.interrupt() == 0
    got = by_method.events()
    assert sorted(e["request_id"] for e in got) == ["p-0", "p-1"], got
    assert all(e["method"] == "POST" for e in got)


def test_tap_table_output_and_errors(live, taps):
    pays, orders = payment_mesh(live, sidecars=1)
    tap = taps("tap-table", "payment-v1", "--max", "1")
    tap.wait_tapping()
    assert send(orders, "/hello", ids=["table-1"]) == [200]
    assert tap.wait_exit() == 0
    [line] = tap.lines()
    assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z inbound +GET +200 +[\d.]+m?s payment-v1/hello "
                    r"src=127\.0\.0\.1:\d+", line), line
    assert f"dst=inbound|payment-v1@{pays[0].inbound.split(':')[0]}" in line
    assert line.endswith(f"proxy={pays[0].id}")

    # A timeout ends a tap that sees nothing.
    tap = taps("tap-timeout", "orders", "--timeout", "500ms")
    tap.wait_tapping()
    assert tap.wait_exit() == 0 and "0 requests tapped." in tap.stderr()

    rc, _, err = meshctl(live, "tap")
    assert rc == 2 and "tap needs one SERVICE" in err
    rc, _, err = meshctl(live, "tap", "nosuch")
    assert rc == 1 and 'no sidecar or gateway of "nosuch" in namespace default' in err
    rc, _, err = meshctl(live, "tap", "payment-v1", "-n", "other")
    assert rc == 1 and "in namespace other" in err
    rc, _, err = meshctl(live, "tap", "payment-v1", "--path", "nopath")
    assert rc == 2 and "starts with '/'" in err
    rc, _, err = meshctl(live, "tap", "payment-v1", "--max", "0")
    assert rc == 2 and "--max" in err
    rc, _, err = meshctl(live, "tap", "payment-v1", "--method", "G T")
    assert rc == 2 and "not an HTTP method" in err


def test_a_tapper_that_stops_reading_does_not_stall_traffic(live, taps):
    pays, orders = payment_mesh(live, sidecars=1)
    pay = pays[0]
    admin_port = pay.admin_port
    # A client that opens a tap session and then never reads: a tiny receive buffer fills fast.
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.settimeout(IO_TIMEOUT)
    stalled.connect(("127.0.0.1", admin_port))
    stalled.sendall(b"GET /tap HTTP/1.1\r\nHost: admin\r\n\r\n")
    head, _ = read_head(stalled)
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    wait_until(lambda: metric(pay, "mesh_tap_sessions_active") == 1, SETTLE,
               what="the stalled session")

    # Long paths make big events. Traffic goes on, every request answered, until the proxy has
    # dropped events for the stalled client rather than wait for it.
    client = Client(orders.port, "payment-v1")
    sent = 0
    long_path = "/slow/" + "x" * 200
    while True:
        for _ in range(200):
            r = client.request("GET", f"{long_path}/{sent}")
            assert r.status == 200, r
            sent += 1
        if metric(pay, "mesh_tap_events_dropped_total", reason="slow_tapper") > 0:
            break
        assert sent < 20000, "no event was ever dropped for the stalled tapper"
    client.close()
    print(f"{sent} requests before the first drop")

    # Another tapper at the same time is not held back by the stalled one.
    fast = taps("tap-fast", "payment-v1", "--path", "/fast/", "--max", "3", "-o", "json")
    fast.wait_tapping()
    assert send(orders, "/fast/1", 3) == [200] * 3
    assert fast.wait_exit() == 0 and len(fast.events()) == 3
    assert metric(pay, "mesh_tap_events_dropped_total", reason="ring_full") == 0

    # The stalled client goes away: its session ends.
    stalled.close()
    wait_until(lambda: metric(pay, "mesh_tap_sessions_active") == 0, SETTLE,
               what="the stalled session to end")
    assert send(orders, "/after", 3) == [200] * 3


# --- the admin endpoints directly, on a static proxy ---


def test_admin_tap_and_window_endpoints(lab, tmp_path):
    (app,) = lab.echos("app")
    p = lab.proxy(echo_services(app))
    assert p.request(path="/x?delay=30ms", host="app").status == 200

    # /stats/window: the JSON meshctl stat reads (once the request is counted: just after its
    # response went out).
    def counted():
        d = json.loads(p.admin("/stats/window?window=30s").body)
        return d if d["services"] and d["services"][0]["requests"] == 1 else None

    doc = wait_until(counted, SETTLE, what="the request to be counted")
    assert doc["window_seconds"] == 30 and doc["from_start"] is True
    assert doc["sample_interval_seconds"] == 1 and doc["services_dropped"] == 0
    [svc] = doc["services"]
    assert (svc["service"], svc["namespace"], svc["direction"]) == ("app", "default", "outbound")
    assert (svc["requests"], svc["failures"]) == (1, 0)
    # It took the app's 30 ms at least: nothing in the buckets up to 25 ms.
    assert svc["buckets"]["0.025"] == 0 and svc["buckets"]["10"] == 1
    assert svc["buckets"]["+Inf"] == 1 and len(svc["buckets"]) == 15
    for bad in ("window=0s", "window=11m", "window=x", "window=500ms"):
        r = p.admin(f"/stats/window?{bad}")
        assert r.status == 400 and "a duration from 1s to 10m" in r.text, (bad, r)

    # meshctl reads one proxy by address too.
    rc = subprocess.run([str(meshctl_path()), "stat", "--admin", f"127.0.0.1:{p.admin_port}",
                         "-o", "json"], capture_output=True, text=True, timeout=30)
    assert rc.returncode == 0, rc.stderr
    [item] = json.loads(rc.stdout)["items"]
    assert (item["service"], item["requests"], item["meshed"]) == ("app", 1, 0)

    # /tap refuses a bad query in words.
    for bad, says in (("max=0", "max \"0\""), ("path=x", "starts with '/'"),
                      ("color=red", "unknown parameter \"color\"")):
        r = p.admin(f"/tap?{bad}")
        assert r.status == 400 and says in r.text, (bad, r)

    # At most 16 sessions at once.
    socks = []
    try:
        for _ in range(16):
            s = socket.create_connection(("127.0.0.1", p.admin_port), timeout=IO_TIMEOUT)
            s.sendall(b"GET /tap?path=/nothing HTTP/1.1\r\nHost: admin\r\n\r\n")
            head, _ = read_head(s)
            assert head.startswith(b"HTTP/1.1 200"), head
            socks.append(s)
        r = p.admin("/tap")
        assert r.status == 503 and "too many tap sessions" in r.text
        assert p.metrics().sum("mesh_tap_sessions_active") == 16
        # One leaves: there is room again.
        socks.pop().close()
        wait_until(lambda: p.metrics().sum("mesh_tap_sessions_active") == 15, SETTLE,
                   what="a session to close")
        # The proxy drains with sessions open: each gets the end of its stream and the proxy
        # stops in time (the harness fails the test on a kill or a non-zero exit).
        p.stop()
        assert p.rc == 0 and not p.killed
        for s in socks:
            data = b""
            while not data.endswith(b"0\r\n\r\n"):
                b = s.recv(65536)
                if not b:
                    break
                data += b
            assert data.endswith(b"0\r\n\r\n"), data
    finally:
        for s in socks:
            s.close()


def test_admin_tap_max_and_timeout(lab):
    (app,) = lab.echos("app")
    p = lab.proxy(echo_services(app))
    with socket.create_connection(("127.0.0.1", p.admin_port), timeout=IO_TIMEOUT) as s:
        s.sendall(b"GET /tap?path=/t&max=2&timeout=5s HTTP/1.1\r\nHost: admin\r\n\r\n")
        head, rest = read_head(s)
        assert head.startswith(b"HTTP/1.1 200")
        for path in ("/t/1", "/u", "/t/2", "/t/3"):
            assert p.request(path=path, host="app").status == 200
        data = rest
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    # Two chunks, each one JSON line, then the last chunk; the connection closed after it.
    lines = []
    while data:
        size_line, data = data.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            assert data == b"\r\n"
            break
        lines.append(json.loads(data[:size]))
        assert data[size:size + 2] == b"\r\n"
        data = data[size + 2:]
    # Two of the three that match (the order of requests that finish on two workers within
    # microseconds of each other is the order the workers timed them), never /u.
    paths = [e["path"] for e in lines]
    assert len(paths) == 2 and set(paths) <= {"/t/1", "/t/2", "/t/3"}, paths
    # A timeout ends a session that sees nothing.
    with socket.create_connection(("127.0.0.1", p.admin_port), timeout=IO_TIMEOUT) as s:
        s.sendall(b"GET /tap?timeout=200ms HTTP/1.1\r\nHost: admin\r\n\r\n")
        head, rest = read_head(s)
        data = rest
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        assert data == b"0\r\n\r\n"
