# SPDX-License-Identifier: Apache-2.0
"""End to end: the seed's examples, written as C programs against libmesh, run against a fresh
embedded store; what they stored is then read back with meshctl, as a user would."""

import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("MESH_BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
EXAMPLES = BUILD / "examples"
MESHCTL = BUILD / "meshctl"
SAN = os.environ.get("SAN") == "1"
TIMEOUT = 60


def run(argv, **kwargs):
    """Runs argv to completion; under a sanitizer build any report fails the test."""
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=TIMEOUT, **kwargs
    )
    if SAN:
        for marker in ("Sanitizer", "runtime error:"):
            assert marker not in proc.stderr, f"{argv[0]}: sanitizer report:\n{proc.stderr}"
    return proc


def run_example(name, store, env=None):
    binary = EXAMPLES / name
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with `make`")
    return run([binary, store], env=env)


def stored(store, kind):
    """The documents of kind in store, via `meshctl get KIND -A -o json`; None without meshctl."""
    if not MESHCTL.exists():
        return None
    proc = run([MESHCTL, "--store", store, "get", kind, "-A", "-o", "json"])
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout) if proc.stdout.strip() else []
    if isinstance(docs, dict):
        docs = docs.get("items", [docs])
    return {(d["metadata"].get("namespace", "default"), d["metadata"]["name"]): d for d in docs}


def destinations(route):
    return [(d["host"], d["weight"]) for d in route["destinations"]]


def route_paths(route):
    """A route's match paths, whichever of the accepted shapes the printer chose."""
    paths = []
    for m in route.get("matches", []):
        p = m.get("path")
        paths.append(p if isinstance(p, str) or p is None else next(iter(p.values())))
    return paths


def check_traffic_split(out, store):
    assert "VirtualService default/payment-service" in out
    assert "payment-v1 90%, payment-v2 10%" in out
    assert "VirtualService default/web-service" in out
    assert "web-v1 80%, web-v2 20%" in out
    docs = stored(store, "vs")
    if docs is None:
        return
    assert set(docs) == {("default", "payment-service"), ("default", "web-service")}
    payment = docs[("default", "payment-service")]["spec"]
    assert payment["hosts"] == ["payment.example.com"]
    assert payment["gateways"] == ["external-gateway"]
    (primary,) = payment["http_routes"]
    assert primary["name"] == "primary"
    assert route_paths(primary) == ["/api/v1/*"]
    assert destinations(primary) == [("payment-v1", 90), ("payment-v2", 10)]
    web = docs[("default", "web-service")]["spec"]
    assert web["hosts"] == ["web.example.com"]
    (route,) = web["http_routes"]
    assert route_paths(route) == ["/api/v1"]
    assert destinations(route) == [("web-v1", 80), ("web-v2", 20)]


def check_fault_injection(out, store):
    assert "FaultInjection default/web-service for service web-service" in out
    assert "delay 100ms for 100% of requests" in out
    assert "abort with 503 for 10% of requests" in out
    docs = stored(store, "fi")
    if docs is None:
        return
    spec = docs[("default", "web-service")]["spec"]
    assert spec["service"] == "web-service"
    assert spec["delay"] == "100ms"
    assert spec["abort"]["http_status"] == 503
    assert spec["abort"]["percentage"] == 10


def check_security_policy(out, store):
    assert "SecurityPolicy default/payment-security" in out
    assert "mtls strict, certificate_authority internal-ca" in out
    assert "from orders.default.svc" in out
    assert "methods POST" in out
    docs = stored(store, "sp")
    if docs is None:
        return
    spec = docs[("default", "payment-security")]["spec"]
    assert spec["mtls"] == {"mode": "strict", "certificate_authority": "internal-ca"}
    assert spec["authorization"] == [
        {
            "from": ["orders.default.svc"],
            "to": ["payment.default.svc"],
            "methods": ["POST"],
            "paths": ["/api/v1/process"],
        }
    ]


def check_circuit_breaker(out, store):
    assert "CircuitBreaker default/payment-service for service payment-service" in out
    assert "max_connections 100, max_pending_requests 100, max_requests 1000, max_retries 3" in out
    assert "eject after 5 consecutive errors, interval 10000ms, base_ejection_time 30000ms" in out
    docs = stored(store, "cb")
    if docs is None:
        return
    spec = docs[("default", "payment-service")]["spec"]
    assert spec["service"] == "payment-service"
    assert (spec["max_connections"], spec["max_pending_requests"]) == (100, 100)
    assert (spec["max_requests"], spec["max_retries"]) == (1000, 3)
    assert spec["detection"]["consecutive_errors"] == 5
    assert spec["detection"]["interval"] == "10s"
    assert spec["detection"]["base_ejection_time"] == "30s"


CASES = {
    "traffic_split": check_traffic_split,
    "fault_injection": check_fault_injection,
    "security_policy": check_security_policy,
    "circuit_breaker": check_circuit_breaker,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_stores_the_seed_resources(name, tmp_path):
    store = tmp_path / "store"
    proc = run_example(name, store)
    assert proc.returncode == 0, proc.stderr
    CASES[name](proc.stdout, store)


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_is_idempotent(name, tmp_path):
    store = tmp_path / "store"
    first = run_example(name, store)
    assert first.returncode == 0, first.stderr
    again = run_example(name, store)
    assert again.returncode == 0, again.stderr
    # An unchanged re-apply keeps the resource_version the first run printed.
    assert again.stdout == first.stdout


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_reads_store_from_environment(name, tmp_path):
    store = tmp_path / "from-env"
    binary = EXAMPLES / name
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with `make`")
    proc = run([binary], env={**os.environ, "MESH_STORE": str(store)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (store / "mesh.db").exists()
    assert not (tmp_path / ".mesh").exists()


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_fails_loudly_on_a_bad_store(name, tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    proc = run_example(name, not_a_dir)
    assert proc.returncode != 0
    assert f"{name}: " in proc.stderr
    assert str(not_a_dir) in proc.stderr
