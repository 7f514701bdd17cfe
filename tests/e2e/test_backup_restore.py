# SPDX-License-Identifier: Apache-2.0
"""backup -> wipe -> restore gives back exactly what was there, versions included, with an
embedded store and with meshd: `meshctl get all -A -o yaml` is byte-for-byte the same before the
backup and after the restore. A restore into a store with history, and a backup of the previous
format (no versions), are applies: the store keeps its versions moving forward. meshd's
POST /v1/restore, and a proxy's config watch woken by a restore.

Every meshd listens on a port the kernel picks (--listen 127.0.0.1:0) and is stopped by PID;
it must exit 0, and with SAN=1 a sanitizer report from any process fails the test."""
import http.client
import json
import re
import select
import subprocess
import time

import pytest

from conftest import EXAMPLES, base_env, build_dir, check_sanitizer_output, strip_versions
from proxy_fixtures import IO_TIMEOUT, Process, Response

RUN_TIMEOUT = 30
READY = "meshd: listening on "
N_BACKUP = 14  # examples/ holds 15 documents; the history below deletes one
VERSION_LINE = re.compile(r"(?m)^  (resource_version|generation): \d+\n")


class Meshd(Process):
    """A meshd with its own data directory, on a port it picked itself."""

    def __init__(self, data_dir, log_dir, name):
        self.data_dir = data_dir
        data_dir.mkdir(exist_ok=True)
        # A long TTL: the watch test registers a proxy by hand and sends no heartbeat.
        argv = [build_dir() / "meshd", "--data-dir", data_dir, "--listen", "127.0.0.1:0",
                "--heartbeat-ttl", "60s"]
        super().__init__(name, argv, log_dir)
        self.wait_for_stderr(READY)
        m = re.search(re.escape(READY) + r"127\.0\.0\.1:(\d+)", self.stderr())
        assert m, self.stderr()
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def token_file(self):
        return self.data_dir / "token"

    def request(self, method, path, body=None, token=True, timeout=IO_TIMEOUT):
        hdrs = {}
        if token:
            hdrs["Authorization"] = "Bearer " + self.token_file.read_text().strip()
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return Response(r.status, [(k.lower(), v) for k, v in r.getheaders()], r.read())
        finally:
            conn.close()

    def json(self, method, path, body=None, status=200, **kw):
        r = self.request(method, path, body, **kw)
        assert r.status == status, (r.status, r.body)
        return json.loads(r.body) if r.body else None


class Lab:
    """The processes of one test (stopped by PID at the end) and meshctl runs."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.procs = []

    def meshd(self, name):
        if not (build_dir() / "meshd").exists():
            pytest.fail(f"{build_dir() / 'meshd'} is not built: run `make` first")
        d = Meshd(self.tmp / f"{name}-data", self.tmp, name)
        self.procs.append(d)
        return d

    def run(self, *args, input=None):
        cmd = [str(build_dir() / "meshctl")] + [str(a) for a in args]
        env = base_env()
        for k in ("MESH_SERVER", "MESH_TOKEN", "MESH_TOKEN_FILE"):
            env.pop(k, None)
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, env=env)
        check_sanitizer_output(proc.stderr, cmd[1:])
        return proc.returncode, proc.stdout, proc.stderr

    def ok(self, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        assert rc == 0, f"meshctl {' '.join(map(str, args))} exited {rc}:\n{out}\n{err}"
        return out

    def close(self):
        failures = []
        for p in self.procs:
            rc = p.stop()
            if p.stopped_by_us and rc != 0:
                failures.append(f"{p.name} exited {rc} on SIGTERM:\n{p.stderr()}")
            report = p.sanitizer_report()
            if report:
                failures.append(f"{p.name}: sanitizer report:\n{report}")
        assert not failures, "\n".join(failures)


@pytest.fixture
def lab(meshctl, tmp_path):
    lab = Lab(tmp_path)
    yield lab
    lab.close()


class Embedded:
    """The embedded store: a wipe is a new --store directory."""

    def __init__(self, lab):
        self.lab = lab
        self.n = 0
        self.args = self._args()

    def _args(self):
        self.n += 1
        return ["--store", self.lab.tmp / f"store-{self.n}"]

    def wipe(self):
        self.args = self._args()


class Server:
    """meshd: a wipe stops it and starts a new meshd on a new data directory."""

    def __init__(self, lab):
        self.lab = lab
        self.n = 0
        self._start()

    def _start(self):
        self.n += 1
        self.meshd = self.lab.meshd(f"meshd-{self.n}")
        self.args = ["--server", self.meshd.url, "--token", self.meshd.token_file]

    def wipe(self):
        assert self.meshd.stop() == 0, self.meshd.stderr()
        self._start()


@pytest.fixture(params=["embedded", "meshd"])
def target(request, lab):
    return Embedded(lab) if request.param == "embedded" else Server(lab)


def make_history(lab, args, tmp_path):
    """examples/ applied, the payment VirtualService changed twice (generation 3), web-v2
    deleted: versions and generations are not simply 1..N."""
    lab.ok(*args, "apply", "-f", EXAMPLES)
    vs = (EXAMPLES / "payment-virtual-service.yaml").read_text()
    for w1, w2 in ((80, 20), (70, 30)):
        changed = tmp_path / f"payment-{w1}.yaml"
        changed.write_text(vs.replace("weight: 90", f"weight: {w1}")
                           .replace("weight: 10", f"weight: {w2}"))
        assert lab.ok(*args, "apply", "-f", changed) == \
            "virtualservice/payment-service configured\n"
    lab.ok(*args, "delete", "svc", "web-v2")
    payment = json.loads(lab.ok(*args, "get", "vs", "payment-service", "-o", "json"))
    assert payment["metadata"]["generation"] == 3


def everything(lab, args):
    return lab.ok(*args, "get", "all", "-A", "-o", "yaml")


def documents(lab, args):
    """Every resource as a dict (`get all -A -o json`)."""
    return json.loads(lab.ok(*args, "get", "all", "-A", "-o", "json"))


def key(doc):
    m = doc["metadata"]
    return (doc["kind"], m["namespace"], m["name"])


def versions(lab, args):
    """{(kind, namespace, name): (resource_version, generation)}."""
    return {key(d): (d["metadata"]["resource_version"], d["metadata"]["generation"])
            for d in documents(lab, args)}


def test_backup_wipe_restore_gives_identical_get_output(lab, target, tmp_path):
    make_history(lab, target.args, tmp_path)
    before = everything(lab, target.args)
    backup = lab.ok(*target.args, "backup")
    assert backup.startswith(f"# ClusterDB Mesh backup: {N_BACKUP} resources, with "
                             "resource_version and generation.")
    assert len(VERSION_LINE.findall(backup)) == 2 * N_BACKUP
    path = tmp_path / "backup.yaml"
    path.write_text(backup)

    target.wipe()
    assert everything(lab, target.args) == ""
    out = lab.ok(*target.args, "restore", "-f", path)
    assert out == f"restored {N_BACKUP} resources into an empty store, with their versions\n"
    after = everything(lab, target.args)
    assert after == before
    assert lab.ok(*target.args, "backup") == backup

    # Again: the store has history now, so it is an apply, and nothing changes.
    out = lab.ok(*target.args, "restore", "-f", path)
    assert out == f"restored {N_BACKUP} resources: 0 created, 0 configured, {N_BACKUP} unchanged\n"
    assert everything(lab, target.args) == before

    # And the next changes go on from the restored versions.
    newest = max(rv for rv, _ in versions(lab, target.args).values())
    lab.ok(*target.args, "delete", "fi", "web-service")
    vs = (EXAMPLES / "payment-virtual-service.yaml").read_text()
    lab.ok(*target.args, "apply", "-f", "-", input=vs)
    got = versions(lab, target.args)[("VirtualService", "default", "payment-service")]
    assert got == (newest + 2, 4)


def test_restore_into_a_store_with_history_applies(lab, target, tmp_path):
    make_history(lab, target.args, tmp_path)
    before = documents(lab, target.args)
    backup = lab.ok(*target.args, "backup")
    target.wipe()

    # Other history: the payment VirtualService with other weights, a Service of its own, and an
    # ObservabilityConfig created then deleted, so that the counter (4) is past every record.
    vs = (EXAMPLES / "payment-virtual-service.yaml").read_text()
    lab.ok(*target.args, "apply", "-f", "-", input=vs.replace("weight: 90", "weight: 50")
           .replace("weight: 10", "weight: 50"))
    own = ("apiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata:\n  name: own\n"
           "spec:\n  protocol: http\n  endpoints: [\"127.0.0.1:18099\"]\n")
    lab.ok(*target.args, "apply", "-f", "-", input=own)
    lab.ok(*target.args, "apply", "-f", EXAMPLES / "observability.yaml")
    lab.ok(*target.args, "delete", "observabilityconfig", "default")
    own_key = ("Service", "default", "own")
    own_versions = versions(lab, target.args)[own_key]
    counter = 4

    out = lab.ok(*target.args, "restore", "-f", "-", input=backup)
    assert out == f"restored {N_BACKUP} resources: {N_BACKUP - 1} created, 1 configured, " \
                  f"0 unchanged\n"
    after = documents(lab, target.args)
    got = {key(d): (d["metadata"]["resource_version"], d["metadata"]["generation"])
           for d in after}
    # The target's own versions, moving forward from its counter; the backup's are ignored.
    restored = sorted(rv for k, (rv, _) in got.items() if k != own_key)
    assert restored == list(range(counter + 1, counter + 1 + N_BACKUP))
    assert got[("VirtualService", "default", "payment-service")][1] == 2
    # Resources absent from the backup are left alone; the content is the backup's.
    assert got[own_key] == own_versions
    assert [strip_versions(d) for d in after if key(d) != own_key] == \
        [strip_versions(d) for d in before]

    text = everything(lab, target.args)
    out = lab.ok(*target.args, "restore", "-f", "-", input=backup)
    assert out == f"restored {N_BACKUP} resources: 0 created, 0 configured, {N_BACKUP} unchanged\n"
    assert everything(lab, target.args) == text


def test_a_backup_without_versions_still_restores_as_an_apply(lab, target, tmp_path):
    make_history(lab, target.args, tmp_path)
    before = everything(lab, target.args)
    old = VERSION_LINE.sub("", lab.ok(*target.args, "backup"))
    old = old.replace(", with resource_version and generation.", ".")
    assert "resource_version" not in old and "generation" not in old
    target.wipe()

    out = lab.ok(*target.args, "restore", "-f", "-", input=old)
    assert out == f"restored {N_BACKUP} resources: {N_BACKUP} created, 0 configured, 0 unchanged\n"
    after = everything(lab, target.args)
    assert VERSION_LINE.sub("", after) == VERSION_LINE.sub("", before)
    # The new store numbered them itself, in the backup's order, every one a first generation.
    assert sorted(versions(lab, target.args).values()) == [(v, 1) for v in range(1, N_BACKUP + 1)]


def test_meshd_restore_route_and_watches_see_the_restored_state(lab, tmp_path):
    source = lab.meshd("source")
    args = ["--server", source.url, "--token", source.token_file]
    make_history(lab, args, tmp_path)
    before = everything(lab, args)
    backup = lab.ok(*args, "backup")

    d = lab.meshd("target")
    # Writes need the token; only POST is allowed.
    assert d.request("POST", "/v1/restore", backup, token=False).status == 401
    r = d.request("GET", "/v1/restore")
    assert r.status == 405 and r.header("allow") == "POST"
    # Bad input: 400 with file:line:col, and nothing stored.
    bad = backup.replace("weight: 70", "weight: 75", 1)
    r = d.request("POST", "/v1/restore", bad)
    assert r.status == 400 and b"weights sum to 105, must be 100" in r.body
    assert d.json("GET", "/v1/version")["store_version"] == 0

    # A gateway waits on its config watch; the restore must wake it with the restored routes.
    d.json("PUT", "/v1/proxies/gw-1", {"role": "gateway", "gateway": "external-gateway",
                                        "namespace": "default", "admin": "127.0.0.1:15000"},
           status=201)
    first = d.json("GET", "/v1/proxies/gw-1/config")
    assert not any(doc["kind"] == "VirtualService" for doc in first["resources"])
    watch = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    watch.request("GET", f"/v1/proxies/gw-1/config?after={first['version']}&timeout=20s")
    time.sleep(0.15)  # meshd holds the watch now
    assert not select.select([watch.sock], [], [], 0)[0]

    answer = d.json("POST", "/v1/restore", backup)
    # meshd answers the watch as it commits, before it answers the restore, as after an apply;
    # its periodic sweep (every 250 ms here) would only notice the change later.
    assert select.select([watch.sock], [], [], 0.02)[0], "the restore did not wake the watch"
    r = watch.getresponse()
    woken = Response(r.status, [], r.read())
    watch.close()

    assert answer["mode"] == "versions_kept"
    assert len(answer["items"]) == N_BACKUP
    want = versions(lab, args)
    for item in answer["items"]:
        assert item["outcome"] == "created"
        k = (item["kind"], item["namespace"], item["name"])
        assert (item["resource_version"], item["generation"]) == want[k]
    assert everything(lab, ["--server", d.url]) == before

    assert woken.status == 200, woken.status
    cfg = json.loads(woken.body)
    payment = [doc for doc in cfg["resources"] if doc["kind"] == "VirtualService" and
               doc["metadata"]["name"] == "payment-service"]
    assert len(payment) == 1
    weights = [dst["weight"] for dst in payment[0]["spec"]["http_routes"][0]["destinations"]]
    assert weights == [70, 30]

    # JSON {"items": [...]} as libmesh sends it, into a store with history now: an apply.
    items = json.loads(lab.ok("--server", d.url, "get", "all", "-A", "-o", "json"))
    again = d.json("POST", "/v1/restore", {"items": items})
    assert again["mode"] == "applied"
    assert {i["outcome"] for i in again["items"]} == {"unchanged"}
