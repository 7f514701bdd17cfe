# SPDX-License-Identifier: Apache-2.0
"""meshd's REST API (docs/api.md) against real meshd processes: flags, the data directory and
its token, every route, bad input refused with the right status and nothing stored, limits
(body size, rate, token), proxies (registration, heartbeat, lapse, status) and the config watch
(immediate answer, 304 after its timeout, woken by an apply or a registration, acks).

Each meshd listens on a port the kernel picks (--listen 127.0.0.1:0) and says which on stderr;
it is stopped by PID with SIGTERM and must exit 0. With SAN=1 a sanitizer report fails the
test."""
import http.client
import json
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from conftest import build_dir
from proxy_fixtures import IO_TIMEOUT, START_TIMEOUT, Process, Response, read_all, wait_until

API = "mesh.clusterdb.io/v1"
READY = "meshd: listening on "


def meshd_path():
    return build_dir() / "meshd"


class Meshd(Process):
    """A meshd with its own data directory, on a port it picked itself."""

    def __init__(self, data_dir, log_dir, flags=(), name="meshd"):
        self.data_dir = data_dir
        argv = [meshd_path(), "--data-dir", data_dir, "--listen", "127.0.0.1:0", *flags]
        super().__init__(name, argv, log_dir)
        self.port = None

    def wait_ready(self):
        self.wait_for_stderr(READY)
        m = re.search(re.escape(READY) + r"127\.0\.0\.1:(\d+)", self.stderr())
        assert m, self.stderr()
        self.port = int(m.group(1))

    @property
    def token(self):
        return (self.data_dir / "token").read_text().strip()

    def request(self, method, path, body=None, token=True, headers=None, timeout=IO_TIMEOUT):
        """One request on a fresh connection. token: True = meshd's token, a string = that
        token, None/False = no Authorization header."""
        hdrs = dict(headers or {})
        if token is True:
            token = self.token
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return Response(r.status, [(k.lower(), v) for k, v in r.getheaders()], r.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def json(self, method, path, body=None, status=200, **kw):
        """A request that must answer status; returns the decoded JSON body."""
        r = self.request(method, path, body, **kw)
        assert r.status == status, r
        return json.loads(r.body) if r.body else None

    def store_version(self):
        return self.json("GET", "/v1/version")["store_version"]

    def everything(self):
        """Every stored resource of every kind (to prove nothing was written)."""
        out = {}
        for kind in ("vs", "sp", "cb", "fi", "svc", "meshconfig", "observabilityconfig",
                     "kubernetesconfig"):
            out[kind] = self.json("GET", f"/v1/{kind}")["items"]
        return out


class MeshdLab:
    """The meshds of one test; each is stopped by PID at the end and must exit 0."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.procs = []

    def start(self, flags=(), data_dir=None, name=None):
        name = name or f"meshd{len(self.procs)}"
        d = Meshd(data_dir or self.tmp_path / "data", self.tmp_path, flags=flags, name=name)
        self.procs.append(d)
        d.wait_ready()
        return d

    def close(self):
        problems = []
        for p in self.procs:
            was_running = p.alive()
            rc = p.stop()
            if was_running and (p.killed or rc != 0):
                problems.append(f"{p.name} {'had to be killed' if p.killed else f'exited {rc}'}"
                                " after SIGTERM")
            if p.sanitizer_report():
                problems.append(f"sanitizer report from {p.name}")
        for p in self.procs:
            print(f"--- {p.name} ({' '.join(p.argv)}) stderr ---\n{p.stderr()[-6000:]}")
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def meshd_binary():
    if not os.access(meshd_path(), os.X_OK):
        pytest.fail(f"{meshd_path()} is not built: run `make` first (or set MESH_BUILD)")


@pytest.fixture
def lab(meshd_binary, tmp_path):
    lab = MeshdLab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def meshd(lab):
    return lab.start()


# --- documents ---


def service(name, *endpoints, namespace=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": API, "kind": "Service", "metadata": meta,
            "spec": {"protocol": "http", "endpoints": list(endpoints)}}


def vs(name, host, *dests, namespace=None, gateways=None, version=None):
    """dests: (service, weight) pairs."""
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if version:
        meta["resource_version"] = version
    spec = {"hosts": [host],
            "http_routes": [{"destinations": [{"host": h, "weight": w} for h, w in dests]}]}
    if gateways:
        spec["gateways"] = gateways
    return {"apiVersion": API, "kind": "VirtualService", "metadata": meta, "spec": spec}


BAD_WEIGHTS_YAML = """apiVersion: mesh.clusterdb.io/v1
kind: VirtualService
metadata:
  name: payment
spec:
  hosts: [payment]
  http_routes:
  - destinations:
    - {host: payment-v1, weight: 90}
    - {host: payment-v2, weight: 5}
"""


def error_of(r, status):
    """The JSON error document of an answer that must have this status."""
    assert r.status == status, r
    assert r.header("content-type") == "application/json", r
    doc = json.loads(r.body)["error"]
    assert doc["status"] == status
    return doc


def sidecar(service_name, address, namespace="default", version="v1"):
    return {"role": "sidecar", "service": service_name, "namespace": namespace,
            "labels": {"version": version}, "address": address, "admin": "127.0.0.1:1"}


def config_endpoints(cfg, name):
    """The endpoint addresses of Service name in a watch answer."""
    for doc in cfg["resources"]:
        if doc["kind"] == "Service" and doc["metadata"]["name"] == name:
            return sorted(e if isinstance(e, str) else e["address"]
                          for e in doc["spec"].get("endpoints", []))
    return None


def config_vs_names(cfg):
    return sorted(d["metadata"]["name"] for d in cfg["resources"] if d["kind"] == "VirtualService")


# --- the process: flags, data dir, token, signals ---


def run_meshd(*args, timeout=10):
    return subprocess.run([str(meshd_path()), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_help_version_and_flag_errors(meshd_binary, tmp_path):
    r = run_meshd("--help")
    assert r.returncode == 0 and "Usage: meshd --data-dir DIR" in r.stdout
    for flag in ("--listen", "--auth-reads", "--max-body", "--rate", "--burst",
                 "--max-connections", "--heartbeat-ttl", "--heartbeat-interval"):
        assert flag in r.stdout
    r = run_meshd("--version")
    assert r.returncode == 0 and re.match(r"meshd \d+\.\d+\.\d+", r.stdout)

    cases = [
        ((), "--data-dir DIR is required"),
        (("--data-dir", tmp_path / "d", "--max-body", "lots"), "--max-body: \"lots\""),
        (("--data-dir", tmp_path / "d", "--rate", "-1"), "--rate: \"-1\""),
        (("--data-dir", tmp_path / "d", "--burst", "0"), "--burst: \"0\""),
        (("--data-dir", tmp_path / "d", "--max-connections", "0"), "--max-connections: \"0\""),
        (("--data-dir", tmp_path / "d", "--heartbeat-ttl", "3"), "--heartbeat-ttl: invalid duration"),
        (("--data-dir", tmp_path / "d", "--heartbeat-ttl", "1s", "--heartbeat-interval", "2s"),
         "must be shorter than --heartbeat-ttl"),
        (("--data-dir", tmp_path / "d", "--bogus"), "unknown flag --bogus"),
        (("--data-dir", tmp_path / "d", "extra"), "unexpected argument \"extra\""),
    ]
    for args, message in cases:
        r = run_meshd(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert "Run 'meshd --help' for usage." in r.stderr

    r = run_meshd("--data-dir", tmp_path / "d", "--listen", "127.0.0.1:99999")
    assert r.returncode == 1 and "--listen 127.0.0.1:99999" in r.stderr, r.stderr


def test_listen_port_taken_is_a_clear_error(lab, tmp_path):
    first = lab.start()
    r = run_meshd("--data-dir", tmp_path / "other", "--listen", f"127.0.0.1:{first.port}")
    assert r.returncode == 1
    assert f"--listen 127.0.0.1:{first.port}" in r.stderr and "in use" in r.stderr, r.stderr


def test_token_file_is_created_private_and_reused(lab, tmp_path):
    d = lab.start()
    path = tmp_path / "data" / "token"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    token = d.token
    assert re.fullmatch(r"[0-9a-f]{64}", token), token
    assert "created the admin token" in d.stderr()
    assert d.stop() == 0

    again = lab.start(name="again")
    assert again.token == token
    assert "created the admin token" not in again.stderr()
    assert again.request("PUT", "/v1/namespaces/default/svc/a", service("a"),
                         token=token).status == 201
    assert again.request("PUT", "/v1/namespaces/default/svc/b", service("b"),
                         token="0" * 64).status == 401


def test_a_token_readable_by_others_is_refused(meshd_binary, tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "token").write_text("a" * 64 + "\n")
    os.chmod(data / "token", 0o644)
    r = run_meshd("--data-dir", data, "--listen", "127.0.0.1:0")
    assert r.returncode == 1
    assert "is accessible to other users (mode 0644)" in r.stderr and "chmod 600" in r.stderr


def test_one_meshd_per_data_dir(lab, tmp_path):
    first = lab.start()
    r = run_meshd("--data-dir", tmp_path / "data", "--listen", "127.0.0.1:0")
    assert r.returncode == 1
    assert "is in use by another meshd" in r.stderr and f"pid {first.pid}" in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_meshd_with_status_0(lab, sig):
    d = lab.start()
    # a waiting watch must not hold the exit up
    d.request("PUT", "/v1/proxies/p1", sidecar("orders", "127.0.0.1:16006"))
    v = d.json("GET", "/v1/proxies/p1/config")["version"]
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(f"GET /v1/proxies/p1/config?after={v} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(0.1)
    os.kill(d.pid, sig)
    assert d.wait(5) == 0, d.stderr()
    assert "meshd stopping" in d.stderr()
    data, closed = read_all(s, 2)
    assert closed
    s.close()


def test_restart_keeps_resources_but_not_registrations(lab, tmp_path):
    d = lab.start()
    d.json("POST", "/v1/apply", [service("payment-v1", "127.0.0.1:18081"),
                                vs("payment", "payment", ("payment-v1", 100))])
    d.json("PUT", "/v1/proxies/p1", sidecar("orders", "127.0.0.1:16006"), status=201)
    before = d.everything()
    version = d.store_version()
    assert d.stop() == 0

    again = lab.start(name="again")
    assert again.everything() == before
    assert again.store_version() == version
    # registrations live in memory: the proxy learns it must register again
    error_of(again.request("POST", "/v1/proxies/p1/heartbeat"), 404)


# --- resources ---


def test_resource_routes_round_trip(meshd):
    d = meshd
    doc = vs("payment", "payment", ("payment-v1", 90), ("payment-v2", 10))
    r = d.request("PUT", "/v1/namespaces/default/virtualservices/payment", doc)
    assert r.status == 201, r
    created = json.loads(r.body)
    assert created["metadata"]["resource_version"] >= 1
    assert created["metadata"]["generation"] == 1

    # the same content again: 200, nothing moves
    r = d.request("PUT", "/v1/namespaces/default/vs/payment", doc)
    assert r.status == 200
    assert json.loads(r.body)["metadata"] == created["metadata"]

    doc["spec"]["http_routes"][0]["destinations"][0]["weight"] = 80
    doc["spec"]["http_routes"][0]["destinations"][1]["weight"] = 20
    changed = d.json("PUT", "/v1/namespaces/default/VirtualService/payment", doc)
    assert changed["metadata"]["generation"] == 2
    assert changed["metadata"]["resource_version"] > created["metadata"]["resource_version"]

    got = d.json("GET", "/v1/namespaces/default/vs/payment")
    assert got == changed
    yaml = d.get("/v1/namespaces/default/vs/payment?format=yaml")
    assert yaml.status == 200 and yaml.header("content-type") == "application/yaml"
    assert "kind: VirtualService" in yaml.text and "weight: 80" in yaml.text
    error_of(d.get("/v1/namespaces/default/vs/payment?format=xml"), 400)

    d.json("PUT", "/v1/namespaces/prod/vs/payment", vs("payment", "payment", ("p", 100)),
           status=201)
    d.json("PUT", "/v1/namespaces/default/svc/zeta", service("zeta"), status=201)
    d.json("PUT", "/v1/namespaces/default/svc/alpha", service("alpha"), status=201)

    names = [i["metadata"]["name"] for i in d.json("GET", "/v1/namespaces/default/svc")["items"]]
    assert names == ["alpha", "zeta"]
    every = d.json("GET", "/v1/vs")["items"]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in every] == [
        ("default", "payment"), ("prod", "payment")]
    assert d.json("GET", "/v1/namespaces/nowhere/vs")["items"] == []
    listing = d.get("/v1/vs?format=yaml")
    assert listing.text.count("kind: VirtualService") == 2 and "\n---\n" in listing.text

    deleted = d.json("DELETE", "/v1/namespaces/default/vs/payment")
    assert deleted == changed
    err = error_of(d.get("/v1/namespaces/default/vs/payment"), 404)
    assert err["reason"] == "NotFound"
    assert err["message"] == "Service not found: VirtualService default/payment"
    error_of(d.request("DELETE", "/v1/namespaces/default/vs/payment"), 404)

    v = d.json("GET", "/v1/version")
    assert v["version"] == "0.1.0" and v["store_version"] == d.store_version()
    h = d.json("GET", "/v1/health")
    assert h["status"] == "ok" and h["store"] == "ok" and h["proxies"] == 0
    assert abs(h["time_ms"] - time.time() * 1000) < 60000


def test_put_takes_the_namespace_from_the_path_and_checks_the_rest(meshd):
    d = meshd
    doc = service("orders", "127.0.0.1:18085")
    stored = d.json("PUT", "/v1/namespaces/shop/svc/orders", doc, status=201)
    assert stored["metadata"]["namespace"] == "shop"
    assert d.json("GET", "/v1/namespaces/shop/svc/orders")["spec"]["endpoints"] == [
        "127.0.0.1:18085"]
    before = d.everything()

    cases = [
        ("/v1/namespaces/shop/vs/orders", doc,
         "request body: kind: Service does not match the path, which names VirtualService"),
        ("/v1/namespaces/shop/svc/other", doc,
         "request body: metadata.name: \"orders\" does not match the path, which names \"other\""),
        ("/v1/namespaces/shop/svc/orders", service("orders", namespace="default"),
         "request body: metadata.namespace: \"default\" does not match the path, which names "
         "\"shop\""),
        ("/v1/namespaces/shop/svc/orders", [service("orders"), service("x")],
         "request body: PUT takes one document, found 2"),
        ("/v1/namespaces/Shop/svc/orders", doc, "the path's namespace"),
    ]
    for path, body, message in cases:
        err = error_of(d.request("PUT", path, body), 400)
        assert message in err["message"], err
    assert d.everything() == before


def test_kind_names_aliases_and_unknown_kinds(meshd):
    d = meshd
    d.json("PUT", "/v1/namespaces/default/svc/a", service("a"), status=201)
    for kind in ("Service", "service", "services", "svc", "SERVICES"):
        assert [i["metadata"]["name"] for i in d.json("GET", f"/v1/{kind}")["items"]] == ["a"]
    err = error_of(d.get("/v1/widgets"), 404)
    assert "unknown kind \"widgets\"" in err["message"]
    error_of(d.get("/v1/namespaces/default/widgets/a"), 404)
    error_of(d.request("PUT", "/v1/namespaces/default/widgets/a", service("a")), 404)
    # a document of an unknown kind is a bad body, not a missing route
    bad = dict(service("b"), kind="Widget")
    err = error_of(d.request("POST", "/v1/apply", bad), 400)
    assert "kind: unknown kind \"Widget\"" in err["message"]


def test_unknown_paths_and_methods(meshd):
    d = meshd
    for path in ("/", "/v2/vs", "/v1/", "/v1/namespaces/default", "/v1/namespaces/a/vs/b/c",
                 "/v1/proxies/a/b", "/v1/vs/x"):
        error_of(d.get(path), 404)
    r = d.request("DELETE", "/v1/vs")
    assert error_of(r, 405)["reason"] == "MethodNotAllowed"
    assert r.header("allow") == "GET, HEAD"
    r = d.request("GET", "/v1/apply")
    error_of(r, 405)
    assert r.header("allow") == "POST"
    r = d.request("PATCH", "/v1/namespaces/default/vs/x", "{}")
    error_of(r, 405)
    assert r.header("allow") == "GET, HEAD, PUT, DELETE"
    r = d.request("HEAD", "/v1/version")
    assert r.status == 200 and r.body == b"" and int(r.header("content-length")) > 0


# --- bad input: the right status, and nothing stored ---


def meshctl_problems(meshctl, tmp_path, text):
    """What `meshctl validate` says about text, with "request body" as the file name."""
    f = tmp_path / "body.yaml"
    f.write_text(text)
    p = subprocess.run([str(meshctl), "validate", "-f", str(f)], capture_output=True, text=True,
                       timeout=30, env={k: v for k, v in os.environ.items()
                                        if not k.startswith("MESH_")})
    assert p.returncode != 0
    return p.stderr.replace(str(f), "request body").strip()


def test_bad_json_and_yaml_get_400_with_file_line_col_and_store_nothing(meshd, meshctl,
                                                                        tmp_path):
    d = meshd
    d.json("PUT", "/v1/namespaces/default/svc/keep", service("keep"), status=201)
    before, version = d.everything(), d.store_version()

    err = error_of(d.request("POST", "/v1/apply", '{"apiVersion": "x",\n  "kind": }'), 400)
    assert err["reason"] == "Invalid"
    assert re.match(r"request body:2:\d+: ", err["message"]), err

    err = error_of(d.request("POST", "/v1/apply", "kind: [unclosed\n"), 400)
    assert re.match(r"request body:\d+:\d+: ", err["message"]), err

    err = error_of(d.request("POST", "/v1/apply", BAD_WEIGHTS_YAML), 400)
    assert re.fullmatch(r"request body:9:\d+: spec\.http_routes\[0\]\.destinations: weights sum "
                        r"to 95, must be 100", err["message"]), err
    assert err["message"] == meshctl_problems(meshctl, tmp_path, BAD_WEIGHTS_YAML)

    # every problem of every document, one per line, exactly as meshctl prints them
    two = BAD_WEIGHTS_YAML + "---\n" + BAD_WEIGHTS_YAML.replace("payment\nspec", "other\nspec")
    err = error_of(d.request("POST", "/v1/apply", two), 400)
    assert len(err["message"].splitlines()) == 2, err
    assert err["message"] == meshctl_problems(meshctl, tmp_path, two)
    bad_json = json.dumps(dict(service("x"), spec={"endpoints": "nope", "colour": 1}), indent=1)
    err = error_of(d.request("POST", "/v1/apply", bad_json), 400)
    assert err["message"] == meshctl_problems(meshctl, tmp_path, bad_json)

    err = error_of(d.request("POST", "/v1/apply", ""), 400)
    assert "request body is empty" in err["message"]
    err = error_of(d.request("POST", "/v1/apply", "---\n"), 400)
    assert "no resources found in the request body" in err["message"]
    err = error_of(d.request("PUT", "/v1/namespaces/default/svc/x", None), 400)

    err = error_of(d.request("POST", "/v1/apply", json.dumps(service("x")),
                             headers={"Content-Type": "image/png"}), 415)
    assert err["reason"] == "UnsupportedMediaType"
    error_of(d.request("POST", "/v1/apply", b"kind: \x00\x01"), 415)

    assert d.everything() == before
    assert d.store_version() == version


def test_apply_formats_outcomes_and_all_or_nothing(meshd):
    d = meshd
    # a YAML stream
    stream = ("apiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata: {name: a}\n"
              "spec: {protocol: http, endpoints: ['127.0.0.1:1']}\n---\n"
              "apiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata: {name: b}\n"
              "spec: {protocol: http, endpoints: ['127.0.0.1:2']}\n")
    items = d.json("POST", "/v1/apply", stream,
                   headers={"Content-Type": "application/yaml"})["items"]
    assert [(i["kind"], i["namespace"], i["name"], i["outcome"]) for i in items] == [
        ("Service", "default", "a", "created"), ("Service", "default", "b", "created")]
    assert all(i["generation"] == 1 and i["resource_version"] > 0 for i in items)
    b_created_at = items[1]["resource_version"]

    # a JSON array: one unchanged, one configured, one created
    arr = [service("a", "127.0.0.1:1"), service("b", "127.0.0.1:3"), service("c")]
    items = d.json("POST", "/v1/apply", arr)["items"]
    assert [i["outcome"] for i in items] == ["unchanged", "configured", "created"]
    assert items[1]["generation"] == 2

    # {"items": [...]}, what the list routes answer, applied back as is (versions checked)
    listed = d.json("GET", "/v1/namespaces/default/svc")
    items = d.json("POST", "/v1/apply", listed)["items"]
    assert [i["outcome"] for i in items] == ["unchanged"] * 3

    # chunked request bodies work too
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=IO_TIMEOUT)
    conn.request("POST", "/v1/apply", body=iter([json.dumps(service("d")).encode()]),
                 headers={"Authorization": f"Bearer {d.token}"}, encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["items"][0]["outcome"] == "created"
    conn.close()

    before, version = d.everything(), d.store_version()
    # one bad document refuses the whole apply
    err = error_of(d.request("POST", "/v1/apply", [service("e"), vs("v", "h", ("a", 95))]), 400)
    assert "weights sum to 95" in err["message"]
    # a duplicate in one request is refused, as meshctl refuses it in one file
    err = error_of(d.request("POST", "/v1/apply", {"items": [service("e"), service("e")]}), 400)
    assert "duplicate Service default/e" in err["message"]
    # a stale version in the second document: 409 and the first is not written either
    stale = service("b", "127.0.0.1:9")
    stale["metadata"]["resource_version"] = b_created_at  # b changed since
    err = error_of(d.request("POST", "/v1/apply", [service("e"), stale]), 409)
    assert err["reason"] == "Conflict"
    assert ("Service default/b: conflict: Service default/b is at resource_version"
            in err["message"]), err
    assert d.everything() == before and d.store_version() == version


def test_stale_resource_version_gets_409(meshd):
    d = meshd
    first = d.json("PUT", "/v1/namespaces/default/svc/a", service("a", "127.0.0.1:1"), status=201)
    v1 = first["metadata"]["resource_version"]
    upd = service("a", "127.0.0.1:2")
    upd["metadata"]["resource_version"] = v1
    second = d.json("PUT", "/v1/namespaces/default/svc/a", upd)
    stale = service("a", "127.0.0.1:3")
    stale["metadata"]["resource_version"] = v1
    err = error_of(d.request("PUT", "/v1/namespaces/default/svc/a", stale), 409)
    assert f"is at resource_version {second['metadata']['resource_version']}" in err["message"]
    assert d.json("GET", "/v1/namespaces/default/svc/a")["spec"]["endpoints"] == ["127.0.0.1:2"]
    # DELETE takes the same precondition as a query parameter
    error_of(d.request("DELETE", f"/v1/namespaces/default/svc/a?resource_version={v1}"), 409)
    error_of(d.request("DELETE", "/v1/namespaces/default/svc/a?resource_version=x"), 400)
    d.json("DELETE", f"/v1/namespaces/default/svc/a?resource_version="
                     f"{second['metadata']['resource_version']}")


def test_oversize_body_gets_413_and_nothing_is_stored(lab):
    d = lab.start(flags=("--max-body", "2KiB"))
    before = d.everything()
    big = service("big", *[f"127.0.0.1:{20000 + i}" for i in range(200)])
    text = json.dumps(big)
    assert len(text) > 2048
    err = error_of(d.request("POST", "/v1/apply", text), 413)
    assert err["reason"] == "TooLarge" and "2048 bytes" in err["message"]
    # the connection is closed after it
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s.sendall((f"POST /v1/apply HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {d.token}\r\n"
               f"Content-Length: {len(text)}\r\n\r\n{text}").encode())
    data, closed = read_all(s, 5)
    s.close()
    assert data.startswith(b"HTTP/1.1 413 ") and b"connection: close" in data and closed
    # a chunked body over the limit too
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=IO_TIMEOUT)
    conn.request("POST", "/v1/apply", body=iter([text[:1500].encode(), text[1500:].encode()]),
                 headers={"Authorization": f"Bearer {d.token}"}, encode_chunked=True)
    assert conn.getresponse().status == 413
    conn.close()
    assert d.everything() == before
    # just under the limit is fine
    small = json.dumps(service("small", *[f"127.0.0.1:{20000 + i}" for i in range(10)]))
    assert d.request("POST", "/v1/apply", small).status == 200


def test_writes_need_the_token_and_reads_are_open_on_loopback(meshd):
    d = meshd
    for token in (None, "wrong", d.token + "x", d.token[:-1]):
        r = d.request("PUT", "/v1/namespaces/default/svc/a", service("a"), token=token)
        err = error_of(r, 401)
        assert r.header("www-authenticate") == "Bearer"
        assert err["reason"] == "Unauthorized"
        assert "DATA_DIR/token" in err["message"]
    for method, path in (("POST", "/v1/apply"), ("DELETE", "/v1/namespaces/default/svc/a"),
                         ("PUT", "/v1/proxies/p"), ("POST", "/v1/proxies/p/heartbeat"),
                         ("DELETE", "/v1/proxies/p")):
        error_of(d.request(method, path, "{}", token=None), 401)
    assert d.everything()["svc"] == []
    # the scheme is case-insensitive
    r = d.request("PUT", "/v1/namespaces/default/svc/a", service("a"), token=None,
                  headers={"Authorization": f"bearer {d.token}"})
    assert r.status == 201
    assert d.get("/v1/svc", token=None).status == 200
    assert d.get("/v1/proxies", token=None).status == 200


def test_auth_reads_makes_reads_need_the_token(lab):
    d = lab.start(flags=("--auth-reads",))
    error_of(d.get("/v1/svc", token=None), 401)
    error_of(d.get("/v1/health", token="wrong"), 401)
    assert d.get("/v1/svc").status == 200


def test_rate_limit_gets_429_with_retry_after(lab):
    d = lab.start(flags=("--rate", "1", "--burst", "3"))
    statuses = [d.get("/v1/version").status for _ in range(6)]
    assert statuses[:3] == [200, 200, 200], statuses
    assert 429 in statuses[3:], statuses
    r = d.get("/v1/version")
    err = error_of(r, 429)
    assert err["reason"] == "TooManyRequests"
    assert int(r.header("retry-after")) >= 1
    time.sleep(1.2)
    assert d.get("/v1/version").status == 200


def test_keep_alive_and_pipelined_requests_are_answered_in_order(meshd):
    d = meshd
    reqs = b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                    for p in ("/v1/version", "/v1/nope", "/v1/health"))
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(reqs)
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"HTTP/1.1 ") < 3 and time.monotonic() < deadline:
            data += s.recv(65536)
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.1 (\d+) ", data)]
    assert statuses == [200, 404, 200], data


# --- proxies ---


def test_register_heartbeat_status_and_deregister(meshd):
    d = meshd
    reg = sidecar("payment-v1", "127.0.0.1:16006")
    r = d.json("PUT", "/v1/proxies/payment-v1.default-42", reg, status=201)
    assert r == {"id": "payment-v1.default-42", "heartbeat_interval_ms": 1000, "ttl_ms": 3000}
    d.json("PUT", "/v1/proxies/payment-v1.default-42", reg, status=200)
    d.json("PUT", "/v1/proxies/gw-1", {"role": "gateway", "gateway": "external-gateway",
                                      "namespace": "default", "admin": "127.0.0.1:15000"},
           status=201)

    r = d.request("POST", "/v1/proxies/payment-v1.default-42/heartbeat")
    assert r.status == 204 and r.body == b""
    err = error_of(d.request("POST", "/v1/proxies/nobody/heartbeat"), 404)
    assert "register it with PUT /v1/proxies/nobody" in err["message"]

    items = d.json("GET", "/v1/proxies")["items"]
    assert [i["id"] for i in items] == ["gw-1", "payment-v1.default-42"]
    st = d.json("GET", "/v1/proxies/payment-v1.default-42")
    assert st["role"] == "sidecar" and st["service"] == "payment-v1"
    assert st["namespace"] == "default" and st["gateway"] is None
    assert st["labels"] == {"version": "v1"} and st["address"] == "127.0.0.1:16006"
    assert st["admin"] == "127.0.0.1:1"
    assert st["acked_version"] is None and re.fullmatch(r"[0-9a-f]{16}", st["latest_version"])
    assert st["synced"] is False
    assert st["registered_ms"] <= st["last_heartbeat_ms"]
    gw = d.json("GET", "/v1/proxies/gw-1")
    assert gw["role"] == "gateway" and gw["gateway"] == "external-gateway"
    assert gw["service"] is None and gw["address"] is None
    assert d.json("GET", "/v1/health")["proxies"] == 2

    gone = d.json("DELETE", "/v1/proxies/gw-1")
    assert gone["id"] == "gw-1"
    error_of(d.get("/v1/proxies/gw-1"), 404)
    error_of(d.request("DELETE", "/v1/proxies/gw-1"), 404)


def test_bad_registrations_get_400(meshd):
    d = meshd
    cases = [
        ("Bad_Id", sidecar("a", "127.0.0.1:1"), "proxy id \"Bad_Id\""),
        ("p", "{\"role\": ", "request body:1:"),
        ("p", [1], "must be a JSON object"),
        ("p", {"role": "sidecar", "service": "a", "address": "127.0.0.1:1", "colour": "red"},
         "unknown field \"colour\""),
        ("p", {"service": "a", "address": "127.0.0.1:1"}, "role: required"),
        ("p", {"role": "robot"}, "role: must be sidecar or gateway"),
        ("p", {"role": "sidecar", "address": "127.0.0.1:1"}, "service: required for a sidecar"),
        ("p", {"role": "sidecar", "service": "a"}, "address: required for a sidecar"),
        ("p", {"role": "sidecar", "service": "a", "address": "localhost:1"},
         "must be a numeric IP address and port"),
        ("p", {"role": "sidecar", "service": "a", "address": "127.0.0.1:1", "labels": {"v": 1}},
         "labels.v: must be a string"),
        ("p", {"role": "gateway"}, "gateway: required for a gateway"),
        ("p", {"role": "sidecar", "service": 7, "address": "127.0.0.1:1"},
         "service: must be a string"),
    ]
    for pid, body, message in cases:
        err = error_of(d.request("PUT", f"/v1/proxies/{pid}", body), 400)
        assert message in err["message"], (body, err)
    assert d.json("GET", "/v1/proxies")["items"] == []


def test_heartbeat_lapse_removes_the_endpoint(lab):
    d = lab.start(flags=("--heartbeat-ttl", "600ms", "--heartbeat-interval", "200ms"))
    d.json("POST", "/v1/apply", [service("payment-v1", "127.0.0.1:18081")])
    reg = d.json("PUT", "/v1/proxies/watcher", sidecar("orders", "127.0.0.1:16001"), status=201)
    assert reg["ttl_ms"] == 600 and reg["heartbeat_interval_ms"] == 200
    d.json("PUT", "/v1/proxies/pay-1", sidecar("payment-v1", "127.0.0.1:16006"), status=201)

    # the watcher keeps itself alive; pay-1 does not
    stop = threading.Event()

    def beat():
        while not stop.is_set():
            d.request("POST", "/v1/proxies/watcher/heartbeat")
            time.sleep(0.15)

    t = threading.Thread(target=beat)
    t.start()
    try:
        cfg = d.json("GET", "/v1/proxies/watcher/config")
        assert config_endpoints(cfg, "payment-v1") == ["127.0.0.1:16006", "127.0.0.1:18081"]
        start = time.monotonic()
        r = d.get(f"/v1/proxies/watcher/config?after={cfg['version']}&timeout=5s")
        took = time.monotonic() - start
        assert r.status == 200, r
        new = json.loads(r.body)
        assert config_endpoints(new, "payment-v1") == ["127.0.0.1:18081"]
        assert took < 2.0, took
        error_of(d.request("POST", "/v1/proxies/pay-1/heartbeat"), 404)
        assert [i["id"] for i in d.json("GET", "/v1/proxies")["items"]] == ["watcher"]
    finally:
        stop.set()
        t.join()
    assert "registrations expired" in d.stderr()


def test_a_short_ttl_shortens_the_default_heartbeat_interval(lab):
    d = lab.start(flags=("--heartbeat-ttl", "900ms"))
    reg = d.json("PUT", "/v1/proxies/p", sidecar("orders", "127.0.0.1:16001"), status=201)
    assert reg == {"id": "p", "heartbeat_interval_ms": 300, "ttl_ms": 900}


def test_connections_over_the_limit_get_503(lab):
    d = lab.start(flags=("--max-connections", "2"))
    held = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(2)]
    try:
        for s in held:  # make sure both are accepted before the third comes
            s.sendall(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
        with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
            data, closed = read_all(s, 5)
        assert data.startswith(b"HTTP/1.1 503 ") and closed, data
        assert b'"reason":"Unavailable"' in data
    finally:
        for s in held:
            s.close()
    wait_until(lambda: d.get("/v1/version").status == 200, 5, what="a free connection slot")


# --- the config watch ---


def setup_watcher(d, pid="orders.default-1"):
    d.json("POST", "/v1/apply", [service("payment-v1", "127.0.0.1:18081"),
                                service("payment-v2", "127.0.0.1:18082"),
                                vs("payment", "payment", ("payment-v1", 90), ("payment-v2", 10))])
    d.json("PUT", f"/v1/proxies/{pid}", sidecar("orders", "127.0.0.1:16001"), status=201)
    r = d.get(f"/v1/proxies/{pid}/config")
    assert r.status == 200, r
    cfg = json.loads(r.body)
    assert r.header("x-mesh-version") == cfg["version"]
    return cfg


def test_watch_answers_at_once_when_the_version_differs(meshd):
    d = meshd
    cfg = setup_watcher(d)
    assert cfg["proxy"] == "orders.default-1"
    assert re.fullmatch(r"[0-9a-f]{16}", cfg["version"])
    kinds = [(x["kind"], x["metadata"]["name"]) for x in cfg["resources"]]
    assert ("VirtualService", "payment") in kinds and ("Service", "orders") in kinds
    assert config_endpoints(cfg, "orders") == ["127.0.0.1:16001"]
    start = time.monotonic()
    r = d.get("/v1/proxies/orders.default-1/config?after=0123456789abcdef&timeout=10s")
    assert r.status == 200 and time.monotonic() - start < 1.0
    assert json.loads(r.body)["version"] == cfg["version"]
    # the same content has the same version
    assert d.json("GET", "/v1/proxies/orders.default-1/config")["version"] == cfg["version"]


def test_watch_times_out_with_304(meshd):
    d = meshd
    cfg = setup_watcher(d)
    start = time.monotonic()
    r = d.get(f"/v1/proxies/orders.default-1/config?after={cfg['version']}&timeout=400ms")
    took = time.monotonic() - start
    assert r.status == 304 and r.body == b""
    assert r.header("x-mesh-version") == cfg["version"]
    assert 0.39 <= took < 3.0, took
    r = d.get(f"/v1/proxies/orders.default-1/config?after={cfg['version']}&timeout=0s")
    assert r.status == 304


def test_watch_bad_parameters_and_unknown_proxy(meshd):
    d = meshd
    setup_watcher(d)
    for q in ("after=xyz", "after=0123456789ABCDEF", "after=%zz", "timeout=soon", "timeout=6m"):
        error_of(d.get(f"/v1/proxies/orders.default-1/config?{q}"), 400)
    err = error_of(d.get("/v1/proxies/nobody/config"), 404)
    assert "not registered" in err["message"]
    error_of(d.request("POST", "/v1/proxies/orders.default-1/config", "{}"), 405)


class Watch(threading.Thread):
    """A long poll in a thread: the answer and when it arrived."""

    def __init__(self, d, pid, after, timeout="10s"):
        super().__init__()
        self.d, self.pid, self.after, self.timeout = d, pid, after, timeout
        self.resp = None
        self.at = None
        self.start()

    def run(self):
        self.resp = self.d.get(f"/v1/proxies/{self.pid}/config?after={self.after}"
                               f"&timeout={self.timeout}", timeout=20)
        self.at = time.monotonic()


def waiting_watches(d, pid, n=1):
    """Waits until n watches are parked in meshd (they show as a delay of the answer)."""
    time.sleep(0.15)


def test_watch_is_woken_by_an_apply_within_milliseconds(meshd):
    d = meshd
    cfg = setup_watcher(d)
    w = Watch(d, "orders.default-1", cfg["version"])
    waiting_watches(d, "orders.default-1")
    assert w.is_alive()
    d.json("POST", "/v1/apply", [vs("payment", "payment", ("payment-v1", 50), ("payment-v2", 50))])
    applied = time.monotonic()
    w.join(10)
    assert w.resp.status == 200, w.resp
    delay = w.at - applied
    new = json.loads(w.resp.body)
    assert new["version"] != cfg["version"]
    weights = [dst["weight"] for x in new["resources"] if x["kind"] == "VirtualService"
               for dst in x["spec"]["http_routes"][0]["destinations"]]
    assert weights == [50, 50]
    assert delay < 0.5, f"watch answered {delay * 1000:.1f} ms after the apply returned"
    print(f"watch answered {delay * 1000:.2f} ms after the apply returned")

    # an apply that changes nothing wakes nobody
    w = Watch(d, "orders.default-1", new["version"], timeout="600ms")
    waiting_watches(d, "orders.default-1")
    d.json("POST", "/v1/apply", [vs("payment", "payment", ("payment-v1", 50), ("payment-v2", 50))])
    w.join(10)
    assert w.resp.status == 304


def test_many_watches_are_all_woken_by_one_apply(meshd):
    d = meshd
    setup_watcher(d)
    n = 20
    versions = {}
    for i in range(n):
        pid = f"orders.default-{100 + i}"
        d.json("PUT", f"/v1/proxies/{pid}", sidecar("orders", f"127.0.0.1:{17000 + i}"),
               status=201)
    for i in range(n):
        pid = f"orders.default-{100 + i}"
        versions[pid] = d.json("GET", f"/v1/proxies/{pid}/config")["version"]
    watches = [Watch(d, pid, v) for pid, v in versions.items()]
    time.sleep(0.3)
    assert all(w.is_alive() for w in watches)
    sent = time.monotonic()
    d.json("PUT", "/v1/namespaces/default/vs/payment",
           vs("payment", "payment", ("payment-v1", 10), ("payment-v2", 90)))
    for w in watches:
        w.join(10)
    assert all(w.resp.status == 200 for w in watches), [w.resp for w in watches]
    # meshd answers the watches before the apply itself, so this counts from sending the apply
    delays = sorted((w.at - sent) * 1000 for w in watches)
    print(f"{n} watches: p50 {delays[n // 2]:.2f} ms, max {delays[-1]:.2f} ms after the apply "
          "was sent")
    assert delays[-1] < 1000, delays


def test_watch_is_woken_by_a_sidecar_registering_for_a_service_in_its_config(meshd):
    d = meshd
    cfg = setup_watcher(d)
    assert config_endpoints(cfg, "payment-v2") == ["127.0.0.1:18082"]
    w = Watch(d, "orders.default-1", cfg["version"])
    waiting_watches(d, "orders.default-1")
    d.json("PUT", "/v1/proxies/payment-v2.default-7", sidecar("payment-v2", "127.0.0.1:16007",
                                                             version="v2"), status=201)
    registered = time.monotonic()
    w.join(10)
    assert w.resp.status == 200
    assert w.at - registered < 0.5
    new = json.loads(w.resp.body)
    assert config_endpoints(new, "payment-v2") == ["127.0.0.1:16007", "127.0.0.1:18082"]
    for doc in new["resources"]:
        if doc["kind"] == "Service" and doc["metadata"]["name"] == "payment-v2":
            labels = {"mesh.clusterdb.io/sidecar": "true", "version": "v2"}
            assert {"address": "127.0.0.1:16007", "labels": labels} in doc["spec"]["endpoints"]

    # a registered service without a Service resource appears with only its endpoint
    d.json("PUT", "/v1/proxies/ledger-1", sidecar("ledger", "127.0.0.1:16009"), status=201)
    latest = d.json("GET", "/v1/proxies/orders.default-1/config")
    assert config_endpoints(latest, "ledger") == ["127.0.0.1:16009"]

    # deregistering takes the endpoint out again, and wakes the watch
    w = Watch(d, "orders.default-1", latest["version"])
    waiting_watches(d, "orders.default-1")
    d.json("DELETE", "/v1/proxies/ledger-1")
    w.join(10)
    assert w.resp.status == 200
    assert config_endpoints(json.loads(w.resp.body), "ledger") is None


def test_watch_of_a_deregistered_proxy_gets_404(meshd):
    d = meshd
    cfg = setup_watcher(d)
    w = Watch(d, "orders.default-1", cfg["version"])
    waiting_watches(d, "orders.default-1")
    d.json("DELETE", "/v1/proxies/orders.default-1")
    w.join(10)
    assert w.resp.status == 404


def test_watch_records_acks_and_status_shows_sync(meshd):
    d = meshd
    cfg = setup_watcher(d)
    st = d.json("GET", "/v1/proxies/orders.default-1")
    assert st["acked_version"] is None and st["synced"] is False
    assert st["latest_version"] == cfg["version"]

    # the proxy now serves cfg and says so with its next watch
    r = d.get(f"/v1/proxies/orders.default-1/config?after={cfg['version']}&timeout=0s")
    assert r.status == 304
    st = d.json("GET", "/v1/proxies/orders.default-1")
    assert st["acked_version"] == cfg["version"] and st["synced"] is True

    d.json("POST", "/v1/apply", [vs("payment", "payment", ("payment-v1", 100))])
    st = d.json("GET", "/v1/proxies/orders.default-1")
    assert st["acked_version"] == cfg["version"] and st["synced"] is False
    assert st["latest_version"] != cfg["version"]
    listed = {i["id"]: i for i in d.json("GET", "/v1/proxies")["items"]}
    assert listed["orders.default-1"]["synced"] is False

    r = d.get(f"/v1/proxies/orders.default-1/config?after={cfg['version']}")
    assert r.status == 200
    new = json.loads(r.body)["version"]
    d.get(f"/v1/proxies/orders.default-1/config?after={new}&timeout=0s")
    st = d.json("GET", "/v1/proxies/orders.default-1")
    assert st["acked_version"] == new and st["synced"] is True


def test_gateway_config_holds_only_its_virtual_services(meshd):
    d = meshd
    d.json("POST", "/v1/apply", [
        service("payment-v1", "127.0.0.1:18081"),
        vs("internal", "payment", ("payment-v1", 100)),
        vs("public", "payment.example.com", ("payment-v1", 100), gateways=["external-gateway"]),
    ])
    d.json("PUT", "/v1/proxies/gw", {"role": "gateway", "gateway": "external-gateway"}, status=201)
    d.json("PUT", "/v1/proxies/side", sidecar("orders", "127.0.0.1:16001"), status=201)
    assert config_vs_names(d.json("GET", "/v1/proxies/gw/config")) == ["public"]
    assert config_vs_names(d.json("GET", "/v1/proxies/side/config")) == ["internal"]


def test_store_changes_made_by_meshctl_reach_the_watches(lab, tmp_path, meshctl):
    """meshctl --store on meshd's data directory writes behind meshd's back: meshd notices the
    store version move and wakes the watches."""
    d = lab.start()
    cfg = setup_watcher(d)
    w = Watch(d, "orders.default-1", cfg["version"])
    waiting_watches(d, "orders.default-1")
    doc = vs("payment", "payment", ("payment-v1", 30), ("payment-v2", 70))
    env = dict(os.environ)
    for k in ("MESH_SERVER", "MESH_TOKEN", "MESH_TOKEN_FILE", "MESH_STORE"):
        env.pop(k, None)
    p = subprocess.run([str(meshctl), "--store", str(tmp_path / "data"), "apply", "-f", "-"],
                       input=json.dumps(doc), capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0, p.stderr
    w.join(10)
    assert w.resp.status == 200, w.resp
