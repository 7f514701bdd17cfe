# SPDX-License-Identifier: Apache-2.0
"""`meshctl analyze` as a user runs it: every finding on crafted bad files (with file:line),
the exit status (1 only for errors), JSON output, files over a store, and the registry-aware
findings against a meshd API (a small stand-in speaking docs/api.md, and the real meshd when it
is built)."""
import http.server
import json
import os
import re
import subprocess
import threading
import urllib.request

import pytest

from conftest import EXAMPLES, check_sanitizer_output, build_dir
from proxy_fixtures import Process, free_ports, wait_until

DOC = "apiVersion: mesh.clusterdb.io/v1\n"

SERVICES = DOC + """kind: Service
metadata: {name: payment-v1}
spec:
  endpoints: ["127.0.0.1:18081"]
---
""" + DOC + """kind: Service
metadata: {name: orders}
spec: {}
"""

# One line per finding: SEVERITY [CODE] (KIND NS/NAME WHERE) PATH: message
FINDING = re.compile(r"^(Error|Warning) \[(MESH\d{4})\] \((\w+) ([a-z0-9-]+)/([a-z0-9-]+)"
                     r"(?: (.+?))?\) (spec\S*): (.*)$")


def env():
    e = dict(os.environ)
    for k in ("MESH_STORE", "MESH_SERVER", "MESH_TOKEN", "MESH_TOKEN_FILE"):
        e.pop(k, None)
    return e


def analyze(meshctl, *args, input=None, cwd=None, extra_env=None):
    e = env()
    if extra_env:
        e.update(extra_env)
    cmd = [str(meshctl), "analyze"] + [str(a) for a in args]
    proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=30, env=e,
                          cwd=cwd)
    check_sanitizer_output(proc.stderr, cmd[1:])
    return proc.returncode, proc.stdout, proc.stderr


def findings(out):
    """(severity, code, kind, ns, name, where, path, message) for each finding line."""
    rows = []
    for line in out.splitlines():
        m = FINDING.match(line)
        if m:
            rows.append(m.groups())
    return rows


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_examples_have_no_errors(meshctl, tmp_path):
    rc, out, err = analyze(meshctl, "-f", EXAMPLES)
    assert rc == 0, out + err
    assert not [f for f in findings(out) if f[0] == "Error"], out
    assert re.search(r"in 15 resources\.$", out.strip()), out


def test_examples_in_a_store_have_no_errors(mesh):
    mesh.apply_examples()
    rc, out, err = mesh.run("analyze")
    assert rc == 0, out + err
    assert not [f for f in findings(out) if f[0] == "Error"], out
    # Stored resources carry no file position.
    for f in findings(out):
        assert f[5] is None, out


def test_destination_without_service(meshctl, tmp_path):
    p = write(tmp_path, "split.yaml", SERVICES + "---\n" + DOC + """kind: VirtualService
metadata:
  name: payment-service
spec:
  hosts: [payment.example.com]
  http_routes:
    - name: primary
      destinations:
        - host: payment-v1
          weight: 90
        - host: payment-v2
          weight: 10
""")
    rc, out, err = analyze(meshctl, "-f", p)
    assert rc == 1, out + err
    rows = findings(out)
    assert len(rows) == 1, out
    sev, code, kind, ns, name, where, path, msg = rows[0]
    assert (sev, code, kind, ns, name) == ("Error", "MESH0101", "VirtualService", "default",
                                           "payment-service")
    # The line and column of "payment-v2" in the file.
    assert where == f"{p}:23:17", out
    assert path == "spec.http_routes[0].destinations[1].host"
    assert msg.startswith("Service not found: payment-v2 has no registered endpoints"), msg
    assert "1 error and 0 warnings in 3 resources." in out


def test_two_virtual_services_claim_one_host(meshctl, tmp_path):
    vs = DOC + """kind: VirtualService
metadata: {{name: {name}}}
spec:
  hosts: [shop.example.com, {extra}]
  http_routes:
    - destinations: [{{host: payment-v1}}]
"""
    a = write(tmp_path, "a.yaml", SERVICES + "---\n" + vs.format(name="web-b", extra="b.example.com"))
    b = write(tmp_path, "b.yaml", vs.format(name="web-a", extra="a.example.com"))
    rc, out, err = analyze(meshctl, "-f", a, "-f", b)
    assert rc == 1, out + err
    rows = findings(out)
    assert [(r[1], r[4], r[5], r[6]) for r in rows] == [
        ("MESH0102", "web-b", f"{a}:16:11", "spec.hosts[0]")], out
    assert "host shop.example.com is also claimed for the sidecars by VirtualService " \
           "default/web-a" in rows[0][7]


def test_shadowed_route_is_a_warning(meshctl, tmp_path):
    p = write(tmp_path, "shadow.yaml", SERVICES + "---\n" + DOC + """kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.example.com]
  http_routes:
    - name: everything-api
      matches: [{path: {prefix: /api/}}]
      destinations: [{host: payment-v1}]
    - name: v2
      matches: [{path: /api/v2/pay, method: POST, headers: {x-canary: "1"}}]
      destinations: [{host: payment-v1}]
    - name: other
      matches: [{path: /other}]
      destinations: [{host: payment-v1}]
""")
    rc, out, err = analyze(meshctl, "-f", p)
    assert rc == 0, out + err  # warnings only
    rows = findings(out)
    assert [(r[0], r[1], r[5], r[6]) for r in rows] == [
        ("Warning", "MESH0103", f"{p}:21:7", "spec.http_routes[1]")], out
    assert 'route 1 ("v2") is never used: the earlier route 0 ("everything-api")' in rows[0][7]


def test_policies_naming_unknown_services(meshctl, tmp_path):
    p = write(tmp_path, "policies.yaml", SERVICES + "---\n" + DOC + """kind: CircuitBreaker
metadata: {name: cb}
spec:
  service: payment-svc
  max_connections: 10
---
""" + DOC + """kind: FaultInjection
metadata: {name: fi}
spec:
  service: payment-v1
  delay: 1s
---
""" + DOC + """kind: SecurityPolicy
metadata: {name: sp}
spec:
  authorization:
    - from: [orders.default.svc]
      to: [payment-v1.default.svc, ghost.default.svc]
""")
    rc, out, err = analyze(meshctl, "-f", p)
    assert rc == 0, out + err
    rows = findings(out)
    assert [(r[0], r[1], r[2], r[4], r[6]) for r in rows] == [
        ("Warning", "MESH0105", "CircuitBreaker", "cb", "spec.service"),
        ("Warning", "MESH0105", "SecurityPolicy", "sp", "spec.authorization[0].to[1]"),
    ], out
    assert rows[0][5] == f"{p}:16:12"
    assert "no Service payment-svc and no VirtualService payment-svc in namespace default" \
        in rows[0][7]
    assert "no Service default/ghost" in rows[1][7]


def test_json_output(meshctl, tmp_path):
    p = write(tmp_path, "bad.json", json.dumps([
        {"apiVersion": "mesh.clusterdb.io/v1", "kind": "VirtualService",
         "metadata": {"name": "vs", "namespace": "shop"},
         "spec": {"hosts": ["x.example.com"],
                  "http_routes": [{"destinations": [{"host": "nowhere"}]}]}}], indent=2))
    rc, out, err = analyze(meshctl, "-f", p, "-o", "json")
    assert rc == 1, out + err
    doc = json.loads(out)
    assert doc["errors"] == 1 and doc["warnings"] == 0 and doc["resources"] == 1
    assert doc["registry"] is False
    (f,) = doc["findings"]
    assert f["code"] == "MESH0101" and f["title"] == "ServiceNotFound"
    assert f["severity"] == "Error"
    assert f["resource"] == {"kind": "VirtualService", "namespace": "shop", "name": "vs"}
    assert f["path"] == "spec.http_routes[0].destinations[0].host"
    assert f["file"] == str(p) and f["document"] == 1
    assert f["line"] == 17 and f["column"] == 23
    assert "nowhere has no registered endpoints" in f["message"]


def test_files_over_a_store(mesh, tmp_path):
    """-f with --store: the files as they would be once applied over what is stored."""
    mesh.apply_examples()
    p = write(tmp_path, "change.yaml", DOC + """kind: VirtualService
metadata: {name: payment-service}
spec:
  hosts: [payment.example.com]
  http_routes:
    - destinations: [{host: payment-v2}]
---
""" + DOC + """kind: VirtualService
metadata: {name: web-service-2}
spec:
  hosts: [web.example.com]
  http_routes:
    - destinations: [{host: web-v3}]
""")
    rc, out, err = mesh.run("analyze", "-f", p)
    assert rc == 1, out + err
    rows = findings(out)
    codes = sorted((r[1], r[4]) for r in rows if r[0] == "Error")
    # payment-v2 is stored; web-v3 is not; web.example.com is the stored web-service's too.
    assert codes == [("MESH0101", "web-service-2"), ("MESH0102", "web-service-2")], out
    # Alone, the file lacks payment-v2 too, and nothing conflicts.
    rc, out, err = mesh.run("analyze", "-f", p, "--local")
    assert rc == 1
    codes = sorted((r[1], r[4]) for r in findings(out))
    assert codes == [("MESH0101", "payment-service"), ("MESH0101", "web-service-2")], out
    # Nothing was written.
    assert [r["metadata"]["name"] for r in mesh.get_json("vs")] == [
        "payment", "payment-service", "web-service"]


def test_stdin_and_invalid_input(meshctl, tmp_path):
    text = SERVICES + "---\n" + DOC + """kind: VirtualService
metadata: {name: vs}
spec:
  hosts: [x.example.com]
  http_routes: [{destinations: [{host: nope}]}]
"""
    rc, out, err = analyze(meshctl, "-f", "-", input=text)
    assert rc == 1, out + err
    (row,) = findings(out)
    assert row[1] == "MESH0101" and row[5] == "<stdin> (document 3)", out

    bad = write(tmp_path, "bad.yaml", DOC + "kind: VirtualService\nmetadata: {name: vs}\n"
                "spec: {hosts: [x.example.com], http_routes: [{destinations: "
                "[{host: a, weight: 20}, {host: b, weight: 20}]}]}\n")
    rc, out, err = analyze(meshctl, "-f", bad)
    assert rc == 1
    assert "weights sum to 40, must be 100" in err, err
    assert out == ""


def test_usage_errors(meshctl, tmp_path):
    for args in (["-o", "yaml"], ["--local"], ["stray"], ["--bogus"]):
        rc, out, err = analyze(meshctl, *args, cwd=tmp_path)
        assert rc == 2, (args, out, err)
        assert "meshctl help analyze" in err
    rc, out, err = analyze(meshctl, "--help")
    assert rc == 0 and "MESH0104" in out


# --- with a registry: a stand-in meshd serving the documented read API ---


class FakeMeshd:
    """Answers GET /v1/{Kind} and GET /v1/proxies as docs/api.md says; records requests."""

    def __init__(self, resources, proxies):
        self.resources = resources
        self.proxies = proxies
        self.paths = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.paths.append(self.path)
                if self.path == "/v1/proxies":
                    body = {"items": outer.proxies}
                elif self.path == "/v1/ca":
                    body = {"trust_domain": "cluster.local", "trust_bundle": "",
                            "roots": [{"name": "mesh-root"}]}
                elif self.path.startswith("/v1/") and self.path.count("/") == 2:
                    kind = self.path[len("/v1/"):]
                    body = {"items": [r for r in outer.resources if r["kind"] == kind]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def doc(kind, name, spec, ns="default"):
    return {"apiVersion": "mesh.clusterdb.io/v1", "kind": kind,
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


LIVE_RESOURCES = [
    doc("Service", "payment-v1", {}),
    doc("Service", "payment-v2", {}),
    doc("VirtualService", "payment-service", {
        "hosts": ["payment.example.com"], "gateways": ["mesh", "external-gateway"],
        "http_routes": [{"destinations": [{"host": "payment-v1", "weight": 90},
                                          {"host": "payment-v2", "weight": 10}]}]}),
]

SIDECAR_V1 = {"id": "payment-v1.default-1", "role": "sidecar", "service": "payment-v1",
              "namespace": "default", "gateway": None, "labels": {"version": "v1"},
              "address": "127.0.0.1:16006", "admin": "127.0.0.1:16000"}
SIDECAR_V2 = dict(SIDECAR_V1, id="payment-v2.default-2", service="payment-v2",
                  address="127.0.0.1:16007")
GATEWAY = {"id": "external-gateway-3", "role": "gateway", "service": None,
           "namespace": "default", "gateway": "external-gateway", "labels": {},
           "address": None, "admin": "127.0.0.1:15000"}


@pytest.fixture
def fake_meshd():
    servers = []

    def start(resources, proxies):
        s = FakeMeshd(resources, proxies)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def test_registry_findings_against_meshd_api(meshctl, fake_meshd, tmp_path):
    server = fake_meshd(LIVE_RESOURCES, [SIDECAR_V1])
    rc, out, err = analyze(meshctl, "--server", server.url, cwd=tmp_path)
    assert rc == 1, out + err
    rows = findings(out)
    assert [(r[0], r[1], r[6]) for r in rows] == [
        ("Error", "MESH0101", "spec.http_routes[0].destinations[1].host"),
        ("Error", "MESH0104", "spec.gateways[1]"),
    ], out
    assert rows[0][7].startswith("Service not found: payment-v2 has no registered endpoints: "
                                 "Service default/payment-v2 lists no endpoints"), rows[0][7]
    assert "gateway default/external-gateway is not served by any registered gateway proxy" \
        in rows[1][7]
    assert "/v1/proxies" in server.paths
    # The same through $MESH_SERVER, as JSON.
    rc, out, err = analyze(meshctl, "-o", "json", cwd=tmp_path,
                           extra_env={"MESH_SERVER": server.url})
    assert rc == 1
    assert json.loads(out)["registry"] is True

    # Once payment-v2's sidecar and the gateway have registered, nothing is wrong.
    server.proxies = [SIDECAR_V1, SIDECAR_V2, GATEWAY]
    rc, out, err = analyze(meshctl, "--server", server.url, cwd=tmp_path)
    assert rc == 0, out + err
    assert "No problems found in 3 resources." in out


def test_file_over_meshd_uses_its_registry(meshctl, fake_meshd, tmp_path):
    server = fake_meshd(LIVE_RESOURCES, [SIDECAR_V1, SIDECAR_V2])
    p = write(tmp_path, "orders.yaml", DOC + """kind: VirtualService
metadata: {name: orders}
spec:
  hosts: [orders.example.com]
  http_routes:
    - destinations: [{host: orders}]
    - destinations: [{host: payment-v1}]
""")
    rc, out, err = analyze(meshctl, "--server", server.url, "-f", p, cwd=tmp_path)
    assert rc == 1, out + err
    rows = findings(out)
    assert sorted((r[1], r[4]) for r in rows) == [
        ("MESH0101", "orders"), ("MESH0103", "orders"), ("MESH0104", "payment-service")], out
    # Registered only (no Service resource): orders' sidecar is enough.
    server.proxies = [SIDECAR_V1, SIDECAR_V2, GATEWAY,
                      dict(SIDECAR_V1, id="orders-1", service="orders", address="127.0.0.1:16010")]
    rc, out, err = analyze(meshctl, "--server", server.url, "-f", p, cwd=tmp_path)
    assert rc == 0, out + err
    assert [(r[1], r[4]) for r in findings(out)] == [("MESH0103", "orders")]


def test_unreachable_meshd(meshctl, tmp_path):
    (port,) = free_ports(1)
    rc, out, err = analyze(meshctl, "--server", f"http://127.0.0.1:{port}", cwd=tmp_path)
    assert rc == 1
    assert f"127.0.0.1:{port}" in err and "error:" in err


# --- the real meshd, when it is built ---


def meshd_path():
    return build_dir() / "meshd"


@pytest.mark.skipif(not os.access(meshd_path(), os.X_OK), reason="meshd is not built")
def test_against_real_meshd(meshctl, tmp_path):
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    meshd = Process("meshd", [meshd_path(), "--data-dir", data, "--listen", f"127.0.0.1:{port}"],
                    tmp_path)
    try:
        def up():
            try:
                with urllib.request.urlopen(url + "/v1/version", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(up, 10, what="meshd to answer")
        token = (data / "token").read_text().strip()
        e = {"MESH_TOKEN": token}
        live = write(tmp_path, "live.json", json.dumps(LIVE_RESOURCES))
        applied = subprocess.run([str(meshctl), "--server", url, "apply", "-f", live],
                                 capture_output=True, text=True, timeout=30, env=dict(env(), **e))
        assert applied.returncode == 0, applied.stdout + applied.stderr

        def register(p):
            body = {k: v for k, v in p.items() if k != "id" and v is not None}
            req = urllib.request.Request(f"{url}/v1/proxies/{p['id']}", method="PUT",
                                         data=json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as r:
                assert r.status in (200, 201)

        register(SIDECAR_V1)
        rc, out, err = analyze(meshctl, "--server", url, cwd=tmp_path, extra_env=e)
        assert rc == 1, out + err
        assert sorted(r[1] for r in findings(out)) == ["MESH0101", "MESH0104"], out
        register(SIDECAR_V2)
        register(GATEWAY)
        rc, out, err = analyze(meshctl, "--server", url, cwd=tmp_path, extra_env=e)
        assert rc == 0, out + err
    finally:
        meshd.stop()
    assert meshd.sanitizer_report() is None, meshd.stderr()
