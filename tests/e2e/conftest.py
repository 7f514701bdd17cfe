# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the end-to-end tests: the meshctl binary and a fresh embedded store per test.

meshctl is $MESH_BUILD/meshctl (MESH_BUILD defaults to "build"). With SAN=1 (make check SAN=1)
every run also asserts that stderr carries no sanitizer report.
"""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
RUN_TIMEOUT = 30  # seconds; one meshctl run is a few milliseconds, so this only catches hangs
SAN = os.environ.get("SAN") == "1"
SAN_MARKERS = ("Sanitizer", "runtime error:")


def build_dir():
    build = pathlib.Path(os.environ.get("MESH_BUILD", "build"))
    return build if build.is_absolute() else ROOT / build


def meshctl_path():
    return build_dir() / "meshctl"


def check_sanitizer_output(stderr, args):
    """Fails the test when a sanitizer build reported anything (reports go to stderr)."""
    if not SAN:
        return
    for marker in SAN_MARKERS:
        assert marker not in stderr, f"sanitizer report from meshctl {' '.join(args)}:\n{stderr}"


def base_env():
    """The environment meshctl runs in: ours, minus a MESH_STORE that could point elsewhere."""
    env = dict(os.environ)
    env.pop("MESH_STORE", None)
    return env


def strip_versions(doc):
    """A copy of a resource document (dict) without metadata.resource_version / generation."""
    doc = json.loads(json.dumps(doc))
    meta = doc.get("metadata", {})
    meta.pop("resource_version", None)
    meta.pop("generation", None)
    return doc


class Mesh:
    """A fresh store directory and a way to run meshctl against it."""

    def __init__(self, store):
        self.store = store
        self.meshctl = meshctl_path()

    def run(self, *args, input=None, store=True, env=None, cwd=None, timeout=RUN_TIMEOUT):
        """Runs meshctl [--store STORE] ARGS; returns (rc, stdout, stderr)."""
        cmd = [str(self.meshctl)]
        if store:
            cmd += ["--store", str(self.store)]
        cmd += [str(a) for a in args]
        proc = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=base_env() if env is None else env,
            cwd=cwd,
        )
        check_sanitizer_output(proc.stderr, cmd[1:])
        return proc.returncode, proc.stdout, proc.stderr

    def ok(self, *args, **kwargs):
        """Runs meshctl and asserts it exited 0; returns stdout."""
        rc, out, err = self.run(*args, **kwargs)
        assert rc == 0, f"meshctl {' '.join(map(str, args))} exited {rc}:\n{out}\n{err}"
        return out

    def apply_examples(self):
        return self.ok("apply", "-f", EXAMPLES)

    def get_json(self, *args):
        """`get ... -o json`, decoded."""
        return json.loads(self.ok("get", *args, "-o", "json"))

    def snapshot(self):
        """Every stored resource (`get all -A -o json`): compare two to assert nothing was
        written in between."""
        return self.get_json("all", "-A")


@pytest.fixture(scope="session")
def meshctl():
    path = meshctl_path()
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built: run `make` first (or set MESH_BUILD)")
    return path


@pytest.fixture
def mesh(meshctl, tmp_path):
    return Mesh(tmp_path / "store")


@pytest.fixture
def other_mesh(meshctl, tmp_path):
    """A second, independent store, for comparing two ways of writing the same thing."""
    return Mesh(tmp_path / "other-store")
