# SPDX-License-Identifier: Apache-2.0
"""meshproxy's admin listener and access log, end to end: /metrics in Prometheus text (requests
by service, route, endpoint and code; the duration histogram; upstream connections), /ready,
/config_dump, /stats as JSON, and JSON access-log lines."""
import json

from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    circuit_breaker,
    echo_services,
    lab,
    proxy_binaries,
    route,
    virtual_service,
    wait_until,
)

HOST = "payment.example.com"


def payment_proxy(lab, flags=()):
    e = lab.echo("payment-v1")
    proxy = lab.proxy(echo_services(e) + [
        virtual_service("payment-service", [HOST],
                        route("payment-v1", name="primary", matches=[{"path": "/api/*"}])),
        circuit_breaker("payment-service", "payment-service", max_requests=100),
    ], flags=flags)
    return e, proxy


def test_metrics_count_requests_by_service_route_endpoint_and_code(lab):
    e, proxy = payment_proxy(lab)
    for _ in range(3):
        assert proxy.request(host=HOST, path="/api/pay").status == 200
    assert proxy.request(host=HOST, path="/api/pay?status=503").status == 503
    assert proxy.request(host="nowhere.example.com").status == 404
    # A request is counted just after its response goes out: wait for the last one's count.
    def counted():
        got = proxy.metrics()
        return got if got.sum("mesh_requests_total", code="404") == 1 else None

    m = wait_until(counted, 5, what="the 404 in /metrics")
    assert m.types.get("mesh_requests_total") == "counter"
    labels = {"service": "payment-v1", "route": "primary", "endpoint": e.addr}
    assert m.sum("mesh_requests_total", code="200", **labels) == 3, m.find("mesh_requests_total")
    assert m.sum("mesh_requests_total", code="503", **labels) == 1, m.find("mesh_requests_total")
    assert m.sum("mesh_requests_total", code="404") == 1, m.find("mesh_requests_total")


def test_metrics_have_a_request_duration_histogram(lab):
    e, proxy = payment_proxy(lab)
    for _ in range(4):
        assert proxy.request(host=HOST, path="/api/pay").status == 200
    assert proxy.request(host=HOST, path="/api/pay?delay=150ms").status == 200
    m = proxy.metrics()
    name = "mesh_request_duration_seconds"
    assert m.types.get(name) == "histogram"
    buckets = m.find(name + "_bucket", service="payment-v1", route="primary")
    assert buckets, m.text
    by_le = {lab_["le"]: v for lab_, v in buckets}
    assert by_le["+Inf"] == 5
    bounds = sorted((float(le), v) for le, v in by_le.items() if le != "+Inf")
    counts = [v for _, v in bounds]
    assert counts == sorted(counts), "buckets are not cumulative"
    # The delayed request sits above 100 ms; the others well below.
    assert max(v for le, v in bounds if le < 0.1) == 4
    assert m.sum(name + "_count", service="payment-v1", route="primary") == 5
    total = m.sum(name + "_sum", service="payment-v1", route="primary")
    assert 0.15 <= total < 5


def test_metrics_show_upstream_connections(lab):
    e, proxy = payment_proxy(lab)
    c = proxy.client(HOST)
    for _ in range(10):
        c.request(path="/api/pay")
    c.close()
    m = proxy.metrics()
    assert m.types.get("mesh_upstream_connections_open") == "gauge"
    # Kept alive in the pool of the one worker that served them: one connection, not ten.
    open_ = m.find("mesh_upstream_connections_open", service="payment-v1", endpoint=e.addr)
    assert [v for _, v in open_] == [1], m.find("mesh_upstream_connections_open")


def test_metrics_list_every_family(lab):
    e, proxy = payment_proxy(lab)
    m = proxy.metrics()
    for family in ("mesh_requests_total", "mesh_request_duration_seconds",
                   "mesh_upstream_connections_open", "mesh_upstream_connections_pending",
                   "mesh_retries_total", "mesh_circuit_breaker_overflows_total",
                   "mesh_outlier_ejections_total", "mesh_faults_injected_total",
                   "mesh_parse_errors_total"):
        assert family in m.types, f"{family} missing from /metrics"
    assert all(n.startswith("mesh_") for n, _, _ in m.samples)


def test_ready_answers_200_while_serving(lab):
    e, proxy = payment_proxy(lab)
    r = proxy.admin("/ready")
    assert r.status == 200


def test_config_dump_shows_the_documents(lab):
    e, proxy = payment_proxy(lab)
    r = proxy.admin("/config_dump")
    assert r.status == 200
    text = r.text
    for needle in ("kind: Service", "payment-v1", e.addr, "kind: VirtualService",
                   "payment-service", HOST, "kind: CircuitBreaker", "max_requests: 100"):
        assert needle in text, f"{needle!r} not in /config_dump:\n{text}"


def test_stats_is_json(lab):
    e, proxy = payment_proxy(lab)
    assert proxy.request(host=HOST, path="/api/pay").status == 200

    # A request is counted just after its response goes out: poll until its counter shows
    # (the service's name appears elsewhere in /stats before that).
    def counted():
        got = proxy.admin("/stats")
        try:
            requests = json.loads(got.body).get("requests", [])
        except ValueError:
            return None
        return got if any(x.get("service") == "payment-v1" for x in requests) else None

    r = wait_until(counted, 5, what="the request in /stats")
    assert r.status == 200
    assert "json" in (r.header("content-type") or "")
    stats = json.loads(r.body)
    assert isinstance(stats, dict)
    requests = stats["requests"]
    assert any(x.get("service") == "payment-v1" and x.get("code") == "200" and x["value"] == 1
               for x in requests), requests


def test_unknown_admin_path_is_404(lab):
    e, proxy = payment_proxy(lab)
    assert proxy.admin("/nope").status == 404


def test_access_log_has_a_json_line_per_request(lab, tmp_path):
    log = tmp_path / "access.log"
    e, proxy = payment_proxy(lab, flags=["--access-log", log])
    r1 = proxy.request(host=HOST, path="/api/pay")
    r2 = proxy.request("POST", "/api/refund?status=503", host=HOST, body=b"x")
    r3 = proxy.request(host="nowhere.example.com", path="/x")
    assert (r1.status, r2.status, r3.status) == (200, 503, 404)

    def lines():
        text = log.read_text() if log.exists() else ""
        return text.splitlines() if text.count("\n") >= 3 else None

    entries = [json.loads(line) for line in wait_until(lines, 5, what="3 access-log lines")]
    assert len(entries) == 3, entries
    # Two workers write the log: a line is written once its response is out, so sequential
    # requests served by different workers may log in either order.
    by_path = {e["path"]: e for e in entries}
    first, second, third = by_path["/api/pay"], by_path["/api/refund"], by_path["/x"]
    assert first["method"] == "GET" and first["path"] == "/api/pay"
    assert first["status"] == 200 and first["authority"] == HOST
    assert first["service"] == "payment-v1" and first["route"] == "primary"
    assert first["endpoint"] == e.addr
    # The request id logged is the one the upstream received.
    assert first["request_id"] == r1.header("x-echo-header-x-request-id")
    assert second["method"] == "POST" and second["status"] == 503
    assert third["status"] == 404 and third["authority"] == "nowhere.example.com"
