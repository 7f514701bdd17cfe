# SPDX-License-Identifier: Apache-2.0
"""Per-service and per-route policies: the endpoint picker a Service selects, and a
FaultInjection limited to one named route of a VirtualService."""
from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    fault_injection,
    lab,
    proxy_binaries,
    route,
    service,
    virtual_service,
)

HOST = "payment.example.com"


def test_round_robin_service_alternates_its_endpoints(lab):
    a, b = lab.echo("a"), lab.echo("b")
    svc = service("payment", a.addr, b.addr)
    svc["spec"]["load_balancer"] = "round_robin"
    proxy = lab.proxy([svc, virtual_service("payment", [HOST], route("payment"))], workers=1)
    c = proxy.client(HOST)
    names = [c.request(path="/x").text.strip() for _ in range(10)]
    c.close()
    assert sorted(set(names)) == ["a", "b"]
    assert all(names[i] != names[i + 1] for i in range(len(names) - 1)), names


def test_random_service_reaches_every_endpoint(lab):
    a, b = lab.echo("a"), lab.echo("b")
    svc = service("payment", a.addr, b.addr)
    svc["spec"]["load_balancer"] = "random"
    proxy = lab.proxy([svc, virtual_service("payment", [HOST], route("payment"))])
    c = proxy.client(HOST)
    names = {c.request(path="/x").text.strip() for _ in range(60)}
    c.close()
    assert names == {"a", "b"}


def test_fault_on_a_named_route_leaves_the_other_routes_alone(lab):
    up = lab.echo("payment")
    proxy = lab.proxy([
        service("payment", up.addr),
        virtual_service("payment-service", [HOST],
                        route("payment", name="checkout", matches=[{"path": "/checkout/*"}]),
                        route("payment", name="browse", matches=[{"path": "/browse/*"}])),
        fault_injection("checkout-fault", "payment-service", route="checkout",
                        abort={"http_status": 503}),
    ])
    c = proxy.client(HOST)
    r = c.request(path="/checkout/cart")
    assert r.status == 503 and r.header("x-mesh-fault") == "abort", r
    assert c.request(path="/browse/items").status == 200
    c.close()
