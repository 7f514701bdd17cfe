# SPDX-License-Identifier: Apache-2.0
"""Prometheus and Grafana, end to end: meshd's Prometheus HTTP service discovery
(/v1/prometheus/targets), `meshctl prometheus-config`, `meshctl dashboards` (files, and pushed to
Grafana), mesh_configure_observability() through examples/c/observability, and a real Prometheus
server (Debian package `prometheus`) that finds the proxies through meshd, scrapes them, and
answers PromQL with exactly the traffic the test sent through a 90/10 split.

Grafana is not a Debian package: the push is checked against a small fake of its dashboard API
(POST /api/dashboards/db) that records what it gets. Every process is started on loopback ports
and stopped by PID; every wait is bounded.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from conftest import base_env, build_dir, check_sanitizer_output, meshctl_path
from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    Metrics,
    Process,
    free_ports,
    lab,
    proxy_binaries,
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
    split,
    weights_of,
)

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
DASHBOARD_FILES = ("mesh-overview.json", "mesh-service.json", "mesh-proxy.json")
# Labels meshd's service discovery gives every target: in PromQL they are not metric names.
TARGET_LABELS = {"mesh_proxy", "mesh_role", "mesh_namespace", "mesh_service", "mesh_gateway"}
# Series Prometheus makes itself for every target.
PROMETHEUS_SERIES = {"up"}
PROMQL_WORDS = {"sum", "rate", "increase", "by", "without", "histogram_quantile", "or", "and",
                "unless", "vector", "time", "label_values", "le", "bool", "on", "ignoring"}
REQUESTS = 1000


def meshctl(*args, env=None, timeout=30):
    """Runs meshctl ARGS (no --store unless given); returns the CompletedProcess."""
    argv = [str(meshctl_path()), *map(str, args)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else base_env())
    check_sanitizer_output(proc.stderr, argv[1:])
    return proc


def http_get(url, token=None, timeout=5):
    """(status, headers, body bytes) of GET url."""
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def targets(meshd, token=None):
    status, _, body = http_get(meshd.url + "/v1/prometheus/targets", token)
    assert status == 200, (status, body)
    return json.loads(body)


def sidecar_group(p, service_name, version=None):
    labels = {"__metrics_path__": "/metrics", "mesh_proxy": p.id, "mesh_role": "sidecar",
              "mesh_namespace": "default", "mesh_service": service_name}
    if version:
        labels["mesh_label_version"] = version
    return {"targets": [f"127.0.0.1:{p.admin_port}"], "labels": labels}


# --- a fake Grafana ---


class FakeGrafana:
    """Grafana's dashboard API as the mesh uses it: POST /api/dashboards/db with {"dashboard",
    "overwrite"}, answered as Grafana does, every request recorded. With user/password or token
    set, requests must carry those credentials (basic or bearer), else 401 as Grafana answers."""

    def __init__(self, user=None, password=None, token=None, fail_status=None):
        self.user, self.password, self.token = user, password, token
        self.fail_status = fail_status
        self.requests = []  # (method, path, {lower-case header: value}, body bytes)
        self.dashboards = {}  # uid -> (version, dashboard)
        self.lock = threading.Lock()
        grafana = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, doc):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._record(b"")
                self._answer(404, {"message": "Not found"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._record(body)
                grafana.handle(self, body)

            def _record(self, body):
                with grafana.lock:
                    grafana.requests.append((self.command, self.path,
                                             {k.lower(): v for k, v in self.headers.items()},
                                             body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def authorized(self, headers):
        want = None
        if self.token:
            want = "Bearer " + self.token
        elif self.user:
            want = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return want is None or headers.get("Authorization") == want

    def handle(self, h, body):
        if h.path != "/api/dashboards/db":
            return h._answer(404, {"message": "Not found"})
        if not self.authorized(h.headers):
            return h._answer(401, {"message": "Invalid username or password"})
        if self.fail_status:
            return h._answer(self.fail_status, {"message": "Internal Server Error"})
        try:
            doc = json.loads(body)
        except ValueError:
            return h._answer(400, {"message": "bad request data"})
        dash = doc.get("dashboard")
        if not isinstance(dash, dict) or not dash.get("title"):
            return h._answer(400, {"message": "Dashboard title cannot be empty"})
        uid = dash.get("uid")
        with self.lock:
            if uid in self.dashboards and not doc.get("overwrite"):
                return h._answer(412, {"message": "A dashboard with the same uid already exists",
                                       "status": "name-exists"})
            version = self.dashboards.get(uid, (0, None))[0] + 1
            self.dashboards[uid] = (version, dash)
        slug = re.sub(r"[^a-z0-9]+", "-", dash["title"].lower()).strip("-")
        h._answer(200, {"id": len(self.dashboards), "uid": uid, "url": f"/d/{uid}/{slug}",
                        "status": "success", "version": version, "slug": slug})

    def posts(self):
        with self.lock:
            return [(p, hd, json.loads(b)) for m, p, hd, b in self.requests if m == "POST"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def grafana():
    made = []

    def make(**kw):
        g = FakeGrafana(**kw)
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()


# --- a real Prometheus ---


class Prometheus(Process):
    """/usr/bin/prometheus on a free loopback port, with its config and TSDB in the test's
    directory."""

    def __init__(self, config_text, log_dir):
        if not os.access(PROMETHEUS, os.X_OK):
            pytest.fail(f"{PROMETHEUS} is missing: apt-get install -y prometheus "
                        "(scripts/deps.sh lists it)")
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = log_dir / "prometheus.yml"
        self.config_path.write_text(config_text)
        tsdb = log_dir / "prometheus-data"
        super().__init__("prometheus", [
            PROMETHEUS, f"--config.file={self.config_path}", f"--storage.tsdb.path={tsdb}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h",
        ], log_dir)

    def wait_ready(self):
        def ready():
            if not self.alive():
                pytest.fail(f"prometheus exited ({self.proc.poll()}):\n{self.stderr()}")
            try:
                return http_get(self.url + "/-/ready", timeout=1)[0] == 200
            except OSError:
                return False

        wait_until(ready, 30, interval=0.1, what="prometheus /-/ready")

    def api(self, path, **params):
        status, _, body = http_get(f"{self.url}{path}?{urllib.parse.urlencode(params)}")
        doc = json.loads(body)
        assert status == 200 and doc["status"] == "success", (path, params, status, doc)
        return doc["data"]

    def query(self, promql):
        """An instant query's vector: [(labels, float value)]."""
        data = self.api("/api/v1/query", query=promql)
        assert data["resultType"] == "vector", data
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]


# --- the dashboards' PromQL ---


def dashboards_from(directory):
    return {f: json.loads((directory / f).read_text()) for f in DASHBOARD_FILES}


def queries(dash):
    """Every PromQL expression of a dashboard: its panels' targets and its variables' queries."""
    out = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            q = var["query"]
            out.append(q["query"] if isinstance(q, dict) else q)
    return out


def metric_names(expr):
    """The metric names an expression reads: identifiers that select series (followed by { or
    [, or standing alone), leaving out functions, keywords, label names and string literals."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # range durations ([$__rate_interval], [1m])
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = m.group(0)
        before = text[max(0, m.start() - 1):m.start()]
        if word in PROMQL_WORDS or before == "$" or re.fullmatch(r"\d+", word):
            continue
        names.add(word)
    # label_values(METRIC, LABEL): the second argument is a label.
    for m in re.finditer(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*(\w+)\s*\)", expr):
        names.discard(m.group(2))
        names.add(m.group(1))
    return names


def family_of(name, types):
    """The family a series name belongs to (histograms export _bucket, _sum and _count)."""
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return base
    return None


def write_dashboards(tmp_path):
    out_dir = tmp_path / "dashboards"
    proc = meshctl("dashboards", "-o", out_dir)
    assert proc.returncode == 0, proc.stderr
    for f in DASHBOARD_FILES:
        assert f"wrote {out_dir / f}" in proc.stdout, proc.stdout
    return dashboards_from(out_dir)


# --- tests: service discovery ---


def test_targets_list_every_live_proxy_with_its_labels(live):
    live.start_meshd(["--heartbeat-ttl", "2s", "--heartbeat-interval", "200ms"])
    assert targets(live.meshd) == []  # no proxy yet: an empty list, as http_sd_config wants
    apps = {n: live.echo(n) for n in ("payment-v1", "payment-v2", "orders")}
    v1 = live.sidecar("payment-v1", apps["payment-v1"], version="v1")
    v2 = live.sidecar("payment-v2", apps["payment-v2"], version="v2")
    orders = live.sidecar("orders", apps["orders"])
    gw = live.gateway("external-gateway")

    want = sorted([sidecar_group(v1, "payment-v1", "v1"), sidecar_group(v2, "payment-v2", "v2"),
                   sidecar_group(orders, "orders"),
                   {"targets": [f"127.0.0.1:{gw.admin_port}"],
                    "labels": {"__metrics_path__": "/metrics", "mesh_proxy": gw.id,
                               "mesh_role": "gateway", "mesh_namespace": "default",
                               "mesh_gateway": "external-gateway"}}],
                  key=lambda g: g["labels"]["mesh_proxy"])
    got = wait_until(lambda: (lambda t: t if len(t) == 4 else None)(targets(live.meshd)), SETTLE,
                     what="four targets")
    assert got == want
    # Every target is a proxy's admin listener serving Prometheus text at the path it names.
    for group in got:
        status, headers, body = http_get(f"http://{group['targets'][0]}/metrics")
        assert status == 200 and "text/plain" in headers["Content-Type"]
        assert "mesh_requests_total" in Metrics(body.decode()).types
    # HEAD reads too; writes are refused.
    req = urllib.request.Request(live.meshd.url + "/v1/prometheus/targets", method="HEAD")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    status, body = live.meshd.call("POST", "/v1/prometheus/targets", {})
    assert status == 405 and body["error"]["reason"] == "MethodNotAllowed", body

    # A proxy that stops deregisters and leaves the list at once; one killed leaves it when its
    # heartbeats lapse. The others stay.
    v2.stop()
    wait_until(lambda: v2.id not in [g["labels"]["mesh_proxy"] for g in targets(live.meshd)], 5,
               what="the stopped sidecar to leave the targets")
    orders.expect_death = True
    orders.signal(9)
    wait_until(lambda: orders.id not in [g["labels"]["mesh_proxy"] for g in targets(live.meshd)],
               SETTLE, what="the killed sidecar to leave the targets after the TTL")
    assert [g["labels"]["mesh_proxy"] for g in targets(live.meshd)] == sorted([v1.id, gw.id])


def test_targets_follow_meshd_read_policy(live):
    live.start_meshd(["--auth-reads"])
    url = live.meshd.url + "/v1/prometheus/targets"
    status, headers, body = http_get(url)
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer", body
    assert json.loads(body)["error"]["reason"] == "Unauthorized"
    assert http_get(url, token="0" * 64)[0] == 401
    token = live.meshd.token_path.read_text().strip()
    status, _, body = http_get(url, token=token)
    assert status == 200 and json.loads(body) == []


# --- tests: meshctl prometheus-config ---


def test_prometheus_config_is_valid_and_points_at_meshd(tmp_path):
    proc = meshctl("prometheus-config", "--server", "http://127.0.0.1:25010/", "--interval", "2s")
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["global"]["scrape_interval"] == "2s"
    (job,) = cfg["scrape_configs"]
    assert job["job_name"] == "mesh-proxies"
    assert job["scrape_interval"] == "2s" and job["scrape_timeout"] == "2s"
    (sd,) = job["http_sd_configs"]
    assert sd == {"url": "http://127.0.0.1:25010/v1/prometheus/targets", "refresh_interval": "2s"}
    path = tmp_path / "prometheus.yml"
    path.write_text(proc.stdout)
    check = subprocess.run([PROMTOOL, "check", "config", str(path)], capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr

    # With a token file Prometheus sends the token (by file: the token is never printed); with
    # an https:// meshd and --cacert it checks meshd's certificate with that CA. A long interval
    # keeps Prometheus' 10 s scrape timeout. The default server is meshd's default address.
    token = tmp_path / "token"
    token.write_text("a" * 64 + "\n")
    ca = tmp_path / "ca.pem"
    ca.write_text("not read by meshctl\n")
    env = base_env()
    env.pop("MESH_SERVER", None)
    env["MESH_TOKEN_FILE"] = str(token)
    proc = meshctl("prometheus-config", "--interval", "1m", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "a" * 64 not in proc.stdout
    (job,) = yaml.safe_load(proc.stdout)["scrape_configs"]
    assert job["scrape_interval"] == "1m" and job["scrape_timeout"] == "10s"
    assert job["http_sd_configs"] == [{
        "url": "http://127.0.0.1:15010/v1/prometheus/targets", "refresh_interval": "1m",
        "authorization": {"type": "Bearer", "credentials_file": str(token)}}]
    proc = meshctl("prometheus-config", "--server", "https://meshd.example:15443", "--token",
                   token, "--cacert", ca)
    assert proc.returncode == 0, proc.stderr
    (sd,) = yaml.safe_load(proc.stdout)["scrape_configs"][0]["http_sd_configs"]
    assert sd["tls_config"] == {"ca_file": str(ca)}
    assert sd["authorization"]["credentials_file"] == str(token)

    # A token only in $MESH_TOKEN cannot be referenced by file: left out, with a warning.
    env = base_env()
    env["MESH_TOKEN"] = "b" * 64
    proc = meshctl("prometheus-config", env=env)
    assert proc.returncode == 0 and "b" * 64 not in proc.stdout + proc.stderr
    assert "authorization" not in proc.stdout and "--token FILE" in proc.stderr


@pytest.mark.parametrize("args,message", [
    (["--interval", "soon"], "--interval:"),
    (["--interval", "0s"], "--interval: must be longer than 0"),
    (["extra"], 'unexpected argument "extra"'),
    (["--store", "/tmp/x"], "needs meshd"),
])
def test_prometheus_config_usage_errors(args, message):
    proc = meshctl("prometheus-config", *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_prometheus_config_missing_token_file_fails(tmp_path):
    proc = meshctl("prometheus-config", "--token", tmp_path / "nope")
    assert proc.returncode == 1 and "cannot read the token file" in proc.stderr


# --- tests: dashboards ---


def test_dashboards_read_only_metrics_a_real_proxy_exports(lab, tmp_path):
    """Every metric any dashboard queries is one a running meshproxy serves on /metrics (or
    Prometheus' own `up`); and the panels the issue asks for are there."""
    dashboards = write_dashboards(tmp_path)
    e = lab.echo("payment-v1")
    proxy = lab.proxy([service("payment-v1", e.addr),
                       virtual_service("payment", ["payment"], route("payment-v1"))])
    assert proxy.request(host="payment").status == 200
    types = proxy.metrics().types

    used = set()
    for name, dash in dashboards.items():
        assert dash["uid"] and dash["title"].startswith("ClusterDB Mesh")
        assert "clusterdb-mesh" in dash["tags"] and dash["id"] is None
        for expr in queries(dash):
            for metric in metric_names(expr) - TARGET_LABELS:
                used.add(metric)
                assert metric in PROMETHEUS_SERIES or family_of(metric, types), \
                    f"{name}: {metric} (in {expr!r}) is not exported by meshproxy"
        # Panels lay out on Grafana's 24-column grid without overlapping.
        cells = set()
        for p in dash["panels"]:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, p["title"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{name}: {p['title']} overlaps"
                    cells.add((x, y))
            assert p["targets"] and all(t["datasource"]["uid"] == "${datasource}"
                                        for t in p["targets"])
    # What the dashboards are for: per service RPS, success, latency from the histogram,
    # breaker overflows, ejections; per proxy connections and memory.
    for metric in ("mesh_requests_total", "mesh_request_duration_seconds_bucket",
                   "mesh_circuit_breaker_overflows_total", "mesh_outlier_ejections_total",
                   "mesh_downstream_connections_active", "mesh_upstream_connections_open",
                   "mesh_process_resident_memory_bytes"):
        assert metric in used, metric
    service_exprs = " ".join(queries(dashboards["mesh-service.json"]))
    for q in ("0.50", "0.95", "0.99"):
        assert f"histogram_quantile({q}, sum by (le) (rate(mesh_request_duration_seconds_bucket" \
               '{service="$service"}' in service_exprs
    proxy_titles = [p["title"] for p in dashboards["mesh-proxy.json"]["panels"]]
    assert "Client connections" in proxy_titles and "Resident memory" in proxy_titles


def test_proxy_exports_its_memory_cpu_and_descriptors(lab):
    e = lab.echo("payment-v1")
    proxy = lab.proxy([service("payment-v1", e.addr)])
    m = proxy.metrics()
    assert m.types["mesh_process_resident_memory_bytes"] == "gauge"
    assert m.types["mesh_process_cpu_seconds_total"] == "counter"
    assert m.types["mesh_process_open_fds"] == "gauge"
    (rss,) = [v for _, v in m.find("mesh_process_resident_memory_bytes")]
    status = int(re.search(r"VmRSS:\s+(\d+) kB",
                           open(f"/proc/{proxy.pid}/status").read()).group(1)) * 1024
    assert 0.5 * status < rss < 2 * status, (rss, status)  # the process's own figure
    (fds,) = [v for _, v in m.find("mesh_process_open_fds")]
    assert 0 < fds <= len(os.listdir(f"/proc/{proxy.pid}/fd")) + 2
    stats = json.loads(proxy.admin("/stats").body)
    assert stats["process_resident_memory_bytes"] > 0
    assert stats["process_open_fds"] > 0 and stats["process_cpu_seconds"] >= 0


def test_dashboards_push_to_grafana_with_basic_auth(grafana, tmp_path):
    g = grafana(user="admin", password="s3cret")
    proc = meshctl("dashboards", "--push", "--grafana", f"http://admin:s3cret@127.0.0.1:{g.port}")
    assert proc.returncode == 0, proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr
    posts = g.posts()
    assert [p for p, _, _ in posts] == ["/api/dashboards/db"] * 3
    auth = "Basic " + base64.b64encode(b"admin:s3cret").decode()
    for _, headers, body in posts:
        assert headers["authorization"] == auth
        assert headers["content-type"] == "application/json"
        assert set(body) == {"dashboard", "overwrite"} and body["overwrite"] is True
    assert [b["dashboard"]["uid"] for _, _, b in posts] == ["mesh-overview", "mesh-service",
                                                            "mesh-proxy"]
    # What was pushed is what the files hold.
    files = write_dashboards(tmp_path)
    assert [b["dashboard"] for _, _, b in posts] == [files[f] for f in DASHBOARD_FILES]
    for line, uid in zip(proc.stdout.splitlines(), ("mesh-overview", "mesh-service", "mesh-proxy")):
        assert line.startswith(f"pushed {uid} to http://127.0.0.1:{g.port}/d/{uid}/"), line
    assert not list(tmp_path.glob("*.json"))  # --push alone writes no file

    # Pushed again: replaced (overwrite), not refused.
    assert meshctl("dashboards", "--push", "--grafana",
                   f"http://admin:s3cret@127.0.0.1:{g.port}").returncode == 0
    assert {uid: v for uid, (v, _) in g.dashboards.items()} == {
        "mesh-overview": 2, "mesh-service": 2, "mesh-proxy": 2}


def test_dashboards_push_with_token_and_stored_endpoint(grafana, mesh, tmp_path):
    g = grafana(token="glsa_test_token")
    env = base_env()
    env["MESH_GRAFANA_TOKEN"] = "glsa_test_token"
    doc = {"apiVersion": "mesh.clusterdb.io/v1", "kind": "ObservabilityConfig",
           "metadata": {"name": "default"},
           "spec": {"prometheus_endpoint": "http://127.0.0.1:9090",
                    "grafana_endpoint": g.url + "/"}}
    mesh.ok("apply", "-f", "-", input=json.dumps(doc))
    out_dir = tmp_path / "out"
    proc = meshctl("--store", mesh.store, "dashboards", "--push", "-o", out_dir, env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(g.posts()) == 3
    assert all(h["authorization"] == "Bearer glsa_test_token" for _, h, _ in g.posts())
    assert sorted(os.listdir(out_dir)) == sorted(DASHBOARD_FILES)  # -o with --push: both


def test_dashboards_push_failures_are_reported(grafana, mesh):
    g = grafana(user="admin", password="right")
    proc = meshctl("dashboards", "--push", "--grafana", f"http://admin:wrong@127.0.0.1:{g.port}")
    assert proc.returncode == 1
    assert "refused the credentials (401: Invalid username or password)" in proc.stderr
    assert "wrong" not in proc.stderr
    assert len(g.posts()) == 1  # the first refusal stops the push

    down = free_ports(1)[0]
    proc = meshctl("dashboards", "--push", "--grafana", f"http://127.0.0.1:{down}")
    assert proc.returncode == 1
    assert f"cannot reach Grafana at http://127.0.0.1:{down}" in proc.stderr

    bad = grafana(fail_status=500)
    proc = meshctl("dashboards", "--push", "--grafana", bad.url)
    assert proc.returncode == 1 and "refused dashboard mesh-overview (500)" in proc.stderr

    proc = meshctl("--store", mesh.store, "dashboards", "--push")
    assert proc.returncode == 1 and "no Grafana to push to" in proc.stderr
    proc = meshctl("dashboards", "--grafana", g.url)
    assert proc.returncode == 2 and "--grafana goes with --push" in proc.stderr
    proc = meshctl("dashboards", "--push", "--grafana", "ftp://127.0.0.1/")
    assert proc.returncode == 1 and "must be an http:// or https:// URL" in proc.stderr


def test_configure_observability_stores_and_pushes(grafana, mesh):
    """The seed's configure_observability through libmesh (examples/c/observability.c)."""
    example = build_dir() / "examples" / "observability"
    g = grafana(user="admin", password="pw")
    env = base_env()
    env.update(MESH_GRAFANA_USER="admin", MESH_GRAFANA_PASSWORD="pw")
    proc = subprocess.run([str(example), str(mesh.store), g.url], capture_output=True, text=True,
                          timeout=60, env=env)
    check_sanitizer_output(proc.stderr, ["observability"])
    assert proc.returncode == 0, proc.stderr
    assert "ObservabilityConfig default/default" in proc.stdout
    assert f"grafana    {g.url} (dashboards pushed)" in proc.stdout
    auth = "Basic " + base64.b64encode(b"admin:pw").decode()
    assert all(h["authorization"] == auth for _, h, _ in g.posts())
    assert all(b["overwrite"] is True for _, _, b in g.posts())
    assert [b["dashboard"]["uid"] for _, _, b in g.posts()] == ["mesh-overview", "mesh-service",
                                                                "mesh-proxy"]
    oc = json.loads(mesh.ok("get", "oc", "default", "-o", "json"))
    assert oc["spec"]["prometheus_endpoint"] == "http://prometheus:9090"
    assert oc["spec"]["jaeger_endpoint"] == "http://jaeger:16686"

    # A Grafana that refuses: the call fails and says so, the configuration stays stored.
    refusing = grafana(user="admin", password="other")
    proc = subprocess.run([str(example), str(mesh.store), refusing.url], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 1
    assert "the ObservabilityConfig is stored, but dashboard mesh-overview was not pushed" in \
        proc.stderr and "refused the credentials" in proc.stderr
    assert "pw" not in proc.stderr.replace("MESH_GRAFANA_PASSWORD", "")
    assert len(refusing.posts()) == 1
    stored = mesh.ok("get", "oc", "default", "-o", "json")
    assert refusing.url in stored

    # Without Grafana nothing is pushed.
    proc = subprocess.run([str(example), str(mesh.store)], capture_output=True, text=True,
                          timeout=60, env=base_env())
    assert proc.returncode == 0, proc.stderr
    assert "grafana_endpoint" not in mesh.ok("get", "oc", "default", "-o", "json")


# --- test: a real Prometheus ---


def test_real_prometheus_discovers_scrapes_and_counts_the_split(live, tmp_path):
    # meshd with --auth-reads, so that Prometheus must present the token from its config.
    live.start_meshd(["--heartbeat-ttl", "3s", "--heartbeat-interval", "500ms", "--auth-reads"])
    apps = {n: live.echo(n) for n in ("payment-v1", "payment-v2", "orders")}
    v1 = live.sidecar("payment-v1", apps["payment-v1"], version="v1")
    v2 = live.sidecar("payment-v2", apps["payment-v2"], version="v2")
    orders = live.sidecar("orders", apps["orders"])
    live.meshd.apply([split(90, 10)])
    orders.wait_dump(lambda d: weights_of(d) == {"payment-v1": 90, "payment-v2": 10} and
                     has_endpoints(d, [("payment-v1", v1.inbound), ("payment-v2", v2.inbound)]),
                     "the 90/10 route with both endpoints")

    proc = meshctl("prometheus-config", "--server", live.meshd.url, "--token",
                   live.meshd.token_path, "--interval", "1s")
    assert proc.returncode == 0, proc.stderr
    prom = Prometheus(proc.stdout, tmp_path)
    live.lab.procs.append(prom)  # stopped by PID when the test ends, whatever happens
    prom.wait_ready()

    # Prometheus finds the three sidecars through meshd and scrapes each one.
    ids = {v1.id, v2.id, orders.id}

    def all_up():
        active = prom.api("/api/v1/targets", state="active")["activeTargets"]
        up = {t["labels"].get("mesh_proxy") for t in active if t["health"] == "up"}
        return active if up == ids and len(active) == 3 else None

    active = wait_until(all_up, 30, interval=0.2, what="prometheus to scrape the three sidecars")
    for t in active:
        assert t["labels"]["job"] == "mesh-proxies" and t["labels"]["mesh_namespace"] == "default"
        assert t["discoveredLabels"]["__metrics_path__"] == "/metrics"

    # The traffic: REQUESTS requests from orders through its sidecar to the 90/10 split.
    sent = {}
    for _ in range(REQUESTS):
        r = orders.request("payment")
        assert r.status == 200
        app = r.header("x-echo-name")
        sent[app] = sent.get(app, 0) + 1
    assert set(sent) == {"payment-v1", "payment-v2"}, sent

    # Once a scrape after the traffic landed, Prometheus' counts are exactly what was sent.
    client = f'mesh_requests_total{{job="mesh-proxies",mesh_proxy="{orders.id}",route="split"}}'

    def scraped_all():
        got = {m["service"]: v for m, v in prom.query(f"sum by (service) ({client})")}
        return got if sum(got.values()) == REQUESTS else None

    by_dest = wait_until(scraped_all, 20, interval=0.2, what="a scrape after the traffic")
    assert by_dest == {k: float(v) for k, v in sent.items()}
    # The split, as PromQL computes it, is within the statistical bound of 90/10 (binomial, four
    # standard deviations: 1000 * 0.9 +- 4 * sqrt(1000 * 0.9 * 0.1) ~ 900 +- 38).
    to_v1 = client.replace('route="split"', 'route="split",service="payment-v1"')
    (share,) = prom.query(f"sum({to_v1}) / sum({client})")
    assert 0.862 <= share[1] <= 0.938, share
    # Every request was 200, and each payment sidecar's inbound side counted the ones it served.
    assert prom.query(f'sum by (code) ({client})') == [({"code": "200"}, float(REQUESTS))]
    # (Each target is scraped on its own schedule: wait for the payment sidecars' scrapes too.)
    def inbound():
        got = prom.query('sum by (mesh_service) (mesh_requests_total{service=~"inbound[|].*",'
                         'mesh_role="sidecar"})')
        got = {m["mesh_service"]: v for m, v in got}
        return got if sum(got.values()) == REQUESTS else None

    served = wait_until(inbound, 10, interval=0.2, what="the payment sidecars' scrapes")
    assert served == {k: float(v) for k, v in sent.items()}
    # The duration histogram counts the same requests.
    (count,) = prom.query(f'sum(mesh_request_duration_seconds_count{{mesh_proxy="{orders.id}",'
                          'route="split"})')
    assert count[1] == REQUESTS

    # Every query of the dashboards runs on this Prometheus, and the main panels have data. A
    # rate needs two samples of a series in its window: wait for the scrape after the first.
    dashboards = write_dashboards(tmp_path)
    wait_until(lambda: prom.query(f"rate({client}[1m])"), 10, interval=0.2,
               what="two scrapes of the counters")
    subst = {"$__rate_interval": "1m", "$service": "payment-v1", "$proxy": orders.id}
    results = {}
    for dash in dashboards.values():
        for expr in queries(dash):
            if expr.startswith("label_values("):
                metric, label = re.match(r"label_values\((\w+), (\w+)\)", expr).groups()
                values = prom.api(f"/api/v1/label/{label}/values", **{"match[]": metric})
                results[expr] = values
                continue
            promql = expr
            for k, v in subst.items():
                promql = promql.replace(k, v)
            results[expr] = prom.query(promql)
    assert "payment-v1" in results["label_values(mesh_requests_total, service)"]
    assert orders.id in results["label_values(mesh_downstream_connections_active, mesh_proxy)"]
    assert results['sum(up{mesh_proxy!=""})'] == [({}, 3.0)]
    memory = [v for e, r in results.items() if e.startswith("mesh_process_resident_memory_bytes")
              for _, v in r]
    assert memory and memory[0] > 1_000_000
    per_code = results['sum by (code) (rate(mesh_requests_total{service="$service"}'
                       '[$__rate_interval]))']
    assert [m for m, _ in per_code] == [{"code": "200"}]

    assert prom.stop() == 0, prom.stderr()
