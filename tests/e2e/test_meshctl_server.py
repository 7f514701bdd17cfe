# SPDX-License-Identifier: Apache-2.0
"""meshctl and libmesh against a real meshd: every resource command through --server and
$MESH_SERVER, the token from --token, $MESH_TOKEN_FILE and $MESH_TOKEN, the errors a user meets
(wrong token, meshd down), backup -> wipe -> restore, and the C API with mesh_config.server."""
import json
import os
import re
import shutil
import subprocess
import urllib.request

import pytest

from conftest import EXAMPLES, base_env, build_dir, check_sanitizer_output, strip_versions
from proxy_fixtures import START_TIMEOUT, Process, free_ports, wait_until

RUN_TIMEOUT = 30
N_EXAMPLES = 15  # documents in examples/


def meshd_path():
    return build_dir() / "meshd"


class Meshd(Process):
    """A meshd on a free loopback port with its own data directory."""

    def __init__(self, data_dir, log_dir, name="meshd"):
        self.data_dir = data_dir
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [meshd_path(), "--data-dir", data_dir, "--listen", f"127.0.0.1:{self.port}"]
        super().__init__(name, argv, log_dir)

    def wait_ready(self):
        def healthy():
            if not self.alive():
                pytest.fail(f"meshd exited ({self.proc.poll()}) at start:\n{self.stderr()}")
            try:
                with urllib.request.urlopen(self.url + "/v1/health", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(healthy, START_TIMEOUT, what="meshd /v1/health")
        return self

    @property
    def token_file(self):
        return self.data_dir / "token"

    def token(self):
        return self.token_file.read_text().strip()


class Lab:
    """meshd processes, and meshctl runs with a controlled environment."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.procs = []

    def meshd(self, name="meshd"):
        if not os.access(meshd_path(), os.X_OK):
            pytest.fail(f"{meshd_path()} is not built: run `make` first (or set MESH_BUILD)")
        data = self.tmp / f"{name}-data"
        data.mkdir(exist_ok=True)
        d = Meshd(data, self.tmp, name=name)
        self.procs.append(d)
        return d.wait_ready()

    def run(self, *args, env=None, input=None):
        """meshctl ARGS with env (base_env() without MESH_* when None); (rc, out, err)."""
        cmd = [str(build_dir() / "meshctl")] + [str(a) for a in args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, env=env if env is not None else clean_env())
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


def clean_env(**extra):
    env = base_env()
    for k in ("MESH_SERVER", "MESH_TOKEN", "MESH_TOKEN_FILE"):
        env.pop(k, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def lab(meshctl, tmp_path):
    lab = Lab(tmp_path)
    yield lab
    lab.close()


def server_args(d):
    return ["--server", d.url, "--token", d.token_file]


def all_json(lab, *where):
    return [strip_versions(d) for d in json.loads(lab.ok(*where, "get", "all", "-A", "-o", "json"))]


# --- the resource commands through meshd ---


def test_apply_get_diff_delete_through_server_flag(lab, tmp_path):
    d = lab.meshd()
    out = lab.ok(*server_args(d), "apply", "-f", EXAMPLES)
    assert out.count(" created\n") == N_EXAMPLES, out
    # Same content as the embedded store holds after the same apply.
    store = tmp_path / "store"
    lab.ok("--store", store, "apply", "-f", EXAMPLES)
    assert all_json(lab, *server_args(d)) == all_json(lab, "--store", store)

    # The global flags work after the command too; reads need no token on loopback.
    vs = json.loads(lab.ok("get", "vs", "payment-service", "-o", "json", "--server", d.url))
    assert vs["metadata"]["name"] == "payment-service"
    assert vs["metadata"]["resource_version"] > 0
    table = lab.ok("--server", d.url, "get", "vs")
    assert "payment-service" in table and "web-service" in table

    # Re-applying is unchanged; diff sees no difference, then sees one.
    out = lab.ok(*server_args(d), "apply", "-f", EXAMPLES)
    assert out.count(" unchanged\n") == N_EXAMPLES, out
    lab.ok(*server_args(d), "diff", "--exit-code", "-f", EXAMPLES)
    changed = tmp_path / "vs.yaml"
    text = (EXAMPLES / "payment-virtual-service.yaml").read_text()
    assert "weight: 90" in text
    changed.write_text(text.replace("weight: 90", "weight: 80").replace("weight: 10", "weight: 20"))
    rc, out, err = lab.run(*server_args(d), "diff", "--exit-code", "-f", changed)
    assert rc == 1, (out, err)
    assert "-          weight: 90\n" in out and "+          weight: 80\n" in out

    out = lab.ok(*server_args(d), "delete", "vs", "web-service")
    assert "web-service" in out
    rc, out, err = lab.run("--server", d.url, "get", "vs", "web-service")
    assert rc == 1
    assert "Service not found: VirtualService default/web-service" in err
    rc, out, err = lab.run(*server_args(d), "delete", "vs", "web-service")
    assert rc == 1 and "Service not found" in err


def test_server_and_token_from_the_environment(lab, tmp_path):
    d = lab.meshd()
    env = clean_env(MESH_SERVER=d.url, MESH_TOKEN_FILE=d.token_file)
    out = lab.ok("apply", "-f", EXAMPLES / "services.yaml", env=env)
    assert "service/payment-v1 created" in out
    # $MESH_TOKEN holds the token itself.
    env = clean_env(MESH_SERVER=d.url, MESH_TOKEN=d.token())
    out = lab.ok("apply", "-f", EXAMPLES / "payment-virtual-service.yaml", env=env)
    assert "virtualservice/payment-service created" in out
    names = lab.ok("get", "all", "-A", "-o", "name", env=env).split()
    assert "virtualservice/payment-service" in names and "service/orders" in names
    # --token FILE beats a wrong $MESH_TOKEN.
    env = clean_env(MESH_SERVER=d.url, MESH_TOKEN="0" * 64)
    lab.ok("--token", d.token_file, "delete", "svc", "orders", env=env)
    # An explicit --store beats $MESH_SERVER: the embedded store is empty.
    rc, out, err = lab.run("--store", tmp_path / "store", "get", "svc", "orders", env=env)
    assert rc == 1 and "Service not found" in err
    # meshctl version asks meshd too.
    out = lab.ok("version", env=env)
    assert re.search(rf"meshd \S+ at {re.escape(d.url)}", out), out


def test_wrong_or_missing_token_is_refused_and_nothing_is_stored(lab, tmp_path):
    d = lab.meshd()
    wrong = tmp_path / "wrong-token"
    wrong.write_text("f" * 64 + "\n")
    rc, out, err = lab.run("--server", d.url, "--token", wrong, "apply", "-f", EXAMPLES)
    assert rc == 1
    assert "meshd refused the token (401): pass --token FILE or set MESH_TOKEN_FILE" in err
    assert "f" * 64 not in err  # a token never appears in a message
    rc, out, err = lab.run("--server", d.url, "apply", "-f", EXAMPLES)
    assert rc == 1
    assert "meshd needs a token to apply (401)" in err
    rc, out, err = lab.run("--server", d.url, "--token", tmp_path / "absent", "get", "vs")
    assert rc == 1 and "cannot read the token file" in err
    empty = tmp_path / "empty"
    empty.write_text("\n")
    rc, out, err = lab.run("--server", d.url, "--token", empty, "get", "vs")
    assert rc == 1 and "is empty" in err
    assert json.loads(lab.ok("--server", d.url, "get", "all", "-A", "-o", "json")) == []
    rc, out, err = lab.run("--server", d.url, "--token", wrong, "restore", "-f",
                           EXAMPLES / "services.yaml")
    assert rc == 1 and "401" in err
    assert json.loads(lab.ok("--server", d.url, "get", "all", "-A", "-o", "json")) == []


def test_meshd_down_is_a_clear_error(lab, tmp_path):
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    want = f"cannot reach meshd at {url}: connection refused"
    for args in (["get", "vs"], ["apply", "-f", EXAMPLES], ["delete", "vs", "x"],
                 ["diff", "-f", EXAMPLES], ["backup"], ["restore", "-f", EXAMPLES / "services.yaml"],
                 ["version"]):
        rc, out, err = lab.run("--server", url, *args)
        assert rc == 1, (args, out, err)
        assert want in err, (args, err)
    # A meshd that was up and stopped: the same.
    d = lab.meshd()
    lab.ok(*server_args(d), "apply", "-f", EXAMPLES / "services.yaml")
    assert d.stop() == 0
    rc, out, err = lab.run(*server_args(d), "get", "svc")
    assert rc == 1 and f"cannot reach meshd at {d.url}: connection refused" in err
    # Neither --server and --store together.
    rc, out, err = lab.run("--server", url, "--store", tmp_path / "s", "get", "vs")
    assert rc == 1 and "not both" in err


# --- backup and restore ---


def test_backup_wipe_restore_gives_identical_get_output(lab, tmp_path):
    first = lab.meshd("meshd-a")
    lab.ok(*server_args(first), "apply", "-f", EXAMPLES)
    # Some history, so that versions and generations are not simply 1..N.
    lab.ok(*server_args(first), "delete", "svc", "web-v2")
    lab.ok(*server_args(first), "apply", "-f", EXAMPLES / "services.yaml")
    before_yaml = lab.ok("--server", first.url, "get", "all", "-A", "-o", "yaml")
    backup = lab.ok("--server", first.url, "backup")
    assert backup.startswith(f"# ClusterDB Mesh backup: {N_EXAMPLES} resources, with "
                             "resource_version and generation.")
    assert backup.count("  resource_version: ") == N_EXAMPLES
    assert backup.count("  generation: ") == N_EXAMPLES
    path = tmp_path / "backup.yaml"
    path.write_text(backup)
    assert first.stop() == 0

    # Wipe: a new data directory.
    second = lab.meshd("meshd-b")
    out = lab.ok(*server_args(second), "restore", "-f", path)
    assert out == f"restored {N_EXAMPLES} resources into an empty store, with their versions\n"
    after_yaml = lab.ok("--server", second.url, "get", "all", "-A", "-o", "yaml")
    assert after_yaml == before_yaml
    assert lab.ok("--server", second.url, "backup") == backup

    # Idempotent: again, and everything is unchanged.
    out = lab.ok(*server_args(second), "restore", "-f", path)
    assert out == f"restored {N_EXAMPLES} resources: 0 created, 0 configured, " \
                  f"{N_EXAMPLES} unchanged\n"
    assert lab.ok("--server", second.url, "get", "all", "-A", "-o", "yaml") == after_yaml

    # A changed resource is put back ("configured").
    vs = (EXAMPLES / "payment-virtual-service.yaml").read_text()
    changed = tmp_path / "changed.yaml"
    changed.write_text(vs.replace("weight: 90", "weight: 80").replace("weight: 10", "weight: 20"))
    lab.ok(*server_args(second), "apply", "-f", changed)
    out = lab.ok(*server_args(second), "restore", "-f", path)
    assert out == f"restored {N_EXAMPLES} resources: 0 created, 1 configured, " \
                  f"{N_EXAMPLES - 1} unchanged\n"


def test_backup_and_restore_with_the_embedded_store(lab, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    lab.ok("--store", a, "apply", "-f", EXAMPLES)
    backup = lab.ok("--store", a, "backup")
    path = tmp_path / "backup.yaml"
    path.write_text(backup)
    out = lab.ok("--store", b, "restore", "-f", path)
    assert out == f"restored {N_EXAMPLES} resources into an empty store, with their versions\n"
    out = lab.ok("--store", b, "restore", "-f", path)
    assert out.endswith(f"0 created, 0 configured, {N_EXAMPLES} unchanged\n")
    assert lab.ok("--store", b, "get", "all", "-A", "-o", "yaml") == \
        lab.ok("--store", a, "get", "all", "-A", "-o", "yaml")
    assert lab.ok("--store", b, "backup") == backup
    # Stable order: kinds in the documented order, then namespace and name.
    kinds = re.findall(r"(?m)^kind: (\S+)$", backup)
    order = ["MeshConfig", "ObservabilityConfig", "KubernetesConfig", "Service", "VirtualService",
             "SecurityPolicy", "CircuitBreaker", "FaultInjection"]
    assert kinds == sorted(kinds, key=order.index)
    # From stdin, and an empty store backs up to a file that restores to nothing.
    empty = lab.ok("--store", tmp_path / "empty", "backup")
    assert empty == "# ClusterDB Mesh backup: 0 resources, with resource_version and " \
                    "generation. Restore with: meshctl restore -f FILE\n"
    out = lab.ok("--store", b, "restore", "-f", "-", input=empty)
    assert out == "restored 0 resources: 0 created, 0 configured, 0 unchanged\n"


def test_backup_crosses_between_store_and_meshd(lab, tmp_path):
    store = tmp_path / "store"
    lab.ok("--store", store, "apply", "-f", EXAMPLES)
    backup = lab.ok("--store", store, "backup")
    d = lab.meshd()
    out = lab.ok(*server_args(d), "restore", "-f", "-", input=backup)
    assert out == f"restored {N_EXAMPLES} resources into an empty store, with their versions\n"
    assert lab.ok("--server", d.url, "backup") == backup


def test_backup_of_one_namespace(lab, tmp_path):
    store = tmp_path / "store"
    lab.ok("--store", store, "apply", "-f", EXAMPLES / "services.yaml")
    shop = ("apiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata:\n  name: cart\n"
            "  namespace: shop\nspec:\n  protocol: http\n  endpoints: [\"127.0.0.1:18090\"]\n")
    lab.ok("--store", store, "apply", "-f", "-", input=shop)
    out = lab.ok("--store", store, "backup", "-n", "shop")
    assert out.startswith("# ClusterDB Mesh backup: 1 resource in namespace shop, with "
                          "resource_version and generation.")
    assert "name: cart" in out and "namespace: default" not in out
    everything = lab.ok("--store", store, "backup")
    assert "name: cart" in everything and "namespace: default" in everything


def test_restore_is_all_or_nothing(lab, tmp_path):
    d = lab.meshd()
    backup = tmp_path / "bad.yaml"
    text = (EXAMPLES / "services.yaml").read_text() + \
        "---\napiVersion: mesh.clusterdb.io/v1\nkind: VirtualService\nmetadata:\n  name: bad\n" \
        "spec:\n  hosts: [x]\n  http_routes:\n  - destinations:\n    - host: a\n      weight: 95\n"
    backup.write_text(text)
    rc, out, err = lab.run(*server_args(d), "restore", "-f", backup)
    assert rc == 1
    assert "weights sum to 95, must be 100" in err
    assert json.loads(lab.ok("--server", d.url, "get", "all", "-A", "-o", "json")) == []


# --- the C API ---


def test_libmesh_c_api_with_config_server(lab, tmp_path):
    example = build_dir() / "examples" / "meshd_client"
    if not example.exists():
        pytest.fail(f"{example} is missing: build it with `make`")
    d = lab.meshd()
    env = clean_env(MESH_TOKEN_FILE=d.token_file)
    proc = subprocess.run([str(example), d.url], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, env=env)
    check_sanitizer_output(proc.stderr, [str(example)])
    assert proc.returncode == 0, proc.stderr
    assert "applied: default/payment-service generation 1: payment-v1=90 payment-v2=10" \
        in proc.stdout
    assert "changed: default/payment-service generation 2: payment-v1=50 payment-v2=50" \
        in proc.stdout
    assert "listed 1 VirtualService(s)" in proc.stdout
    assert "after delete: MESH_E_NOTFOUND (Service not found: VirtualService " \
           "default/payment-service)" in proc.stdout

    # What the program wrote went to meshd: leave one behind and read it with meshctl.
    lab.ok(*server_args(d), "apply", "-f", EXAMPLES / "services.yaml")
    assert "payment-v1" in lab.ok("--server", d.url, "get", "svc")

    # Without a token the writes are refused with the 401 message; meshd down is UNAVAILABLE.
    proc = subprocess.run([str(example), d.url], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, env=clean_env())
    assert proc.returncode == 1
    assert "meshd needs a token to apply (401)" in proc.stderr
    port = free_ports(1)[0]
    proc = subprocess.run([str(example), f"http://127.0.0.1:{port}"], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, env=env)
    assert proc.returncode == 1
    assert f"cannot reach meshd at http://127.0.0.1:{port}: connection refused" in proc.stderr
