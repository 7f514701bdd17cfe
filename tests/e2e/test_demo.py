# SPDX-License-Identifier: Apache-2.0
"""`make demo` as a new user runs it: the live mesh (meshd, three apps behind sidecars, the
external gateway) started, examples/ applied, 1,000 requests through the mesh and 1,000 through
the gateway split 90/10, and every process stopped again, by Ctrl-C too."""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import ROOT, base_env, build_dir, check_sanitizer_output

DEMO = ROOT / "scripts" / "demo.py"
# The addresses the demo prints for the user to type; they must be free before and after.
FIXED = [15010, 8080, 15001, 15000, 18081, 18082, 18085]


def listening(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def demo_env(tmp_path):
    env = base_env()
    env["TMPDIR"] = str(tmp_path)  # the demo's temporary directory lands here
    return env


@pytest.fixture
def free_fixed_ports():
    taken = [p for p in FIXED if listening(p)]
    if taken:
        pytest.skip(f"the demo's fixed ports {taken} are in use on this machine")


def split_lines(out, heading):
    """The "N answered by APP" lines of the section that starts with heading."""
    section = out.split(heading, 1)[1].split("\n== ", 1)[0]
    return {m.group(2): int(m.group(1))
            for m in re.finditer(r"^\s+(\d+) answered by (\S+)", section, re.M)}


def test_demo_runs_the_live_mesh_and_cleans_up(tmp_path, free_fixed_ports):
    proc = subprocess.run(["/usr/bin/python3", str(DEMO), str(build_dir()), "--no-wait"],
                          capture_output=True, text=True, timeout=120, env=demo_env(tmp_path),
                          cwd=tmp_path, stdin=subprocess.DEVNULL)
    check_sanitizer_output(proc.stderr, ["demo"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "virtualservice/payment created" in out
    assert "virtualservice/payment-service created" in out
    # Four proxies registered, each acknowledging the config meshd serves it.
    status = out.split("$ meshctl proxy-status\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(status) == 5, status
    assert all(line.split()[7] == "SYNCED" for line in status[1:]), status
    assert {line.split()[2] for line in status[1:]} == {
        "payment-v1", "payment-v2", "orders", "external-gateway"}
    # The seed's split, exact in aggregate, inside the mesh and at the gateway.
    assert split_lines(out, "from orders to payment") == {"payment-v1": 900, "payment-v2": 100}
    assert split_lines(out, "through the external gateway") == {
        "payment-v1": 900, "payment-v2": 100}
    assert re.search(r"/admin\s+->\s+404", out)
    # The seed names internal-ca, which the demo's meshd does not have: a warning, no error.
    assert "0 errors and 1 warning" in out and "[MESH0106]" in out
    assert "export MESH_SERVER=http://127.0.0.1:15010" in out
    assert os.listdir(tmp_path) == [], "the demo must remove its temporary directory"
    assert not [p for p in FIXED if listening(p)], "a process the demo started still listens"


def test_ctrl_c_stops_every_process(tmp_path, free_fixed_ports):
    proc = subprocess.Popen(["/usr/bin/python3", str(DEMO), str(build_dir()), "--wait"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=demo_env(tmp_path), cwd=tmp_path, stdin=subprocess.DEVNULL)
    try:
        lines = []
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line or time.monotonic() > deadline:
                break
        assert "Press Ctrl-C" in lines[-1], "".join(lines) + proc.stderr.read()
        children = [int(p) for p in
                    (pathlib_read(f"/proc/{proc.pid}/task/{proc.pid}/children").split())]
        assert len(children) == 8, children  # meshd, 3 apps, 3 sidecars, the gateway
        # The mesh is live while the demo waits.
        assert listening(15001) and listening(8080)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    check_sanitizer_output(err, ["demo --wait"])
    assert proc.returncode == 0, rest + err
    assert "demo: stopping" in rest
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} survived Ctrl-C"
    assert os.listdir(tmp_path) == []


def test_taken_port_is_named(tmp_path, free_fixed_ports):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 15010))
        s.listen()
        proc = subprocess.run(["/usr/bin/python3", str(DEMO), str(build_dir()), "--no-wait"],
                              capture_output=True, text=True, timeout=60,
                              env=demo_env(tmp_path), cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert "in use: 127.0.0.1:15010" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_usage():
    proc = subprocess.run(["/usr/bin/python3", str(DEMO)], capture_output=True, text=True,
                          timeout=10)
    assert proc.returncode == 2
    assert "Usage: scripts/demo.py BUILD_DIR" in proc.stderr


def pathlib_read(path):
    with open(path) as f:
        return f.read()
