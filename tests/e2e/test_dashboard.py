# SPDX-License-Identifier: Apache-2.0
"""meshd's web dashboard (/ui and GET /v1/ui/summary), end to end.

In headless Chromium (Debian's chromium and chromium-driver, driven through python3-selenium):
the live mesh of `make demo` (meshd, mesh-echo apps behind sidecars for payment-v1, payment-v2
and orders, the external gateway, examples/ applied through meshd); the page is opened, then a
known amount of traffic goes through the seed's 90/10 VirtualServices (inside the mesh and at
the gateway) and some requests are denied by the seed's SecurityPolicy; the page, refreshing by
itself, must show the demo's services with their rates and latencies, each split exactly as the
apps saw it (and within the binomial bound of 90/10 for the count sent), every proxy SYNCED, the
security policy and the denials. A screenshot is kept (the test's tmp dir, and
build/test-artifacts/dashboard.png).

Without a browser: the page's files and their headers, the summary's figures computed from
canned /stats answers of fake proxies (exact rates, success, percentiles, shares, denials), one
read of each proxy however many summaries are asked at once, a proxy that never answers, the
token rule, and `dashboard.enabled: false` turning /ui into a 404 that says why.

Every process is on a loopback port the kernel picks and is stopped by PID when its test ends
(Chromium and chromedriver through selenium's quit); every wait is bounded.
"""
import http.client
import json
import math
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from conftest import EXAMPLES, ROOT, SAN, build_dir
from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    API,
    lab,
    proxy_binaries,
    route,
    run_parallel,
    wait_until,
)
from test_mesh_live import (  # noqa: F401 - live and meshd_binary are fixtures
    SETTLE,
    has_endpoints,
    live,
    meshd_binary,
    vs,
    weights_of,
)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE_TIMEOUT = 40.0 if SAN else 20.0  # for the page to show what a summary holds
MESH_REQUESTS = 400  # through orders' sidecar, split 90/10 by VirtualService default/payment
GATEWAY_REQUESTS = 200  # through the gateway, split by VirtualService default/payment-service
DENIED = 5  # GETs from orders to payment-v1, which payment-security does not allow

# The demo's extra rule: the gateway may GET payment's API (scripts/demo.py).
GATEWAY_ACCESS = {
    "apiVersion": API, "kind": "SecurityPolicy",
    "metadata": {"name": "payment-gateway-access", "namespace": "default"},
    "spec": {"authorization": [{"from": ["external-gateway.default"],
                                "to": ["payment.default.svc"], "methods": ["GET"],
                                "paths": ["/api/v1/*"]}]},
}


# --- HTTP without a browser ---


def fetch(url, method="GET", token=None, timeout=10):
    """(status, {lower-case header: value}, body bytes)."""
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def summary(meshd, token=None, timeout=10):
    status, headers, body = fetch(meshd.url + "/v1/ui/summary", token=token, timeout=timeout)
    assert status == 200, (status, body)
    assert headers["content-type"] == "application/json"
    return json.loads(body)


def binomial_bound(n, p):
    """How far a share of n independent picks at p may stray: four standard deviations."""
    return 4 * math.sqrt(p * (1 - p) / n)


# --- a fake proxy's admin listener: canned /stats answers ---


def buckets(n, index):
    """meshproxy's cumulative buckets for n requests that all fell in bucket index."""
    les = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
           "1", "2.5", "5", "10", "+Inf"]
    return {le: (n if i >= index else 0) for i, le in enumerate(les)}


def stats_doc(traffic, authz=()):
    """A /stats answer: traffic is [(service, route, code, count)], every request in
    (0.5 ms, 1 ms]; authz is [(source, rule, result, count)]."""
    requests, durations = [], {}
    for service, route_name, code, n in traffic:
        requests.append({"service": service, "route": route_name, "endpoint": "127.0.0.1:1",
                         "code": code, "value": n})
        durations[(service, route_name)] = durations.get((service, route_name), 0) + n
    return {
        "requests": requests,
        "request_duration_seconds": [
            {"service": s, "route": r, "count": n, "sum": 0.00075 * n, "p50": None, "p95": None,
             "p99": None, "buckets": buckets(n, 1)} for (s, r), n in durations.items()],
        "authz_requests": [{"source": s, "rule": r, "result": res, "value": n}
                           for s, r, res, n in authz],
        "downstream_connections_accepted": 1,
    }


class FakeAdmin:
    """An admin listener that answers GET /stats with self.doc and counts the reads."""

    def __init__(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps(owner.doc).encode()
                with owner.lock:
                    owner.reads += 1
                self.send_response(200 if self.path == "/stats" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.doc = stats_doc([])
        self.reads = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def read_count(self):
        with self.lock:
            return self.reads

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def fake_admins():
    made = []

    def make():
        a = FakeAdmin()
        made.append(a)
        return a

    yield make
    for a in made:
        a.close()


def register(meshd, proxy_id, admin, service="payment-v1"):
    status, body = meshd.call("PUT", f"/v1/proxies/{proxy_id}", {
        "role": "sidecar", "service": service, "namespace": "default",
        "address": "127.0.0.1:1", "admin": admin})
    assert status in (200, 201), body


def proxy_row(s, proxy_id):
    rows = [p for p in s["proxies"] if p["id"] == proxy_id]
    assert len(rows) == 1, s["proxies"]
    return rows[0]


def service_row(s, name):
    rows = [x for x in s["services"] if x["name"] == name]
    assert len(rows) == 1, [x["name"] for x in s["services"]]
    return rows[0]


def split_rows(s, vs_name, route_name):
    for v in s["virtual_services"]:
        if v["name"] == vs_name:
            for r in v["routes"]:
                if r["name"] == route_name:
                    return r, {d["service"]: d for d in r["destinations"]}
    pytest.fail(f"no route {route_name} of VirtualService {vs_name} in {s['virtual_services']}")


# --- tests without a browser ---


def test_page_files_are_served_from_meshd(live):
    live.start_meshd()
    url = live.meshd.url
    status, headers, index = fetch(url + "/ui")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and \
        "connect-src 'self'" in csp, csp
    assert headers["x-content-type-options"] == "nosniff"
    html = index.decode()
    assert '<script src="/ui/app.js"' in html and 'href="/ui/style.css"' in html
    # Every reference the page makes is to meshd itself: nothing from a CDN or any other host.
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs and all(r.startswith(("/ui/", "/v1/", "data:")) for r in refs), refs
    assert fetch(url + "/ui/")[2] == index and fetch(url + "/ui/index.html")[2] == index
    status, headers, js = fetch(url + "/ui/app.js")
    assert (status, headers["content-type"]) == (200, "text/javascript; charset=utf-8")
    assert b"/v1/ui/summary" in js
    status, headers, css = fetch(url + "/ui/style.css")
    assert (status, headers["content-type"]) == (200, "text/css; charset=utf-8")
    for body in (index, js, css):
        assert b"http://" not in body and b"https://" not in body and b"@import" not in body
    # The files are the ones in the tree, byte for byte (compiled in at build time).
    src = ROOT / "src" / "control" / "ui"
    assert index == (src / "index.html").read_bytes()
    assert js == (src / "app.js").read_bytes() and css == (src / "style.css").read_bytes()

    status, headers, body = fetch(url + "/ui", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) == len(index)
    status, headers, body = fetch(url + "/ui", method="POST", token=live.meshd.token_path
                                 .read_text().strip())
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, _, body = fetch(url + "/ui/nothing.js")
    assert status == 404 and b"the dashboard has no file /ui/nothing.js" in body
    # Outside /ui and /v1 nothing changed.
    assert fetch(url + "/uix")[0] == 404

    s = summary(live.meshd)
    assert s["version"] and s["refresh_ms"] == 2000
    assert s["window"] == {"target_ms": 60000, "span_ms": None}
    for key in ("services", "virtual_services", "proxies", "security_policies", "denials"):
        assert s[key] == [], key


def test_summary_figures_from_proxy_stats(live, fake_admins):
    """The figures of the summary, from canned /stats answers: exact counts, rate, success,
    percentiles, shares and denials; one read per proxy per round however many ask."""
    live.start_meshd(["--heartbeat-ttl", "120s"])  # the fake proxies never heartbeat
    m = live.meshd
    m.apply([vs("payment", ["payment"], route(("payment-v1", 90), ("payment-v2", 10),
                                              name="primary"))])
    fake = fake_admins()
    fake.doc = stats_doc(
        [("payment-v1", "primary", "200", 10), ("payment-v2", "primary", "200", 2),
         ("inbound|payment-v1", "inbound", "200", 7)],
        [("orders.default", "default-deny", "deny", 1),
         ("orders.default", "default/payment-security#0", "allow", 5)])
    register(m, "fake-1", fake.addr)

    first = summary(m)
    assert fake.read_count() == 1
    assert first["window"]["span_ms"] is None  # one reading: no rate yet
    row = service_row(first, "payment-v1")
    assert row["sidecars"] == 1 and row["namespaces"] == ["default"]
    assert row["total"]["requests"] == 10 and row["window"] is None
    assert row["inbound"]["total"]["requests"] == 7
    p = proxy_row(first, "fake-1")
    assert p["status"] == "STALE" and p["acked_version"] is None  # it never took a config
    assert p["stats"]["ok"] and p["stats"]["error"] is None
    [d] = first["denials"]
    assert (d["service"], d["source"], d["rule"], d["denied_total"]) == (
        "payment-v1", "orders.default", "default-deny", 1)
    assert d["last_denied_ms"] is None  # it happened before meshd's first reading

    fake.doc = stats_doc(
        [("payment-v1", "primary", "200", 100), ("payment-v1", "primary", "503", 10),
         ("payment-v2", "primary", "200", 14), ("inbound|payment-v1", "inbound", "200", 7)],
        [("orders.default", "default-deny", "deny", 4),
         ("orders.default", "default/payment-security#0", "allow", 50)])
    time.sleep(1.2)  # past the 1 s the last round stays fresh
    second = summary(m)
    assert fake.read_count() == 2
    span = second["window"]["span_ms"]
    assert span and span >= 1000
    w = service_row(second, "payment-v1")["window"]
    assert (w["requests"], w["failures"]) == (100, 10)
    assert w["success_rate"] == pytest.approx(0.9)
    assert w["rps"] == pytest.approx(100 * 1000 / span)
    # Every request took between 0.5 and 1 ms: the percentiles interpolate inside that bucket.
    assert w["p50"] == pytest.approx(0.00075) and w["p99"] == pytest.approx(0.000995)
    assert service_row(second, "payment-v1")["total"]["requests"] == 110
    assert service_row(second, "payment-v2")["window"]["requests"] == 12
    assert service_row(second, "payment-v1")["inbound"]["window"]["requests"] == 0

    r, dests = split_rows(second, "payment", "primary")
    assert not r["ambiguous"]
    assert (dests["payment-v1"]["weight"], dests["payment-v2"]["weight"]) == (90, 10)
    assert (dests["payment-v1"]["requests_window"], dests["payment-v2"]["requests_window"]) == \
        (100, 12)
    assert dests["payment-v1"]["share_window"] == pytest.approx(100 / 112)
    assert dests["payment-v1"]["rps"] == pytest.approx(100 * 1000 / span)
    assert (dests["payment-v1"]["requests_total"], dests["payment-v2"]["requests_total"]) == \
        (110, 14)
    assert dests["payment-v2"]["share_total"] == pytest.approx(14 / 124)
    assert r["requests_total"] == 124 and r["requests_window"] == 112

    [d] = second["denials"]
    assert (d["denied_total"], d["denied_window"]) == (4, 3)
    assert d["last_denied_ms"] and first["generated_ms"] <= d["last_denied_ms"] <= \
        second["generated_ms"]

    # Twenty browsers at once: one read of the proxy for all of them.
    time.sleep(1.2)
    before = fake.read_count()
    results = run_parallel(lambda i: summary(m), 20)
    assert all(isinstance(x, dict) for x in results), results
    assert fake.read_count() == before + 1
    summary(m)  # within the second the round stays fresh: no read
    assert fake.read_count() == before + 1

    # A proxy whose admin listener never answers costs its own figures, not the summary.
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)  # never accepted: connections complete, no answer ever comes
    try:
        register(m, "fake-hung", f"127.0.0.1:{hung.getsockname()[1]}")
        time.sleep(1.2)
        s = summary(m, timeout=10)
        bad = proxy_row(s, "fake-hung")["stats"]
        assert not bad["ok"] and "did not answer GET /stats within" in bad["error"], bad
        assert proxy_row(s, "fake-1")["stats"]["ok"]
        assert s["proxies_read"] == 1
    finally:
        hung.close()

    # Two VirtualServices that the same proxy serves, counting under the same route name and
    # destination: the proxy's counters cannot tell them apart, and the summary says so. One
    # that only a gateway serves (and no gateway runs here) shares no proxy with them.
    m.apply([vs("payment-copy", ["payment-copy"], route("payment-v1", name="primary")),
             vs("edge", ["payment.example.com"], route("payment-v1", name="primary"),
                gateways=["external-gateway"])])
    s = summary(m)
    assert split_rows(s, "payment", "primary")[0]["ambiguous"]
    assert split_rows(s, "payment-copy", "primary")[0]["ambiguous"]
    edge, edge_dests = split_rows(s, "edge", "primary")
    assert not edge["ambiguous"] and edge_dests["payment-v1"]["requests_total"] == 0
    assert [v["proxies"] for v in s["virtual_services"] if v["name"] == "edge"] == [0]

    # A proxy that leaves the registry leaves the summary.
    status, _ = m.call("DELETE", "/v1/proxies/fake-hung")
    assert status == 200
    assert [p["id"] for p in summary(m)["proxies"]] == ["fake-1"]


def test_dashboard_enabled_false_turns_it_off(live):
    live.start_meshd()
    m = live.meshd
    token = m.token_path.read_text().strip()

    def mesh_config(name, provider, enabled):
        return {"apiVersion": API, "kind": "MeshConfig", "metadata": {"name": name},
                "spec": {"provider": provider, "dashboard": {"enabled": enabled}}}

    # Another provider's MeshConfig is about that provider's dashboard, not meshd's.
    m.apply([mesh_config("linkerd", "linkerd", False)])
    assert fetch(m.url + "/ui")[0] == 200

    m.apply([mesh_config("native", "native", False)])
    status, headers, body = fetch(m.url + "/ui")
    assert status == 404
    assert headers["content-type"].startswith("text/plain")
    text = body.decode()
    assert "the dashboard is turned off: MeshConfig default/native sets dashboard.enabled: " \
           "false" in text, text
    assert fetch(m.url + "/ui/app.js")[0] == 404
    status, headers, body = fetch(m.url + "/v1/ui/summary")
    assert status == 404 and headers["content-type"] == "application/json"
    err = json.loads(body)["error"]
    assert err["reason"] == "NotFound" and "dashboard.enabled: false" in err["message"]
    # The rest of the API is untouched.
    assert fetch(m.url + "/v1/health")[0] == 200

    # Turned on again by the same MeshConfig; a MeshConfig without a provider is native too.
    m.apply([mesh_config("native", "native", True)])
    assert fetch(m.url + "/ui")[0] == 200
    doc = mesh_config("plain", "native", False)
    del doc["spec"]["provider"]
    m.apply([doc])
    assert fetch(m.url + "/ui")[0] == 404
    m.delete("meshconfigs", "plain")
    assert fetch(m.url + "/ui")[0] == 200
    assert fetch(m.url + "/v1/ui/summary", token=token)[0] == 200


def test_summary_reads_follow_the_token_rule(live):
    live.start_meshd(["--auth-reads"])
    m = live.meshd
    token = m.token_path.read_text().strip()
    # The page itself holds no data: a browser gets it without a token...
    assert fetch(m.url + "/ui")[0] == 200
    assert fetch(m.url + "/ui/app.js")[0] == 200
    # ...and the data needs the token, as every read does with --auth-reads.
    status, headers, _ = fetch(m.url + "/v1/ui/summary")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert fetch(m.url + "/v1/ui/summary", token=token)[0] == 200


# --- the browser ---


def chromium(tmp_path):
    """A headless Chromium under chromedriver, with a profile of its own, talking to nothing
    but loopback; the caller quits it."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("python3-selenium is missing: run scripts/deps.sh as root (it installs "
                    "chromium, chromium-driver and python3-selenium)")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: run scripts/deps.sh as root (apt-get install -y "
                        "chromium chromium-driver python3-selenium)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1400,1000", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update",
                "--disable-default-apps", "--disable-domain-reliability",
                # Names resolve to nothing: whatever the page or Chromium would fetch from
                # outside fails (the page uses 127.0.0.1 only).
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, log_path=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(20)
    return driver


# The page's tables as {key: {data-col: text}}, read in one go (the page re-renders every 2 s).
READ_PAGE = """
function table(rowSelector, key) {
  const out = {};
  for (const tr of document.querySelectorAll(rowSelector)) {
    const r = {};
    for (const td of tr.querySelectorAll('td[data-col]')) r[td.dataset.col] = td.textContent;
    out[key(tr)] = r;
  }
  return out;
}
return {
  state: document.body.dataset.state || '',
  generated: Number(document.body.dataset.generated || 0),
  contentHidden: document.getElementById('content').hidden,
  windowNote: document.getElementById('window-note').textContent,
  services: table('#services tbody tr[data-service]', tr => tr.dataset.service),
  splits: table('#vs-list tr[data-dest]',
                tr => tr.dataset.vs + '|' + tr.dataset.route + '|' + tr.dataset.dest),
  proxies: table('#proxies tbody tr[data-proxy]', tr => tr.dataset.proxy),
  rules: table('#policy-list tr[data-rule]', tr => tr.dataset.rule),
  policies: Array.from(document.querySelectorAll('#policy-list [data-policy]')).map(
    p => ({name: p.dataset.policy, text: p.textContent})),
  denials: table('#denials tbody tr[data-source]',
                 tr => tr.dataset.service + '|' + tr.dataset.source + '|' + tr.dataset.rule),
  resources: performance.getEntriesByType('resource').map(e => e.name),
};
"""


def read_page(driver):
    return driver.execute_script(READ_PAGE)


def wait_page(driver, pred, what, timeout=PAGE_TIMEOUT):
    """Polls the page until pred(page) is true; returns that page."""
    seen = {}

    def check():
        page = read_page(driver)
        seen["last"] = page
        return page if pred(page) else None

    try:
        return wait_until(check, timeout, interval=0.25, what=f"the page to show {what}")
    except BaseException:
        print("last page read:", json.dumps(seen.get("last"), indent=1)[:20000])
        raise


def save_screenshot(driver, tmp_path):
    """The whole page as PNG: in the test's tmp dir and build/test-artifacts/dashboard.png."""
    # The window holds the viewport plus whatever the browser keeps for itself: grow it until
    # the viewport holds the whole page.
    for _ in range(3):
        inner, page = driver.execute_script(
            "return [window.innerHeight, document.documentElement.scrollHeight]")
        if inner >= page:
            break
        size = driver.get_window_size()
        driver.set_window_size(1400, min(size["height"] + page - inner + 20, 10000))
    shot = tmp_path / "dashboard.png"
    assert driver.save_screenshot(str(shot)), "no screenshot"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifacts = build_dir() / "test-artifacts"
    try:
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, artifacts / "dashboard.png")
        print(f"screenshot: {shot} and {artifacts / 'dashboard.png'}")
    except OSError as e:
        print(f"screenshot: {shot} ({artifacts} cannot be written: {e})")
    return shot


def apply_examples(live, inbound):
    """examples/ through meshd's API, as `make demo` applies it; the static endpoints of the
    services that run behind a sidecar here are its inbound address (the demo pins them to the
    same addresses instead), plus the demo's rule that lets the gateway in."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if path.name != "services.yaml":
            live.meshd.apply_file(path)
            continue
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for d in docs:
            if d["metadata"]["name"] in inbound:
                d["spec"]["endpoints"] = [inbound[d["metadata"]["name"]]]
        live.meshd.apply(docs)
    live.meshd.apply([GATEWAY_ACCESS])


def keep_alive_traffic(port, host, path, n, method):
    """n requests on one connection; {x-echo-name, or the status when not 200: count}."""
    seen = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(n):
            conn.request(method, path, headers={"Host": host})
            r = conn.getresponse()
            r.read()
            key = r.getheader("x-echo-name") if r.status == 200 else r.status
            seen[key] = seen.get(key, 0) + 1
    finally:
        conn.close()
    return seen


def number(text):
    m = re.fullmatch(r"([0-9.]+)( ms| s|%)?", text.strip())
    assert m, f"not a number: {text!r}"
    return float(m.group(1))


def one_request(port, host, path, method):
    """(status, x-echo-name) of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers={"Host": host})
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("x-echo-name")
    finally:
        conn.close()


def the_demo(live):
    """The mesh of `make demo`, every proxy synced on the seed's config; returns the proxies."""
    live.start_meshd(["--heartbeat-ttl", "3s", "--heartbeat-interval", "500ms"])
    apps = {n: live.echo(n) for n in ("payment-v1", "payment-v2", "orders")}
    v1 = live.sidecar("payment-v1", apps["payment-v1"], version="v1")
    v2 = live.sidecar("payment-v2", apps["payment-v2"], version="v2")
    orders = live.sidecar("orders", apps["orders"])
    gw = live.gateway("external-gateway")
    apply_examples(live, {"payment-v1": v1.inbound, "payment-v2": v2.inbound,
                          "orders": orders.inbound})
    for p in (orders, gw):
        p.wait_dump(lambda d: weights_of(d, "primary") == {"payment-v1": 90, "payment-v2": 10}
                    and has_endpoints(d, [("payment-v1", v1.inbound),
                                          ("payment-v2", v2.inbound)]),
                    "the seed's 90/10 route with both payment sidecars")
    wait_until(lambda: all(p["synced"] for p in live.meshd.call("GET", "/v1/proxies")[1]["items"]),
               SETTLE, interval=0.1, what="every proxy to acknowledge its config")
    return v1, v2, orders, gw


def test_dashboard_in_chromium_shows_the_live_mesh(live, tmp_path):
    v1, v2, orders, gw = the_demo(live)
    # Before the page opens (so before the window it shows): each path works, over mTLS. The
    # requests that get through are allowed by the rules, and the page counts those too. Orders
    # calls payment-v1 by its name here: route "default", not the split's.
    allowed = {"orders": 0, "gateway": 0}

    def gets_through(key, port, host, path, method):
        if one_request(port, host, path, method)[0] != 200:
            return False
        allowed[key] += 1
        return True

    wait_until(lambda: gets_through("orders", orders.port, "payment-v1", "/api/v1/process",
                                    "POST"), SETTLE, interval=0.1,
               what="orders to reach payment-v1")
    wait_until(lambda: gets_through("gateway", gw.port, "payment.example.com", "/api/v1/pay",
                                    "GET"), SETTLE, interval=0.1,
               what="the gateway to reach payment")

    driver = chromium(tmp_path)
    try:
        driver.get(live.meshd.url + "/ui")
        # Two readings of every proxy: the page has a window to show rates over.
        page = wait_page(driver, lambda p: p["state"] == "live" and
                         p["windowNote"].startswith("Rates, success and latency over the last"),
                         "a window of rates")
        assert not page["contentHidden"]
        opened = page["generated"]

        # The traffic, while the page is open.
        mesh = keep_alive_traffic(orders.port, "payment.default.svc", "/api/v1/process",
                                  MESH_REQUESTS, "POST")
        assert set(mesh) == {"payment-v1", "payment-v2"}, mesh
        via_gw = keep_alive_traffic(gw.port, "payment.example.com", "/api/v1/pay",
                                    GATEWAY_REQUESTS, "GET")
        assert set(via_gw) == {"payment-v1", "payment-v2"}, via_gw
        # payment-security lets orders POST only: these are denied by payment-v1's sidecar.
        assert keep_alive_traffic(orders.port, "payment-v1", "/api/v1/process", DENIED,
                                  "GET") == {403: DENIED}

        def cell(table, key, col):
            return table.get(key, {}).get(col)

        def split_key(vs_name, dest):
            return f"default/{vs_name}|primary|{dest}"

        want_rules = {"default/payment-security#0": allowed["orders"] + MESH_REQUESTS,
                      "default/payment-gateway-access#0": allowed["gateway"] + GATEWAY_REQUESTS}
        denial = "payment-v1|orders.default|default-deny"

        def shows_the_traffic(p):
            return (all(cell(p["splits"], split_key("payment", d), "requests-window") == str(n)
                        for d, n in mesh.items()) and
                    all(cell(p["splits"], split_key("payment-service", d), "requests-window") ==
                        str(n) for d, n in via_gw.items()) and
                    all(cell(p["rules"], r, "allowed") == str(n) for r, n in want_rules.items())
                    and cell(p["denials"], denial, "denied-window") == str(DENIED))

        page = wait_page(driver, shows_the_traffic, "the traffic sent, split as the apps saw it")
        # It got there by itself: the page polls, nobody reloaded it.
        assert page["generated"] > opened
        assert page["state"] == "live" and not page["contentHidden"]

        # Services: the demo's, with what went to each in the window.
        services = page["services"]
        assert {"payment-v1", "payment-v2", "orders", "web-v1", "web-v2"} <= set(services), \
            services
        expect = {"payment-v1": mesh["payment-v1"] + via_gw["payment-v1"] + DENIED,
                  "payment-v2": mesh["payment-v2"] + via_gw["payment-v2"]}
        for name, n in expect.items():
            row = services[name]
            assert row["requests-window"] == str(n), (name, row)
            assert int(row["requests-total"]) >= n, (name, row)
            assert row["success"] == "100.0%", (name, row)  # a 403 is an answer, not a failure
            assert row["sidecars"] == "1" and row["namespace"] == "default", (name, row)
            assert number(row["rps"]) > 0, (name, row)
            p50, p95, p99 = (number(row[c]) for c in ("p50", "p95", "p99"))
            assert row["p50"].endswith(" ms") and 0 < p50 <= p95 <= p99 <= 10000, (name, row)
        assert services["web-v1"]["requests-window"] == "0"

        # The splits: configured weights beside what the proxies counted, which is exactly what
        # the apps answered, and within the statistical bound of 90/10 for the count sent.
        for vs_name, seen, n in (("payment", mesh, MESH_REQUESTS),
                                 ("payment-service", via_gw, GATEWAY_REQUESTS)):
            for dest, weight in (("payment-v1", 90), ("payment-v2", 10)):
                row = page["splits"][split_key(vs_name, dest)]
                assert row["weight"] == f"{weight}%", row
                share = number(row["share-window"]) / 100
                assert abs(share - seen[dest] / n) < 0.0006, (vs_name, dest, row, seen)
                assert abs(share - weight / 100) <= binomial_bound(n, weight / 100), \
                    (vs_name, dest, row)

        # Every proxy, SYNCED, its stats read.
        ids = live.meshd.proxy_ids()
        assert sorted(page["proxies"]) == ids
        for pid, row in page["proxies"].items():
            assert row["status"] == "SYNCED" and row["stats"] == "read", (pid, row)
            assert row["acked"] == row["latest"] and re.fullmatch(r"[0-9a-f]{16}", row["acked"])
        assert page["proxies"][gw.id]["role"] == "gateway"
        assert page["proxies"][gw.id]["target"] == "external-gateway"
        assert page["proxies"][v1.id]["target"] == "payment-v1"
        assert page["proxies"][v2.id]["address"] == v2.inbound

        # The security policies and the denials.
        policies = {p["name"]: p["text"] for p in page["policies"]}
        assert "mTLS strict, CA internal-ca" in policies["default/payment-security"], policies
        assert "orders.default.svc" in policies["default/payment-security"]
        assert "default/payment-gateway-access" in policies
        row = page["denials"][denial]
        assert row["denied-total"] == str(DENIED) and row["rule"] == "default-deny", row
        assert row["last"] not in ("", "\u2014", "before meshd looked"), row

        # The page ran clean and fetched nothing but meshd's own files and summaries.
        problems = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not problems, problems
        assert page["resources"] and all(
            r.startswith(live.meshd.url + "/") for r in page["resources"]), page["resources"]
        assert {live.meshd.url + "/ui/app.js", live.meshd.url + "/ui/style.css"} <= \
            set(page["resources"])
        save_screenshot(driver, tmp_path)
    finally:
        driver.quit()


def test_dashboard_in_chromium_asks_for_the_token_and_says_when_off(live, tmp_path):
    live.start_meshd(["--auth-reads"])
    m = live.meshd
    token = m.token_path.read_text().strip()
    driver = chromium(tmp_path)
    try:
        driver.get(m.url + "/ui")
        wait_page(driver, lambda p: p["state"] == "auth", "that it needs the token")
        assert driver.find_element("id", "token-form").is_displayed()
        # The token in the address's fragment (never sent to meshd in the URL) is used, then
        # taken out of the address bar.
        driver.get(m.url + "/ui#token=" + token)
        wait_page(driver, lambda p: p["state"] == "live", "the summary with the token")
        assert "token" not in driver.current_url
        assert not driver.find_element("id", "token-form").is_displayed()

        # Turned off while open: the page says why.
        m.apply([{"apiVersion": API, "kind": "MeshConfig", "metadata": {"name": "native"},
                  "spec": {"provider": "native", "dashboard": {"enabled": False}}}])
        page = wait_page(driver, lambda p: p["state"] == "off", "that the dashboard is off")
        assert page["contentHidden"]
        message = driver.find_element("id", "message").text
        assert "dashboard.enabled: false" in message, message
        problems = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and
                    "/v1/ui/summary" not in e["message"]]  # the 401 and 404 it was shown
        assert not problems, problems
    finally:
        driver.quit()
