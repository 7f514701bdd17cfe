# SPDX-License-Identifier: Apache-2.0
"""Root rotation of the mesh CA (`meshctl ca rotate`, POST /v1/ca/rotate), end to end with real
processes: meshd, two sidecars and a gateway whose calls to the payment sidecar go over mutual TLS
(a strict SecurityPolicy: no plaintext fallback), with requests flowing throughout. The rotation
adds a new root to the bundle, re-issues every certificate from it and retires the old root, with
zero failed requests; afterwards every proxy's certificate comes from the new root and its bundle
holds only that root, GET /v1/ca shows one root, and the old root's files are in
DATA_DIR/ca/retired/. A second rotation refused while one runs (409), a sidecar started in the
middle of one, meshd killed and restarted in the middle of one (it resumes), and a second
rotation after that; meshctl's words when meshd is away or the token is wrong.

meshd, sidecars and gateways come from test_mesh_live's fixtures (ports the kernel picks, stopped
by PID); every wait is bounded.
"""
import hashlib
import json
import os
import ssl
import stat
import subprocess
import threading
import time

import pytest

from conftest import SAN, base_env, check_sanitizer_output
from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    API,
    Client,
    Metrics,
    lab,
    proxy_binaries,
    route,
    wait_until,
)
from test_mesh_live import (  # noqa: F401 - live and meshd_binary are fixtures
    has_endpoints,
    live,
    meshd_binary,
    vs,
)

# Short heartbeats make each phase short: a phase ends two heartbeat intervals after the last
# proxy got its certificate (and never sooner than 6 s after meshd started). The TTL outlasts a
# proxy's longest retry pause (5 s), so that none lapses while meshd restarts.
MESHD_FLAGS = ["--heartbeat-interval", "200ms", "--heartbeat-ttl", "6s"]
ROTATION_TIMEOUT = 40 if SAN else 25  # seconds for a whole rotation, proxies renewing at once
GATEWAY_HOST = "pay.example.com"
KEY_WORDS = "PRIVATE KEY"


def fingerprint_of(pem):
    der = ssl.PEM_cert_to_DER_cert(pem)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def root_fingerprint(live):
    return fingerprint_of((live.data_dir / "ca" / "root-cert.pem").read_text())


def ca_doc(live):
    status, body = live.meshd.call("GET", "/v1/ca")
    assert status == 200, body
    return body


def rotation(live):
    return ca_doc(live)["rotation"]


def meshctl(mesh, live, *args, timeout=30):
    """meshctl --server MESHD --token TOKEN ARGS; returns (rc, stdout, stderr)."""
    rc, out, err = mesh.run("--server", live.meshd.url, "--token", live.meshd.token_path, *args,
                            store=False, timeout=timeout)
    assert KEY_WORDS not in out + err
    return rc, out, err


def strict_policy():
    return {"apiVersion": API, "kind": "SecurityPolicy",
            "metadata": {"name": "strict", "namespace": "default"},
            "spec": {"mtls": {"mode": "strict"}}}


def gateway_route():
    return vs("pay", [GATEWAY_HOST], route("payment-v1"), gateways=["external-gateway"])


class Traffic:
    """Requests through proxies to payment-v1's sidecar, continuously, on fresh connections (a
    handshake each: they meet every certificate and bundle of the rotation) and on one keep-alive
    connection per path, until stopped. Every answer must come from payment-v1's app."""

    def __init__(self, paths):
        # [(proxy, host)]: payment-v1 or the gateway's host (answered by payment-v1's app), or
        # another payment service, whose app answers with its own name
        self.paths = paths
        self.ok = 0
        self.failures = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _check(self, r, host):
        want = host if host.startswith("payment-") else "payment-v1"
        if r.status == 200 and r.header("x-echo-name") == want:
            self.ok += 1
        else:
            self.failures.append((r.status, r.header("x-mesh-error"), r.text[:200]))

    def _run(self):
        keep = {}
        while not self.done.is_set():
            for proxy, host in self.paths:
                try:
                    self._check(proxy.request(host), host)
                    if host not in keep:
                        keep[host] = Client(proxy.port, host)
                    self._check(keep[host].request(), host)
                except (OSError, AssertionError) as e:
                    self.failures.append(repr(e))
                    keep.pop(host, None)
            time.sleep(0.005)
        for c in keep.values():
            c.close()

    def stop(self):
        self.done.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        assert self.failures == [], f"{len(self.failures)} failed requests: {self.failures[:5]}"
        return self.ok


def identity(proxy):
    return proxy.dump()["identity"]


def mtls_failures(proxy):
    m = Metrics(proxy.admin("/metrics").text)
    return sum(v for lab_, v in m.find("mesh_mtls_handshakes_total") if lab_["result"] != "success")


def mtls_successes(proxy):
    return Metrics(proxy.admin("/metrics").text).sum("mesh_mtls_handshakes_total",
                                                      result="success")


def start_mesh(live, flags=(), docs=()):
    """meshd (MESHD_FLAGS + flags) with a strict policy (and docs), payment-v1 and orders behind
    sidecars, the external gateway routing pay.example.com to payment-v1; returns (payment,
    orders, gateway) once every proxy has a certificate and the callers know payment-v1's
    endpoint."""
    live.start_meshd(MESHD_FLAGS + list(flags))
    live.meshd.apply([strict_policy(), gateway_route(), *docs])
    v1 = live.sidecar("payment-v1", live.echo("payment-v1"), version="v1")
    orders = live.sidecar("orders", live.echo("orders"))
    gw = live.gateway("external-gateway")
    for p in (orders, gw):
        p.wait_dump(lambda d: has_endpoints(d, [("payment-v1", v1.inbound)]),
                    "payment-v1's endpoint")
    for p in (v1, orders, gw):
        p.wait_dump(lambda d: d["identity"]["spiffe_id"] is not None, "a certificate")
    wait_until(lambda: gw.request(GATEWAY_HOST).status == 200, 10, what="the gateway's route")
    return v1, orders, gw


def assert_new_root_everywhere(live, proxies, old_fp):
    """Every proxy holds a certificate from the root now in DATA_DIR/ca/root-cert.pem, and its
    bundle holds that root only; GET /v1/ca agrees."""
    new_fp = root_fingerprint(live)
    assert new_fp != old_fp
    doc = ca_doc(live)
    assert [r["sha256_fingerprint"] for r in doc["roots"]] == [new_fp]
    assert doc["roots"][0]["name"] == "mesh-root" and doc["roots"][0]["issuing"] is True
    assert doc["issuing_root"] == "mesh-root"
    assert fingerprint_of(doc["trust_bundle"]) == new_fp
    subject = doc["roots"][0]["subject"]
    for p in proxies:
        ident = identity(p)
        assert [r["sha256"] for r in ident["trust_bundle"]] == [new_fp], (p.name, ident)
        assert ident["issuer"] == subject, (p.name, ident)
        assert ident["ca"] == "mesh-root", (p.name, ident)
    return doc


# --- tests ---


def test_rotation_under_load_fails_no_request(live, mesh):
    v1, orders, gw = start_mesh(live)
    proxies = (v1, orders, gw)
    old_fp = root_fingerprint(live)
    before = ca_doc(live)
    assert before["rotation"]["phase"] == "idle" and before["rotation"]["id"] == 0
    rc, out, _ = meshctl(mesh, live, "ca", "status")
    assert rc == 0 and "none yet" in out and old_fp in out
    handshakes = {p.name: mtls_successes(p) for p in (v1, orders, gw)}

    traffic = Traffic([(orders, "payment-v1"), (gw, GATEWAY_HOST)])
    try:
        rc, out, err = meshctl(mesh, live, "ca", "rotate", "--wait", "--timeout",
                               f"{ROTATION_TIMEOUT}s", timeout=ROTATION_TIMEOUT + 10)
    finally:
        sent = traffic.stop()
    print(out, err)
    assert rc == 0, (out, err)
    assert sent > 100, sent
    lines = out.splitlines()
    assert lines[0].startswith("Root rotation 1 started: the new root is CN=ClusterDB Mesh root "
                               "CA 2 (cluster.local),O=ClusterDB Mesh (SHA-256 "), out
    done = [ln.split()[0] for ln in lines if " done in " in ln]
    assert done == ["prepare", "switch", "retire"], out
    assert "(3 live proxies)" in out
    assert lines[-1].startswith("Root rotation 1 complete in "), out

    doc = assert_new_root_everywhere(live, proxies, old_fp)
    assert doc["roots"][0]["subject"] == \
        "CN=ClusterDB Mesh root CA 2 (cluster.local),O=ClusterDB Mesh"
    rot = doc["rotation"]
    assert rot["phase"] == "idle" and rot["id"] == 1 and rot["generation"] == 3
    assert rot["waiting_for"] == [] and rot["completed"] is not None
    assert [(w["phase"], w["generation"], w["proxies"]) for w in rot["phases"]] == \
        [("prepare", 1, 3), ("switch", 2, 3), ("retire", 3, 3)]

    # Each proxy renewed three times for it (once per phase), each time at once.
    for p in proxies:
        assert identity(p)["renewal"]["renewals"] >= 4, p.name
        assert p.stderr().count("renewing the workload certificate now: meshd's CA changed") == 3
        assert "lvl=error" not in p.stderr()
    # The requests met the new certificates in real handshakes, and none failed.
    for p in (v1, orders, gw):
        assert mtls_successes(p) > handshakes[p.name], p.name
        assert mtls_failures(p) == 0, p.name

    # The old root moved aside with its key still private; the new one is "the root".
    ca_dir = live.data_dir / "ca"
    retired = ca_dir / "retired"
    assert fingerprint_of((retired / "rotation-1-root-cert.pem").read_text()) == old_fp
    assert stat.S_IMODE((retired / "rotation-1-root-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((ca_dir / "root-key.pem").stat().st_mode) == 0o600
    assert not (ca_dir / "next-root-cert.pem").exists()
    assert "root rotation complete: the old root is retired" in live.meshd.stderr()

    rc, out, _ = meshctl(mesh, live, "ca", "status")
    assert rc == 0 and "rotation 1 complete" in out and root_fingerprint(live) in out
    assert old_fp not in out
    got = json.loads(meshctl(mesh, live, "ca", "status", "-o", "json")[1])
    assert "trust_bundle" not in got and got["rotation"]["phase"] == "idle"
    # Traffic after the rotation, on new connections, still goes through.
    assert orders.request("payment-v1").header("x-echo-name") == "payment-v1"
    for p in live.procs:
        assert KEY_WORDS not in p.stderr()


def wait_phase(live, phase, timeout):
    return wait_until(lambda: rotation(live)["phase"] == phase and rotation(live), timeout,
                      interval=0.05, what=f"the rotation's {phase} phase")


def make_ca(tmp_path, name, subject):
    """A CA certificate and key made with openssl req -x509; returns (cert path, key path)."""
    cert, key = tmp_path / f"{name}-cert.pem", tmp_path / f"{name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", subject,
                    "-keyout", key, "-out", cert,
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, capture_output=True, timeout=60)
    key.chmod(0o600)
    return cert, key


def named_ca_policy():
    """payment-v2's certificates come from the --ca CA internal-ca."""
    return {"apiVersion": API, "kind": "SecurityPolicy",
            "metadata": {"name": "payment-v2-ca", "namespace": "default"},
            "spec": {"services": ["payment-v2"],
                     "mtls": {"mode": "strict", "certificate_authority": "internal-ca"}}}


class Follower:
    """`meshctl ca rotate --wait` running in the background."""

    def __init__(self, mesh, live, *args):
        self.cmd = [str(mesh.meshctl), "--server", live.meshd.url, "--token",
                    str(live.meshd.token_path), "ca", "rotate", *args]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=base_env())

    def result(self, timeout):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=5)
            pytest.fail(f"meshctl ca rotate still running after {timeout}s:\n{out}\n{err}")
        check_sanitizer_output(err, self.cmd[1:])
        return self.proc.returncode, out, err


def test_conflict_named_ca_restart_mid_rotation_and_a_second_rotation(live, mesh, tmp_path):
    ca_cert, ca_key = make_ca(tmp_path, "internal", "/O=Example/CN=Internal CA")
    live.meshd_flags = ()
    v1, orders, gw = start_mesh(live, ["--ca", f"internal-ca={ca_cert},{ca_key}"],
                                [named_ca_policy()])
    internal_fp = fingerprint_of(ca_cert.read_text())
    old_fp = root_fingerprint(live)
    follower = Follower(mesh, live, "--timeout", f"{2 * ROTATION_TIMEOUT}s")
    traffic = Traffic([(orders, "payment-v1"), (gw, GATEWAY_HOST)])
    try:
        wait_until(lambda: rotation(live)["id"] == 1, 10, what="the rotation to start")
        # One at a time: 409, in meshctl's words too.
        status, body = live.meshd.call("POST", "/v1/ca/rotate")
        assert status == 409, body
        assert "already" in body["error"]["message"]
        rc, out, err = meshctl(mesh, live, "ca", "rotate")
        assert rc == 1 and out == ""
        assert "error: a root rotation is running already (rotation 1, phase " in err, err
        assert "'meshctl ca status' shows how far it is" in err

        rot = wait_phase(live, "switch", ROTATION_TIMEOUT)
        doc = ca_doc(live)
        assert [r["name"] for r in doc["roots"]] == ["mesh-root", "mesh-root-next", "internal-ca"]
        assert doc["issuing_root"] == "mesh-root-next"
        # A sidecar that starts now gets a certificate of the current phase with every root of
        # it in its bundle; its policy names internal-ca, which keeps signing for it.
        v2 = live.sidecar("payment-v2", live.echo("payment-v2"), version="v2")
        v2.wait_dump(lambda d: d["identity"]["spiffe_id"] is not None, "a certificate")
        ident = identity(v2)
        assert ident["ca"] == "internal-ca" and ident["issuer"] == "CN=Internal CA,O=Example"
        assert [r["sha256"] for r in ident["trust_bundle"]] == \
            [r["sha256_fingerprint"] for r in doc["roots"]]
        orders.wait_dump(lambda d: has_endpoints(d, [("payment-v2", v2.inbound)]),
                         "payment-v2's endpoint")
        assert orders.request("payment-v2").header("x-echo-name") == "payment-v2"
        rc, out, _ = meshctl(mesh, live, "ca", "status")
        assert rc == 0 and "Rotation:      rotation 1 in phase switch" in out, out
    finally:
        sent = traffic.stop()
    assert sent > 20

    # meshd dies in the middle of the switch phase; a new one resumes it from DATA_DIR/ca, and
    # meshctl, still following, sees it through.
    live.kill_meshd()
    assert (live.data_dir / "ca" / "next-root-cert.pem").exists()
    time.sleep(1)  # away long enough for the follower's polls to notice
    live.start_meshd()
    assert "resuming the root rotation" in live.meshd.stderr()
    resumed = rotation(live)
    assert resumed["id"] == 1 and resumed["phase"] in ("switch", "retire", "idle")
    assert resumed["generation"] > rot["generation"]  # every proxy renews again
    proxies = (v1, v2, orders, gw)
    ids = sorted(p.id for p in proxies)
    wait_until(lambda: live.meshd.proxy_ids() == ids, 10, what="every proxy registered again")
    for p in (orders, gw):
        p.wait_dump(lambda d: has_endpoints(d, [("payment-v1", v1.inbound)]),
                    "payment-v1's endpoint from the restarted meshd")
    orders.wait_dump(lambda d: has_endpoints(d, [("payment-v2", v2.inbound)]),
                     "payment-v2's endpoint from the restarted meshd")
    paths = [(orders, "payment-v1"), (gw, GATEWAY_HOST), (orders, "payment-v2")]
    traffic = Traffic(paths)
    try:
        rc, out, err = follower.result(2 * ROTATION_TIMEOUT)
    finally:
        traffic.stop()
    print(out, err)
    assert rc == 0, (out, err)
    assert [ln.split()[0] for ln in out.splitlines() if " done in " in ln] == \
        ["prepare", "switch", "retire"], out
    assert "meshd does not answer" in err and "meshd answers again" in err
    assert "Root rotation 1 complete" in out
    for p in proxies:
        p.wait_dump(lambda d: len(d["identity"]["trust_bundle"]) == 2, "the final bundle",
                    timeout=5)
    rooted = (v1, orders, gw)
    new_fp = root_fingerprint(live)
    doc = ca_doc(live)
    assert [r["sha256_fingerprint"] for r in doc["roots"]] == [new_fp, internal_fp]
    for p in rooted:
        ident = identity(p)
        assert [r["sha256"] for r in ident["trust_bundle"]] == [new_fp, internal_fp], p.name
        assert ident["issuer"] == doc["roots"][0]["subject"] and ident["ca"] == "mesh-root"
    ident = identity(v2)
    assert ident["ca"] == "internal-ca"  # named CAs are not rotated
    assert [r["sha256"] for r in ident["trust_bundle"]] == [new_fp, internal_fp]
    assert new_fp != old_fp

    # A second rotation, from the root the first one made.
    second_old = new_fp
    traffic = Traffic(paths)
    try:
        rc, out, err = meshctl(mesh, live, "ca", "rotate", "--timeout", f"{ROTATION_TIMEOUT}s",
                               timeout=ROTATION_TIMEOUT + 10)
    finally:
        traffic.stop()
    assert rc == 0, (out, err)
    assert "Root rotation 2 started: the new root is CN=ClusterDB Mesh root CA 3 " in out
    assert "Root rotation 2 complete" in out
    new_fp = root_fingerprint(live)
    assert new_fp not in (old_fp, second_old)
    doc = ca_doc(live)
    assert doc["rotation"]["id"] == 2
    assert [r["sha256_fingerprint"] for r in doc["roots"]] == [new_fp, internal_fp]
    for p in proxies:
        assert [r["sha256"] for r in identity(p)["trust_bundle"]] == [new_fp, internal_fp]
    retired = live.data_dir / "ca" / "retired"
    assert fingerprint_of((retired / "rotation-1-root-cert.pem").read_text()) == old_fp
    assert fingerprint_of((retired / "rotation-2-root-cert.pem").read_text()) == second_old
    for p in proxies:
        assert "lvl=error" not in p.stderr(), p.name
        assert mtls_failures(p) == 0, p.name


def test_meshctl_ca_errors(live, mesh, tmp_path):
    live.start_meshd(MESHD_FLAGS)
    wrong = tmp_path / "wrong-token"
    wrong.write_text("x" * 64 + "\n")
    rc, out, err = mesh.run("--server", live.meshd.url, "--token", wrong, "ca", "rotate",
                            store=False)
    assert rc == 1 and out == ""
    assert "error: meshd refused the token (401): pass --token FILE" in err, err
    rc, out, err = mesh.run("--server", live.meshd.url, "ca", "rotate", store=False,
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("MESH_")})
    assert rc == 1 and "error: meshd needs a token to start a root rotation (401)" in err, err
    assert rotation(live)["phase"] == "idle"  # nothing started

    rc, out, err = meshctl(mesh, live, "ca", "rotate", "--timeout", "soon")
    assert rc == 2 and "--timeout: " in err
    rc, out, err = meshctl(mesh, live, "ca", "spin")
    assert rc == 2 and 'unknown subcommand "spin"' in err
    for sub in ("rotate", "status"):
        rc, out, _ = meshctl(mesh, live, "ca", sub, "--help")
        assert rc == 0 and f"meshctl ca {sub}" in out
    rc, out, _ = meshctl(mesh, live, "ca", "--help")
    assert rc == 0 and "prepare" in out and "retire" in out

    # The API's answers.
    status, body = live.meshd.call("GET", "/v1/ca/rotate")
    assert status == 405

    # A registered proxy that never renews holds the rotation up, named, rather than being cut
    # off; --timeout gives up following (exit 1) and the rotation goes on in meshd.
    status, _ = live.meshd.call("PUT", "/v1/proxies/stuck-proxy",
                                {"role": "gateway", "gateway": "stuck", "namespace": "default"})
    assert status == 201
    rc, out, err = meshctl(mesh, live, "ca", "rotate", "--timeout", "3s")
    assert rc == 1, (out, err)
    assert "prepare  waiting for 1 proxy: stuck-proxy" in out, out
    assert ("error: root rotation 1 is not complete after 3s (phase prepare, waiting for "
            "stuck-proxy): it goes on in meshd; follow it with 'meshctl ca status'") in err, err
    rot = rotation(live)
    assert rot["phase"] == "prepare" and rot["waiting_for"] == ["stuck-proxy"]
    rc, out, _ = meshctl(mesh, live, "ca", "status")
    assert "Waiting for:   1 of 1 live proxies: stuck-proxy" in out, out
    # Once it is gone (deregistered, or its heartbeats lapse) the rotation moves on.
    assert live.meshd.call("DELETE", "/v1/proxies/stuck-proxy")[0] == 200
    wait_until(lambda: rotation(live)["phase"] == "idle", ROTATION_TIMEOUT, interval=0.1,
               what="the rotation to complete")
    assert len(ca_doc(live)["roots"]) == 1
    # --no-wait returns once it started; meshd finishes it alone.
    rc, out, err = meshctl(mesh, live, "ca", "rotate", "--no-wait")
    assert rc == 0, err
    assert out.startswith("Root rotation 2 started: the new root is CN=ClusterDB Mesh root CA 3 ")
    assert "meshd moves it on by itself; 'meshctl ca status' shows how far it is." in out
    wait_until(lambda: rotation(live)["phase"] == "idle", ROTATION_TIMEOUT, interval=0.1,
               what="the second rotation to complete")
    live.kill_meshd()
    rc, out, err = meshctl(mesh, live, "ca", "status")
    assert rc == 1 and f"cannot reach meshd at {live.meshd.url}" in err, err
    assert "meshctl ca needs meshd" in err
    rc, out, err = meshctl(mesh, live, "ca", "rotate")
    assert rc == 1 and f"cannot reach meshd at {live.meshd.url}" in err, err
