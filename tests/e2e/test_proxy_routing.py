# SPDX-License-Identifier: Apache-2.0
"""meshproxy routing, end to end: by Host (exact, wildcard, a Service named directly, port
ignored), no route, path / header / method matches in declaration order, and weighted splits
that are exact in aggregate across workers."""
import collections
import threading

from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    echo_services,
    lab,
    proxy_binaries,
    route,
    run_parallel,
    service,
    virtual_service,
)


def served_by(proxy, host, path="/", **kw):
    r = proxy.request(host=host, path=path, **kw)
    assert r.status == 200, (host, path, r)
    return r.text.strip()


def assert_no_route(r):
    assert r.status == 404, r
    assert r.header("x-mesh-error") == "no route", r


def test_routes_by_exact_host(lab):
    a, b = lab.echos("payment-v1", "shop-v1")
    proxy = lab.proxy(echo_services(a, b) + [
        virtual_service("payment", ["payment.example.com"], route("payment-v1")),
        virtual_service("shop", ["shop.example.com"], route("shop-v1")),
    ])
    assert served_by(proxy, "payment.example.com") == "payment-v1"
    assert served_by(proxy, "shop.example.com") == "shop-v1"
    assert served_by(proxy, "PAYMENT.Example.COM") == "payment-v1"  # hosts are case-insensitive


def test_routes_by_wildcard_host(lab):
    a, b = lab.echos("payment-v1", "any-v1")
    proxy = lab.proxy(echo_services(a, b) + [
        virtual_service("payment", ["payment.example.com"], route("payment-v1")),
        virtual_service("wild", ["*.example.com"], route("any-v1")),
    ])
    assert served_by(proxy, "shop.example.com") == "any-v1"
    assert served_by(proxy, "a.b.example.com") == "any-v1"
    assert served_by(proxy, "payment.example.com") == "payment-v1"  # exact beats wildcard
    assert_no_route(proxy.request(host="example.com"))  # the wildcard needs a subdomain
    assert_no_route(proxy.request(host="shop.example.org"))


def test_routes_to_a_service_named_directly(lab):
    a = lab.echo("payment-v1")
    proxy = lab.proxy(echo_services(a))
    for host in ("payment-v1", "payment-v1.default", "payment-v1.default.svc"):
        assert served_by(proxy, host) == "payment-v1", host
    assert_no_route(proxy.request(host="payment-v1.other"))


def test_port_in_host_is_ignored(lab):
    a = lab.echo("payment-v1")
    proxy = lab.proxy(echo_services(a) + [
        virtual_service("payment", ["payment.example.com"], route("payment-v1")),
    ])
    assert served_by(proxy, "payment.example.com:8080") == "payment-v1"
    assert served_by(proxy, f"payment.example.com:{proxy.port}") == "payment-v1"
    assert served_by(proxy, "payment-v1.default:80") == "payment-v1"


def test_unknown_host_is_404_no_route(lab):
    a = lab.echo("payment-v1")
    proxy = lab.proxy(echo_services(a) + [
        virtual_service("payment", ["payment.example.com"], route("payment-v1")),
    ])
    assert_no_route(proxy.request(host="nowhere.example.com"))


def test_no_matching_route_is_404_no_route(lab):
    a = lab.echo("payment-v1")
    proxy = lab.proxy(echo_services(a) + [
        virtual_service("payment", ["payment.example.com"],
                        route("payment-v1", matches=[{"path": "/only"}])),
    ])
    assert served_by(proxy, "payment.example.com", "/only") == "payment-v1"
    assert_no_route(proxy.request(host="payment.example.com", path="/other"))


def path_proxy(lab, match):
    """A VirtualService whose first route takes `match` to "hit"; everything else goes to
    "miss"."""
    hit, miss = lab.echos("hit", "miss")
    return lab.proxy(echo_services(hit, miss) + [
        virtual_service("paths", ["paths.example.com"],
                        route("hit", matches=[match]), route("miss")),
    ])


def test_path_exact_match(lab):
    proxy = path_proxy(lab, {"path": {"exact": "/pay"}})
    assert served_by(proxy, "paths.example.com", "/pay") == "hit"
    assert served_by(proxy, "paths.example.com", "/pay?amount=3") == "hit"  # query ignored
    assert served_by(proxy, "paths.example.com", "/pay/more") == "miss"
    assert served_by(proxy, "paths.example.com", "/pa") == "miss"


def test_path_plain_string_is_exact(lab):
    proxy = path_proxy(lab, {"path": "/pay"})
    assert served_by(proxy, "paths.example.com", "/pay") == "hit"
    assert served_by(proxy, "paths.example.com", "/payx") == "miss"


def test_path_prefix_match(lab):
    proxy = path_proxy(lab, {"path": {"prefix": "/api/"}})
    assert served_by(proxy, "paths.example.com", "/api/") == "hit"
    assert served_by(proxy, "paths.example.com", "/api/v1/pay") == "hit"
    assert served_by(proxy, "paths.example.com", "/api") == "miss"
    assert served_by(proxy, "paths.example.com", "/apix/") == "miss"


def test_path_glob_match(lab):
    proxy = path_proxy(lab, {"path": "/api/v1/*"})
    assert served_by(proxy, "paths.example.com", "/api/v1/pay") == "hit"
    assert served_by(proxy, "paths.example.com", "/api/v1/pay/refund") == "hit"
    assert served_by(proxy, "paths.example.com", "/api/v2/pay") == "miss"
    assert served_by(proxy, "paths.example.com", "/x/api/v1/pay") == "miss"


def test_path_regex_match(lab):
    proxy = path_proxy(lab, {"path": {"regex": "^/v[0-9]+/items$"}})
    assert served_by(proxy, "paths.example.com", "/v1/items") == "hit"
    assert served_by(proxy, "paths.example.com", "/v42/items") == "hit"
    assert served_by(proxy, "paths.example.com", "/vx/items") == "miss"
    assert served_by(proxy, "paths.example.com", "/v1/items/3") == "miss"


def test_header_exact_match(lab):
    proxy = path_proxy(lab, {"headers": {"x-tier": "gold"}})
    assert served_by(proxy, "paths.example.com", headers={"x-tier": "gold"}) == "hit"
    assert served_by(proxy, "paths.example.com", headers={"X-Tier": "gold"}) == "hit"
    assert served_by(proxy, "paths.example.com", headers={"x-tier": "golden"}) == "miss"
    assert served_by(proxy, "paths.example.com") == "miss"


def test_header_prefix_match(lab):
    proxy = path_proxy(lab, {"headers": {"user-agent": {"prefix": "mobile/"}}})
    assert served_by(proxy, "paths.example.com", headers={"user-agent": "mobile/2.1"}) == "hit"
    assert served_by(proxy, "paths.example.com", headers={"user-agent": "desktop/1"}) == "miss"


def test_header_regex_match(lab):
    proxy = path_proxy(lab, {"headers": {"x-user": {"regex": "^[0-9]+$"}}})
    assert served_by(proxy, "paths.example.com", headers={"x-user": "12345"}) == "hit"
    assert served_by(proxy, "paths.example.com", headers={"x-user": "12a45"}) == "miss"


def test_header_present_match(lab):
    proxy = path_proxy(lab, {"headers": {"x-debug": {"present": True}}})
    assert served_by(proxy, "paths.example.com", headers={"x-debug": "anything"}) == "hit"
    assert served_by(proxy, "paths.example.com", headers={"x-other": "1"}) == "miss"


def test_method_match(lab):
    proxy = path_proxy(lab, {"method": "POST"})
    assert served_by(proxy, "paths.example.com", method="POST", body=b"x") == "hit"
    assert served_by(proxy, "paths.example.com", method="GET") == "miss"
    assert served_by(proxy, "paths.example.com", method="PUT", body=b"x") == "miss"


def test_all_conditions_of_one_match_must_hold(lab):
    proxy = path_proxy(lab, {"path": "/api/*", "method": "GET", "headers": {"x-tier": "gold"}})
    assert served_by(proxy, "paths.example.com", "/api/a", headers={"x-tier": "gold"}) == "hit"
    assert served_by(proxy, "paths.example.com", "/api/a") == "miss"
    assert served_by(proxy, "paths.example.com", "/web/a", headers={"x-tier": "gold"}) == "miss"


def test_any_match_entry_of_a_route_suffices(lab):
    hit, miss = lab.echos("hit", "miss")
    proxy = lab.proxy(echo_services(hit, miss) + [
        virtual_service("paths", ["paths.example.com"],
                        route("hit", matches=[{"path": "/a"}, {"path": "/b"}]), route("miss")),
    ])
    assert served_by(proxy, "paths.example.com", "/a") == "hit"
    assert served_by(proxy, "paths.example.com", "/b") == "hit"
    assert served_by(proxy, "paths.example.com", "/c") == "miss"


def test_first_matching_route_wins(lab):
    first, second, rest = lab.echos("first", "second", "rest")
    proxy = lab.proxy(echo_services(first, second, rest) + [
        virtual_service("order", ["order.example.com"],
                        route("first", matches=[{"path": {"prefix": "/api/"}}]),
                        route("second", matches=[{"path": "/api/v1/*"}]),
                        route("rest")),
    ])
    # /api/v1/pay matches both of the first two routes: the first declared wins.
    assert served_by(proxy, "order.example.com", "/api/v1/pay") == "first"
    assert served_by(proxy, "order.example.com", "/other") == "rest"


def test_weighted_split_is_exact_in_aggregate_across_workers(lab):
    v1, v2 = lab.echos("payment-v1", "payment-v2")
    proxy = lab.proxy(echo_services(v1, v2) + [
        virtual_service("payment", ["payment.example.com"],
                        route(("payment-v1", 90), ("payment-v2", 10),
                              matches=[{"path": "/api/v1/*"}])),
    ], workers=2)
    # Many client connections, so that both workers' listeners take a share.
    connections, per_connection = 20, 50
    counts = collections.Counter()
    lock = threading.Lock()

    def load(i):
        c = proxy.client("payment.example.com")
        try:
            local = collections.Counter(
                c.request(path=f"/api/v1/pay/{i}").text.strip() for _ in range(per_connection))
        finally:
            c.close()
        with lock:
            counts.update(local)
        return None

    errors = [r for r in run_parallel(load, connections) if r is not None]
    assert not errors, errors
    total = connections * per_connection
    assert sum(counts.values()) == total, counts
    assert set(counts) == {"payment-v1", "payment-v2"}, counts
    assert abs(counts["payment-v1"] - 900) <= 10, counts  # the bound: +-1%
    # Smooth weighted round robin is exact in each worker to within one pick, so the aggregate
    # is off by at most one per worker; a random pick at 90/10 would miss this by ~10.
    assert abs(counts["payment-v2"] - 100) <= 2, counts


def test_weight_zero_destination_gets_nothing(lab):
    v1, v2 = lab.echos("payment-v1", "payment-v2")
    proxy = lab.proxy(echo_services(v1, v2) + [
        virtual_service("payment", ["payment.example.com"],
                        route(("payment-v1", 100), ("payment-v2", 0))),
    ])
    c = proxy.client("payment.example.com")
    assert {c.request().text.strip() for _ in range(50)} == {"payment-v1"}
    c.close()


def test_service_in_another_namespace_is_named_with_it(lab):
    a = lab.echo("ledger")
    proxy = lab.proxy([service("ledger", a.addr, namespace="finance")])
    assert served_by(proxy, "ledger.finance") == "ledger"
    assert served_by(proxy, "ledger.finance.svc") == "ledger"
