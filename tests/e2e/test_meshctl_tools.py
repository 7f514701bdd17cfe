# SPDX-License-Identifier: Apache-2.0
"""meshctl's debugging commands, end to end with real processes: explain (on files, on the
embedded store, on meshd, and checked against what a real meshproxy does with the same config),
proxy-status, proxy-config and check (against a real meshd with meshproxy sidecars and a
gateway, and against a static meshproxy's admin listener)."""
import json
import re
import signal
import socket

import pytest

from conftest import EXAMPLES
from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    API,
    circuit_breaker,
    config_text,
    echo_services,
    fault_injection,
    free_ports,
    lab,
    proxy_binaries,
    request,
    route,
    service,
    virtual_service,
    wait_until,
)
# meshd and meshproxy in sidecar and gateway mode, as the live mesh's own tests run them.
from test_mesh_live import live, meshd_binary, vs  # noqa: F401 - live, meshd_binary: fixtures

# --- explain ---

PAY = [
    service("pay-v1", "127.0.0.1:18101", "127.0.0.1:18102"),
    service("pay-v2", "127.0.0.1:18103"),
    virtual_service(
        "pay", ["pay.example.com"],
        route("pay-v2", name="canary", matches=[
            {"path": {"prefix": "/api/"}, "headers": {"x-canary": {"exact": "yes"}}},
            {"method": "POST", "path": "/api/v1/process"},
        ], timeout="3s", retries={"attempts": 2, "per_try_timeout": "1s", "retry_on": ["5xx"]}),
        route(("pay-v1", 90), ("pay-v2", 10), name="main", matches=[{"path": "/api/*"}]),
        route("pay-v1", name="v1-only", matches=[{"path": "/api/v1/*"}]),
    ),
    fault_injection("slow-main", "pay", route="main", delay="2s", delay_percentage=5),
    fault_injection("pay-all", "pay", abort={"http_status": 503, "percentage": 1}),
    fault_injection("pay-v2-abort", "pay-v2", abort={"http_status": 500, "percentage": 20}),
    circuit_breaker("pay-v2-cb", "pay-v2", max_requests=7, max_connections=3,
                    detection={"consecutive_errors": 4, "interval": "5s",
                               "base_ejection_time": "20s"}),
]


@pytest.fixture
def pay_file(tmp_path):
    path = tmp_path / "pay.json"
    path.write_text(config_text(PAY))
    return path


def explain(mesh, *args, expect_rc=0):
    rc, out, err = mesh.run("explain", *args)
    assert rc == expect_rc, f"explain {args} exited {rc}:\n{out}\n{err}"
    return out, err


def explain_json(mesh, *args, expect_rc=0):
    out, _ = explain(mesh, *args, "-o", "json", expect_rc=expect_rc)
    return json.loads(out)


def line(out, label):
    """The text after LABEL: on the line that starts with it."""
    for ln in out.splitlines():
        if ln.startswith(label + ":"):
            return ln[len(label) + 1:].strip()
    raise AssertionError(f"no {label!r} line in:\n{out}")


def test_explain_the_seeds_90_10_split_on_the_gateway(mesh):
    """The seed's VirtualService serves external-gateway only: the gateway routes /api/v1/* 90/10,
    with the seed's circuit breaker on both destinations."""
    out, _ = explain(mesh, "GET", "http://payment.example.com/api/v1/pay", "-f", EXAMPLES,
                     "--gateway", "external-gateway")
    assert line(out, "VirtualService") == "payment-service.default (host payment.example.com)"
    assert line(out, "Route").startswith(
        "primary (http_routes[0]), matches[0]: path glob /api/v1/*")
    assert "payment-v1  weight 90%  -> Service payment-v1.default" in out
    assert "payment-v2  weight 10%  -> Service payment-v2.default" in out
    assert "127.0.0.1:18081" in out and "127.0.0.1:18082" in out
    assert ("circuit breaker:    max_connections 100, max_pending_requests 100, max_requests 1000, "
            "max_retries 3 (payment-service)") in out
    assert "eject an endpoint after 5 consecutive errors for 30s" in out

    doc = explain_json(mesh, "GET", "http://payment.example.com/api/v1/pay", "-f", EXAMPLES,
                       "--gateway", "external-gateway")
    assert doc["matched"] is True and doc["reason"] is None
    assert doc["proxy"] == {"role": "gateway", "service": None, "gateway": "external-gateway",
                            "namespace": "default"}
    assert doc["virtual_service"] == {"name": "payment-service", "namespace": "default",
                                      "host": "payment.example.com"}
    dests = doc["route"]["destinations"]
    assert [(d["host"], d["weight"]) for d in dests] == [("payment-v1", 90), ("payment-v2", 10)]
    assert [d["endpoints"] for d in dests] == [["127.0.0.1:18081"], ["127.0.0.1:18082"]]
    cb = dests[0]["circuit_breaker"]
    assert cb["circuit_breakers"] == ["payment-service"]
    assert (cb["max_connections"], cb["max_pending_requests"], cb["max_requests"],
            cb["max_retries"]) == (100, 100, 1000, 3)
    assert cb["outlier_detection"] == {"consecutive_errors": 5, "interval_ms": 10000,
                                       "base_ejection_time_ms": 30000, "max_ejection_percent": 50}


def test_explain_says_a_gateway_only_host_is_not_served_by_sidecars(mesh):
    out, _ = explain(mesh, "GET", "http://payment.example.com/api/v1/pay", "-f", EXAMPLES,
                     expect_rc=1)
    assert "no route: no VirtualService or Service serves host payment.example.com on a sidecar" \
        in out
    assert ("VirtualService payment-service.default lists host payment.example.com, but only "
            "external-gateway gets it: try --gateway external-gateway -n default") in out
    doc = explain_json(mesh, "GET", "http://payment.example.com/api/v1/pay", "-f", EXAMPLES,
                       expect_rc=1)
    assert doc["matched"] is False and doc["reason"] == "no_virtual_host"
    assert doc["route"] is None
    assert doc["served_elsewhere"] == [{"name": "payment-service", "namespace": "default",
                                        "host": "payment.example.com",
                                        "gateways": ["external-gateway"]}]
    # And the other way round: a sidecar-only VirtualService is not on the gateway.
    out, _ = explain(mesh, "GET", "http://web.example.com/api/v1", "-f", EXAMPLES,
                     "--gateway", "external-gateway", expect_rc=1)
    assert "web-service.default lists host web.example.com, but it is for sidecars only" in out


def test_explain_header_match(mesh, pay_file):
    doc = explain_json(mesh, "GET", "http://pay.example.com/api/v2/x", "-H", "X-Canary: yes",
                       "-f", pay_file)
    assert doc["route"]["name"] == "canary" and doc["route"]["index"] == 0
    assert doc["route"]["match_index"] == 0
    assert doc["route"]["match"] == 'path prefix /api/, header x-canary exact "yes"'
    assert [(d["host"], d["weight"]) for d in doc["route"]["destinations"]] == [("pay-v2", 100)]
    assert doc["route"]["timeout_ms"] == 3000
    assert doc["route"]["retries"] == {"attempts": 2, "per_try_timeout_ms": 1000,
                                       "retry_on": "5xx"}

    # Another value, or none: canary is passed over, and explain says which condition failed.
    doc = explain_json(mesh, "GET", "http://pay.example.com/api/v2/x", "-H", "x-canary: no",
                       "-f", pay_file)
    assert doc["route"]["name"] == "main"
    why = doc["routes_passed_over"][0]["why"]
    assert doc["routes_passed_over"][0]["name"] == "canary"
    assert 'match 1: header x-canary: "no" does not match (wanted: header x-canary exact "yes")' \
        in why
    assert "match 2: method GET is not POST; path /api/v2/x does not match exact /api/v1/process" \
        in why
    out, _ = explain(mesh, "GET", "http://pay.example.com/api/v2/x", "-f", pay_file)
    assert "passed over http_routes[0] canary: match 1: header x-canary is absent" in out


def test_explain_method_match(mesh, pay_file):
    doc = explain_json(mesh, "POST", "http://pay.example.com/api/v1/process", "-f", pay_file)
    assert (doc["route"]["name"], doc["route"]["match_index"]) == ("canary", 1)
    assert doc["route"]["match"] == "path exact /api/v1/process, method POST"
    doc = explain_json(mesh, "PUT", "http://pay.example.com/api/v1/process", "-f", pay_file)
    assert doc["route"]["name"] == "main"
    assert "method PUT is not POST" in doc["routes_passed_over"][0]["why"]


def test_explain_shows_routes_shadowed_for_the_request(mesh, pay_file):
    # /api/v1/x matches main and v1-only: main comes first, v1-only never sees it.
    out, _ = explain(mesh, "GET", "http://pay.example.com/api/v1/x", "-f", pay_file)
    assert line(out, "Route").startswith("main (http_routes[1])")
    assert ("Shadowed:        http_routes[2] v1-only also matches, but main comes first: it never "
            "sees this request") in out
    doc = explain_json(mesh, "GET", "http://pay.example.com/api/v1/x", "-f", pay_file)
    assert doc["shadowed_routes"] == [{"index": 2, "name": "v1-only"}]
    doc = explain_json(mesh, "GET", "http://pay.example.com/api/v2/x", "-f", pay_file)
    assert doc["shadowed_routes"] == []


def test_explain_no_route_lists_every_route_and_why(mesh, pay_file):
    out, _ = explain(mesh, "GET", "http://pay.example.com/other?q=1", "-f", pay_file, expect_rc=1)
    assert line(out, "VirtualService") == "pay.default (host pay.example.com)"
    assert ("Result:          no route: none of the 3 routes of pay.default matches; meshproxy "
            "answers 404") in out
    assert "http_routes[0] canary: match 1: path /other does not match prefix /api/" in out
    assert "http_routes[1] main: path /other does not match glob /api/*" in out
    assert "http_routes[2] v1-only: path /other does not match glob /api/v1/*" in out
    doc = explain_json(mesh, "GET", "http://pay.example.com/other", "-f", pay_file, expect_rc=1)
    assert doc["reason"] == "no_route" and doc["route"] is None
    assert [m["name"] for m in doc["routes_passed_over"]] == ["canary", "main", "v1-only"]
    # No VirtualService and no Service for the host at all.
    doc = explain_json(mesh, "GET", "http://nowhere.example.org/", "-f", pay_file, expect_rc=1)
    assert doc["reason"] == "no_virtual_host" and doc["served_elsewhere"] == []


def test_explain_shows_faults_and_breakers(mesh, pay_file):
    doc = explain_json(mesh, "GET", "http://pay.example.com/api/v2/x", "-f", pay_file)
    route_ = doc["route"]
    # The FaultInjection naming the route wins over the one for the whole VirtualService.
    assert route_["fault"] == {"delay_ms": 2000, "delay_percentage": 5.0, "abort_status": 0,
                               "abort_percentage": 0.0, "fault_injections": ["slow-main"]}
    v1, v2 = route_["destinations"]
    assert v1["circuit_breaker"] is None and v1["fault"] is None
    assert v2["circuit_breaker"]["circuit_breakers"] == ["pay-v2-cb"]
    assert (v2["circuit_breaker"]["max_requests"], v2["circuit_breaker"]["max_connections"]) == \
        (7, 3)
    assert v2["circuit_breaker"]["outlier_detection"]["consecutive_errors"] == 4
    assert v2["fault"]["abort_status"] == 500 and v2["fault"]["abort_percentage"] == 20.0
    assert v2["fault"]["fault_injections"] == ["pay-v2-abort"]
    out, _ = explain(mesh, "GET", "http://pay.example.com/api/v2/x", "-f", pay_file)
    assert line(out, "Fault") == "delay 2s for 5% of requests (FaultInjection slow-main)"
    assert "circuit breaker:    max_connections 3, max_requests 7 (pay-v2-cb)" in out
    assert "fault:              abort with 500 for 20% of requests (pay-v2-abort)" in out
    # The canary route has no fault of its own: the VirtualService-wide one applies.
    doc = explain_json(mesh, "POST", "http://pay.example.com/api/v1/process", "-f", pay_file)
    assert doc["route"]["fault"]["fault_injections"] == ["pay-all"]
    assert doc["route"]["fault"]["abort_status"] == 503


def test_explain_a_host_that_names_a_service(mesh, pay_file):
    for host in ("pay-v1", "pay-v1.default.svc:8080"):
        doc = explain_json(mesh, "GET", f"http://{host}/anything", "-f", pay_file)
        assert doc["virtual_service"] is None and doc["service_host"] == "pay-v1.default"
        assert [d["endpoints"] for d in doc["route"]["destinations"]] == \
            [["127.0.0.1:18101", "127.0.0.1:18102"]]
    out, _ = explain(mesh, "GET", "/x", "-H", "Host: pay-v1", "-f", pay_file)
    assert "host pay-v1 names Service pay-v1.default" in out
    # A Host header replaces the URL's host, as with curl; "://" in a query is not a scheme.
    doc = explain_json(mesh, "GET", "http://127.0.0.1:15001/a?next=http://x/", "-H",
                       "Host: pay-v1", "-f", pay_file)
    assert doc["request"]["host"] == "pay-v1" and doc["request"]["path"] == "/a"
    assert doc["request"]["query"] == "next=http://x/"
    assert doc["service_host"] == "pay-v1.default"
    doc = explain_json(mesh, "GET", "/a?u=http://x", "-H", "Host: pay-v1", "-f", pay_file)
    assert doc["request"]["query"] == "u=http://x"


def test_explain_a_destination_without_a_service(mesh, tmp_path):
    path = tmp_path / "ghost.json"
    path.write_text(config_text([
        service("pay-v1", "127.0.0.1:18101"),
        virtual_service("pay", ["pay.example.com"], route(("pay-v1", 90), ("ghost", 10))),
    ]))
    out, _ = explain(mesh, "GET", "http://pay.example.com/", "-f", path)
    assert "ghost  weight 10%  no such Service: meshproxy answers this share with 503" in out
    doc = explain_json(mesh, "GET", "http://pay.example.com/", "-f", path)
    assert doc["route"]["destinations"][1] == {"host": "ghost", "weight": 10, "service": None}


def test_explain_reads_the_embedded_store(mesh, pay_file):
    mesh.ok("apply", "-f", pay_file)
    from_store = explain_json(mesh, "GET", "http://pay.example.com/api/v1/x")
    from_file = explain_json(mesh, "GET", "http://pay.example.com/api/v1/x", "-f", pay_file)
    assert from_store["config"]["source"].startswith("store ")
    for doc in (from_store, from_file):
        del doc["config"]
    assert from_store == from_file
    mesh.ok("delete", "vs", "pay")
    assert explain_json(mesh, "GET", "http://pay.example.com/api/v1/x",
                        expect_rc=1)["reason"] == "no_virtual_host"


def test_explain_usage_errors(mesh, pay_file):
    rc, out, _ = mesh.run("explain", "--help")
    assert rc == 0 and "meshctl explain METHOD URL" in out
    for args, text in [
        ((), "explain needs a METHOD and a URL"),
        (("GET",), "explain needs a METHOD and a URL"),
        (("GET", "/path"), "has no host"),
        (("GET", "ftp://x/y"), "only http:// and https://"),
        (("GET", "http://x/", "-H", "novalue"), "a header is written 'NAME: VALUE'"),
        (("G T", "http://x/"), 'METHOD "G T" is not an HTTP method'),
        (("GET", "http://x/a b"), "not valid HTTP/1.1 (invalid_target)"),
        (("GET", "http://x/", "-H", "a b: c"), "not valid HTTP/1.1 (invalid_header_name)"),
        (("GET", "http://x/", "-o", "yaml"), "unknown output format"),
        (("GET", "http://x/", "--from", "a", "--gateway", "b"), "cannot be used together"),
        (("GET", "http://x/", "--from", "a.b", "-n", "c"), "names namespace b, but -n says c"),
        (("GET", "http://x/", "--bogus"), "unknown flag: --bogus"),
    ]:
        rc, out, err = mesh.run("explain", *args, "-f", pay_file)
        assert rc == 2, (args, rc, out, err)
        assert text in err, (args, err)
    rc, _, err = mesh.run("explain", "GET", "http://x/", "-f", "/nonexistent.yaml")
    assert rc == 1 and "nonexistent.yaml" in err


def test_explain_refuses_invalid_files(mesh, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"apiVersion: {API}\nkind: VirtualService\nmetadata: {{name: x}}\n"
                   "spec:\n  hosts: [a]\n  http_routes:\n"
                   "    - destinations: [{host: a, weight: 50}, {host: b, weight: 40}]\n")
    rc, out, err = mesh.run("explain", "GET", "http://a/", "-f", bad)
    assert rc == 1 and out == ""
    assert "weights sum to 90, must be 100" in err


def test_explain_agrees_with_a_real_meshproxy(lab, mesh, tmp_path):
    """The route explain picks is the one meshproxy routes by, on the same documents: every
    destination here takes 100% of its route, so one request shows where it went."""
    v1, v2, v3 = lab.echos("pay-v1", "pay-v2", "other")
    docs = echo_services(v1, v2, v3) + [
        virtual_service(
            "pay", ["pay.example.com"],
            route("pay-v2", name="canary",
                  matches=[{"path": {"prefix": "/api/"}, "headers": {"x-canary": {"exact": "yes"}}},
                           {"method": "POST", "path": "/api/v1/process"}]),
            route("pay-v1", name="main", matches=[{"path": "/api/*"}]),
            route("other", name="regex", matches=[{"path": {"regex": "/v[0-9]+/.*"}}]),
        ),
    ]
    path = tmp_path / "live.json"
    path.write_text(config_text(docs))
    proxy = lab.proxy(docs)
    cases = [
        ("GET", "/api/x", {}),
        ("GET", "/api/x", {"x-canary": "yes"}),
        ("GET", "/api/x", {"X-CANARY": "yes"}),
        ("GET", "/api/x", {"x-canary": "no"}),
        ("POST", "/api/v1/process", {}),
        ("POST", "/api/v1/process?x=1", {}),
        ("GET", "/v2/a", {}),
        ("GET", "/nothing", {}),
        ("GET", "/", {}),
    ]
    for method, target, headers in cases:
        args = ["GET" if method == "GET" else method, f"http://pay.example.com{target}"]
        for k, v in headers.items():
            args += ["-H", f"{k}: {v}"]
        rc, out, err = mesh.run("explain", *args, "-f", path, "-o", "json")
        assert rc in (0, 1), err
        doc = json.loads(out)
        r = proxy.request(method, target, host="pay.example.com", headers=headers,
                          body=b"" if method == "POST" else None)
        if doc["matched"]:
            assert r.status == 200, (method, target, headers, r)
            assert r.text.strip() == doc["route"]["destinations"][0]["host"], \
                (method, target, headers, doc["route"]["name"])
        else:
            assert r.status == 404 and r.header("x-mesh-error") == "no route", r


# --- proxy-config on a static meshproxy (no meshd) ---


def table_rows(out):
    """The rows of an aligned table (header first), split on runs of 3+ spaces."""
    return [re.split(r" {3,}", ln.strip()) for ln in out.strip().splitlines() if ln.strip()]


def test_proxy_config_reads_a_static_proxy_by_admin_address(lab, mesh):
    v1, v2 = lab.echos("pay-v1", "pay-v2")
    docs = echo_services(v1, v2) + [
        virtual_service("pay", ["pay.example.com"],
                        route(("pay-v1", 90), ("pay-v2", 10), name="main",
                              matches=[{"path": "/api/*"}])),
        circuit_breaker("pay-v2-cb", "pay-v2", max_requests=7,
                        detection={"consecutive_errors": 4}),
        fault_injection("slow", "pay", delay="2s", delay_percentage=5),
    ]
    proxy = lab.proxy(docs)
    admin = f"127.0.0.1:{proxy.admin_port}"

    out = mesh.ok("proxy-config", "--admin", admin, "routes")
    rows = table_rows(out)
    assert rows[0] == ["VIRTUAL SERVICE", "HOSTS", "ROUTE", "MATCH", "DESTINATIONS", "TIMEOUT",
                       "RETRIES", "FAULT"]
    main = [r for r in rows if r[2] == "main"]
    assert main == [["pay.default", "pay.example.com", "main", "path glob /api/*",
                     "pay-v1 90%, pay-v2 10%", "15s", "-", "delay 2s@5%"]], out
    # The Services named directly by the Host have their own routes.
    assert any(r[0] == "(service pay-v1.default)" and r[2] == "default" for r in rows), out

    rows = table_rows(mesh.ok("proxy-config", "--admin", admin, "clusters"))
    assert rows[0][:5] == ["SERVICE", "DIRECTION", "ENDPOINTS", "LB", "CIRCUIT BREAKER"]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["pay-v2.default"][4] == "req=7"
    assert by_name["pay-v2.default"][5].startswith("4 errors, eject 30s")
    assert by_name["pay-v1.default"][4] == "-" and by_name["pay-v1.default"][5] == "-"

    rows = table_rows(mesh.ok("proxy-config", "--admin", admin, "endpoints"))
    assert rows[0] == ["ENDPOINT", "SERVICE", "DIRECTION", "HEALTH", "LABELS", "ACTIVE REQUESTS",
                       "TIMES EJECTED"]
    assert sorted((r[0], r[1], r[3]) for r in rows[1:]) == sorted(
        [(v1.addr, "pay-v1.default", "HEALTHY"), (v2.addr, "pay-v2.default", "HEALTHY")])

    out = mesh.ok("proxy-config", "--admin", f"http://{admin}", "all")
    assert out.startswith("Proxy:    - (static)\nConfig:   version 1 from file ")
    assert "\nRoutes:\n" in out and "\nClusters:\n" in out and "\nEndpoints:\n" in out

    # JSON: exactly the part of the proxy's own dump.
    dump = json.loads(proxy.admin("/config_dump?format=json").text)
    assert json.loads(mesh.ok("proxy-config", "--admin", admin, "routes", "-o", "json")) == \
        dump["routes"]
    eps = json.loads(mesh.ok("proxy-config", "--admin", admin, "endpoints", "-o", "json"))
    assert sorted(e["address"] for e in eps) == sorted([v1.addr, v2.addr])
    whole = json.loads(mesh.ok("proxy-config", "--admin", admin, "all", "-o", "json"))
    assert whole["mode"] == "static" and whole["routes"] == dump["routes"]

    # The config it shows is the one in use: a reload shows up.
    docs[2]["spec"]["http_routes"][0]["destinations"] = [{"host": "pay-v1", "weight": 50},
                                                         {"host": "pay-v2", "weight": 50}]
    proxy.write_config(docs)
    proxy.signal(signal.SIGHUP)

    def reloaded():
        rows = table_rows(mesh.ok("proxy-config", "--admin", admin, "routes"))
        return any(r[2] == "main" and r[4] == "pay-v1 50%, pay-v2 50%" for r in rows)

    wait_until(reloaded, 10, what="proxy-config to show the reloaded weights")


def test_proxy_config_errors(mesh):
    port = free_ports(1)[0]
    rc, _, err = mesh.run("proxy-config", "--admin", f"127.0.0.1:{port}", "routes")
    assert rc == 1 and f"cannot reach the admin listener at http://127.0.0.1:{port}" in err
    for args, text in [
        (("--admin", "127.0.0.1:1"), "give only what to show"),
        (("--admin", "127.0.0.1:1", "listeners"), 'unknown config "listeners"'),
        (("some-proxy",), "needs a PROXY and what to show"),
        (("--admin", "127.0.0.1:1", "routes", "-o", "yaml"), "unknown output format"),
    ]:
        rc, _, err = mesh.run("proxy-config", *args)
        assert rc == 2 and text in err, (args, rc, err)
    rc, out, _ = mesh.run("proxy-config", "--help")
    assert rc == 0 and "meshctl proxy-config PROXY routes|clusters|endpoints|all" in out


# --- check --pre ---


def check_lines(out):
    """{check text: mark} of a checklist."""
    lines = {}
    for ln in out.splitlines():
        for mark in ("[ok]", "[warn]", "[FAIL]"):
            if ln.startswith(mark):
                lines[ln[len(mark):].strip()] = mark
    return lines


def test_check_pre_checks_this_machine(mesh, tmp_path):
    data_dir = tmp_path / "new" / "meshd-data"
    # Hold one of the default ports, so that its check must fail whatever else runs here.
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        held.bind(("127.0.0.1", 15006))
        held.listen(1)
    except OSError:
        pass  # someone else holds it: the check fails all the same
    try:
        rc, out, err = mesh.run("check", "--pre", "--data-dir", data_dir)
    finally:
        held.close()
    lines = check_lines(out)
    assert rc == 1, (out, err)
    assert lines["port 15006 (meshproxy inbound) is in use: stop what listens there or give "
                 "another address"] == "[FAIL]", out
    assert lines[f"data directory {data_dir} is writable (created for the check, then removed)"] \
        == "[ok]", out
    assert lines[f"SQLite store works in {data_dir} (WAL, written and read back)"] == "[ok]", out
    assert not data_dir.exists()  # nothing left behind
    assert lines["kernel: epoll"] == "[ok]"
    assert lines["kernel: SO_REUSEPORT (one listener per worker)"] == "[ok]"
    bin_dir = mesh.meshctl.parent
    assert lines[f"meshd (control plane): {bin_dir / 'meshd'}"] == "[ok]", out
    assert lines[f"meshproxy (sidecar and gateway proxy): {bin_dir / 'meshproxy'}"] == "[ok]", out
    assert re.fullmatch(r"\d+ checks? failed\.( \(\d+ warnings?\))?", out.splitlines()[-1]), out

    # An existing data directory is used as it is and left as it was.
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep").write_text("x")
    _, out, _ = mesh.run("check", "--pre", "--data-dir", existing)
    assert check_lines(out)[f"data directory {existing} is writable"] == "[ok]", out
    assert sorted(p.name for p in existing.iterdir()) == ["keep"]


def test_check_pre_fails_on_a_data_dir_that_cannot_be(mesh, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    rc, out, _ = mesh.run("check", "--pre", "--data-dir", a_file)
    assert rc == 1
    assert check_lines(out)[f"data directory {a_file}: not a directory"] == "[FAIL]", out
    rc, out, _ = mesh.run("check", "--pre", "--data-dir", a_file / "sub")
    assert rc == 1
    assert check_lines(out)[f"data directory {a_file / 'sub'}: cannot create it: Not a directory"] \
        == "[FAIL]", out


def test_check_usage(mesh):
    rc, out, _ = mesh.run("check", "--help")
    assert rc == 0 and "meshctl check --pre [--data-dir DIR]" in out
    rc, _, err = mesh.run("check", "--data-dir", "x")
    assert rc == 2 and "--data-dir goes with --pre" in err
    rc, _, err = mesh.run("check", "extra")
    assert rc == 2 and "check takes no arguments" in err


# --- the live mesh: meshd, sidecars and a gateway ---


def server_run(mesh, live, *args):
    """meshctl --server MESHD ARGS (reads need no token from loopback)."""
    return mesh.run("--server", live.meshd.url, *args, store=False)


def server_ok(mesh, live, *args):
    rc, out, err = server_run(mesh, live, *args)
    assert rc == 0, f"meshctl {args} exited {rc}:\n{out}\n{err}"
    return out


def start_live_mesh(live, ttl="30s"):
    """meshd (a long heartbeat TTL, so that a frozen proxy stays registered), payment-v1 and
    orders behind sidecars, the seed's external-gateway, and the seed's examples applied."""
    live.start_meshd(["--heartbeat-ttl", ttl])
    pay = live.sidecar("payment-v1", live.echo("payment-v1"), version="v1")
    orders = live.sidecar("orders", live.echo("orders"))
    gw = live.gateway("external-gateway")
    live.meshd.apply_file(EXAMPLES / "services.yaml")
    for f in sorted(EXAMPLES.glob("*.yaml")):
        live.meshd.apply_file(f)
    return pay, orders, gw


def statuses(mesh, live):
    return {p["id"]: p for p in json.loads(server_ok(mesh, live, "proxy-status", "-o",
                                                        "json"))["items"]}


def wait_synced(mesh, live, ids):

    def synced():
        st = statuses(mesh, live)
        return set(st) == set(ids) and all(p["status"] == "SYNCED" for p in st.values())

    wait_until(synced, 15, interval=0.05, what=f"{sorted(ids)} registered and SYNCED")


def test_proxy_status_and_check_on_a_live_mesh(mesh, live):
    pay, orders, gw = start_live_mesh(live)
    ids = {pay.id, orders.id, gw.id}
    wait_synced(mesh, live, ids)

    rows = table_rows(server_ok(mesh, live, "proxy-status"))
    assert rows[0] == ["ID", "ROLE", "SERVICE/GATEWAY", "NAMESPACE", "ADDRESS", "ACKED", "LATEST",
                       "STATUS", "LAST HEARTBEAT"]
    by_id = {r[0]: r for r in rows[1:]}
    assert set(by_id) == ids
    assert by_id[pay.id][1:5] == ["sidecar", "payment-v1", "default", pay.inbound]
    assert by_id[orders.id][1:5] == ["sidecar", "orders", "default", orders.inbound]
    assert by_id[gw.id][1:5] == ["gateway", "external-gateway", "default", "-"]
    for r in by_id.values():
        assert re.fullmatch(r"[0-9a-f]{16}", r[5]) and r[5] == r[6] and r[7] == "SYNCED", r
        assert re.fullmatch(r"[0-3]s ago", r[8]), r  # heartbeats every second
    st = statuses(mesh, live)
    assert st[pay.id]["labels"] == {"version": "v1"}
    assert all(0 <= p["heartbeat_age_ms"] < 4000 for p in st.values())
    # The version the sidecar says it serves is the one meshd shows as acknowledged.
    assert pay.dump()["config"]["version"] == st[pay.id]["acked_version"]

    one = json.loads(server_ok(mesh, live, "proxy-status", gw.id, "-o", "json"))["items"]
    assert [p["id"] for p in one] == [gw.id]
    rc, _, err = server_run(mesh, live, "proxy-status", "nosuch-proxy")
    assert rc == 1 and 'no proxy "nosuch-proxy" is registered with meshd' in err

    wait_until(lambda: all(p.dump()["identity"]["spiffe_id"] for p in (pay, orders, gw)), 10,
               what="every proxy's workload certificate")
    rc, out, err = server_run(mesh, live, "check")
    lines = check_lines(out)
    assert rc == 0, (out, err)
    assert lines[f"meshd reachable at {live.meshd.url} (meshd 0.1.0, answered in "
                 + out.split("answered in ")[1].split(")")[0] + ")"] == "[ok]"
    assert any(k.startswith("store healthy (store version ") and v == "[ok]"
               for k, v in lines.items()), out
    assert lines["every proxy synced: 3 of 3"] == "[ok]", out
    assert any(k.startswith("workload certificates: 3 proxies with a valid one") and v == "[ok]"
               for k, v in lines.items()), out
    assert any(k.startswith("mTLS handshakes: none failed") and v == "[ok]"
               for k, v in lines.items()), out
    assert any(k.startswith("clock skew: ") and v == "[ok]" for k, v in lines.items()), out
    assert out.rstrip().endswith("All checks passed.")

    # A frozen sidecar cannot acknowledge a change that concerns it: STALE, and check fails.
    before = st[orders.id]["acked_version"]
    orders.signal(signal.SIGSTOP)
    try:
        live.meshd.apply([vs("orders-route", ["orders.example.com"], route("orders"))])
        wait_until(lambda: statuses(mesh, live)[orders.id]["status"] == "STALE", 10,
                   what="the frozen sidecar to show STALE")
        st = statuses(mesh, live)
        assert st[orders.id]["acked_version"] == before != st[orders.id]["latest_version"]
        row = {r[0]: r for r in table_rows(server_ok(mesh, live, "proxy-status"))[1:]}[orders.id]
        assert (row[5], row[7]) == (before, "STALE")
        rc, out, _ = server_run(mesh, live, "check")
        assert rc == 1, out
        assert check_lines(out)[
            f"every proxy synced: 1 of 3 stale: {orders.id} (acked {before}, latest "
            f"{st[orders.id]['latest_version']})"] == "[FAIL]", out
        # Its admin listener cannot answer either: a warning, not a failure.
        assert any(k.startswith(f"proxies' admin listeners: cannot read {orders.id}")
                   and v == "[warn]" for k, v in check_lines(out).items()), out
        assert out.rstrip().endswith("1 check failed (1 warning).")
    finally:
        orders.signal(signal.SIGCONT)
    wait_synced(mesh, live, ids)
    assert server_run(mesh, live, "check")[0] == 0

    # meshd gone: check and proxy-status say so, and fail.
    live.kill_meshd()
    rc, out, _ = server_run(mesh, live, "check")
    assert rc == 1
    assert check_lines(out)[f"meshd reachable: cannot reach meshd at {live.meshd.url}: "
                            "connection refused"] == "[FAIL]", out
    rc, _, err = server_run(mesh, live, "proxy-status")
    assert rc == 1 and "cannot reach meshd" in err and "proxy-status needs meshd" in err


def test_proxy_status_needs_meshd(mesh):
    rc, _, err = mesh.run("proxy-status")  # with --store: no meshd to ask
    assert rc == 2 and "proxy-status needs meshd (--server URL)" in err
    url = f"http://127.0.0.1:{free_ports(1)[0]}"
    rc, _, err = mesh.run("--server", url, "proxy-status", store=False)
    assert rc == 1 and f"cannot reach meshd at {url}: connection refused" in err
    rc, out, _ = mesh.run("proxy-status", "--help")
    assert rc == 0 and "meshctl proxy-status [PROXY] [-o table|json]" in out


def test_proxy_config_through_meshd(mesh, live):
    pay, orders, gw = start_live_mesh(live)
    wait_synced(mesh, live, {pay.id, orders.id, gw.id})

    # By id, by service name, by gateway name: the same dump the proxy's admin listener gives.
    for name, proxy in ((pay.id, pay), ("payment-v1", pay), ("external-gateway", gw)):
        got = json.loads(server_ok(mesh, live, "proxy-config", name, "all", "-o", "json"))
        want = proxy.dump()
        for doc in (got, want):  # in-flight counts and ages may move between the two reads
            for c in doc["clusters"]:
                c.pop("active", None)
            for e in doc["endpoints"]:
                e.pop("active_requests", None)
        assert got == want, name

    # orders' sidecar routes to payment-v1's registered inbound address, labelled version=v1
    # and as a sidecar (calls to it may use mTLS),
    # besides the static endpoint of examples/services.yaml.
    rows = table_rows(server_ok(mesh, live, "proxy-config", orders.id, "endpoints"))
    pay_eps = {(r[0], r[4]) for r in rows[1:] if r[1] == "payment-v1.default"}
    assert pay_eps == {("127.0.0.1:18081", "-"), (pay.inbound, "version=v1,mesh.clusterdb.io/sidecar=true")}, rows
    inbound = [r for r in rows[1:] if r[2] == "inbound"]
    assert inbound and inbound[0][1] == "inbound|orders.default", rows

    # The gateway serves the seed's 90/10 route; sidecars do not get it.
    rows = table_rows(server_ok(mesh, live, "proxy-config", "external-gateway", "routes"))
    assert [r[4] for r in rows[1:] if r[0] == "payment-service.default"] == \
        ["payment-v1 90%, payment-v2 10%"]
    rows = table_rows(server_ok(mesh, live, "proxy-config", orders.id, "routes"))
    assert not [r for r in rows[1:] if r[0] == "payment-service.default"]
    out = server_ok(mesh, live, "proxy-config", gw.id, "all")
    assert out.startswith(f"Proxy:    {gw.id} (gateway external-gateway)\n"
                          f"Config:   version {gw.dump()['config']['version']} from meshd\n")

    rc, _, err = server_run(mesh, live, "proxy-config", "nosuch", "routes")
    assert rc == 1 and 'no proxy "nosuch" is registered with meshd' in err

    # Two sidecars of one service: the service name no longer picks one.
    pay2 = live.sidecar("payment-v1", live.echo("payment-v1b"), name="sidecar-payment-v1b")
    wait_synced(mesh, live, {pay.id, pay2.id, orders.id, gw.id})
    rc, _, err = server_run(mesh, live, "proxy-config", "payment-v1", "routes")
    assert rc == 1 and '"payment-v1" names 2 proxies' in err and pay.id in err and pay2.id in err


def test_explain_through_meshd_uses_the_config_meshd_serves(mesh, live):
    pay, orders, gw = start_live_mesh(live)
    wait_synced(mesh, live, {pay.id, orders.id, gw.id})
    version = gw.dump()["config"]["version"]

    doc = json.loads(server_ok(mesh, live, "explain", "GET",
                               "http://payment.example.com/api/v1/pay", "--gateway",
                               "external-gateway", "-o", "json"))
    assert doc["config"] == {"source": f"meshd at {live.meshd.url}", "proxy": gw.id,
                             "version": version}
    v1, v2 = doc["route"]["destinations"]
    assert (v1["weight"], v2["weight"]) == (90, 10)
    # The registered sidecar is an endpoint of payment-v1, besides the static one.
    assert sorted(v1["endpoints"]) == sorted(["127.0.0.1:18081", pay.inbound])

    # The sidecar of orders is registered: its own config. A service without a sidecar: meshd's
    # rules applied here, with the registered endpoints all the same.
    doc = json.loads(server_ok(mesh, live, "explain", "GET", "http://payment-v1/x", "--from",
                               "orders", "-o", "json"))
    assert doc["config"]["proxy"] == orders.id
    assert sorted(doc["route"]["destinations"][0]["endpoints"]) == \
        sorted(["127.0.0.1:18081", pay.inbound])
    out = server_ok(mesh, live, "explain", "GET", "http://payment-v1/x", "--from", "web-v1")
    assert "no such proxy is registered, so compiled here by meshd's rules" in out
    assert pay.inbound in out

    # What explain says is what the gateway does: web.example.com is for sidecars only.
    rc, out, _ = server_run(mesh, live, "explain", "GET", "http://web.example.com/api/v1",
                            "--gateway", "external-gateway")
    assert rc == 1 and "it is for sidecars only" in out
    assert request(gw.port, "GET", "/api/v1", "web.example.com").status == 404


def test_check_reports_failed_tls_handshakes_with_cause_and_fix(mesh, live):
    """The seed's "TLS handshake failed": a plaintext client on payment-v1's strict inbound port
    (examples/payment-security.yaml) shows up in check as a warning with its cause and fix."""
    pay, orders, gw = start_live_mesh(live)
    wait_synced(mesh, live, {pay.id, orders.id, gw.id})
    wait_until(lambda: all(p.dump()["identity"]["spiffe_id"] for p in (pay, orders, gw)), 10,
               what="every proxy's workload certificate")
    host, port = pay.inbound.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: payment-v1\r\n\r\n")
        try:  # closed unanswered (a reset: the request was never read)
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass

    def failures():
        stats = json.loads(pay.admin("/stats").body)["mtls_handshakes"]
        return [r for r in stats if r["result"] == "plaintext" and r["value"] > 0]

    wait_until(failures, 5, what="the plaintext handshake failure counted")
    rc, out, _ = server_run(mesh, live, "check")
    assert rc == 0, out  # a warning: the mesh works, a client misbehaved
    warn = f"TLS handshake failed: {pay.id}, inbound, 1 time since it started: plaintext"
    assert check_lines(out)[warn] == "[warn]", out
    after = out.split(warn, 1)[1].splitlines()
    assert after[1].strip() == "Cause: a client sent plaintext to a strict mTLS port", out
    assert after[2].strip().startswith("Solution: call through the sidecar's outbound"), out
    assert out.rstrip().endswith("All checks passed (1 warning).")


def test_check_pre_finds_missing_binaries(mesh, tmp_path):
    alone = tmp_path / "bin"
    alone.mkdir()
    (alone / "meshctl").write_bytes(mesh.meshctl.read_bytes())
    (alone / "meshctl").chmod(0o755)
    (alone / "meshproxy").write_text("#!/bin/sh\n")  # there, but not executable
    (alone / "meshproxy").chmod(0o644)
    proc = __import__("subprocess").run(
        [alone / "meshctl", "check", "--pre", "--data-dir", tmp_path / "d"],
        capture_output=True, text=True, timeout=30)
    lines = check_lines(proc.stdout)
    assert proc.returncode == 1
    assert lines[f"meshd (control plane): {alone / 'meshd'}: No such file or directory"] == \
        "[FAIL]", proc.stdout
    assert lines[f"meshproxy (sidecar and gateway proxy): {alone / 'meshproxy'} is not "
                 "executable"] == "[FAIL]", proc.stdout
    # The demo upstream is optional: a warning only.
    assert lines[f"mesh-echo (demo upstream): {alone / 'mesh-echo'}: No such file or directory"] \
        == "[warn]", proc.stdout


def test_debug_commands_send_the_token_when_reads_need_it(mesh, live):
    live.start_meshd(["--auth-reads"])
    url, token = live.meshd.url, live.meshd.token_path
    for args in (("proxy-status",), ("check",), ("proxy-config", "x", "routes"),
                 ("explain", "GET", "http://x/")):
        rc, out, err = mesh.run("--server", url, *args, store=False)
        assert rc == 1, (args, out, err)
        assert "401" in out + err and "token" in out + err, (args, out, err)
        assert "needs meshd" not in out + err, (args, out, err)  # it is there: it wants a token
    rc, out, _ = mesh.run("--server", url, "check", store=False)
    assert [v for k, v in check_lines(out).items()
            if k.startswith(f"meshd answers: meshd answered GET {url}/v1/health with 401: ")] == \
        ["[FAIL]"], out
    rc, out, err = mesh.run("--server", url, "--token", token, "check", store=False)
    assert rc == 0, out + err
    rc, _, err = mesh.run("--server", url, "--token", token, "proxy-status", store=False)
    assert rc == 0 and "No proxies are registered with meshd at " + url in err
    rc, out, _ = mesh.run("--server", url, "--token", token, "explain", "GET", "http://x/",
                          store=False)
    assert rc == 1 and "no VirtualService or Service serves host x" in out


@pytest.mark.parametrize("cmd", ["explain", "proxy-status", "proxy-config", "check"])
def test_tools_help(mesh, cmd):
    assert re.search(rf"^  {cmd}\s+\S.+$", mesh.ok("help"), re.M)
    text = mesh.ok("help", cmd)
    assert f"  meshctl {cmd}" in text and "Examples:" in text and "Flags:" in text
    assert mesh.ok(cmd, "--help") == text == mesh.ok(cmd, "-h")


def test_proxy_config_shows_an_ejected_endpoint(lab, mesh):
    good = lab.echo("pay-v1")
    dead = f"127.0.0.1:{free_ports(1)[0]}"  # nothing listens: every try there fails
    proxy = lab.proxy([
        service("pay-v1", good.addr, dead),
        circuit_breaker("pay-cb", "pay-v1",
                        detection={"consecutive_errors": 1, "base_ejection_time": "1m"}),
    ])
    admin = f"127.0.0.1:{proxy.admin_port}"

    def ejected():
        proxy.request(host="pay-v1")
        rows = table_rows(mesh.ok("proxy-config", "--admin", admin, "endpoints"))
        return {r[0]: (r[3], r[6]) for r in rows[1:]}.get(dead) == ("EJECTED", "1")

    wait_until(ejected, 10, what="the dead endpoint to show EJECTED")
    rows = table_rows(mesh.ok("proxy-config", "--admin", admin, "endpoints"))
    assert {r[0]: r[3] for r in rows[1:]}[good.addr] == "HEALTHY"
