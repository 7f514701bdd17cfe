# SPDX-License-Identifier: Apache-2.0
"""A gateway that serves HTTPS (--tls-cert/--tls-key): external clients speak TLS to it, and it
routes their requests by Host exactly as a plaintext gateway does (here to an app behind a
sidecar). Certificates are made by the openssl command line, as an operator would.

Covered: curl --cacert and Python's ssl get the app's answer by Host; several requests on one
TLS connection (one handshake counted); a 4 MiB request body and a 4 MiB response body through
TLS; a WebSocket upgrade tunnelled through TLS; plaintext HTTP to the TLS port is closed, counted
in mesh_tls_handshakes_total{result="failure"} and logged with the peer and the cause; the start
errors (a missing --tls-key, a key others may read, --tls-cert outside gateway mode); a plaintext
gateway shows no TLS metric.
"""
import http.client
import socket
import ssl
import subprocess
import time

import pytest

from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    Metrics,
    meshproxy_path,
    proxy_binaries,
    lab,
    route,
    wait_until,
)
from test_mesh_live import live, meshd_binary, vs  # noqa: F401 - fixtures
from test_meshd_ca import make_ca
from test_meshd_tls import make_server_cert

HOST = "shop.example.com"
BIG = 4 * 1024 * 1024


@pytest.fixture
def pki(tmp_path):
    ca = make_ca(tmp_path, "gw-ca", "/CN=Test gateway CA")
    cert, key = make_server_cert(tmp_path, ca, name="gateway")
    return {"ca": ca[0], "cert": cert, "key": key}


@pytest.fixture
def shop(live, pki):
    """meshd, the app "shop" behind a sidecar, and an HTTPS gateway routing HOST to it."""
    live.start_meshd(["--heartbeat-ttl", "3s", "--heartbeat-interval", "500ms"])
    app = live.echo("shop")
    side = live.sidecar("shop", app)
    gw = live.gateway("tls-gw", flags=["--tls-cert", pki["cert"], "--tls-key", pki["key"]])
    live.meshd.apply([vs("shop-public", [HOST], route("shop", name="public"),
                         gateways=["tls-gw"])])
    gw.wait_dump(lambda d: any(r["name"] == "public" for r in d["routes"]) and
                 any(e["cluster"] == "shop" and e["address"] == side.inbound
                     for e in d["endpoints"]), "the gateway's route to shop")
    return gw


def context(pki):
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    return ctx


def https(gw, pki, timeout=10):
    return http.client.HTTPSConnection("127.0.0.1", gw.port, context=context(pki),
                                       timeout=timeout)


def handshakes(gw, result):
    resp = gw.admin("/metrics")
    assert resp.status == 200
    return Metrics(resp.text).sum("mesh_tls_handshakes_total", result=result)


def test_curl_and_python_get_the_app_by_host(shop, pki):
    gw = shop
    c = subprocess.run(["curl", "-sS", "-i", "--cacert", str(pki["ca"]), "-H", f"Host: {HOST}",
                        f"https://127.0.0.1:{gw.port}/hello"],
                       capture_output=True, text=True, timeout=20)
    assert c.returncode == 0, c.stderr
    assert "x-echo-name: shop" in c.stdout.lower() and "x-echo-path: /hello" in c.stdout.lower()
    assert "x-echo-header-x-forwarded-proto: https" in c.stdout.lower()
    conn = https(gw, pki)
    conn.request("GET", "/py", headers={"Host": HOST})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("x-echo-name") == "shop", r.status
    r.read()
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.request("GET", "/", headers={"Host": "unknown.example.com"})
    r = conn.getresponse()
    r.read()
    assert r.status == 404  # routed like plaintext: no route for that host
    conn.close()
    # The wrong CA: the client refuses the gateway's certificate.
    bad = http.client.HTTPSConnection("127.0.0.1", gw.port, context=ssl.create_default_context(),
                                      timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        bad.request("GET", "/", headers={"Host": HOST})
    bad.close()


def test_keep_alive_requests_share_one_handshake(shop, pki):
    gw = shop
    before = handshakes(gw, "success")
    conn = https(gw, pki)
    sock = None
    for i in range(10):
        conn.request("GET", f"/n/{i}", headers={"Host": HOST})
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("x-echo-path") == f"/n/{i}"
        r.read()
        sock = sock or conn.sock
        assert conn.sock is sock  # never reconnected
    conn.close()
    assert handshakes(gw, "success") == before + 1


def test_big_bodies_both_ways(shop, pki):
    gw = shop
    body = bytes(range(256)) * (BIG // 256)
    conn = https(gw, pki, timeout=30)
    conn.request("POST", "/upload", body=body, headers={"Host": HOST})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("x-echo-body-bytes") == str(BIG)
    r.read()
    conn.request("GET", f"/download?size={BIG}", headers={"Host": HOST})
    r = conn.getresponse()
    got = r.read()
    assert r.status == 200 and len(got) == BIG
    pattern = b"abcdefghijklmnopqrstuvwxyz"
    assert got == (pattern * (BIG // len(pattern) + 1))[:BIG]
    # Chunked upload (no content-length), streamed through in pieces.
    conn.request("POST", "/chunked", body=iter([body[i:i + 65536] for i in range(0, BIG, 65536)]),
                 headers={"Host": HOST}, encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("x-echo-body-bytes") == str(BIG)
    r.read()
    conn.close()


def test_websocket_upgrade_through_tls(shop, pki):
    gw = shop
    raw = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s = context(pki).wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
              .encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    rest = head.split(b"\r\n\r\n", 1)[1]
    payload = bytes(range(256)) * 1024  # 256 KiB, echoed back byte for byte
    s.sendall(payload)
    got = rest
    while len(got) < len(payload):
        chunk = s.recv(65536)
        assert chunk, len(got)
        got += chunk
    assert got == payload
    s.close()


def test_plaintext_to_the_tls_port_is_closed_and_counted(shop, pki):
    gw = shop
    before = handshakes(gw, "failure")
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    assert b"HTTP/1.1 200" not in data and b"shop" not in data
    wait_until(lambda: handshakes(gw, "failure") == before + 1, 5, what="the failure counted")
    line = gw.wait_for_stderr("TLS handshake failed")
    assert "peer=127.0.0.1" in gw.stderr() and "plaintext" in gw.stderr(), gw.stderr()
    del line
    # A connection that closes without a byte (a health check) is neither a failure nor an
    # error; and the gateway still serves.
    socket.create_connection(("127.0.0.1", gw.port), timeout=10).close()
    conn = https(gw, pki)
    conn.request("GET", "/", headers={"Host": HOST})
    assert conn.getresponse().status == 200
    conn.close()
    time.sleep(0.2)
    assert handshakes(gw, "failure") == before + 1


def test_silent_client_times_out_as_a_failure(live, pki):
    live.start_meshd()
    gw = live.gateway("tls-gw", flags=["--tls-cert", pki["cert"], "--tls-key", pki["key"],
                                       "--header-timeout", "300ms"])
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    assert s.recv(10) == b""  # closed by the gateway, after the header timeout
    s.close()
    wait_until(lambda: handshakes(gw, "failure") == 1, 5, what="the timeout counted")
    gw.wait_for_stderr("no handshake within the header timeout")


def test_plaintext_gateway_has_no_tls(live):
    live.start_meshd()
    gw = live.gateway("plain-gw")
    assert "mesh_tls_handshakes_total{" not in gw.admin("/metrics").text  # no series


def run_proxy(tmp_path, *args):
    token = tmp_path / "token"
    token.write_text("t" * 32 + "\n")
    token.chmod(0o600)
    argv = [str(meshproxy_path()), "--control", "http://127.0.0.1:9", "--token", str(token),
            "--admin", "127.0.0.1:0", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20)


def test_start_errors_name_the_flag_and_file(tmp_path, pki, proxy_binaries):
    gw = ("--gateway", "g", "--listen", "127.0.0.1:0")
    r = run_proxy(tmp_path, *gw, "--tls-cert", pki["cert"])
    assert r.returncode == 2 and "--tls-key FILE is missing" in r.stderr, r.stderr
    r = run_proxy(tmp_path, *gw, "--tls-key", pki["key"])
    assert r.returncode == 2 and "--tls-cert FILE is missing" in r.stderr, r.stderr
    r = run_proxy(tmp_path, "--service", "s", "--app", "127.0.0.1:1", "--outbound",
                  "127.0.0.1:0", "--inbound", "127.0.0.1:0", "--tls-cert", pki["cert"],
                  "--tls-key", pki["key"])
    assert r.returncode == 2 and "are for gateways" in r.stderr, r.stderr
    open_key = tmp_path / "open-key.pem"
    open_key.write_bytes(pki["key"].read_bytes())
    open_key.chmod(0o644)
    r = run_proxy(tmp_path, *gw, "--tls-cert", pki["cert"], "--tls-key", open_key)
    assert r.returncode == 1 and "--tls-key" in r.stderr and str(open_key) in r.stderr, r.stderr
    missing = tmp_path / "nope.pem"
    r = run_proxy(tmp_path, *gw, "--tls-cert", missing, "--tls-key", pki["key"])
    assert r.returncode == 1 and str(missing) in r.stderr, r.stderr
    # A key that is not the certificate's.
    other = make_server_cert(tmp_path, make_ca(tmp_path, "ca2", "/CN=Other"), name="other")
    r = run_proxy(tmp_path, *gw, "--tls-cert", pki["cert"], "--tls-key", other[1])
    assert r.returncode == 1 and "--tls-key" in r.stderr, r.stderr
