# SPDX-License-Identifier: Apache-2.0
"""meshproxy's traffic policies, end to end: retries, connect failures, route timeouts, the
circuit breaker's limits under concurrent load, outlier ejection and return, and fault
injection (abort percentages, delays, aborts that never reach the upstream)."""
import threading
import time

from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    circuit_breaker,
    echo_services,
    fault_injection,
    free_ports,
    lab,
    proxy_binaries,
    raw_exchange,
    route,
    run_parallel,
    service,
    virtual_service,
)

HOST = "payment.example.com"


def test_retry_on_5xx_hides_a_failing_endpoint(lab):
    bad = lab.upstream("bad", status=503)
    good = lab.echo("good")
    proxy = lab.proxy([
        service("payment", bad.addr, good.addr),
        virtual_service("payment", [HOST],
                        route("payment", name="pay", retries={"attempts": 2, "retry_on": ["5xx"]})),
    ])
    c = proxy.client(HOST)
    bodies = [c.request(path=f"/r{i}") for i in range(30)]
    c.close()
    assert all(r.status == 200 and r.text == "good\n" for r in bodies), bodies
    # Retries were needed: the failing endpoint was tried and its 503s were never relayed.
    assert bad.request_count() > 0
    assert proxy.metrics().sum("mesh_retries_total", service="payment") == bad.request_count()


def test_503_passes_through_a_route_without_retries(lab):
    bad = lab.upstream("bad", status=503)
    proxy = lab.proxy([
        service("payment", bad.addr),
        virtual_service("payment", [HOST], route("payment")),
    ])
    for _ in range(5):
        r = proxy.request(host=HOST)
        assert r.status == 503, r
        assert r.text == "bad\n"  # the upstream's answer, not one of the proxy's
        assert r.header("x-mesh-error") is None
    assert bad.request_count() == 5  # tried once each


def test_retries_are_bounded_by_attempts(lab):
    bad = lab.upstream("bad", status=503)
    proxy = lab.proxy([
        service("payment", bad.addr),
        virtual_service("payment", [HOST],
                        route("payment", retries={"attempts": 2, "retry_on": ["5xx"]})),
    ])
    r = proxy.request(host=HOST)
    assert r.status == 503, r
    assert bad.request_count() == 3  # the try and two retries


def test_connect_failure_is_503_upstream_connect_error(lab):
    (closed_port,) = free_ports(1)
    proxy = lab.proxy([
        service("payment", f"127.0.0.1:{closed_port}"),
        virtual_service("payment", [HOST], route("payment")),
    ])
    r = proxy.request(host=HOST)
    assert r.status == 503, r
    assert r.header("x-mesh-error") == "upstream connect error", r


def test_retry_on_connect_failure_reaches_the_live_endpoint(lab):
    (closed_port,) = free_ports(1)
    good = lab.echo("good")
    proxy = lab.proxy([
        service("payment", f"127.0.0.1:{closed_port}", good.addr),
        virtual_service("payment", [HOST],
                        route("payment", retries={"attempts": 2,
                                                  "retry_on": ["connect-failure"]})),
    ])
    for _ in range(20):
        r = proxy.request(host=HOST)
        assert r.status == 200 and r.text == "good\n", r


def test_upstream_hanging_up_is_502_upstream_reset(lab):
    closer = lab.upstream("closer", misbehave="hangup")
    proxy = lab.proxy([
        service("payment", closer.addr),
        virtual_service("payment", [HOST], route("payment")),
    ])
    r = proxy.request(host=HOST)
    assert r.status == 502, r
    assert r.header("x-mesh-error") == "upstream reset", r
    assert closer.request_count() == 1


def test_retry_on_reset_reaches_the_live_endpoint(lab):
    closer = lab.upstream("closer", misbehave="hangup")
    good = lab.echo("good")
    proxy = lab.proxy([
        service("payment", closer.addr, good.addr),
        virtual_service("payment", [HOST],
                        route("payment", retries={"attempts": 1, "retry_on": ["reset"]})),
    ])
    for _ in range(20):
        r = proxy.request(host=HOST)
        assert r.status == 200 and r.text == "good\n", r
    assert closer.request_count() > 0


def test_truncated_upstream_response_cuts_the_client_connection(lab):
    cutter = lab.upstream("cutter", misbehave="truncate")
    proxy = lab.proxy([
        service("payment", cutter.addr),
        virtual_service("payment", [HOST], route("payment")),
    ])
    data, closed = raw_exchange(proxy.port, f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    # The head and the 10 bytes went out before the upstream failed: the client can only be
    # told by the connection closing short of the promised 1000 bytes.
    assert closed
    assert data.startswith(b"HTTP/1.1 200"), data
    assert len(data.split(b"\r\n\r\n", 1)[1]) == 10
    # The broken upstream connection is not pooled: the next request gets a fresh one.
    data, closed = raw_exchange(proxy.port, f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    assert closed and data.startswith(b"HTTP/1.1 200"), data
    assert cutter.connections == 2


def test_malformed_upstream_response_is_502(lab):
    bad = lab.upstream("bad", misbehave="smuggle")
    proxy = lab.proxy([
        service("payment", bad.addr),
        virtual_service("payment", [HOST], route("payment")),
    ])
    r = proxy.request(host=HOST)
    assert r.status == 502, r
    assert r.header("x-mesh-error"), r
    assert proxy.metrics().sum("mesh_parse_errors_total", kind="upstream_bad_response") == 1


def test_route_timeout_is_504(lab):
    e = lab.echo("slow")
    proxy = lab.proxy(echo_services(e) + [
        virtual_service("payment", [HOST], route("slow", timeout="200ms")),
    ])
    start = time.monotonic()
    r = proxy.request(host=HOST, path="/?delay=1s")
    elapsed = time.monotonic() - start
    assert r.status == 504, r
    assert r.header("x-mesh-error") == "upstream request timeout", r
    assert 0.15 <= elapsed < 0.9, elapsed
    # A request within the timeout is unaffected.
    assert proxy.request(host=HOST, path="/?delay=20ms").status == 200


def test_per_try_timeout_retries_then_504(lab):
    e = lab.echo("slow")
    proxy = lab.proxy(echo_services(e) + [
        virtual_service("payment", [HOST],
                        route("slow", timeout="2s",
                              retries={"attempts": 1, "per_try_timeout": "150ms",
                                       "retry_on": ["5xx"]})),
    ])
    start = time.monotonic()
    r = proxy.request(host=HOST, path="/?delay=1s")
    elapsed = time.monotonic() - start
    assert r.status == 504, r
    assert 0.25 <= elapsed < 1.0, elapsed  # two tries of 150 ms, well before the route's 2 s


def test_breaker_max_requests_overflows_under_concurrent_load(lab):
    e = lab.echo("slow")
    proxy = lab.proxy(echo_services(e) + [
        virtual_service("payment", [HOST], route("slow")),
        circuit_breaker("slow", "slow", max_requests=1),
    ])

    def one(_):
        return proxy.request(host=HOST, path="/?delay=300ms")

    results = run_parallel(one, 10)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    ok = [r for r in results if r.status == 200]
    overflow = [r for r in results if r.status == 503]
    assert len(ok) + len(overflow) == 10, results
    assert ok, results
    assert len(overflow) >= 5, results  # all ten arrive within the first one's 300 ms
    assert all(r.header("x-mesh-overflow") == "requests" for r in overflow), overflow
    m = proxy.metrics()
    assert m.sum("mesh_circuit_breaker_overflows_total", service="slow",
                 resource="requests") == len(overflow)
    assert m.sum("mesh_requests_total", service="slow", code="503") == len(overflow)
    # The limit is released as requests finish: a lone request now passes.
    assert proxy.request(host=HOST).status == 200


def test_breaker_overflow_is_answered_at_once(lab):
    e = lab.echo("slow")
    proxy = lab.proxy(echo_services(e) + [
        virtual_service("payment", [HOST], route("slow")),
        circuit_breaker("slow", "slow", max_requests=1),
    ])
    holder = threading.Thread(target=proxy.request,
                              kwargs={"host": HOST, "path": "/?delay=600ms"}, daemon=True)
    holder.start()
    time.sleep(0.2)
    start = time.monotonic()
    r = proxy.request(host=HOST)
    assert r.status == 503 and r.header("x-mesh-overflow") == "requests", r
    assert time.monotonic() - start < 0.5  # not queued behind the slow request
    holder.join(5)


def test_breaker_max_connections_queues_a_bounded_number(lab):
    e = lab.echo("slow")
    proxy = lab.proxy(echo_services(e) + [
        virtual_service("payment", [HOST], route("slow", timeout="2s")),
        circuit_breaker("slow", "slow", max_connections=1, max_pending_requests=2),
    ])

    def one(_):
        start = time.monotonic()
        r = proxy.request(host=HOST, path="/?delay=300ms")
        return r, time.monotonic() - start

    results = run_parallel(one, 8)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    ok = [(r, t) for r, t in results if r.status == 200]
    overflow = [r for r, _ in results if r.status == 503]
    # Every request is either served or refused at once: none waits out the route timeout
    # (504), wherever the one connection was opened.
    assert len(ok) + len(overflow) == 8, [(r.status, round(t, 2)) for r, t in results]
    # One on the connection, at most two waiting for it (a proxy may let each of its two
    # workers open one), the rest refused at once.
    assert 1 <= len(ok) <= 4, results
    assert all(r.header("x-mesh-overflow") == "pending_requests" for r in overflow), overflow
    assert max(t for _, t in ok) < 1.5, ok  # the waiting ones were served one after another


def test_breaker_max_connections_serves_sequential_clients_on_every_worker(lab):
    e = lab.echo("one")
    proxy = lab.proxy(echo_services(e) + [
        virtual_service("payment", [HOST], route("one", timeout="2s")),
        circuit_breaker("one", "one", max_connections=1, max_pending_requests=10),
    ], workers=2)
    # One request at a time, each on a new client connection (so on either worker): the single
    # allowed upstream connection must always be usable, wherever it was opened.
    for i in range(20):
        r = proxy.request(host=HOST, path=f"/s{i}")
        assert r.status == 200, (i, r)


def test_failing_endpoint_is_ejected_and_returns(lab):
    bad = lab.upstream("bad", status=503)
    good = lab.echo("good")
    proxy = lab.proxy([
        service("payment", bad.addr, good.addr),
        virtual_service("payment", [HOST], route("payment")),
        circuit_breaker("payment", "payment", detection={
            "consecutive_errors": 3, "interval": "200ms", "base_ejection_time": "1s",
            "max_ejection_percent": 50}),
    ])
    c = proxy.client(HOST)
    # Until the bad endpoint has failed three times in a row, it takes its share.
    deadline = time.monotonic() + 5
    while bad.request_count() < 3 and time.monotonic() < deadline:
        c.request()
    assert bad.request_count() == 3
    ejected_at = time.monotonic()
    # Ejected: no traffic reaches it.
    statuses = [c.request().status for _ in range(30)]
    assert statuses == [200] * 30
    assert bad.request_count() == 3
    m = proxy.metrics()
    assert m.sum("mesh_outlier_ejections_total", service="payment", endpoint=bad.addr) == 1
    # After base_ejection_time (and a sweep), it returns and gets traffic again.
    time.sleep(max(0.0, ejected_at + 1.5 - time.monotonic()))
    for _ in range(40):
        c.request()
        if bad.request_count() > 3:
            break
    assert bad.request_count() > 3, "the ejected endpoint never came back"
    c.close()


def test_at_most_half_of_a_service_is_ejected(lab):
    bad1 = lab.upstream("bad1", status=503)
    bad2 = lab.upstream("bad2", status=503)
    proxy = lab.proxy([
        service("payment", bad1.addr, bad2.addr),
        virtual_service("payment", [HOST], route("payment")),
        circuit_breaker("payment", "payment", detection={
            "consecutive_errors": 2, "interval": "200ms", "base_ejection_time": "10s",
            "max_ejection_percent": 50}),
    ])
    c = proxy.client(HOST)
    answers = [c.request() for _ in range(20)]
    c.close()
    # Both fail, but only one may go: the other still gets every request (and answers 503
    # itself) rather than the proxy answering "no healthy upstream".
    assert all(r.status == 503 and r.text in ("bad1\n", "bad2\n") for r in answers), answers
    assert bad1.request_count() + bad2.request_count() == 20
    assert proxy.metrics().sum("mesh_outlier_ejections_total", service="payment") == 1


def test_fault_abort_percentage_holds(lab):
    up = lab.upstream("payment")
    proxy = lab.proxy([
        service("payment", up.addr),
        fault_injection("payment", "payment", abort={"http_status": 503, "percentage": 10}),
    ])
    # 4,000 requests: +-2 points is then over four standard deviations, so the test does not
    # flake on an honest 10%.
    connections, per_connection = 8, 500
    statuses = []
    lock = threading.Lock()

    def load(i):
        c = proxy.client("payment")
        try:
            local = []
            for _ in range(per_connection):
                r = c.request()
                if r.status == 503:
                    assert r.header("x-mesh-fault") == "abort", r
                else:
                    assert r.status == 200 and r.text == "payment\n", r
                local.append(r.status)
        finally:
            c.close()
        with lock:
            statuses.extend(local)

    errors = [r for r in run_parallel(load, connections) if r is not None]
    assert not errors, errors
    total = connections * per_connection
    aborted = statuses.count(503)
    assert len(statuses) == total
    assert abs(aborted / total - 0.10) <= 0.02, f"{aborted} of {total} aborted"
    # An aborted request never reaches the upstream.
    assert up.request_count() == total - aborted
    m = proxy.metrics()
    assert m.sum("mesh_faults_injected_total", service="payment", kind="abort") == aborted


def test_fault_abort_never_reaches_the_upstream(lab):
    up = lab.upstream("payment")
    proxy = lab.proxy([
        service("payment", up.addr),
        virtual_service("payment", [HOST], route("payment")),
        fault_injection("payment", "payment", abort={"http_status": 418}),
    ])
    c = proxy.client(HOST)
    for _ in range(20):
        r = c.request("POST", "/charge", body=b"amount=3")
        assert r.status == 418 and r.header("x-mesh-fault") == "abort", r
    c.close()
    assert up.request_count() == 0
    assert up.connections == 0


def test_fault_on_a_virtual_service_applies_to_its_routes(lab):
    up = lab.upstream("payment")
    proxy = lab.proxy([
        service("payment", up.addr),
        virtual_service("payment-service", [HOST], route("payment")),
        fault_injection("payment-service", "payment-service",
                        abort={"http_status": 503, "percentage": 100}),
    ])
    r = proxy.request(host=HOST)
    assert r.status == 503 and r.header("x-mesh-fault") == "abort", r
    # The Service named directly is not behind the VirtualService's fault.
    assert proxy.request(host="payment").status == 200
    assert up.request_count() == 1


def test_fault_delay_is_applied(lab):
    slow, fast = lab.echos("slow", "fast")
    proxy = lab.proxy(echo_services(slow, fast) + [
        fault_injection("slow", "slow", delay="100ms"),
    ])
    for _ in range(5):
        start = time.monotonic()
        r = proxy.request(host="slow")
        elapsed = time.monotonic() - start
        assert r.status == 200 and r.text == "slow\n", r
        assert 0.095 <= elapsed < 0.6, elapsed
    fast = []
    for _ in range(5):
        start = time.monotonic()
        assert proxy.request(host="fast").status == 200
        fast.append(time.monotonic() - start)
    assert sorted(fast)[2] < 0.09, fast  # the median: the undelayed service is not slowed
    assert proxy.metrics().sum("mesh_faults_injected_total", service="slow", kind="delay") == 5
