# SPDX-License-Identifier: Apache-2.0
"""Distributed tracing, end to end (docs/tracing.md): real meshd, gateway and sidecars, mesh-echo
and a small Python app that calls on, and a test OTLP collector (a Python HTTP server on
loopback that records every POST body).

Covered: a request through gateway -> orders -> payment is one trace, each hop a span whose
parent is the hop before (the orders sidecar records its inbound and its outbound leg, as Envoy
does, so the three services give four spans); an incoming traceparent or B3 context is continued
(same trace id, the caller's span as parent) and tracestate passes unchanged; sampling at 10%
over 1,000 requests lands within 3 points, and the sidecars follow the gateway's decision; an
incoming sampled flag wins over the rate both ways; a dead collector costs no request and its
spans are counted as dropped, a hanging one neither, and both recover or shut down cleanly;
with tracing off the trace headers pass untouched, and a reload turns it on.
"""
import contextlib
import http.client
import http.server
import json
import secrets
import socket
import threading

from conftest import SAN
from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    API,
    Client,
    Metrics,
    echo_services,
    free_ports,
    lab,
    proxy_binaries,
    request,
    route,
    service,
    virtual_service,
    wait_until,
)
from test_mesh_live import (  # noqa: F401 - live and meshd_binary are fixtures
    SETTLE,
    has_endpoints,
    live,
    meshd_binary,
    vs,
)

EXPORT_WAIT = 20.0 if SAN else 10.0  # bound for spans to reach the collector (flushes: 100 ms)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACE_HEADERS = ("traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid",
                 "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags")


# --- the test collector ---


class Span:
    """One exported span, flattened: the resource's service.name with the span's fields."""

    def __init__(self, resource, span):
        self.service = resource.get("service.name")
        self.resource = resource
        self.trace_id = span["traceId"]
        self.span_id = span["spanId"]
        self.parent = span.get("parentSpanId") or None
        self.name = span["name"]
        self.kind = span["kind"]
        self.start = int(span["startTimeUnixNano"])
        self.end = int(span["endTimeUnixNano"])
        self.status = span.get("status", {}).get("code", 0)
        self.attrs = _attrs(span.get("attributes", []))

    def __repr__(self):
        return (f"<Span {self.service} {self.name} kind={self.kind} trace={self.trace_id} "
                f"span={self.span_id} parent={self.parent} {self.attrs}>")


def _attrs(items):
    out = {}
    for a in items:
        v = a["value"]
        out[a["key"]] = int(v["intValue"]) if "intValue" in v else v.get("stringValue")
    return out


class Collector:
    """An OTLP/HTTP collector on loopback: records the JSON body of every POST to /v1/traces and
    answers 200 {}. port: a given one (to come back on a port proxies already use)."""

    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.posts = []  # (path, content-type, decoded body)
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with collector.lock:
                    collector.posts.append((self.path, self.headers.get("content-type"),
                                            json.loads(body)))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self):
        with self.lock:
            posts = list(self.posts)
        out = []
        for path, ctype, body in posts:
            assert path == "/v1/traces", path
            assert ctype == "application/json", ctype
            for rs in body["resourceSpans"]:
                resource = _attrs(rs["resource"]["attributes"])
                for ss in rs["scopeSpans"]:
                    assert ss["scope"]["name"] == "meshproxy"
                    out.extend(Span(resource, s) for s in ss["spans"])
        return out

    def trace(self, trace_id):
        return [s for s in self.spans() if s.trace_id == trace_id]

    def wait_trace(self, trace_id, n):
        """The spans of trace_id once there are n of them (fails past EXPORT_WAIT)."""
        return wait_until(lambda: len(self.trace(trace_id)) >= n and self.trace(trace_id),
                          EXPORT_WAIT, interval=0.05, what=f"{n} spans of trace {trace_id}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class HangingCollector:
    """Accepts connections and reads what comes, never answers: a collector that is up but
    stuck."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.socks = []
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closing:
            try:
                s, _ = self.listener.accept()
            except OSError:
                return
            self.socks.append(s)
            threading.Thread(target=self._drain, args=(s,), daemon=True).start()

    @staticmethod
    def _drain(s):
        with contextlib.suppress(OSError):
            while s.recv(65536):
                pass

    def close(self):
        self.closing = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@contextlib.contextmanager
def collector_running(port=0):
    c = Collector(port)
    try:
        yield c
    finally:
        c.close()


# --- an app that calls on ---


class CallingApp:
    """The orders app: for every request, GET /pay from payment through its sidecar's outbound
    listener (set `outbound` once the sidecar is up), forwarding the trace headers as an
    instrumented app does; answers with payment's status, x-echo-name and body. Records the
    headers of every request it got."""

    def __init__(self):
        self.outbound = None
        self.lock = threading.Lock()
        self.received = []  # [{lower-case name: value}]
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                got = {k.lower(): v for k, v in self.headers.items()}
                with app.lock:
                    app.received.append(got)
                fwd = {k: v for k, v in got.items() if k in TRACE_HEADERS}
                conn = http.client.HTTPConnection("127.0.0.1", app.outbound, timeout=10)
                try:
                    conn.request("GET", "/pay", headers={"Host": "payment", **fwd})
                    r = conn.getresponse()
                    body = r.read()
                    status, name = r.status, r.getheader("x-echo-name", "")
                finally:
                    conn.close()
                self.send_response(status)
                self.send_header("x-echo-name", name)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- documents ---


def mesh_config(sampling_rate, enabled=True):
    return {"apiVersion": API, "kind": "MeshConfig", "metadata": {"name": "native"},
            "spec": {"provider": "native",
                     "telemetry": {"enabled": enabled, "sampling_rate": sampling_rate}}}


def observability(endpoint):
    return {"apiVersion": API, "kind": "ObservabilityConfig", "metadata": {"name": "default"},
            "spec": {"jaeger_endpoint": endpoint}}


# --- helpers ---


def metrics(proxy):
    resp = proxy.admin("/metrics")
    assert resp.status == 200, resp
    return Metrics(resp.text)


def tracing_in_force(proxy, url, rate):
    """Whether the proxy's config dump shows tracing to url's collector at rate."""
    def check(dump):
        t = dump.get("tracing") or {}
        return t.get("enabled") and t.get("collector") == url + "/v1/traces" and \
            t.get("sampling_rate") == rate
    return check


def settled(*proxies):
    """Waits until every span the proxies sampled was exported (so that the collector holds all
    there will be). Returns the total."""
    def done():
        total = 0
        for p in proxies:
            m = metrics(p)
            sampled = m.sum("mesh_trace_spans_sampled_total")
            if m.sum("mesh_trace_spans_exported_total") != sampled:
                return False
            assert m.sum("mesh_trace_spans_dropped_total") == 0, m.find(
                "mesh_trace_spans_dropped_total")
            total += sampled
        return ("ok", total)
    return wait_until(done, EXPORT_WAIT, interval=0.05, what="every sampled span exported")[1]


def traceparent(trace_id, span_id, sampled):
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def by_role(spans):
    """{(service.name, direction, destination): span} of one trace."""
    out = {}
    for s in spans:
        key = (s.service, s.attrs["mesh.direction"], s.attrs["mesh.destination.service"])
        assert key not in out, f"two spans for {key}: {spans}"
        out[key] = s
    return out


def three_hop_mesh(live, collector, rate):
    """meshd; payment (mesh-echo) and orders (a CallingApp) behind sidecars; a gateway routing
    orders.example.com to orders; tracing to collector at rate, in force everywhere."""
    live.start_meshd(["--heartbeat-ttl", "5s", "--heartbeat-interval", "500ms"])
    payment_app = live.echo("payment")
    orders_app = CallingApp()
    live.lab.upstreams.append(orders_app)  # closed with the lab
    payment = live.sidecar("payment", payment_app)
    orders = live.sidecar("orders", orders_app)
    orders_app.outbound = orders.port
    gw = live.gateway("external-gateway")
    live.meshd.apply([
        mesh_config(rate),
        observability(collector.url),
        vs("orders-edge", ["orders.example.com"], route("orders", name="to-orders"),
           gateways=["external-gateway"]),
        vs("payment", ["payment"], route("payment", name="pay")),
    ])
    gw.wait_dump(lambda d: tracing_in_force(gw, collector.url, rate)(d) and
                 has_endpoints(d, [("orders", orders.inbound)]), "the gateway's route, traced")
    orders.wait_dump(lambda d: tracing_in_force(orders, collector.url, rate)(d) and
                     has_endpoints(d, [("payment", payment.inbound)]),
                     "orders' route to payment, traced")
    payment.wait_dump(tracing_in_force(payment, collector.url, rate), "payment traced")
    return gw, orders, payment, orders_app


# --- tests ---


def test_three_hops_make_one_trace(live):
    with collector_running() as collector:
        gw, orders, payment, orders_app = three_hop_mesh(live, collector, 100)
        r = gw.request("orders.example.com", "/checkout")
        assert (r.status, r.header("x-echo-name")) == (200, "payment"), r
        # Every span of the request's trace: the gateway's has no parent.
        roots = wait_until(lambda: [s for s in collector.spans() if s.parent is None],
                           EXPORT_WAIT, interval=0.05, what="the root span")
        assert len(roots) == 1, roots
        spans = collector.wait_trace(roots[0].trace_id, 4)
        assert len(spans) == 4, spans
        assert len(collector.spans()) == 4  # one request, one trace: nothing else
        hops = by_role(spans)
        edge = hops[("external-gateway", "inbound", "orders")]
        orders_in = hops[("orders", "inbound", "inbound|orders")]
        orders_out = hops[("orders", "outbound", "payment")]
        payment_in = hops[("payment", "inbound", "inbound|payment")]

        # The chain: each hop's parent is the hop before it.
        assert edge.parent is None
        assert orders_in.parent == edge.span_id
        assert orders_out.parent == orders_in.span_id
        assert payment_in.parent == orders_out.span_id
        assert len({s.span_id for s in spans}) == 4

        # Kinds: proxies serving a caller are servers; a sidecar calling out is the client.
        assert [edge.kind, orders_in.kind, orders_out.kind, payment_in.kind] == [2, 2, 3, 2]
        # What each hop saw.
        assert edge.attrs["mesh.route"] == "to-orders"
        assert edge.attrs["mesh.upstream.endpoint"] == orders.inbound
        assert orders_out.attrs["mesh.route"] == "pay"
        assert orders_out.attrs["mesh.upstream.endpoint"] == payment.inbound
        assert orders_in.attrs["mesh.route"] == "inbound"
        assert orders_in.attrs["mesh.upstream.endpoint"] == orders_app.addr
        for s in spans:
            assert s.attrs["http.request.method"] == "GET"
            assert s.attrs["http.response.status_code"] == 200
            assert s.attrs["mesh.retries"] == 0
            assert s.attrs["network.peer.address"] == "127.0.0.1"
            assert s.attrs["network.peer.port"] > 0
            assert s.status == 0
            assert s.start <= s.end
            assert s.name == f"GET {s.attrs['mesh.destination.service']}"
        assert edge.attrs["url.path"] == orders_in.attrs["url.path"] == "/checkout"
        assert orders_out.attrs["url.path"] == payment_in.attrs["url.path"] == "/pay"
        assert edge.attrs["server.address"] == "orders.example.com"
        assert orders_out.attrs["server.address"] == "payment"
        # The x-request-id the gateway made travels with the trace.
        assert len({s.attrs["mesh.request_id"] for s in (edge, orders_in)}) == 1
        # Who each span is from.
        assert edge.resource["mesh.proxy.mode"] == "gateway"
        assert orders_in.resource["service.instance.id"] == orders.id
        assert payment_in.resource["service.namespace"] == "default"
        # A child lies within its parent (1 ms of slack for the clocks' rounding).
        for parent, child in ((edge, orders_in), (orders_in, orders_out),
                              (orders_out, payment_in)):
            assert parent.start <= child.start + 1_000_000, (parent, child)
            assert child.end <= parent.end + 1_000_000, (parent, child)

        # The app got the trace context with the orders sidecar's inbound span as parent, in
        # both formats since the request came with none.
        got = orders_app.received[-1]
        assert got["traceparent"] == traceparent(edge.trace_id, orders_in.span_id, True)
        assert got["x-b3-traceid"] == edge.trace_id
        assert got["x-b3-spanid"] == orders_in.span_id
        assert got["x-b3-parentspanid"] == edge.span_id
        assert got["x-b3-sampled"] == "1"

        m = metrics(gw)
        assert m.sum("mesh_trace_spans_sampled_total") == 1
        wait_until(lambda: metrics(gw).sum("mesh_trace_spans_exported_total") == 1, EXPORT_WAIT,
                   what="the gateway's export counted")
        assert metrics(gw).sum("mesh_trace_export_requests_total", result="success") >= 1


def test_incoming_context_is_continued(live):
    with collector_running() as collector:
        gw, orders, payment, orders_app = three_hop_mesh(live, collector, 0)

        # W3C: same trace, the caller's span as parent, tracestate untouched end to end. The
        # rate is 0: the caller's sampled flag decides.
        r = gw.request("orders.example.com", "/w3c", headers={
            "traceparent": traceparent(TRACE_ID, CALLER_SPAN, True),
            "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"})
        assert r.status == 200, r
        hops = by_role(collector.wait_trace(TRACE_ID, 4))
        edge = hops[("external-gateway", "inbound", "orders")]
        assert edge.parent == CALLER_SPAN
        orders_in = hops[("orders", "inbound", "inbound|orders")]
        assert orders_in.parent == edge.span_id
        got = orders_app.received[-1]
        assert got["tracestate"] == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        assert got["traceparent"] == traceparent(TRACE_ID, orders_in.span_id, True)
        assert "x-b3-traceid" not in got  # W3C in, W3C on

        # B3 (multi): the same, and the payment app sees B3 too (mesh-echo echoes x- headers).
        trace_b3 = secrets.token_hex(16)
        caller_b3 = secrets.token_hex(8)
        r = gw.request("orders.example.com", "/b3", headers={
            "x-b3-traceid": trace_b3, "x-b3-spanid": caller_b3, "x-b3-sampled": "1"})
        assert r.status == 200, r
        hops = by_role(collector.wait_trace(trace_b3, 4))
        edge = hops[("external-gateway", "inbound", "orders")]
        payment_in = hops[("payment", "inbound", "inbound|payment")]
        assert edge.parent == caller_b3
        assert r.header("x-echo-name") == "payment"
        got = orders_app.received[-1]
        assert got["x-b3-traceid"] == trace_b3
        assert got["x-b3-parentspanid"] == edge.span_id
        assert got["traceparent"].startswith(f"00-{trace_b3}-")

        # B3 single header.
        trace_single = secrets.token_hex(16)
        caller_single = secrets.token_hex(8)
        r = gw.request("orders.example.com", "/b3-single",
                       headers={"b3": f"{trace_single}-{caller_single}-1"})
        assert r.status == 200, r
        hops = by_role(collector.wait_trace(trace_single, 4))
        edge = hops[("external-gateway", "inbound", "orders")]
        orders_in = hops[("orders", "inbound", "inbound|orders")]
        assert edge.parent == caller_single
        assert orders_app.received[-1]["b3"] == f"{trace_single}-{orders_in.span_id}-1"

        # A malformed traceparent is dropped: a new trace (at rate 0 not sampled), and the app
        # never sees the bad value.
        bad = f"00-{TRACE_ID.upper()}-{CALLER_SPAN}-01"
        r = gw.request("orders.example.com", "/bad", headers={"traceparent": bad})
        assert r.status == 200, r
        got = orders_app.received[-1]
        assert got["traceparent"] != bad
        assert TRACE_ID.upper() not in got["traceparent"]
        assert got["traceparent"].endswith("-00")
        assert settled(gw, orders, payment) == 12  # three traces of four spans; nothing else
        assert len({s.trace_id for s in collector.spans()}) == 3
        assert not [s for s in collector.spans() if TRACE_ID.upper() in s.trace_id]


def test_sampling_rate_and_incoming_decisions(live):
    with collector_running() as collector:
        live.start_meshd(["--heartbeat-ttl", "5s", "--heartbeat-interval", "500ms"])
        app = live.echo("payment")
        payment = live.sidecar("payment", app)
        gw = live.gateway("external-gateway")
        live.meshd.apply([
            mesh_config(10),
            observability(collector.url),
            vs("payment-edge", ["payment.example.com"], route("payment", name="edge"),
               gateways=["external-gateway"]),
        ])
        gw.wait_dump(lambda d: tracing_in_force(gw, collector.url, 10)(d) and
                     has_endpoints(d, [("payment", payment.inbound)]), "the traced route")
        payment.wait_dump(tracing_in_force(payment, collector.url, 10), "payment traced")

        client = Client(gw.port, "payment.example.com")
        for i in range(1000):
            r = client.request("GET", f"/n/{i}")
            assert r.status == 200, r
        client.close()
        settled(gw, payment)
        spans = collector.spans()
        edge = {s.trace_id for s in spans if s.service == "external-gateway"}
        behind = {s.trace_id for s in spans if s.service == "payment"}
        print(f"sampled {len(edge)} of 1000 traces at 10%")
        assert 70 <= len(edge) <= 130, len(edge)
        # The sidecar follows the gateway's decision: a span for every sampled trace, none for
        # the others.
        assert behind == edge
        assert len(spans) == 2 * len(edge)
        assert metrics(gw).sum("mesh_trace_spans_sampled_total") == len(edge)

        # An incoming decision wins over the rate, both ways, in either format.
        yes, no = [], []
        client = Client(gw.port, "payment.example.com")
        for i in range(20):
            for sampled, ids in ((True, yes), (False, no)):
                t = secrets.token_hex(16)
                ids.append(t)
                if i % 2:
                    headers = {"traceparent": traceparent(t, secrets.token_hex(8), sampled)}
                else:
                    headers = {"x-b3-traceid": t, "x-b3-spanid": secrets.token_hex(8),
                               "x-b3-sampled": "1" if sampled else "0"}
                assert client.request("GET", "/decided", headers=headers).status == 200
        client.close()
        settled(gw, payment)
        traced = {s.trace_id for s in collector.spans()}
        assert set(yes) <= traced
        assert not set(no) & traced
        for t in yes:
            assert len(collector.trace(t)) == 2


def test_dead_collector_costs_no_request(lab):
    port = free_ports(1)[0]  # nothing listens there
    e = lab.echo("payment-v1")
    docs = echo_services(e) + [
        virtual_service("payment", ["payment.example.com"], route("payment-v1")),
        mesh_config(100), observability(f"http://127.0.0.1:{port}")]
    p = lab.proxy(docs)
    client = p.client("payment.example.com")
    for i in range(300):
        r = client.request("GET", f"/dead/{i}")
        assert r.status == 200, r
    client.close()

    def all_dropped():
        m = metrics(p)
        return m.sum("mesh_trace_spans_dropped_total", reason="export_failed") == 300 and m
    m = wait_until(all_dropped, EXPORT_WAIT, interval=0.05, what="every span counted as dropped")
    assert m.sum("mesh_trace_spans_sampled_total") == 300
    assert m.sum("mesh_trace_spans_exported_total") == 0
    assert m.sum("mesh_trace_export_requests_total", result="failure") >= 1
    assert m.sum("mesh_trace_export_requests_total", result="success") == 0
    assert m.sum("mesh_requests_total", code="200") == 300
    assert p.stderr().count("trace export failed") == 1  # once per outage

    # The collector comes up: spans flow again, and the recovery is logged once.
    with collector_running(port) as collector:
        client = p.client("payment.example.com")
        for i in range(10):
            assert client.request("GET", f"/back/{i}").status == 200
        client.close()
        wait_until(lambda: metrics(p).sum("mesh_trace_spans_exported_total") == 10,
                   EXPORT_WAIT, interval=0.05, what="the new spans exported")
        assert len(collector.spans()) == 10
        assert p.stderr().count("trace collector reachable again") == 1


def test_hanging_collector_costs_no_request(lab):
    hang = HangingCollector()
    try:
        e = lab.echo("payment-v1")
        docs = echo_services(e) + [
            virtual_service("payment", ["payment.example.com"], route("payment-v1")),
            mesh_config(100), observability(hang.url)]
        p = lab.proxy(docs, workers=1)
        # More spans than the ring holds while an export hangs: the ring stays bounded.
        client = p.client("payment.example.com")
        for i in range(2500):
            r = client.request("GET", f"/slow/{i}")
            assert r.status == 200, r
        client.close()
        m = metrics(p)
        assert m.sum("mesh_trace_spans_sampled_total") == 2500
        assert m.sum("mesh_trace_spans_dropped_total", reason="buffer_full") > 0
        # The export in flight times out and its batch is dropped too.
        wait_until(lambda: metrics(p).sum("mesh_trace_spans_dropped_total",
                                          reason="export_failed") > 0,
                   EXPORT_WAIT, interval=0.1, what="the hung export to fail")
        assert metrics(p).sum("mesh_trace_spans_exported_total") == 0
        # SIGTERM during a hung export: the proxy still exits 0 promptly (checked by the lab).
        assert p.stop() == 0
    finally:
        hang.close()


def test_tracing_off_leaves_headers_alone_and_reload_turns_it_on(lab):
    up = lab.upstream("payment-v1")
    docs = [service("payment-v1", up.addr),
            virtual_service("payment", ["payment.example.com"], route("payment-v1"))]
    p = lab.proxy(docs)
    sent = {"traceparent": traceparent(TRACE_ID, CALLER_SPAN, True),
            "tracestate": "rojo=1", "x-b3-traceid": "not-hex", "b3": "whatever"}
    assert p.request(host="payment.example.com", headers=sent).status == 200
    assert p.request(host="payment.example.com").status == 200
    first, second = (dict(h) for _, _, _, h in up.requests[-2:])
    for k, v in sent.items():
        assert first[k] == v  # passed through untouched
    assert not set(TRACE_HEADERS) & set(second)  # nothing added
    # A reload that leaves tracing off changes nothing either.
    p.reload(docs, "config reloaded")
    assert p.request(host="payment.example.com").status == 200
    assert not set(TRACE_HEADERS) & set(dict(up.requests[-1][3]))
    m = metrics(p)
    assert m.sum("mesh_trace_spans_sampled_total") == 0
    assert m.find("mesh_trace_spans_dropped_total") == []  # tracing never came on
    assert m.find("mesh_trace_export_requests_total") == []

    with collector_running() as collector:
        p.reload(docs + [mesh_config(100), observability(collector.url)],
                 "config reloaded")
        wait_until(lambda: json.loads(p.admin("/config_dump?format=json").body)["tracing"]
                   ["enabled"], 5, what="tracing in the dump")
        assert p.request(host="payment.example.com", headers=sent).status == 200
        got = dict(up.requests[-1][3])
        # traceparent continued; the malformed B3 headers are not forwarded.
        spans = collector.wait_trace(TRACE_ID, 1)
        assert spans[0].parent == CALLER_SPAN
        assert got["traceparent"] == traceparent(TRACE_ID, spans[0].span_id, True)
        assert got["tracestate"] == "rojo=1"
        assert "x-b3-traceid" not in got and "b3" not in got
        assert spans[0].service == "meshproxy" and spans[0].resource["mesh.proxy.mode"] == "static"

        # Telemetry disabled in the MeshConfig: off again, headers untouched.
        p.reload(docs + [mesh_config(100, enabled=False), observability(collector.url)],
                 "config reloaded")
        assert p.request(host="payment.example.com").status == 200
        assert not set(TRACE_HEADERS) & set(dict(up.requests[-1][3]))
        assert json.loads(p.admin("/config_dump?format=json").body)["tracing"]["enabled"] is False
