# SPDX-License-Identifier: Apache-2.0
"""meshproxy's life cycle, end to end: SIGHUP reloads (a bad file refused with its message while
the old config serves on; a good one swapped in under load without one failed request) and the
SIGTERM drain (in-flight requests finish, new connections are refused, exit 0)."""
import os
import signal
import socket
import threading
import time

from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    IO_TIMEOUT,
    circuit_breaker,
    echo_services,
    lab,
    parse_head,
    proxy_binaries,
    read_head,
    route,
    run_parallel,
    service,
    virtual_service,
    wait_until,
)

OLD_HOST = "old.example.com"
NEW_HOST = "new.example.com"


def base_docs(a, b):
    return echo_services(a, b) + [virtual_service("old", [OLD_HOST], route("old-v1"))]


def good_docs(a, b):
    return base_docs(a, b) + [virtual_service("new", [NEW_HOST], route("new-v1"))]


def bad_docs(a, b):
    # Weights that do not sum to 100: the validator refuses the whole file.
    return base_docs(a, b) + [virtual_service(
        "new", [NEW_HOST], route(("old-v1", 90), ("new-v1", 5)))]


class LoadLoop:
    """Requests in a loop on several keep-alive connections until stopped; counts outcomes. A
    connection the proxy closed counts as a failure (the Client never reconnects)."""

    def __init__(self, proxy, host, connections=4, path="/"):
        self.proxy, self.host, self.path = proxy, host, path
        self.ok = 0
        self.failures = []
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(connections)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(IO_TIMEOUT)
        return False

    def _run(self):
        try:
            c = self.proxy.client(self.host)
        except OSError as e:
            with self.lock:
                self.failures.append(repr(e))
            return
        try:
            while not self.stop_flag.is_set():
                try:
                    r = c.request(path=self.path)
                except Exception as e:  # noqa: BLE001 - any error is a failed request
                    with self.lock:
                        self.failures.append(repr(e))
                    return
                with self.lock:
                    if r.status == 200 and r.text == "old-v1\n":
                        self.ok += 1
                    else:
                        self.failures.append(repr(r))
        finally:
            c.close()

    def wait_for(self, n):
        wait_until(lambda: self.ok >= n, 10, what=f"{n} requests of the load loop")


def test_reload_refuses_a_bad_file_and_keeps_serving(lab):
    a, b = lab.echos("old-v1", "new-v1")
    proxy = lab.proxy(base_docs(a, b))
    proxy.reload(bad_docs(a, b), "reload refused")
    err = proxy.stderr()
    assert "weights sum to 95" in err, err
    assert proxy.alive()
    assert proxy.request(host=OLD_HOST).text == "old-v1\n"
    assert proxy.request(host=NEW_HOST).status == 404
    # The config dump still shows the running documents.
    assert NEW_HOST not in proxy.admin("/config_dump").text


def test_reload_swaps_in_a_good_file(lab):
    a, b = lab.echos("old-v1", "new-v1")
    proxy = lab.proxy(base_docs(a, b))
    assert proxy.request(host=NEW_HOST).status == 404
    proxy.reload(good_docs(a, b), "config reloaded")
    # A worker adopts the new snapshot at its next loop turn.
    wait_until(lambda: proxy.request(host=NEW_HOST).status == 200, 2, what="the new route")
    assert proxy.request(host=NEW_HOST).text == "new-v1\n"
    assert proxy.request(host=OLD_HOST).text == "old-v1\n"
    assert NEW_HOST in proxy.admin("/config_dump").text


def test_reloads_under_load_fail_no_request(lab):
    a, b = lab.echos("old-v1", "new-v1")
    proxy = lab.proxy(base_docs(a, b))
    with LoadLoop(proxy, OLD_HOST) as load:
        load.wait_for(50)
        proxy.reload(bad_docs(a, b), "reload refused")
        n = load.ok
        load.wait_for(n + 50)
        proxy.reload(good_docs(a, b), "config reloaded")
        wait_until(lambda: proxy.request(host=NEW_HOST).status == 200, 2, what="the new route")
        n = load.ok
        load.wait_for(n + 50)
        proxy.reload(base_docs(a, b), "config reloaded")
        n = load.ok
        load.wait_for(n + 50)
    assert not load.failures, load.failures[:5]
    assert load.ok >= 200


def test_request_in_flight_finishes_across_a_reload(lab):
    a, b = lab.echos("old-v1", "new-v1")
    proxy = lab.proxy(base_docs(a, b))
    result = {}

    def slow():
        result["r"] = proxy.request(host=OLD_HOST, path="/?delay=600ms")

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    time.sleep(0.15)
    # The new file drops the old host: the request in flight still finishes on the old config.
    proxy.reload(echo_services(a, b) + [virtual_service("new", [NEW_HOST], route("new-v1"))],
                 "config reloaded")
    t.join(IO_TIMEOUT)
    assert result["r"].status == 200 and result["r"].text == "old-v1\n", result
    wait_until(lambda: proxy.request(host=OLD_HOST).status == 404, 2, what="the old host to go")


def test_sigterm_drains_in_flight_requests_and_exits_0(lab):
    e = lab.echo("old-v1")
    proxy = lab.proxy(echo_services(e) + [virtual_service("old", [OLD_HOST], route("old-v1"))])
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT)
    s.sendall(f"GET /slow?delay=2s HTTP/1.1\r\nHost: {OLD_HOST}\r\n\r\n".encode())
    time.sleep(0.2)  # in flight
    sent_at = time.monotonic()
    proxy.signal(signal.SIGTERM)

    # New connections are refused while the slow request is still being served. A connect
    # that races the listeners' close may hang, or be reset when the listener closes with it
    # still in the accept queue, instead of being refused: probe again.
    def refused():
        try:
            socket.create_connection(("127.0.0.1", proxy.port), timeout=0.2).close()
            return False
        except ConnectionRefusedError:
            return True
        except (TimeoutError, ConnectionResetError):
            return False

    wait_until(refused, 1.2, what="the listener to close")
    assert time.monotonic() - sent_at < 1.5
    assert proxy.alive(), "exited before its request finished"
    head, rest = read_head(s, timeout=5)
    status, headers = parse_head(head)
    assert status == 200
    s.close()
    assert proxy.wait(5) == 0, proxy.stderr()
    assert "draining" in proxy.stderr()


def test_sigterm_closes_idle_keep_alive_connections(lab):
    e = lab.echo("old-v1")
    proxy = lab.proxy(echo_services(e) + [virtual_service("old", [OLD_HOST], route("old-v1"))])
    c = proxy.client(OLD_HOST)
    assert c.request().status == 200
    start = time.monotonic()
    proxy.signal(signal.SIGTERM)
    assert proxy.wait(3) == 0, proxy.stderr()
    assert time.monotonic() - start < 1.5  # idle connections do not hold the drain up
    c.sock.settimeout(2)
    assert c.sock.recv(1) == b""  # closed by the proxy
    c.close()


def test_drain_timeout_bounds_the_wait(lab):
    e = lab.echo("old-v1")
    proxy = lab.proxy(echo_services(e) + [virtual_service("old", [OLD_HOST], route("old-v1"))],
                      flags=["--drain-timeout", "300ms"])
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT)
    s.sendall(f"GET /slow?delay=5s HTTP/1.1\r\nHost: {OLD_HOST}\r\n\r\n".encode())
    time.sleep(0.2)
    start = time.monotonic()
    proxy.signal(signal.SIGTERM)
    assert proxy.wait(3) == 0, proxy.stderr()
    assert time.monotonic() - start < 1.5
    s.close()


def test_idle_connection_survives_a_reload_and_sees_the_new_config(lab):
    a, b = lab.echos("old-v1", "new-v1")
    proxy = lab.proxy(base_docs(a, b))
    c = proxy.client(OLD_HOST)
    assert c.request().text == "old-v1\n"
    proxy.reload(echo_services(a, b) + [virtual_service("old", [OLD_HOST], route("new-v1"))],
                 "config reloaded")
    # The same connection, idle across the reload: still open, and routed by the new config.
    wait_until(lambda: c.request().text == "new-v1\n", 2,
               what="the new config on the old connection")
    c.close()


def test_reload_refuses_a_missing_file(lab):
    a, b = lab.echos("old-v1", "new-v1")
    proxy = lab.proxy(base_docs(a, b))
    before = proxy.stderr().count("reload refused")
    proxy.config_path.unlink()
    proxy.signal(signal.SIGHUP)
    wait_until(lambda: proxy.stderr().count("reload refused") > before, 5, what="the refusal")
    assert proxy.request(host=OLD_HOST).text == "old-v1\n"


def test_ready_is_503_while_draining(lab):
    e = lab.echo("old-v1")
    # Four workers: the one slow request most likely lands on a worker other than the one that
    # serves the admin listener, which must keep answering while the others drain.
    proxy = lab.proxy(echo_services(e) + [virtual_service("old", [OLD_HOST], route("old-v1"))],
                      workers=4)
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT)
    s.sendall(f"GET /slow?delay=1s HTTP/1.1\r\nHost: {OLD_HOST}\r\n\r\n".encode())
    time.sleep(0.2)
    proxy.signal(signal.SIGTERM)
    time.sleep(0.2)
    r = proxy.admin("/ready")
    assert r.status == 503, r
    assert parse_head(read_head(s)[0])[0] == 200
    s.close()
    assert proxy.wait(5) == 0


def test_reload_moves_traffic_to_the_new_endpoints(lab):
    a, b = lab.echos("old-v1", "new-v1")
    docs = [service("payment", a.addr), virtual_service("old", [OLD_HOST], route("payment"))]
    proxy = lab.proxy(docs)
    c = proxy.client(OLD_HOST)
    assert c.request().text == "old-v1\n"  # leaves a pooled upstream connection to a
    docs[0] = service("payment", b.addr)
    proxy.reload(docs, "config reloaded")
    wait_until(lambda: c.request().text == "new-v1\n", 2, what="traffic on the new endpoint")
    assert {c.request().text for _ in range(10)} == {"new-v1\n"}
    c.close()


def test_reload_applies_new_breaker_limits(lab):
    e = lab.echo("old-v1")
    base = echo_services(e) + [virtual_service("old", [OLD_HOST], route("old-v1"))]
    proxy = lab.proxy(base + [circuit_breaker("old-v1", "old-v1", max_requests=1)])

    def burst():
        return [r.status for r in run_parallel(
            lambda _: proxy.request(host=OLD_HOST, path="/?delay=200ms"), 6)]

    assert 503 in burst()
    proxy.reload(base + [circuit_breaker("old-v1", "old-v1", max_requests=100)],
                 "config reloaded")
    time.sleep(0.3)  # every worker has adopted the new snapshot
    assert burst() == [200] * 6


def blocked_signals(pid, tid):
    """The signal mask of one thread, as /proc shows it (SigBlk, hex)."""
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
    raise AssertionError(f"no SigBlk for thread {tid}")


def test_only_the_main_thread_takes_the_signals(lab):
    """SIGTERM, SIGINT and SIGHUP go to the main thread's loop: every other thread (workers, the
    trace exporter, ...) blocks them, else the kernel may hand a SIGTERM to one of them and its
    default action kills the proxy instead of draining it."""
    e = lab.echo("old-v1")
    proxy = lab.proxy(echo_services(e) + [virtual_service("old", [OLD_HOST], route("old-v1"))])
    assert proxy.client(OLD_HOST).request().status == 200
    want = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGHUP - 1))
    # The main thread is left out: while it waits in sigwait the kernel shows those unblocked.
    tids = sorted(int(t) for t in os.listdir(f"/proc/{proxy.pid}/task") if int(t) != proxy.pid)
    assert tids
    for tid in tids:
        assert blocked_signals(proxy.pid, tid) & want == want, f"thread {tid} takes signals"
