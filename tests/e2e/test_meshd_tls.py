# SPDX-License-Identifier: Apache-2.0
"""meshd serving its API over HTTPS (--tls-cert/--tls-key, docs/meshd.md, docs/security.md) with
certificates made by the openssl command line, as an operator would: meshctl and curl trusting
the CA with --cacert (or $MESH_CACERT), every refusal in words (unknown CA, wrong host, plaintext
to the TLS port, which meshd logs with the peer), and the flag combinations and key files meshd
refuses to start with.

Each meshd listens on a port the kernel picks and is stopped by PID (test_meshd_api.MeshdLab).
"""
import os
import re
import socket
import subprocess

import pytest

from conftest import EXAMPLES, RUN_TIMEOUT, check_sanitizer_output, meshctl_path
from proxy_fixtures import IO_TIMEOUT, Echo, wait_until
from test_meshd_api import Meshd, lab, meshd_binary, meshd_path  # noqa: F401 - fixtures
from test_meshd_ca import make_ca, openssl
from test_mesh_live import MeshProxy

READY = "meshd: listening on https://"


class TlsMeshd(Meshd):
    """A meshd serving HTTPS; its start line says https://."""

    def wait_ready(self):
        self.wait_for_stderr(READY)
        m = re.search(re.escape(READY) + r"127\.0\.0\.1:(\d+)", self.stderr())
        assert m, self.stderr()
        self.port = int(m.group(1))

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"


def make_server_cert(tmp_path, ca, name="meshd", san="DNS:localhost,IP:127.0.0.1", days=30):
    """A serving certificate for san, signed by ca (cert, key); returns (cert path, key path)."""
    cert, key, csr = (tmp_path / f"{name}-cert.pem", tmp_path / f"{name}-key.pem",
                      tmp_path / f"{name}.csr")
    ext = tmp_path / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", f"/CN={name}", "-keyout", key, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-days", str(days), "-extfile", ext, "-out", cert)
    key.chmod(0o600)
    return cert, key


@pytest.fixture
def pki(tmp_path):
    ca = make_ca(tmp_path, "ca", "/CN=Test meshd CA")
    cert, key = make_server_cert(tmp_path, ca)
    return {"ca": ca[0], "ca_pair": ca, "cert": cert, "key": key}


def start_tls(lab, tmp_path, cert, key, name=None, flags=()):
    name = name or f"meshd{len(lab.procs)}"
    d = TlsMeshd(tmp_path / "data", tmp_path, flags=("--tls-cert", cert, "--tls-key", key, *flags),
                 name=name)
    lab.procs.append(d)
    d.wait_ready()
    return d


def meshctl(*args, env_extra=None):
    env = dict(os.environ)
    env.pop("MESH_STORE", None)
    env.pop("MESH_SERVER", None)
    env.pop("MESH_CACERT", None)
    env.update(env_extra or {})
    argv = [str(meshctl_path()), *map(str, args)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    check_sanitizer_output(r.stderr, argv)
    return r


def run_meshd(tmp_path, *flags):
    """meshd with flags that must make it exit at once; returns the finished process."""
    argv = [str(meshd_path()), "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0",
            *map(str, flags)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    check_sanitizer_output(r.stderr, argv)
    return r


# --- serving ---


def test_meshctl_and_curl_over_https(lab, tmp_path, pki):
    d = start_tls(lab, tmp_path, pki["cert"], pki["key"])
    assert f'msg="serving HTTPS" cert={pki["cert"]} subject="CN=meshd"' in d.stderr()
    token = d.data_dir / "token"
    r = meshctl("--server", d.url, "--cacert", pki["ca"], "--token", token, "apply", "-f",
                EXAMPLES)
    assert r.returncode == 0, r.stderr
    assert "virtualservice/payment-service created" in r.stdout
    r = meshctl("--server", d.url, "--cacert", pki["ca"], "get", "vs")
    assert r.returncode == 0, r.stderr
    assert "payment-service" in r.stdout and "web-service" in r.stdout
    # The flag after the command, $MESH_CACERT, and a DNS name the certificate carries.
    r = meshctl("--server", f"https://localhost:{d.port}", "get", "vs", "payment-service", "-o",
                "name", "--cacert", pki["ca"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "virtualservice/payment-service"
    r = meshctl("--server", d.url, "proxy-status", env_extra={"MESH_CACERT": str(pki["ca"])})
    assert r.returncode == 0, r.stderr
    # curl, as any HTTPS client.
    c = subprocess.run(["curl", "-sS", "--cacert", str(pki["ca"]), f"{d.url}/v1/version"],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert c.returncode == 0, c.stderr
    assert '"store_version"' in c.stdout
    c = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_version}",
                        "--cacert", str(pki["ca"]), f"{d.url}/v1/vs"],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert c.stdout == "1.1", c


def test_unknown_ca_is_named(lab, tmp_path, pki):
    d = start_tls(lab, tmp_path, pki["cert"], pki["key"])
    r = meshctl("--server", d.url, "get", "vs")
    assert r.returncode == 1
    assert r.stderr.startswith(
        f"error: cannot reach meshd at {d.url}: TLS: certificate verify failed (unknown CA): "
        "unable to get local issuer certificate (CN=meshd): pass --cacert FILE (or set "
        "$MESH_CACERT) naming the CA bundle"), r.stderr
    other = make_ca(tmp_path, "other", "/CN=Other CA")
    r = meshctl("--server", d.url, "--cacert", other[0], "get", "vs")
    assert r.returncode == 1
    assert f"{other[0]} does not hold the CA that signed the server's certificate" in r.stderr
    r = meshctl("--server", d.url, "--cacert", tmp_path / "missing.pem", "get", "vs")
    assert r.returncode == 1
    assert f"TLS: cannot read {tmp_path / 'missing.pem'}: No such file or directory" in r.stderr
    assert 'reason="the client does not trust our certificate (unknown CA)"' in d.stderr()
    c = subprocess.run(["curl", "-sS", f"{d.url}/v1/version"], capture_output=True, text=True,
                       timeout=RUN_TIMEOUT)
    assert c.returncode != 0


def test_wrong_host_is_named(lab, tmp_path, pki):
    cert, key = make_server_cert(tmp_path, pki["ca_pair"], name="elsewhere",
                                 san="DNS:meshd.example.org")
    d = start_tls(lab, tmp_path, cert, key)
    r = meshctl("--server", d.url, "--cacert", pki["ca"], "get", "vs")
    assert r.returncode == 1
    assert ("TLS: certificate verify failed (wrong host): the certificate is not for 127.0.0.1 "
            "(CN=elsewhere)") in r.stderr, r.stderr


def test_plaintext_to_the_tls_port(lab, tmp_path, pki):
    d = start_tls(lab, tmp_path, pki["cert"], pki["key"])
    r = meshctl("--server", f"http://127.0.0.1:{d.port}", "get", "vs")
    assert r.returncode == 1
    assert r.stderr.startswith(
        f"error: meshd at http://127.0.0.1:{d.port} closed the connection without answering GET "), r.stderr
    assert "(if it serves HTTPS, use an https:// URL)" in r.stderr
    # A raw plaintext request gets no byte back.
    with socket.create_connection(("127.0.0.1", d.port), timeout=IO_TIMEOUT) as s:
        s.sendall(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
        local_port = s.getsockname()[1]
        assert s.recv(100) == b""
    log = d.stderr()
    assert re.search(r'lvl=warn msg="tls handshake failed" conn=\d+ peer=127\.0\.0\.1:'
                     f'{local_port}' r' reason="the peer does not speak TLS \(it sent plaintext '
                     r'HTTP\?\)"', log), log
    # meshd still serves.
    r = meshctl("--server", d.url, "--cacert", pki["ca"], "get", "vs")
    assert r.returncode == 0, r.stderr


def test_plain_meshd_is_unchanged(lab, tmp_path):
    d = lab.start()
    assert "meshd: listening on 127.0.0.1:" in d.stderr()
    assert "HTTPS" not in d.stderr()
    r = meshctl("--server", f"https://127.0.0.1:{d.port}", "get", "vs")
    assert r.returncode == 1
    assert f"cannot reach meshd at https://127.0.0.1:{d.port}: TLS: the server does not speak TLS" \
        in r.stderr, r.stderr


# --- refusals at start ---


def test_flags_need_each_other(tmp_path, meshd_binary, pki):
    r = run_meshd(tmp_path, "--tls-cert", pki["cert"])
    assert r.returncode == 2
    assert "meshd: --tls-cert needs --tls-key KEY too: HTTPS takes a certificate and its key" \
        in r.stderr
    r = run_meshd(tmp_path, "--tls-key", pki["key"])
    assert r.returncode == 2
    assert "meshd: --tls-key needs --tls-cert CERT too" in r.stderr
    r = run_meshd(tmp_path, "--tls-cert", "", "--tls-key", pki["key"])
    assert r.returncode == 2
    assert "meshd: --tls-cert needs a file" in r.stderr


def test_bad_files_are_refused(tmp_path, meshd_binary, pki):
    key = pki["key"]
    key.chmod(0o644)
    r = run_meshd(tmp_path, "--tls-cert", pki["cert"], "--tls-key", key)
    assert r.returncode == 1
    assert (f"meshd: --tls-key: {key} is accessible to other users (mode 0644): a private key "
            f"must be private to its owner; run chmod 600 {key}") in r.stderr, r.stderr
    key.chmod(0o600)

    missing = tmp_path / "nope.pem"
    r = run_meshd(tmp_path, "--tls-cert", missing, "--tls-key", key)
    assert r.returncode == 1
    assert f"meshd: --tls-cert: cannot read {missing}: No such file or directory" in r.stderr

    r = run_meshd(tmp_path, "--tls-cert", key, "--tls-key", key)
    assert r.returncode == 1
    assert "holds no PEM certificate" in r.stderr and str(key) in r.stderr, r.stderr

    other_cert, other_key = make_server_cert(tmp_path, pki["ca_pair"], name="other")
    r = run_meshd(tmp_path, "--tls-cert", pki["cert"], "--tls-key", other_key)
    assert r.returncode == 1
    assert (f"meshd: --tls-cert/--tls-key: the key in {other_key} does not belong to the "
            f"certificate in {pki['cert']}") in r.stderr, r.stderr

    # An expired certificate (-days -1: notAfter a day ago).
    old_cert = tmp_path / "old-cert.pem"
    csr = tmp_path / "old.csr"
    openssl("req", "-new", "-key", key, "-subj", "/CN=meshd", "-out", csr)
    ca_cert, ca_key = pki["ca_pair"]
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
            "-days", "-1", "-out", old_cert)
    r = run_meshd(tmp_path, "--tls-cert", old_cert, "--tls-key", key)
    assert r.returncode == 1
    assert re.search(f"meshd: --tls-cert {re.escape(str(old_cert))}: the certificate expired at "
                     r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: clients would refuse it; renew it",
                     r.stderr), r.stderr


def start_sidecar(lab, tmp_path, meshd, service, flags=()):
    """An echo app behind a sidecar of meshd (over https://); both stopped by PID with lab."""
    app = Echo(service, tmp_path)
    lab.procs.append(app)
    app.wait_ready()
    meshd.token_path = meshd.data_dir / "token"
    proxy = MeshProxy(meshd, tmp_path, f"sidecar-{service}",
                      ["--service", service, "--namespace", "default", "--app", app.addr,
                       "--outbound", "127.0.0.1:0", "--inbound", "127.0.0.1:0"], flags=flags)
    lab.procs.append(proxy)
    return proxy


def test_sidecars_talk_https_to_meshd(lab, tmp_path, pki):
    """Proxies reach an HTTPS meshd through the TLS plugin, trusting its CA with --cacert (or
    $MESH_CACERT): registration, config watch and workload certificates all go over TLS, and
    the mesh works on top (orders calls payment over mTLS)."""
    d = start_tls(lab, tmp_path, pki["cert"], pki["key"])
    pay = start_sidecar(lab, tmp_path, d, "payment", flags=("--cacert", pki["ca"]))
    orders = start_sidecar(lab, tmp_path, d, "orders", flags=("--cacert", pki["ca"]))
    for p in (pay, orders):
        p.wait_dump(lambda dump: dump["identity"]["spiffe_id"] and dump["config"]["source"] != "none",
                    "its config and certificate from the https meshd")
    wait_until(lambda: orders.request("payment").status == 200, 10,
               what="orders reaching payment through the mesh")
    r = orders.request("payment")
    assert r.header("x-echo-name") == "payment"
    assert "https://" in pay.stderr() and "unknown CA" not in pay.stderr()


def test_sidecar_with_the_wrong_ca_says_why(lab, tmp_path, pki):
    """A sidecar that does not trust meshd's certificate keeps retrying and says why, in words;
    meshd never sees it registered."""
    d = start_tls(lab, tmp_path, pki["cert"], pki["key"])
    other = make_ca(tmp_path, "other", "/CN=Somebody else")
    pay = start_sidecar(lab, tmp_path, d, "payment", flags=("--cacert", other[0]))
    wait_until(lambda: "unknown CA" in pay.stderr(), 10, what="the TLS refusal in the log")
    assert "certificate verify failed" in pay.stderr()
    assert "proxy registered" not in d.stderr()


def test_meshproxy_cacert_needs_control(tmp_path):
    r = subprocess.run([str(meshctl_path().parent / "meshproxy"), "--config", "x.yaml",
                        "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--cacert", "ca.pem"],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert r.returncode == 2
    assert "--cacert is for the link to meshd" in r.stderr
