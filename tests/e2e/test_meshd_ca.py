# SPDX-License-Identifier: Apache-2.0
"""meshd's CA and certificate API (docs/security.md) against real meshd processes, checked with
the openssl command line as an operator would: CSRs made by `openssl req`, the leaf verified by
`openssl verify` against the trust bundle, its SPIFFE URI read by `openssl x509`; the root's key
private on disk and the same root after a restart; a --ca CA chosen by a SecurityPolicy; the
lifetime set by --cert-ttl; every refusal with its status and message; and never a private key
in meshd's output or answers.

Each meshd listens on a port the kernel picks and is stopped by PID (test_meshd_api.MeshdLab).
"""
import base64
import json
import re
import stat
import os
import subprocess
from datetime import datetime, timezone

import pytest

from conftest import EXAMPLES, check_sanitizer_output, meshctl_path
from test_meshd_api import (  # noqa: F401 - lab and meshd_binary are fixtures
    API,
    error_of,
    lab,
    meshd_binary,
    run_meshd,
    sidecar,
)

ROOT_SUBJECT = "CN=ClusterDB Mesh root CA (cluster.local),O=ClusterDB Mesh"
SKEW = 60  # seconds a leaf's notBefore lies in the past


# --- helpers ---


def openssl(*args, input=None):
    """Runs the openssl CLI; returns stdout, failing the test on a non-zero exit."""
    r = subprocess.run(["openssl", *map(str, args)], input=input, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(map(str, args))}: {r.stdout}{r.stderr}"
    return r.stdout + r.stderr


def make_csr(tmp_path, name="w", newkey=("ec", "-pkeyopt", "ec_paramgen_curve:P-256")):
    """A fresh key and CSR (/CN=x) made with openssl; returns the CSR's PEM text."""
    key, csr = tmp_path / f"{name}-key.pem", tmp_path / f"{name}.csr"
    openssl("req", "-new", "-newkey", *newkey, "-nodes", "-subj", "/CN=x", "-keyout", key,
            "-out", csr)
    return csr.read_text()


def make_ca(tmp_path, name, subject):
    """A CA certificate and key made with openssl req -x509; returns (cert path, key path)."""
    cert, key = tmp_path / f"{name}-cert.pem", tmp_path / f"{name}-key.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "30", "-subj", subject, "-keyout", key, "-out", cert,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    key.chmod(0o600)
    return cert, key


class Answers:
    """Every answer body a test received, to prove no private key was ever in one."""

    def __init__(self):
        self.bodies = []

    def keep(self, r):
        self.bodies.append(r.body.decode(errors="replace"))
        return r

    def assert_no_key(self, *meshds):
        for body in self.bodies:
            assert "PRIVATE KEY" not in body, body
        for d in meshds:
            assert "PRIVATE KEY" not in d.stderr(), d.stderr()


@pytest.fixture
def answers():
    return Answers()


def register(d, proxy_id, doc):
    r = d.request("PUT", f"/v1/proxies/{proxy_id}", doc)
    assert r.status in (200, 201), r


def gateway(name, namespace="default"):
    return {"role": "gateway", "gateway": name, "namespace": namespace}


def ask_cert(d, answers, proxy_id, csr, **kw):
    return answers.keep(d.request("POST", f"/v1/proxies/{proxy_id}/certificate", {"csr": csr},
                                  **kw))


def issue(d, answers, proxy_id, csr):
    r = ask_cert(d, answers, proxy_id, csr)
    assert r.status == 200, r
    assert r.header("content-type") == "application/json"
    return json.loads(r.body)


def ca_doc(d, answers):
    r = answers.keep(d.get("/v1/ca", token=None))
    assert r.status == 200, r
    return json.loads(r.body)


def rfc3339(text):
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def pem_count(text):
    return text.count("-----BEGIN CERTIFICATE-----")


def x509(path, *args):
    return openssl("x509", "-in", path, "-noout", *args)


def policy(name, namespace, ca, services=None):
    spec = {"mtls": {"mode": "strict", "certificate_authority": ca}}
    if services is not None:
        spec["services"] = services
    return {"apiVersion": API, "kind": "SecurityPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


# --- tests ---


def test_sidecar_gets_a_certificate_that_openssl_verifies(lab, tmp_path, answers):
    d = lab.start()
    register(d, "payment-1", sidecar("payment", "127.0.0.1:16006"))
    register(d, "edge-1", gateway("external-gateway", namespace="edge"))
    csr = make_csr(tmp_path)

    doc = issue(d, answers, "payment-1", csr)
    assert set(doc) == {"certificate", "chain", "trust_bundle", "spiffe_id", "serial",
                        "not_before", "not_after", "ca", "ca_generation"}
    assert doc["ca_generation"] == 0  # no root rotation yet
    assert doc["spiffe_id"] == "spiffe://cluster.local/ns/default/sa/payment"
    assert doc["ca"] == "mesh-root"
    leaf = write(tmp_path, "leaf.pem", doc["certificate"])
    bundle = write(tmp_path, "bundle.pem", doc["trust_bundle"])
    assert openssl("verify", "-CAfile", bundle, leaf).strip() == f"{leaf}: OK"
    assert openssl("verify", "-CAfile", bundle, "-purpose", "sslserver", leaf).strip().endswith("OK")
    assert openssl("verify", "-CAfile", bundle, "-purpose", "sslclient", leaf).strip().endswith("OK")

    # The identity is meshd's, from the registry: the CSR said CN=x.
    san = x509(leaf, "-ext", "subjectAltName")
    assert "URI:spiffe://cluster.local/ns/default/sa/payment" in san, san
    assert "CN = payment" in x509(leaf, "-subject") or "CN=payment" in x509(leaf, "-subject")
    assert "CA:FALSE" in x509(leaf, "-ext", "basicConstraints")
    eku = x509(leaf, "-ext", "extendedKeyUsage")
    assert "TLS Web Server Authentication" in eku and "TLS Web Client Authentication" in eku
    assert x509(leaf, "-serial").strip() == f"serial={doc['serial']}"
    assert re.fullmatch(r"[0-9A-F]{32}", doc["serial"])
    nb, na = rfc3339(doc["not_before"]), rfc3339(doc["not_after"])
    assert (na - nb).total_seconds() == 24 * 3600 + SKEW  # default --cert-ttl 24h

    # chain: the issuing CA, meshd's root, as on disk and in GET /v1/ca
    root_file = d.data_dir / "ca" / "root-cert.pem"
    assert doc["chain"] == root_file.read_text()
    ca = ca_doc(d, answers)
    assert ca["trust_bundle"] == doc["trust_bundle"] == root_file.read_text()
    assert ca["trust_domain"] == "cluster.local"

    # a gateway is named by its gateway name, in its namespace
    gw = issue(d, answers, "edge-1", csr)
    assert gw["spiffe_id"] == "spiffe://cluster.local/ns/edge/sa/external-gateway"
    gw_leaf = write(tmp_path, "gw.pem", gw["certificate"])
    assert "URI:spiffe://cluster.local/ns/edge/sa/external-gateway" in x509(
        gw_leaf, "-ext", "subjectAltName")
    assert gw["serial"] != doc["serial"]

    assert "certificate issued" in d.stderr() and "proxy=payment-1" in d.stderr()
    answers.assert_no_key(d)


def test_certificate_refusals(lab, tmp_path, answers):
    d = lab.start(flags=("--max-body", "4KiB"))
    register(d, "payment-1", sidecar("payment", "127.0.0.1:16006"))
    csr = make_csr(tmp_path)
    path = "/v1/proxies/payment-1/certificate"

    # not registered: the same 404 as every proxy route, so the proxy registers again
    e = error_of(ask_cert(d, answers, "ghost", csr), 404)
    assert e["reason"] == "NotFound"
    assert 'proxy "ghost" is not registered' in e["message"]
    assert "PUT /v1/proxies/ghost" in e["message"]
    hb = answers.keep(d.request("POST", "/v1/proxies/ghost/heartbeat"))
    assert error_of(hb, 404)["message"] == e["message"]

    # the token, as for every write
    r = ask_cert(d, answers, "payment-1", csr, token=None)
    assert error_of(r, 401)["reason"] == "Unauthorized"
    assert r.header("www-authenticate") == "Bearer"
    error_of(ask_cert(d, answers, "payment-1", csr, token="wrong-token-0123456789"), 401)

    # the body
    cases = [
        ({"csr": "hello"}, "csr: not a PEM certificate request"),
        ({}, "csr: required"),
        ({"csr": ""}, "csr: required"),
        ({"csr": 7}, "csr: required"),
        ({"csr": csr, "spiffe_id": "spiffe://evil/ns/x/sa/y"}, 'unknown field "spiffe_id"'),
        (["not an object"], "must be a JSON object"),
        ("{not json", "request body:1:"),
        ({"csr": d.data_dir.joinpath("ca", "root-cert.pem").read_text()},
         "csr: not a PEM certificate request"),
    ]
    for body, message in cases:
        r = answers.keep(d.request("POST", path, body))
        assert message in error_of(r, 400)["message"], (body, r)

    # a CSR whose content was changed after it was signed
    lines = csr.strip().splitlines()
    der = base64.b64decode("".join(lines[1:-1]))
    assert der.count(b"\x0c\x01x") == 1  # the subject's CN "x" (UTF8String)
    tampered = der.replace(b"\x0c\x01x", b"\x0c\x01y")
    b64 = base64.b64encode(tampered).decode()
    bad = "\n".join([lines[0], *[b64[i:i + 64] for i in range(0, len(b64), 64)], lines[-1]])
    e = error_of(ask_cert(d, answers, "payment-1", bad), 400)
    assert "csr: its signature does not verify" in e["message"], e

    # keys workloads may not use
    weak = make_csr(tmp_path, "weak", newkey=("rsa:1024",))
    e = error_of(ask_cert(d, answers, "payment-1", weak), 400)
    assert "csr: unsupported key: RSA of 1024 bits" in e["message"], e
    p521 = make_csr(tmp_path, "p521", newkey=("ec", "-pkeyopt", "ec_paramgen_curve:P-521"))
    e = error_of(ask_cert(d, answers, "payment-1", p521), 400)
    assert "csr: unsupported key: EC with secp521r1" in e["message"], e
    rsa = make_csr(tmp_path, "rsa", newkey=("rsa:2048",))
    assert issue(d, answers, "payment-1", rsa)["ca"] == "mesh-root"

    # over --max-body
    r = answers.keep(d.request("POST", path, {"csr": csr + " " * 8192}))
    assert error_of(r, 413)["reason"] == "TooLarge"

    # methods
    r = answers.keep(d.request("GET", path))
    assert error_of(r, 405)["reason"] == "MethodNotAllowed"
    assert r.header("allow") == "POST"
    r = answers.keep(d.request("PUT", "/v1/ca", "{}"))
    error_of(r, 405)
    assert r.header("allow") == "GET, HEAD"

    # and nothing was issued for any of them but the RSA one
    assert d.stderr().count("certificate issued") == 1
    answers.assert_no_key(d)


def test_ca_route_is_a_read(lab, tmp_path, answers):
    d = lab.start()
    doc = ca_doc(d, answers)  # no token from loopback
    assert doc["trust_domain"] == "cluster.local"
    assert [r["name"] for r in doc["roots"]] == ["mesh-root"]
    (root,) = doc["roots"]
    assert root["subject"] == ROOT_SUBJECT
    rfc3339(root["not_after"])
    assert pem_count(doc["trust_bundle"]) == 1

    guarded = lab.start(flags=("--auth-reads",), data_dir=tmp_path / "guarded")
    error_of(answers.keep(guarded.get("/v1/ca", token=None)), 401)
    assert answers.keep(guarded.get("/v1/ca")).status == 200
    answers.assert_no_key(d, guarded)


def test_root_is_private_on_disk_and_survives_a_restart(lab, tmp_path, answers):
    d = lab.start()
    ca_dir = d.data_dir / "ca"
    assert stat.S_IMODE(ca_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((ca_dir / "root-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((ca_dir / "root-cert.pem").stat().st_mode) == 0o644
    assert sorted(p.name for p in ca_dir.iterdir()) == ["root-cert.pem", "root-key.pem"]

    first = ca_doc(d, answers)["roots"][0]
    fp = x509(ca_dir / "root-cert.pem", "-fingerprint", "-sha256").strip().split("=", 1)[1]
    assert first["sha256_fingerprint"] == fp
    # the one start line naming the root
    line = [ln for ln in d.stderr().splitlines() if "the mesh root CA" in ln]
    assert len(line) == 1 and 'msg="created the mesh root CA"' in line[0]
    assert f"sha256_fingerprint={fp}" in line[0] and f"not_after={first['not_after']}" in line[0]
    assert f'subject="{ROOT_SUBJECT}"' in line[0]
    # the root itself: a self-signed CA, as openssl reads it
    root_text = x509(ca_dir / "root-cert.pem", "-text")
    assert "CA:TRUE" in root_text and "Certificate Sign, CRL Sign" in root_text
    assert "NIST CURVE: P-256" in root_text

    register(d, "payment-1", sidecar("payment", "127.0.0.1:16006"))
    before = issue(d, answers, "payment-1", make_csr(tmp_path))
    assert d.stop() == 0

    again = lab.start(data_dir=d.data_dir)
    assert ca_doc(again, answers)["roots"][0] == first
    assert 'msg="loaded the mesh root CA"' in again.stderr()
    assert stat.S_IMODE((ca_dir / "root-key.pem").stat().st_mode) == 0o600
    # a certificate from before the restart still verifies with the bundle after it
    leaf = write(tmp_path, "before.pem", before["certificate"])
    bundle = write(tmp_path, "after-bundle.pem", ca_doc(again, answers)["trust_bundle"])
    assert openssl("verify", "-CAfile", bundle, leaf).strip().endswith("OK")
    answers.assert_no_key(d, again)


def test_meshd_refuses_an_unsafe_or_broken_root(lab, tmp_path):
    d = lab.start()
    assert d.stop() == 0
    key = d.data_dir / "ca" / "root-key.pem"

    key.chmod(0o644)
    r = run_meshd("--data-dir", d.data_dir, "--listen", "127.0.0.1:0")
    assert r.returncode == 1, r.stderr
    assert f"{key} is accessible to other users (mode 0644)" in r.stderr
    assert f"chmod 600 {key}" in r.stderr

    # a key that is not the certificate's
    key.chmod(0o600)
    other = tmp_path / "other"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", other)
    key.write_bytes(other.read_bytes())
    r = run_meshd("--data-dir", d.data_dir, "--listen", "127.0.0.1:0")
    assert r.returncode == 1, r.stderr
    assert f"{key} is not the private key of {d.data_dir / 'ca' / 'root-cert.pem'}" in r.stderr
    assert "PRIVATE KEY" not in r.stderr + d.stderr()


def test_named_ca_signs_what_its_policy_covers(lab, tmp_path, answers):
    cert, key = make_ca(tmp_path, "internal", "/O=Example/CN=Internal CA")
    d = lab.start(flags=("--ca", f"internal-ca={cert},{key}"))
    assert "loaded a CA" in d.stderr() and "name=internal-ca" in d.stderr()
    ca = ca_doc(d, answers)
    assert [r["name"] for r in ca["roots"]] == ["mesh-root", "internal-ca"]
    assert ca["roots"][1]["subject"] == "CN=Internal CA,O=Example"
    assert pem_count(ca["trust_bundle"]) == 2
    assert cert.read_text() in ca["trust_bundle"]

    applied = answers.keep(d.request("POST", "/v1/apply", [
        policy("payment-security", "default", "internal-ca", services=["payment.default.svc"]),
        policy("prod-wide", "prod", "internal-ca"),
        policy("vault", "default", "vault-ca", services=["billing"]),
    ]))
    assert applied.status == 200, applied
    register(d, "payment-1", sidecar("payment", "127.0.0.1:16006"))
    register(d, "orders-1", sidecar("orders", "127.0.0.1:16007"))
    register(d, "search-1", sidecar("search", "127.0.0.1:16008", namespace="prod"))
    register(d, "billing-1", sidecar("billing", "127.0.0.1:16009"))
    csr = make_csr(tmp_path)
    bundle = write(tmp_path, "bundle.pem", ca["trust_bundle"])

    # payment: listed by a policy naming internal-ca
    pay = issue(d, answers, "payment-1", csr)
    assert pay["ca"] == "internal-ca"
    assert pay["chain"] == cert.read_text()
    leaf = write(tmp_path, "payment.pem", pay["certificate"])
    issuer = x509(leaf, "-issuer")
    assert "CN = Internal CA" in issuer or "CN=Internal CA" in issuer, issuer
    assert openssl("verify", "-CAfile", cert, leaf).strip().endswith("OK")
    assert openssl("verify", "-CAfile", bundle, leaf).strip().endswith("OK")
    assert "URI:spiffe://cluster.local/ns/default/sa/payment" in x509(leaf, "-ext",
                                                                      "subjectAltName")

    # search: covered by a namespace-wide policy in prod
    search = issue(d, answers, "search-1", csr)
    assert search["ca"] == "internal-ca"
    assert search["spiffe_id"] == "spiffe://cluster.local/ns/prod/sa/search"

    # orders: no policy names a CA for it: meshd's root; and it still verifies with the bundle,
    # so payment and orders trust each other
    orders = issue(d, answers, "orders-1", csr)
    assert orders["ca"] == "mesh-root"
    oleaf = write(tmp_path, "orders.pem", orders["certificate"])
    assert "ClusterDB Mesh root CA" in x509(oleaf, "-issuer")
    assert openssl("verify", "-CAfile", bundle, oleaf).strip().endswith("OK")
    r = subprocess.run(["openssl", "verify", "-CAfile", str(cert), str(oleaf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0

    # billing: its policy names a CA meshd lacks: the root, and one warning with the fix
    for _ in range(2):
        assert issue(d, answers, "billing-1", csr)["ca"] == "mesh-root"
    warnings = [ln for ln in d.stderr().splitlines() if "certificate_authority=vault-ca" in ln]
    assert len(warnings) == 1, d.stderr()
    assert "lvl=warn" in warnings[0] and "policy=default/vault" in warnings[0]
    assert "--ca vault-ca=CERT,KEY" in warnings[0]
    answers.assert_no_key(d)

    # meshctl analyze against this meshd says the same before any proxy asks: vault-ca only.
    env = dict(os.environ, MESH_TOKEN=d.token)
    env.pop("MESH_STORE", None)
    r = subprocess.run([str(meshctl_path()), "--server", f"http://127.0.0.1:{d.port}", "analyze"],
                       capture_output=True, text=True, timeout=30, env=env)
    check_sanitizer_output(r.stderr, ["analyze"])
    found = [ln for ln in r.stdout.splitlines() if "[MESH0106]" in ln]
    assert len(found) == 1, r.stdout + r.stderr
    assert "SecurityPolicy default/vault" in found[0]
    assert "certificate_authority vault-ca" in found[0] and "--ca vault-ca=CERT,KEY" in found[0]


def test_cert_ttl_and_trust_domain_flags(lab, tmp_path, answers):
    d = lab.start(flags=("--cert-ttl", "30s", "--trust-domain", "mesh.example.org"))
    register(d, "payment-1", sidecar("payment", "127.0.0.1:16006"))
    doc = issue(d, answers, "payment-1", make_csr(tmp_path))
    nb, na = rfc3339(doc["not_before"]), rfc3339(doc["not_after"])
    assert (na - nb).total_seconds() == 30 + SKEW
    leaf = write(tmp_path, "leaf.pem", doc["certificate"])
    dates = x509(leaf, "-dates")
    assert nb.strftime("%b %e %H:%M:%S %Y GMT").replace("  ", " ") in dates.replace("  ", " ")
    assert doc["spiffe_id"] == "spiffe://mesh.example.org/ns/default/sa/payment"
    assert "URI:spiffe://mesh.example.org/ns/default/sa/payment" in x509(leaf, "-ext",
                                                                         "subjectAltName")
    ca = ca_doc(d, answers)
    assert ca["trust_domain"] == "mesh.example.org"
    assert ca["roots"][0]["subject"] == (
        "CN=ClusterDB Mesh root CA (mesh.example.org),O=ClusterDB Mesh")
    assert "trust_domain=mesh.example.org cert_ttl_s=30" in d.stderr()
    answers.assert_no_key(d)


def test_ca_flag_errors(meshd_binary, tmp_path):
    r = run_meshd("--help")
    for flag in ("--trust-domain", "--cert-ttl", "--ca NAME=CERT,KEY"):
        assert flag in r.stdout

    data = tmp_path / "d"
    cert, key = make_ca(tmp_path, "internal", "/CN=Internal CA")
    usage = [
        (("--cert-ttl", "5s"), '--cert-ttl: "5s" must be from 10s to 2160h (90 days)'),
        (("--cert-ttl", "2161h"), '--cert-ttl: "2161h" must be from 10s to 2160h'),
        (("--cert-ttl", "soon"), "--cert-ttl: invalid duration"),
        (("--trust-domain", "Bad_Domain"), '--trust-domain: "Bad_Domain" is not a DNS name'),
        (("--ca", "internal-ca"), '--ca: "internal-ca" is not NAME=CERT,KEY'),
        (("--ca", f"internal-ca={cert}"), "is not NAME=CERT,KEY"),
        (("--ca", f"Internal={cert},{key}"), '--ca: "Internal" is not a valid name'),
        (("--ca", f"mesh-root={cert},{key}"), "is the name of meshd's own root"),
        (("--ca", f"a={cert},{key}", "--ca", f"a={cert},{key}"), "--ca: a is given twice"),
    ]
    for args, message in usage:
        r = run_meshd("--data-dir", data, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr, (args, r.stderr)

    # files that cannot serve: exit 1, naming the flag and the file
    leaf_cert = tmp_path / "leaf-cert.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "1", "-subj", "/CN=leaf", "-keyout", tmp_path / "leaf-key.pem",
            "-out", leaf_cert, "-addext", "basicConstraints=critical,CA:FALSE")
    (tmp_path / "leaf-key.pem").chmod(0o600)
    other_cert, other_key = make_ca(tmp_path, "other", "/CN=Other")
    key.chmod(0o640)
    failures = [
        (f"x={tmp_path / 'missing.pem'},{other_key}", f"--ca x: cannot read {tmp_path / 'missing.pem'}"),
        (f"x={leaf_cert},{tmp_path / 'leaf-key.pem'}", "is not a CA certificate"),
        (f"x={cert},{other_key}", f"{other_key} is not the private key of {cert}"),
        (f"x={cert},{key}", "is accessible to other users (mode 0640)"),
    ]
    for flag, message in failures:
        r = run_meshd("--data-dir", data, "--listen", "127.0.0.1:0", "--ca", flag)
        assert r.returncode == 1, (flag, r.stderr)
        assert message in r.stderr, (flag, r.stderr)
        assert "PRIVATE KEY" not in r.stderr


def test_backups_hold_no_secret(lab, tmp_path, answers):
    """A backup is the stored resources only: neither the CA's key nor meshd's token, nor the
    certificates meshd issued (DATA_DIR/ca and DATA_DIR/token are backed up as files, by the
    operator, if at all)."""
    d = lab.start()
    for f in sorted(EXAMPLES.glob("*.yaml")):
        assert d.request("POST", "/v1/apply", f.read_text(),
                         headers={"Content-Type": "application/yaml"}).status == 200
    register(d, "payment-1", sidecar("payment", "127.0.0.1:16006"))
    issued = issue(d, answers, "payment-1", make_csr(tmp_path))
    argv = [str(meshctl_path()), "--server", f"http://127.0.0.1:{d.port}", "--token",
            str(d.data_dir / "token"), "backup"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")}
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    check_sanitizer_output(r.stderr, argv)
    assert r.returncode == 0, r.stderr
    assert "kind: SecurityPolicy" in r.stdout  # the backup is real
    root_key = (d.data_dir / "ca" / "root-key.pem").read_text()
    for secret in ("PRIVATE KEY", "BEGIN CERTIFICATE", d.token, root_key.splitlines()[1],
                   issued["serial"]):
        assert secret not in r.stdout + r.stderr, secret
    answers.assert_no_key(d)
