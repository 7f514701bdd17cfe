# SPDX-License-Identifier: Apache-2.0
"""meshproxy's OpenSSL code lives in meshproxy-tls.so, which sidecars and gateways dlopen() at
start and static mode never loads (docs/dataplane.md says why: idle RSS). Checked with real
processes: what meshproxy is linked against, what each mode maps, where the plugin is looked
for ($MESHPROXY_TLS_PLUGIN, next to the binary, the install location), and the start failure,
with its message, when it cannot be loaded.

Processes run on ports the kernel picks and are stopped by PID; every wait is bounded.
"""
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import SAN, SAN_MARKERS, build_dir
from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    Process,
    echo_services,
    lab,
    proxy_binaries,
    route,
    virtual_service,
)
from test_mesh_live import live, meshd_binary  # noqa: F401 - fixtures

PLUGIN = "meshproxy-tls.so"
INSTALLED = pathlib.Path("/usr/local/lib/clusterdb-mesh") / PLUGIN  # the default PREFIX
OPENSSL = ("libssl.so", "libcrypto.so")
START_FAIL_TIMEOUT = 20  # seconds; a refused start exits at once (sanitizer builds: slower)


def mapped(pid):
    """The files a process has mapped."""
    files = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                files.add(parts[5].strip())
    return files


def maps_any(files, names):
    return sorted(f for f in files if any(n in os.path.basename(f) for n in names))


def needed(path):
    """The DT_NEEDED entries of an ELF file, in order."""
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def sidecar_argv(binary, token, control="http://127.0.0.1:1"):
    return [str(binary), "--control", control, "--token", str(token), "--service", "payment-v1",
            "--namespace", "default", "--app", "127.0.0.1:9", "--outbound", "127.0.0.1:0",
            "--inbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--workers", "1"]


def refused_start(argv, env):
    """Runs a meshproxy that must refuse to start; returns its stderr."""
    r = subprocess.run(argv, env=env, capture_output=True, text=True,
                       timeout=START_FAIL_TIMEOUT)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "listening" not in r.stderr and "outbound on" not in r.stderr
    if SAN:
        assert not any(m in r.stderr for m in SAN_MARKERS), r.stderr
    return r.stderr


@pytest.fixture
def token(tmp_path):
    path = tmp_path / "token"
    path.write_text("not-used\n")
    return path


def env_without_plugin_var():
    env = dict(os.environ)
    env.pop("MESHPROXY_TLS_PLUGIN", None)
    return env


def test_meshproxy_is_not_linked_against_openssl():
    deps = needed(build_dir() / "meshproxy")
    assert not [d for d in deps if d.startswith(("libssl", "libcrypto"))], deps
    assert {"libyaml-0.so.2", "libjansson.so.4", "libc.so.6"} <= set(deps), deps
    plugin_deps = needed(build_dir() / PLUGIN)
    assert "libssl.so.3" in plugin_deps and "libcrypto.so.3" in plugin_deps, plugin_deps
    # One symbol exported: the table (and, under ASan, its ODR indicator).
    out = subprocess.run(["nm", "-D", "--defined-only", str(build_dir() / PLUGIN)],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    names = [line.split()[-1] for line in out.splitlines()]
    assert [n for n in names if not n.startswith("__odr_asan")] == ["mesh_tls_plugin_table"]


def test_static_mode_never_maps_openssl(lab, monkeypatch):
    # Not even when the variable names a plugin: static mode does not look.
    monkeypatch.setenv("MESHPROXY_TLS_PLUGIN", str(build_dir() / PLUGIN))
    e = lab.echo("payment-v1")
    p = lab.proxy(echo_services(e) +
                  [virtual_service("payment", ["payment.example.com"], route("payment-v1"))])
    assert p.request(host="payment.example.com").status == 200
    files = mapped(p.pid)
    assert maps_any(files, OPENSSL + (PLUGIN,)) == []
    assert "TLS plugin" not in p.stderr()


def test_sidecar_maps_the_plugin_beside_the_binary(live):
    live.start_meshd()
    v1 = live.sidecar("payment-v1", live.echo("payment-v1"))
    v1.wait_dump(lambda d: d["identity"]["spiffe_id"] is not None, "a certificate")
    plugin = (build_dir() / PLUGIN).resolve()
    files = mapped(v1.pid)
    assert str(plugin) in files
    assert len(maps_any(files, OPENSSL)) == 2, maps_any(files, OPENSSL)
    err = v1.stderr()
    assert f'msg="TLS plugin loaded" path={plugin} library="OpenSSL 3' in err
    # Loaded before anything registered.
    assert err.index("TLS plugin loaded") < err.index("meshproxy sidecar ")


def test_sidecar_refuses_to_start_without_its_plugin(token):
    env = env_without_plugin_var()
    env["MESHPROXY_TLS_PLUGIN"] = "/nonexistent/meshproxy-tls.so"
    err = refused_start(sidecar_argv(build_dir() / "meshproxy", token), env)
    assert ("meshproxy: cannot load the TLS plugin named by $MESHPROXY_TLS_PLUGIN: "
            "/nonexistent/meshproxy-tls.so: cannot open shared object file: No such file or "
            "directory\n") in err
    assert "Point MESHPROXY_TLS_PLUGIN at the meshproxy-tls.so built with this meshproxy" in err

    # A file that is not a plugin.
    env["MESHPROXY_TLS_PLUGIN"] = str(build_dir() / "libmesh.so")
    err = refused_start(sidecar_argv(build_dir() / "meshproxy", token), env)
    assert f"{build_dir() / 'libmesh.so'}: not a meshproxy TLS plugin" in err

    # A gateway too.
    env["MESHPROXY_TLS_PLUGIN"] = "/nonexistent/meshproxy-tls.so"
    refused_start([str(build_dir() / "meshproxy"), "--control", "http://127.0.0.1:1", "--token",
                   str(token), "--gateway", "edge", "--listen", "127.0.0.1:0", "--admin",
                   "127.0.0.1:0"], env)


@pytest.mark.skipif(INSTALLED.exists(), reason=f"{INSTALLED} is installed on this machine")
def test_search_order_beside_the_binary_then_installed(tmp_path, token, monkeypatch):
    """A copy of meshproxy elsewhere finds no plugin beside it nor in the install location:
    refused, naming both; with the plugin copied beside it, it starts."""
    monkeypatch.delenv("MESHPROXY_TLS_PLUGIN", raising=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    binary = bindir / "meshproxy"
    shutil.copy2(build_dir() / "meshproxy", binary)
    err = refused_start(sidecar_argv(binary, token), dict(os.environ))
    assert (f"no such file next to the binary ({bindir / PLUGIN}) nor where it is installed "
            f"({INSTALLED})") in err
    assert "make install puts it in /usr/local/lib/clusterdb-mesh" in err

    shutil.copy2(build_dir() / PLUGIN, bindir / PLUGIN)
    p = Process("copied-sidecar", sidecar_argv(binary, token), tmp_path)
    try:
        p.wait_for_stderr("meshproxy sidecar ")
        assert f'msg="TLS plugin loaded" path={bindir / PLUGIN} ' in p.stderr()
        assert str(bindir / PLUGIN) in mapped(p.pid)
    finally:
        assert p.stop() == 0
    assert p.sanitizer_report() is None
