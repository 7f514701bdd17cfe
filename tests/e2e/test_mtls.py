# SPDX-License-Identifier: Apache-2.0
"""Mesh mTLS and authorization, end to end with real processes: meshd (the CA), mesh-echo apps
each behind a meshproxy sidecar, openssl's s_client and s_server, and plain sockets.

Covered: the seed's payment-security policy (only orders may POST /api/v1/process to payment:
allowed over mTLS, a GET and another sidecar's POST denied with 403, counted and logged); a
denial keeps the caller's keep-alive connection; a plaintext client against a strict port
(closed without an answer, cause=plaintext); permissive (explicit, and the default with no
policy) takes TLS and plaintext on one port; disable is plaintext both ways; MeshConfig
mtls.auto_upgrade: false keeps permissive calls plaintext, mtls.enabled: false makes disable the
default; s_client against a strict port (the SPIFFE certificate shown; no client certificate,
another CA's, an expired one of meshd's own root: refused with their causes; a mesh certificate
gets the app's answer and the authorization decision); a server at a payment endpoint that
presents another identity's mesh certificate, or a certificate from another CA (503 with the
cause on the caller); a policy changed on a live mesh (strict -> disable -> strict, through
meshctl apply and a PUT); certificate renewal under strict mTLS with authorized POSTs flowing; a
sidecar answers 503 on its inbound port until meshd's first config; service names that cover
app-labelled Services and the three spellings of an identity; a gateway calling over mTLS as
itself.

Fixtures come from test_mesh_live and proxy_fixtures: every process is on a loopback port the
kernel picks (or picked free), stopped by PID when its test ends; every wait is bounded.
"""
import json
import re
import secrets
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import SAN
from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    API,
    Client,
    Metrics,
    Process,
    free_ports,
    lab,
    proxy_binaries,
    read_all,
    request,
    run_parallel,
    wait_until,
)
from test_mesh_live import (  # noqa: F401 - live and meshd_binary are fixtures
    SETTLE,
    has_endpoints,
    live,
    meshd_binary,
)

TD = "cluster.local"
SYNC = 10.0 if SAN else 5.0  # bound for an applied change to reach every sidecar
OPENSSL_TIMEOUT = 15  # one openssl command; a handshake on loopback takes milliseconds
RBAC_BODY = b"RBAC: access denied"
PROCESS = "/api/v1/process"
TTL = 20  # seconds, meshd --cert-ttl in the renewal test
# The peer in the sidecar's log lines: the client's address (meshproxy writes the host alone
# today; host:port would name the connection, and is accepted too).
PEER = r"127\.0\.0\.1(?::\d+)?"


def spiffe(name, ns="default"):
    return f"spiffe://{TD}/ns/{ns}/sa/{name}"


# --- documents ---


def security_policy(name="payment-security", mode=None, services=None, rules=None, ca=None):
    spec = {}
    if services is not None:
        spec["services"] = services
    if mode or ca:
        spec["mtls"] = {}
        if mode:
            spec["mtls"]["mode"] = mode
        if ca:
            spec["mtls"]["certificate_authority"] = ca
    if rules is not None:
        spec["authorization"] = rules
    return {"apiVersion": API, "kind": "SecurityPolicy",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def seed_policy(mode="strict"):
    """examples/payment-security.yaml, with another mode when asked."""
    return security_policy(mode=mode, ca="internal-ca", rules=[
        {"from": ["orders.default.svc"], "to": ["payment.default.svc"], "methods": ["POST"],
         "paths": [PROCESS]}])


def mesh_config(**mtls):
    return {"apiVersion": API, "kind": "MeshConfig", "metadata": {"name": "native"},
            "spec": {"provider": "native", "mtls": mtls}}


# --- metrics ---


def metrics(proxy):
    resp = proxy.admin("/metrics")
    assert resp.status == 200, resp
    return Metrics(resp.text)


def handshakes(proxy, direction, result=None):
    labels = {"direction": direction}
    if result:
        labels["result"] = result
    return metrics(proxy).sum("mesh_mtls_handshakes_total", **labels)


def failed_handshakes(proxy):
    return sum(v for lab_, v in metrics(proxy).find("mesh_mtls_handshakes_total")
               if lab_.get("result") != "success")


def inbound_conns(proxy, security):
    return metrics(proxy).sum("mesh_inbound_connections_total", security=security)


def authz(proxy, **labels):
    return metrics(proxy).sum("mesh_authz_requests_total", **labels)


class Counters:
    """The mTLS counters of some proxies at one moment, to assert on what moved since."""

    def __init__(self, *proxies):
        self.before = {p.name: self.read(p) for p in proxies}
        self.proxies = proxies

    @staticmethod
    def read(p):
        m = metrics(p)
        out = {}
        for n, lab_, v in m.samples:
            if n == "mesh_mtls_handshakes_total":
                out[("hs", lab_["direction"], lab_["result"])] = v
            elif n == "mesh_inbound_connections_total":
                out[("conn", lab_["security"])] = v
        return out

    def delta(self, p, *key):
        now = self.read(p)
        return now.get(key, 0) - self.before[p.name].get(key, 0)


# --- the mesh ---


def inbound_port(sidecar):
    return int(sidecar.inbound.rsplit(":", 1)[1])


def start_mesh(live, docs=(), flags=(), callers=("orders",)):
    """meshd with docs applied before any sidecar starts (so that the sidecars' first config has
    them), then payment and each caller behind sidecars, each with its certificate and the
    callers with payment's endpoint. Returns (payment, [callers])."""
    live.start_meshd(list(flags))
    if docs:
        live.meshd.apply(list(docs))
    payment = live.sidecar("payment", live.echo("payment"))
    others = [live.sidecar(c, live.echo(c)) for c in callers]
    for p in (payment, *others):
        p.wait_dump(lambda d: d["identity"]["spiffe_id"] is not None and
                    d["config"]["source"] == "meshd", "a certificate and meshd's config")
    for c in others:
        c.wait_dump(lambda d: has_endpoints(d, [("payment", payment.inbound)]),
                    "payment's endpoint")
    return payment, others


def wait_synced(live, proxies, what, timeout=SYNC):
    """Waits until every proxy serves the config meshd has for it now (call after an apply: meshd
    compiles before it answers)."""
    for p in proxies:
        def synced(p=p):
            status, body = live.meshd.call("GET", f"/v1/proxies/{p.id}")
            assert status == 200, body
            return p.dump()["config"]["version"] == body["latest_version"]

        wait_until(synced, timeout, interval=0.02, what=f"{p.name} to serve {what}")


def post(caller, path=PROCESS, host="payment", method="POST", body=b"{}"):
    return request(caller.port, method, path, host, body=body,
                   headers={"content-type": "application/json"} if body else None)


def plain_http(sidecar, path="/"):
    """Plain HTTP from the test straight to a sidecar's inbound listener."""
    return request(inbound_port(sidecar), "GET", path, "payment")


def plaintext_refused(port, timeout=5.0):
    """Sends a plain HTTP request to port; returns (bytes received, closed, client address).
    A strict port closes the connection without an HTTP answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        local = "%s:%d" % s.getsockname()
        s.sendall(b"GET / HTTP/1.1\r\nHost: payment\r\n\r\n")
        data, closed = read_all(s, timeout)
    return data, closed, local


# --- openssl ---


class Pki:
    """Keys and certificates made with the openssl CLI in a directory of the test's."""

    LEAF_EXT = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:{uri}\n")

    def __init__(self, directory):
        self.dir = directory
        self.dir.mkdir(exist_ok=True)

    def openssl(self, *args):
        proc = subprocess.run(["openssl", *map(str, args)], cwd=self.dir, capture_output=True,
                              text=True, timeout=OPENSSL_TIMEOUT)
        assert proc.returncode == 0, f"openssl {' '.join(map(str, args))}:\n{proc.stderr}"
        return proc.stdout

    def path(self, name):
        return self.dir / name

    def ca(self, name):
        """A self-signed CA: (cert, key)."""
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj",
                     f"/CN={name}", "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return self.path(f"{name}.pem"), self.path(f"{name}.key")

    def csr(self, name):
        self.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out",
                     f"{name}.csr")
        return self.path(f"{name}.csr"), self.path(f"{name}.key")

    def _ext(self, name, uri):
        ext = self.path(f"{name}.ext")
        ext.write_text("[leaf]\n" + self.LEAF_EXT.format(uri=uri))
        return ext

    def leaf(self, name, uri, ca_cert, ca_key):
        """A certificate valid now for the SPIFFE ID uri, signed by ca: (cert, key)."""
        csr, key = self.csr(name)
        self.openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
                     "-set_serial", "0x" + secrets.token_hex(12), "-days", "1", "-extfile",
                     self._ext(name, uri), "-extensions", "leaf", "-out", f"{name}.pem")
        return self.path(f"{name}.pem"), key

    def expired_leaf(self, name, uri, ca_cert, ca_key):
        """A certificate for uri that expired in 2020, signed by ca (openssl ca takes explicit
        dates, which openssl x509 of OpenSSL 3.0 does not): (cert, key)."""
        csr, key = self.csr(name)
        db = self.dir / f"{name}-db"
        db.mkdir()
        (db / "index.txt").write_text("")
        (db / "serial").write_text(secrets.token_hex(8) + "\n")
        conf = self.path(f"{name}-ca.cnf")
        conf.write_text(
            "[ca]\ndefault_ca = mini\n"
            f"[mini]\ndatabase = {db}/index.txt\nnew_certs_dir = {db}\nserial = {db}/serial\n"
            "default_md = sha256\npolicy = anything\nunique_subject = no\n"
            "[anything]\ncommonName = supplied\n"
            "[leaf]\n" + self.LEAF_EXT.format(uri=uri))
        self.openssl("ca", "-batch", "-config", conf, "-cert", ca_cert, "-keyfile", ca_key,
                     "-in", csr, "-out", f"{name}.pem", "-startdate", "20200101000000Z",
                     "-enddate", "20200102000000Z", "-extensions", "leaf", "-notext")
        return self.path(f"{name}.pem"), key


def mesh_root(live):
    """meshd's root CA: (DATA_DIR/ca/root-cert.pem, DATA_DIR/ca/root-key.pem)."""
    return live.data_dir / "ca" / "root-cert.pem", live.data_dir / "ca" / "root-key.pem"


def s_client(port, *args, input=b""):
    """openssl s_client against 127.0.0.1:port, reading until the server closes (-ign_eof).
    Returns (exit code, stdout, stderr) as text."""
    proc = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ign_eof",
                           *map(str, args)], input=input, capture_output=True,
                          timeout=OPENSSL_TIMEOUT)
    return (proc.returncode, proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"))


def san_of(pem_text):
    """The subjectAltName of the first certificate in pem_text, as openssl x509 prints it."""
    proc = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"],
                          input=pem_text.encode(), capture_output=True, timeout=OPENSSL_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


def serial_of(pem_text):
    proc = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem_text.encode(),
                          capture_output=True, timeout=OPENSSL_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode().strip().split("=", 1)[1]


def mtls_context(root, cert=None, key=None):
    """A Python TLS client context that trusts root and presents cert/key; no host name check
    (mesh certificates name SPIFFE IDs, not hosts)."""
    ctx = ssl.create_default_context(cafile=str(root))
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def https_request(port, ctx, method, path, body=b""):
    """One HTTP/1.1 request over TLS to 127.0.0.1:port; returns (status, headers dict, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: payment\r\nContent-Length: "
                      f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            data, _ = read_all(s, 10)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ")[1]), headers, rest


# --- tests ---


def test_payment_security_allows_orders_post_only(live):
    payment, (orders, web) = start_mesh(live, [seed_policy()], callers=("orders", "web"))

    r = post(orders)
    assert r.status == 200, r
    assert r.header("x-echo-name") == "payment" and r.header("x-echo-method") == "POST"
    assert r.body == b"payment\n"
    # The rule matches the path without its query.
    r = post(orders, PROCESS + "?id=7")
    assert (r.status, r.header("x-echo-name")) == (200, "payment"), r

    r = post(orders, method="GET", body=None)
    assert (r.status, r.body) == (403, RBAC_BODY), r
    assert r.header("x-echo-name") is None  # the app never saw it
    r = post(orders, "/api/v1/other")
    assert (r.status, r.body) == (403, RBAC_BODY), r
    r = post(web)
    assert (r.status, r.body) == (403, RBAC_BODY), r

    m = metrics(payment)
    find = m.find("mesh_authz_requests_total")
    assert m.sum("mesh_authz_requests_total", source="orders.default",
                 rule="default/payment-security#0", result="allow") == 2, find
    assert m.sum("mesh_authz_requests_total", source="orders.default", rule="default-deny",
                 result="deny") == 2, find
    assert m.sum("mesh_authz_requests_total", source="web.default", rule="default-deny",
                 result="deny") == 1, find
    assert m.sum("mesh_authz_requests_total") == 5, find

    err = payment.stderr()
    assert err.count('msg="request denied by authorization"') == 3
    for ident, method, path in ((spiffe("orders"), "GET", PROCESS),
                                (spiffe("orders"), "POST", "/api/v1/other"),
                                (spiffe("web"), "POST", PROCESS)):
        line = (rf'lvl=warn msg="request denied by authorization" peer={PEER} '
                f'identity={re.escape(ident)} method={method} path="{re.escape(path)}" '
                r'rule=default-deny\n')
        assert re.search(line, err), (line, err)

    # Every call went over mTLS: the callers' outbound handshakes, payment's inbound ones and
    # its connections; no failure anywhere, no plaintext connection.
    assert handshakes(orders, "outbound", "success") >= 1
    assert handshakes(web, "outbound", "success") >= 1
    assert handshakes(payment, "inbound", "success") >= 2
    assert inbound_conns(payment, "mtls") >= 2
    assert inbound_conns(payment, "plaintext") == 0
    for p in (payment, orders, web):
        assert failed_handshakes(p) == 0, metrics(p).find("mesh_mtls_handshakes_total")
    # The counters are declared with their kinds.
    assert m.types["mesh_mtls_handshakes_total"] == "counter"
    assert m.types["mesh_inbound_connections_total"] == "counter"
    assert m.types["mesh_authz_requests_total"] == "counter"
    # orders' own service has no rule: its inbound side counts no decision.
    assert authz(orders) == 0


# An upstream (payment's sidecar) answers a denied POST from the request head, so its 403 may be
# complete before the caller's sidecar (orders) has forwarded the body. orders then reads and
# drops the rest of the body, so that the client's connection, which the 403's head promised to
# keep, goes on; closing it instead reset the client's next request, now and then.
def test_denial_keeps_the_callers_keep_alive_connection(live):
    payment, (orders,) = start_mesh(live, [seed_policy()])
    body = b'{"amount": 12}'
    broken = []
    for i in range(150):
        keep = Client(orders.port, "payment")
        try:
            r = keep.request("GET", PROCESS)
            assert (r.status, r.body) == (403, RBAC_BODY), (i, r)
            r = keep.request("POST", "/api/v1/other", body=body)
            assert (r.status, r.body) == (403, RBAC_BODY), (i, r)
            time.sleep(0.01)  # a client's think time: a close in between is seen as the reset
            try:
                r = keep.request("POST", PROCESS, body=body)  # was reset, now and then
            except OSError as e:
                broken.append((i, repr(e)))
                continue
            assert (r.status, r.header("x-echo-name")) == (200, "payment"), (i, r)
        finally:
            keep.close()
    assert broken == [], f"{len(broken)} of 150 keep-alive connections broken after a 403"
    assert authz(payment, source="orders.default", result="deny") == 300


def test_plaintext_client_on_a_strict_port_is_closed(live):
    payment, (orders,) = start_mesh(live, [seed_policy()])
    # A connection closed before its first byte (a TCP health check) is no failed handshake.
    socket.create_connection(("127.0.0.1", inbound_port(payment)), timeout=5).close()
    data, closed, local = plaintext_refused(inbound_port(payment))
    assert closed, data
    assert b"HTTP/" not in data, data  # no HTTP answer, only (at most) a TLS alert
    wait_until(lambda: handshakes(payment, "inbound", "plaintext") == 1, 5,
               what="the plaintext handshake counted")
    line = (f'lvl=warn msg="TLS handshake failed" direction=inbound peer=({re.escape(local)}|'
            r'127\.0\.0\.1) cause=plaintext error="plaintext on a strict port: ')
    assert re.search(line, payment.stderr()), payment.stderr()
    assert inbound_conns(payment, "plaintext") == 0
    # The mesh still works over mTLS meanwhile.
    assert post(orders).header("x-echo-name") == "payment"
    assert handshakes(payment, "inbound", "success") >= 1


@pytest.mark.parametrize("how", ["explicit", "default"])
def test_permissive_takes_tls_and_plaintext_on_one_port(live, how):
    docs = [security_policy(mode="permissive", services=["payment"])] if how == "explicit" else []
    payment, (orders,) = start_mesh(live, docs)
    c = Counters(payment, orders)
    r = plain_http(payment)
    assert (r.status, r.header("x-echo-name")) == (200, "payment"), r
    assert c.delta(payment, "conn", "plaintext") == 1
    assert c.delta(payment, "conn", "mtls") == 0

    r = post(orders, "/anything")  # no authorization rule: anything goes
    assert (r.status, r.header("x-echo-name")) == (200, "payment"), r
    assert c.delta(orders, "hs", "outbound", "success") == 1
    assert c.delta(payment, "hs", "inbound", "success") == 1
    assert c.delta(payment, "conn", "mtls") == 1
    assert c.delta(payment, "conn", "plaintext") == 1
    assert failed_handshakes(payment) == 0 and failed_handshakes(orders) == 0


def test_auto_upgrade_off_keeps_permissive_calls_plaintext(live):
    payment, (orders,) = start_mesh(live, [mesh_config(enabled=True, auto_upgrade=False)])
    c = Counters(payment, orders)
    assert post(orders).header("x-echo-name") == "payment"
    assert c.delta(payment, "conn", "plaintext") == 1
    assert c.delta(payment, "conn", "mtls") == 0
    assert c.delta(orders, "hs", "outbound", "success") == 0
    # A strict policy still upgrades: it beats the mesh-wide preference.
    live.meshd.apply([seed_policy()])
    wait_synced(live, [payment, orders], "the strict policy")
    assert post(orders).header("x-echo-name") == "payment"
    assert c.delta(orders, "hs", "outbound", "success") == 1
    assert c.delta(payment, "conn", "mtls") == 1


def test_disable_is_plaintext_both_ways(live):
    payment, (orders,) = start_mesh(live, [security_policy(mode="disable")])
    c = Counters(payment, orders)
    r = post(orders, "/x")
    assert (r.status, r.header("x-echo-name")) == (200, "payment"), r
    assert c.delta(payment, "conn", "plaintext") == 1
    r = plain_http(payment)
    assert (r.status, r.header("x-echo-name")) == (200, "payment"), r
    assert c.delta(payment, "conn", "plaintext") == 2
    assert inbound_conns(payment, "mtls") == 0
    assert handshakes(payment, "inbound") == 0
    assert handshakes(orders, "outbound") == 0
    # A TLS client gets no handshake on a plaintext port.
    root, _ = mesh_root(live)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        https_request(inbound_port(payment), mtls_context(root), "GET", "/")


def test_s_client_against_a_strict_port(live, tmp_path):
    payment, (orders,) = start_mesh(live, [seed_policy()])
    port = inbound_port(payment)
    root, root_key = mesh_root(live)
    pki = Pki(tmp_path / "pki")

    # No client certificate: payment's certificate is shown (its SPIFFE ID, verified against
    # meshd's root), then the handshake is refused.
    rc, out, err = s_client(port, "-showcerts", "-CAfile", root)
    assert "-----BEGIN CERTIFICATE-----" in out, out
    assert f"URI:{spiffe('payment')}" in san_of(out)
    assert serial_of(out) == payment.dump()["identity"]["serial"]
    assert "Verify return code: 0 (ok)" in out, out
    assert rc != 0 and "alert certificate required" in err, (rc, out, err)
    wait_until(lambda: handshakes(payment, "inbound", "no_certificate") == 1, 5,
               what="no_certificate counted")

    # Another CA's certificate naming a mesh identity.
    other_ca, other_key = pki.ca("other-ca")
    cert, key = pki.leaf("forged-orders", spiffe("orders"), other_ca, other_key)
    rc, out, err = s_client(port, "-CAfile", root, "-cert", cert, "-key", key,
                            input=b"POST /api/v1/process HTTP/1.1\r\nHost: payment\r\n"
                                  b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    assert "HTTP/1.1" not in out, out
    assert rc != 0 and "alert unknown ca" in err, (rc, out, err)
    wait_until(lambda: handshakes(payment, "inbound", "unknown_ca") == 1, 5,
               what="unknown_ca counted")

    # meshd's own root, but expired.
    cert, key = pki.expired_leaf("expired-orders", spiffe("orders"), root, root_key)
    rc, out, err = s_client(port, "-CAfile", root, "-cert", cert, "-key", key,
                            input=b"POST /api/v1/process HTTP/1.1\r\nHost: payment\r\n"
                                  b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    assert "HTTP/1.1" not in out, out
    assert rc != 0 and "alert certificate expired" in err, (rc, out, err)
    wait_until(lambda: handshakes(payment, "inbound", "expired") == 1, 5,
               what="expired counted")
    err_log = payment.stderr()
    for cause in ("no_certificate", "unknown_ca", "expired"):
        assert re.search(r'lvl=warn msg="TLS handshake failed" direction=inbound '
                         rf'peer={PEER} cause={cause} error="', err_log), (cause, err_log)
    assert handshakes(payment, "inbound", "success") == 0
    assert inbound_conns(payment, "mtls") == 0

    # A valid certificate of meshd's root for orders: in, and authorized as orders.
    cert, key = pki.leaf("good-orders", spiffe("orders"), root, root_key)
    ctx = mtls_context(root, cert, key)
    status, headers, body = https_request(port, ctx, "POST", PROCESS, b"{}")
    assert (status, headers.get("x-echo-name"), body) == (200, "payment", b"payment\n")
    status, _, body = https_request(port, ctx, "GET", PROCESS)
    assert (status, body) == (403, RBAC_BODY)
    # The same through s_client, which shows the exchange.
    rc, out, err = s_client(port, "-CAfile", root, "-cert", cert, "-key", key, "-quiet",
                            input=b"POST /api/v1/process HTTP/1.1\r\nHost: payment\r\n"
                                  b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    assert out.startswith("HTTP/1.1 200"), (rc, out, err)
    assert handshakes(payment, "inbound", "success") == 3
    assert inbound_conns(payment, "mtls") == 3
    assert authz(payment, source="orders.default", result="allow") == 2
    assert authz(payment, source="orders.default", result="deny") == 1
    assert orders.alive()


def register_fake(live, proxy_id, service, address):
    """Registers a sidecar that is not a meshproxy (meshd's API, with the token)."""
    status, body = live.meshd.call("PUT", f"/v1/proxies/{proxy_id}", {
        "role": "sidecar", "service": service, "namespace": "default", "labels": {},
        "address": address, "admin": "127.0.0.1:1"})
    assert status in (200, 201), body


def mesh_certificate(live, pki, proxy_id, name):
    """A certificate meshd issues to a registered proxy, for its CSR: (cert, key, meshd's
    answer)."""
    csr, key = pki.csr(name)
    status, body = live.meshd.call("POST", f"/v1/proxies/{proxy_id}/certificate",
                                   {"csr": csr.read_text()})
    assert status == 200, body
    cert = pki.path(f"{name}.pem")
    cert.write_text(body["certificate"])
    return cert, key, body


class SServer(Process):
    """openssl s_server on a loopback port, presenting cert."""

    def __init__(self, log_dir, name, port, cert, key):
        super().__init__(name, ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert",
                                cert, "-key", key, "-www"], log_dir)
        self.addr = f"127.0.0.1:{port}"

    def wait_ready(self):
        def ready():
            if not self.alive():
                pytest.fail(f"s_server exited: {self.stderr()}")
            try:
                return "ACCEPT" in self.stdout_path.read_text(errors="replace")
            except FileNotFoundError:
                return False

        wait_until(ready, 10, what="s_server to accept")


def test_outbound_refuses_a_server_with_another_identity(live, tmp_path):
    # Only the impostor serves payment: the heartbeat TTL keeps its registration (no heartbeats).
    live.start_meshd(["--heartbeat-ttl", "120s"])
    pki = Pki(tmp_path / "pki")
    (port,) = free_ports(1)
    addr = f"127.0.0.1:{port}"
    # A real mesh certificate, for web: meshd issues it to a registered web sidecar.
    register_fake(live, "impostor-web", "web", addr)
    web_cert, web_key, issued = mesh_certificate(live, pki, "impostor-web", "web")
    assert issued["spiffe_id"] == spiffe("web")
    server = SServer(tmp_path, "s_server-web", port, web_cert, web_key)
    live.lab.procs.append(server)
    server.wait_ready()
    register_fake(live, "impostor-payment", "payment", addr)
    orders = live.sidecar("orders", live.echo("orders"))
    orders.wait_dump(lambda d: d["identity"]["spiffe_id"] is not None and
                     has_endpoints(d, [("payment", addr)]), "a certificate and the endpoint")

    r = post(orders)
    assert r.status == 503, r
    assert r.header("x-mesh-error") == "upstream TLS handshake failed: wrong_identity", r
    assert handshakes(orders, "outbound", "wrong_identity") >= 1
    assert handshakes(orders, "outbound", "success") == 0
    line = (f'lvl=warn msg="TLS handshake failed" direction=outbound endpoint={addr} '
            f'expected={spiffe("payment")} cause=wrong_identity error="')
    assert line in orders.stderr(), orders.stderr()

    # The right name from another CA: unknown_ca; from meshd's root but expired: expired.
    other_ca, other_key = pki.ca("other-ca")
    root, root_key = mesh_root(live)
    for cause, (cert, key) in (
            ("unknown_ca", pki.leaf("forged-payment", spiffe("payment"), other_ca, other_key)),
            ("expired", pki.expired_leaf("old-payment", spiffe("payment"), root, root_key))):
        server.stop()
        server = SServer(tmp_path, f"s_server-{cause}", port, cert, key)
        live.lab.procs.append(server)
        server.wait_ready()
        r = post(orders)
        assert r.status == 503, r
        assert r.header("x-mesh-error") == f"upstream TLS handshake failed: {cause}", r
        assert handshakes(orders, "outbound", cause) >= 1
        assert re.search(f'direction=outbound endpoint={re.escape(addr)} expected='
                         f'{re.escape(spiffe("payment"))} cause={cause} error="', orders.stderr())
    assert handshakes(orders, "outbound", "success") == 0


def meshctl_apply(mesh, live, doc, tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    rc, out, err = mesh.run("--server", live.meshd.url, "--token", live.meshd.token_path,
                            "apply", "-f", path, store=False)
    assert rc == 0, (out, err)


def test_policy_change_on_a_live_mesh(live, mesh, tmp_path):
    payment, (orders,) = start_mesh(live, [seed_policy()])
    port = inbound_port(payment)
    assert post(orders).header("x-echo-name") == "payment"
    data, closed, _ = plaintext_refused(port)
    assert closed and b"HTTP/" not in data, data

    # strict -> disable with meshctl: new connections are plaintext both ways. The rules still
    # hold, and a plaintext caller has no identity: orders' POST is now denied as well.
    meshctl_apply(mesh, live, seed_policy("disable"), tmp_path)
    wait_synced(live, [payment, orders], "the disable policy")
    wait_until(lambda: plain_http(payment).body == RBAC_BODY, SYNC,
               what="plain HTTP accepted (and denied by the rules)")
    c = Counters(payment, orders)
    r = post(orders)
    assert (r.status, r.body) == (403, RBAC_BODY), r
    assert c.delta(payment, "conn", "plaintext") == 1
    assert c.delta(payment, "conn", "mtls") == 0
    assert c.delta(orders, "hs", "outbound", "success") == 0
    assert authz(payment, source="unauthenticated", rule="default-deny", result="deny") == 2
    assert 'identity=none (plaintext) method=POST path="/api/v1/process"' in payment.stderr()

    # disable -> strict with a PUT: plaintext closed again, calls over mTLS and allowed again.
    status, body = live.meshd.call("PUT", "/v1/namespaces/default/securitypolicies/"
                                   "payment-security", seed_policy("strict"))
    assert status == 200, body
    wait_synced(live, [payment, orders], "the strict policy again")
    wait_until(lambda: plaintext_refused(port)[1], SYNC, what="plaintext refused again")
    c = Counters(payment, orders)
    # Allowed: only a caller proven to be orders is, so these went over mTLS (on new
    # connections, or on the pooled ones from before the change, which were mTLS already).
    # Concurrent calls need more connections than the pool holds: new handshakes.
    results = run_parallel(lambda i: post(orders), 8)
    assert [(r.status, r.header("x-echo-name")) for r in results] == [(200, "payment")] * 8
    assert c.delta(orders, "hs", "outbound", "success") >= 1
    assert c.delta(payment, "conn", "mtls") >= 1
    assert c.delta(payment, "conn", "plaintext") == 0
    assert failed_handshakes(orders) == 0


class PostTraffic:
    """Authorized POSTs from orders' outbound listener to payment, continuously, on fresh
    connections and on one keep-alive connection, until stopped. Every answer must be payment's
    app's."""

    def __init__(self, orders):
        self.orders = orders
        self.ok = 0
        self.failures = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _check(self, r):
        if r.status == 200 and r.header("x-echo-name") == "payment":
            self.ok += 1
        else:
            self.failures.append((r.status, r.header("x-mesh-error"), r.body[:100]))

    def _run(self):
        keep = None
        while not self.done.is_set():
            try:
                self._check(post(self.orders))
                if keep is None:
                    keep = Client(self.orders.port, "payment")
                self._check(keep.request("POST", PROCESS, body=b"{}"))
            except (OSError, AssertionError) as e:
                self.failures.append(repr(e))
                keep = None
            time.sleep(0.005)
        if keep:
            keep.close()

    def stop(self):
        self.done.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        assert self.failures == [], f"{len(self.failures)} failed requests: {self.failures[:5]}"
        return self.ok


def test_renewal_under_strict_mtls_and_authorization(live, tmp_path):
    payment, (orders,) = start_mesh(live, [seed_policy()], flags=["--cert-ttl", f"{TTL}s"])
    first = {p.name: p.dump()["identity"]["serial"] for p in (payment, orders)}
    traffic = PostTraffic(orders)
    try:
        # Both renew at half the lifetime (10 s, plus up to 1 s of jitter, from issuance).
        for p in (payment, orders):
            p.wait_dump(lambda d, s=first[p.name]: d["identity"]["serial"] != s,
                        "the first renewal", timeout=TTL * 0.75)
        # Handshakes after the renewal: concurrent calls open new connections (more than the
        # pool holds), with both sides' new certificates.
        c = Counters(payment, orders)
        results = run_parallel(lambda i: post(orders), 8)
        assert [(r.status, r.header("x-echo-name")) for r in results] == [(200, "payment")] * 8
        assert c.delta(orders, "hs", "outbound", "success") >= 1
        assert c.delta(payment, "hs", "inbound", "success") >= 1
    finally:
        sent = traffic.stop()
    assert sent > 100, sent

    # payment's listener presents the renewed certificate now.
    root, root_key = mesh_root(live)
    cert, key = Pki(tmp_path / "pki").leaf("orders-client", spiffe("orders"), root, root_key)
    rc, out, err = s_client(inbound_port(payment), "-showcerts", "-CAfile", root, "-cert", cert,
                            "-key", key, input=b"POST /api/v1/process HTTP/1.1\r\nHost: payment"
                            b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert "HTTP/1.1 200" in out, (rc, out, err)
    now = payment.dump()["identity"]["serial"]
    assert now != first[payment.name] and serial_of(out) == now

    for p in (payment, orders):
        assert failed_handshakes(p) == 0, metrics(p).find("mesh_mtls_handshakes_total")
        assert "lvl=error" not in p.stderr()
        assert "workload certificate renewed" in p.stderr()
    assert inbound_conns(payment, "plaintext") == 0
    # Every request was authorized as orders, none denied.
    assert authz(payment, source="orders.default", rule="default/payment-security#0",
                 result="allow") == sent + 8 + 1
    assert authz(payment, result="deny") == 0


def test_inbound_refuses_requests_until_the_first_config(live):
    # meshd once, so that its token exists; then down while the sidecar starts. Until meshd's
    # first config the sidecar cannot know whether its port is strict: nothing reaches the app.
    live.start_meshd()
    live.meshd.stop()
    payment = live.sidecar("payment", live.echo("payment"))
    r = plain_http(payment)
    assert (r.status, r.header("x-mesh-error")) == (503, "no config yet"), r
    assert r.header("x-echo-name") is None
    root, _ = mesh_root(live)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        https_request(inbound_port(payment), mtls_context(root), "GET", "/")
    assert handshakes(payment, "inbound", "success") == 0

    # meshd back with no policy: the default, permissive, takes plaintext.
    live.start_meshd()
    wait_until(lambda: payment.admin("/ready").status == 200, SETTLE, interval=0.05,
               what="the sidecar's first config")
    c = Counters(payment)
    r = plain_http(payment)
    assert (r.status, r.header("x-echo-name")) == (200, "payment"), r
    assert c.delta(payment, "conn", "plaintext") == 1

def labelled_service(name, app):
    return {"apiVersion": API, "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "spec": {"endpoints": []}}


@pytest.mark.parametrize("caller", ["orders.default", "orders.default.svc", spiffe("orders")])
def test_names_cover_app_labels_and_identity_spellings(live, caller):
    # payment-v1 and orders-v1 are Services labelled app: payment / app: orders. The policy
    # names the app: it covers payment-v1's mode and rules; the short spellings of orders name
    # orders-v1's sidecars too, a SPIFFE ID only exactly itself.
    live.start_meshd()
    live.meshd.apply([
        labelled_service("payment-v1", "payment"), labelled_service("orders-v1", "orders"),
        security_policy(mode="strict", services=["payment"], rules=[
            {"from": [caller], "to": ["payment"], "methods": ["POST"]}])])
    v1 = live.sidecar("payment-v1", live.echo("payment-v1"))
    orders = live.sidecar("orders", live.echo("orders"))
    orders_v1 = live.sidecar("orders-v1", live.echo("orders-v1"))
    for p in (v1, orders, orders_v1):
        p.wait_dump(lambda d: d["identity"]["spiffe_id"] is not None and
                    has_endpoints(d, [("payment-v1", v1.inbound)]),
                    "a certificate and payment-v1's endpoint")

    r = post(orders, host="payment-v1")
    assert (r.status, r.header("x-echo-name")) == (200, "payment-v1"), r
    r = post(orders, host="payment-v1", method="GET", body=None)
    assert (r.status, r.body) == (403, RBAC_BODY), r
    r = post(orders_v1, host="payment-v1")
    if caller.startswith("spiffe://"):
        assert (r.status, r.body) == (403, RBAC_BODY), r
        assert authz(v1, source="orders-v1.default", rule="default-deny", result="deny") == 1
    else:
        assert (r.status, r.header("x-echo-name")) == (200, "payment-v1"), r
        assert authz(v1, source="orders-v1.default", rule="default/payment-security#0",
                     result="allow") == 1
    assert authz(v1, source="orders.default", rule="default/payment-security#0",
                 result="allow") == 1
    # Strict through the app label: plaintext is refused, the calls were mTLS.
    data, closed, _ = plaintext_refused(inbound_port(v1))
    assert closed and b"HTTP/" not in data, data
    assert handshakes(v1, "inbound", "success") >= 2
    assert inbound_conns(v1, "plaintext") == 0


def test_gateway_calls_sidecars_over_mtls_as_itself(live):
    gw_rule = {"from": ["external-gateway.default"], "to": ["payment"], "paths": ["/api/*"]}
    payment, (orders,) = start_mesh(live, [
        security_policy(mode="strict", services=["payment"], rules=[gw_rule]),
        {"apiVersion": API, "kind": "VirtualService", "metadata": {"name": "edge"},
         "spec": {"hosts": ["payment.example.com"], "gateways": ["external-gateway"],
                  "http_routes": [{"destinations": [{"host": "payment"}]}]}}])
    gw = live.gateway("external-gateway")
    gw.wait_dump(lambda d: d["identity"]["spiffe_id"] == spiffe("external-gateway") and
                 has_endpoints(d, [("payment", payment.inbound)]),
                 "the gateway's certificate and payment's endpoint")
    r = request(gw.port, "POST", PROCESS, "payment.example.com", body=b"{}")
    assert (r.status, r.header("x-echo-name")) == (200, "payment"), r
    r = request(gw.port, "GET", "/other", "payment.example.com")
    assert (r.status, r.body) == (403, RBAC_BODY), r
    assert handshakes(gw, "outbound", "success") >= 1
    assert authz(payment, source="external-gateway.default", rule="default/payment-security#0",
                 result="allow") == 1
    assert authz(payment, source="external-gateway.default", rule="default-deny",
                 result="deny") == 1
    # orders is no gateway.
    r = post(orders)
    assert (r.status, r.body) == (403, RBAC_BODY), r


def test_mtls_disabled_mesh_wide(live):
    payment, (orders,) = start_mesh(live, [mesh_config(enabled=False)])
    c = Counters(payment, orders)
    assert post(orders).header("x-echo-name") == "payment"
    assert plain_http(payment).header("x-echo-name") == "payment"
    assert c.delta(payment, "conn", "plaintext") == 2
    assert handshakes(orders, "outbound") == 0 and handshakes(payment, "inbound") == 0
    root, _ = mesh_root(live)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        https_request(inbound_port(payment), mtls_context(root), "GET", "/")
