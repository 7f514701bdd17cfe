# SPDX-License-Identifier: Apache-2.0
"""meshproxy's defences against request smuggling and abuse, end to end: each malformed request
is answered with its status, the connection is closed, nothing reaches the upstream, and the
refusal is counted by kind in mesh_parse_errors_total. Slow headers time out with 408."""
import socket
import time

import pytest

from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    IO_TIMEOUT,
    lab,
    parse_head,
    proxy_binaries,
    read_all,
    route,
    service,
    virtual_service,
)

HOST = "payment.example.com"
H = f"Host: {HOST}\r\n"

# (id, bytes sent, status, mesh_parse_errors_total kind)
CASES = [
    ("content_length_with_transfer_encoding",
     f"POST / HTTP/1.1\r\n{H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + H + "\r\n",
     400, "cl_te_conflict"),
    ("conflicting_content_lengths",
     f"POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
     400, "cl_conflict"),
    ("content_length_list",
     f"POST / HTTP/1.1\r\n{H}Content-Length: 5, 6\r\n\r\nhello!",
     400, "cl_invalid"),
    ("transfer_encoding_not_chunked_last",
     f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
     400, "te_not_chunked"),
    ("bad_chunk_size",
     f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
     400, "bad_chunk_size"),
    ("transfer_encoding_in_http10",
     f"POST / HTTP/1.0\r\n{H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, "te_invalid"),
    ("negative_content_length",
     f"POST / HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\n",
     400, "cl_invalid"),
    ("chunk_size_overflow",
     f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n"
     "fffffffffffffffffffff\r\nx\r\n0\r\n\r\n",
     400, "bad_chunk_size"),
    ("control_character_in_target",
     f"GET /a\x7fb HTTP/1.1\r\n{H}\r\n",
     400, "ctl_char"),
    ("obs_fold",
     f"GET / HTTP/1.1\r\n{H}X-Folded: a\r\n b\r\n\r\n",
     400, "obs_fold"),
    ("nul_in_header",
     f"GET / HTTP/1.1\r\n{H}X-Nul: a\x00b\r\n\r\n",
     400, "nul_char"),
    ("bare_cr_in_header",
     f"GET / HTTP/1.1\r\n{H}X-Cr: a\rb\r\n\r\n",
     400, "bare_cr"),
    ("space_before_colon",
     f"GET / HTTP/1.1\r\n{H}X-Space : a\r\n\r\n",
     400, "ws_before_colon"),
    ("header_section_too_large",
     f"GET / HTTP/1.1\r\n{H}" + "".join(f"X-Big-{i}: {'v' * 1000}\r\n" for i in range(20))
     + "\r\n",
     431, "headers_too_large"),
    ("too_many_headers",
     f"GET / HTTP/1.1\r\n{H}" + "".join(f"X-N{i}: v\r\n" for i in range(120)) + "\r\n",
     431, "too_many_headers"),
    ("request_line_too_long",
     "GET /" + "a" * 9000 + f" HTTP/1.1\r\n{H}\r\n",
     414, "request_line_too_long"),
    ("unsupported_version",
     f"GET / HTTP/3.0\r\n{H}\r\n",
     505, "unsupported_version"),
    ("invalid_method",
     f"G(E)T / HTTP/1.1\r\n{H}\r\n",
     400, "invalid_method"),
    ("missing_host",
     "GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
     400, "missing_host"),
    ("duplicate_host",
     f"GET / HTTP/1.1\r\n{H}{H}\r\n",
     400, "duplicate_host"),
]


@pytest.fixture
def guarded(lab):
    """A proxy in front of a recording upstream, so that a test can check nothing reached it."""
    up = lab.upstream("recorder")
    proxy = lab.proxy([service("recorder", up.addr),
                       virtual_service("payment", [HOST], route("recorder"))])
    return proxy, up


@pytest.mark.parametrize("data,status,kind", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_request_is_refused_and_the_connection_closed(guarded, data, status, kind):
    proxy, up = guarded
    received, closed = _exchange(proxy, data.encode("latin-1"))
    assert received, "no answer"
    head = received.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    got, headers = parse_head(head)
    assert got == status, received[:300]
    assert closed, "the connection was left open"
    assert received.count(b"HTTP/1.1 ") == 1, f"more than one response: {received[:600]!r}"
    assert up.request_count() == 0, f"reached the upstream: {up.requests}"
    m = proxy.metrics()
    assert m.sum("mesh_parse_errors_total", kind=kind) == 1, \
        m.find("mesh_parse_errors_total")


def _exchange(proxy, data):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished: the answer is still there to read
        return read_all(s, 5.0)


def test_good_request_after_refusal_on_a_new_connection_is_served(guarded):
    proxy, up = guarded
    received, closed = _exchange(proxy, f"GET / HTTP/1.1\r\n{H}X-Nul: \x00\r\n\r\n".encode())
    assert closed and received.startswith(b"HTTP/1.1 400")
    r = proxy.request(host=HOST)
    assert r.status == 200 and r.text == "recorder\n"
    assert up.request_count() == 1


def test_slow_headers_get_408_after_the_header_timeout(lab):
    up = lab.upstream("recorder")
    proxy = lab.proxy([service("recorder", up.addr),
                       virtual_service("payment", [HOST], route("recorder"))],
                      flags=["--header-timeout", "500ms"])
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT) as s:
        start = time.monotonic()
        s.sendall(f"GET / HTTP/1.1\r\n{H}".encode())  # never finished
        received, closed = read_all(s, 5.0)
        elapsed = time.monotonic() - start
    assert received.startswith(b"HTTP/1.1 408"), received
    assert closed
    assert 0.4 <= elapsed <= 2.5, elapsed
    assert up.request_count() == 0
    assert proxy.metrics().sum("mesh_parse_errors_total", kind="header_timeout") == 1


def test_trickled_headers_do_not_extend_the_header_timeout(lab):
    up = lab.upstream("recorder")
    proxy = lab.proxy([service("recorder", up.addr),
                       virtual_service("payment", [HOST], route("recorder"))],
                      flags=["--header-timeout", "500ms"])
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT) as s:
        start = time.monotonic()
        s.sendall(f"GET / HTTP/1.1\r\n{H}".encode())
        answer = b""
        # A slowloris: one more header byte every 50 ms, never the end of the head.
        while time.monotonic() - start < 3.0:
            try:
                s.sendall(b"x")
            except OSError:
                break
            s.settimeout(0.05)
            try:
                b = s.recv(4096)
            except socket.timeout:
                continue
            if not b:
                break
            answer += b
            if b"\r\n\r\n" in answer:
                break
        elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert elapsed <= 2.0, elapsed


def test_requests_within_the_limits_are_served(guarded):
    proxy, up = guarded
    long_path = "/" + "p" * 7000  # a request line under 8 KiB
    many = {f"X-Many-{i}": "v" for i in range(90)}  # under 100 header lines
    big = {f"X-Big-{i}": "v" * 1000 for i in range(10)}  # a head of ~10 KiB, under 16 KiB
    for path, headers in ((long_path, {}), ("/many", many), ("/big", big)):
        r = proxy.request(host=HOST, path=path, headers=headers)
        assert r.status == 200, (path[:20], r)
    (_, _, t1, _), (_, _, _, h2), (_, _, _, h3) = up.requests
    assert t1 == long_path
    assert sum(1 for k, _ in h2 if k.startswith("x-many-")) == 90
    assert dict(h3)["x-big-9"] == "v" * 1000


def test_chunked_request_with_extensions_and_trailers_is_accepted(lab):
    e = lab.echo("payment-v1")
    proxy = lab.proxy([service("payment-v1", e.addr),
                       virtual_service("payment", [HOST], route("payment-v1"))])
    data = (f"POST /t HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n").encode()
    received, closed = _exchange(proxy, data)
    status, headers = parse_head(received.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
    assert status == 200, received
    assert dict(headers)["x-echo-body-bytes"] == "11"
