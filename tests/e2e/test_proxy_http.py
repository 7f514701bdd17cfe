# SPDX-License-Identifier: Apache-2.0
"""meshproxy's HTTP/1.1 handling, end to end: keep-alive on both sides, pipelining, the headers
it adds and removes, request and response bodies streamed (content-length and chunked),
Expect: 100-continue and an Upgrade tunnelled after the 101."""
import http.client
import os
import socket
import threading
import time

from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    IO_TIMEOUT,
    curl,
    echo_services,
    lab,
    parse_head,
    parse_responses,
    proxy_binaries,
    read_all,
    read_head,
    route,
    run_parallel,
    service,
    virtual_service,
)

HOST = "payment.example.com"


def echo_proxy(lab, *flags):
    e = lab.echo("payment-v1")
    return lab.proxy(echo_services(e) + [virtual_service("payment", [HOST], route("payment-v1"))],
                     flags=flags)


def recording_proxy(lab, status=200):
    up = lab.upstream("recorder", status=status)
    proxy = lab.proxy([service("recorder", up.addr),
                       virtual_service("payment", [HOST], route("recorder"))])
    return up, proxy


def test_keep_alive_on_both_sides(lab):
    up, proxy = recording_proxy(lab)
    c = proxy.client(HOST)
    for i in range(50):
        r = c.request(path=f"/ka/{i}")  # the Client asserts its connection was never closed
        assert r.status == 200 and r.text == "recorder\n", r
    c.close()
    assert up.request_count() == 50
    # One client connection is one worker: it reuses its upstream connection.
    assert up.connections == 1, f"upstream saw {up.connections} connections for 50 requests"


def test_curl_keeps_its_connection_across_requests(lab):
    proxy = echo_proxy(lab)
    urls = [f"http://127.0.0.1:{proxy.port}/c{i}" for i in range(3)]
    rc, out, err = curl("-sS", "-v", "-H", f"Host: {HOST}", *urls)
    assert rc == 0, err
    assert out == b"payment-v1\n" * 3, out
    assert err.count("Connected to") == 1, err
    assert err.count("Re-using existing connection") == 2, err


def test_curl_chunked_upload_is_streamed(lab):
    proxy = echo_proxy(lab)
    body = os.urandom(3_000_000)
    # -T - reads stdin and, not knowing its length, sends it chunked.
    rc, out, err = curl("-sS", "-D", "-", "-o", "/dev/null", "-T", "-", "-H", f"Host: {HOST}",
                        f"http://127.0.0.1:{proxy.port}/upload", input=body)
    assert rc == 0, err
    # Interim 100 Continue heads (curl asks for one) come first: the final head is the last.
    heads = [h for h in out.split(b"\r\n\r\n") if h.startswith(b"HTTP/")]
    status, headers = parse_head(heads[-1] + b"\r\n\r\n")
    assert status == 200, out
    assert dict(headers)["x-echo-body-bytes"] == str(len(body))
    assert dict(headers)["x-echo-method"] == "PUT"


def test_http10_client_without_keep_alive_is_closed_after_the_response(lab):
    proxy = echo_proxy(lab)
    data, closed = _raw(proxy, f"GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
    assert closed
    (r,) = parse_responses(data)
    assert r.status == 200 and r.text == "payment-v1\n", r


def _raw(proxy, data, timeout=5.0):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout) as s:
        s.sendall(data)
        return read_all(s, timeout)


def test_pipelined_requests_are_answered_in_order(lab):
    proxy = echo_proxy(lab)
    # The first requests are the slowest: an out-of-order proxy would answer them last.
    delays = ["300ms", "200ms", "100ms", "0ms", "50ms"]
    data = b"".join(
        f"GET /p{i}?delay={d} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
        for i, d in enumerate(delays))
    last = f"GET /last HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    received, closed = _raw(proxy, data + last)
    assert closed
    responses = parse_responses(received)
    assert [r.status for r in responses] == [200] * 6, responses
    paths = [r.header("x-echo-path") for r in responses]
    assert paths == [f"/p{i}" for i in range(5)] + ["/last"], paths


def test_adds_x_forwarded_for_and_x_request_id(lab):
    up, proxy = recording_proxy(lab)
    assert proxy.request(host=HOST).status == 200
    assert proxy.request(host=HOST, headers={"X-Forwarded-For": "10.1.2.3",
                                             "X-Request-Id": "abc-123",
                                             "X-Forwarded-Proto": "https"}).status == 200
    (_, _, _, fresh), (_, _, _, relayed) = up.requests
    fresh, relayed = dict(fresh), dict(relayed)
    assert fresh["x-forwarded-for"] == "127.0.0.1"
    assert len(fresh["x-request-id"]) >= 16
    assert relayed["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert relayed["x-request-id"] == "abc-123"
    # At the edge the proxy says how the client came, whatever the client claimed.
    assert fresh["x-forwarded-proto"] == "http"
    assert relayed["x-forwarded-proto"] == "http"
    assert [k for k, _ in up.requests[1][3]].count("x-forwarded-proto") == 1


def test_request_ids_are_unique(lab):
    up, proxy = recording_proxy(lab)
    c = proxy.client(HOST)
    for _ in range(20):
        c.request()
    c.close()
    ids = [dict(h)["x-request-id"] for _, _, _, h in up.requests]
    assert len(set(ids)) == 20, ids


def test_x_request_id_reaches_mesh_echo(lab):
    proxy = echo_proxy(lab)
    r = proxy.request(host=HOST, headers={"x-trace": "t1"})
    assert r.status == 200
    assert r.header("x-echo-header-x-trace") == "t1"
    assert r.header("x-echo-header-x-request-id")
    assert r.header("x-echo-header-x-forwarded-for") == "127.0.0.1"


def test_hop_by_hop_headers_are_not_forwarded(lab):
    up, proxy = recording_proxy(lab)
    head = (f"GET /hop HTTP/1.1\r\nHost: {HOST}\r\n"
            "Connection: keep-alive, X-Secret, x-other-hop\r\n"
            "X-Secret: s3cr3t\r\nX-Other-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
            "Proxy-Connection: keep-alive\r\nTrailer: x-checksum\r\nX-Keep: yes\r\n\r\n")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT) as s:
        s.sendall(head.encode())
        h, _ = read_head(s)
    assert parse_head(h)[0] == 200
    (_, method, target, headers), = up.requests
    names = [k for k, _ in headers]
    assert method == "GET" and target == "/hop"
    for hop in ("keep-alive", "te", "proxy-connection", "trailer", "x-secret", "x-other-hop"):
        assert hop not in names, f"{hop} was forwarded: {headers}"
    assert dict(headers)["x-keep"] == "yes"
    assert dict(headers)["host"] == HOST


def test_hop_by_hop_response_headers_are_not_relayed(lab):
    up = lab.upstream("recorder", response_headers=(
        "Connection: x-upstream-hop\r\nKeep-Alive: timeout=1\r\nX-Upstream-Hop: 1\r\n"
        "X-Normal: kept\r\n"))
    proxy = lab.proxy([service("recorder", up.addr),
                       virtual_service("payment", [HOST], route("recorder"))])
    r = proxy.request(host=HOST)
    assert r.status == 200
    assert r.header("x-normal") == "kept", r
    assert r.header("keep-alive") is None, r
    assert r.header("x-upstream-hop") is None, r
    assert "x-upstream-hop" not in (r.header("connection") or "").lower(), r


def test_post_with_content_length_is_streamed(lab):
    proxy = echo_proxy(lab)
    body = os.urandom(1 << 20)
    r = proxy.request("POST", "/upload", host=HOST, body=body)
    assert r.status == 200, r
    assert r.header("x-echo-body-bytes") == str(len(body))
    assert r.header("x-echo-method") == "POST"


def test_chunked_post_is_streamed(lab):
    proxy = echo_proxy(lab)
    sizes = [1, 100, 4096, 16384, 65536, 7, 300000, 12345]

    def chunks():
        for n in sizes:
            yield os.urandom(n)

    r = proxy.request("POST", "/upload", host=HOST, body=chunks(),
                      headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
    assert r.status == 200, r
    assert r.header("x-echo-body-bytes") == str(sum(sizes))


def test_keep_alive_survives_request_bodies(lab):
    proxy = echo_proxy(lab)
    c = proxy.client(HOST)
    for n in (10, 70000, 0, 3):
        r = c.request("POST", "/b", body=b"x" * n)
        assert r.status == 200 and r.header("x-echo-body-bytes") == str(n), r
    c.close()


def test_large_response_is_streamed_intact(lab):
    proxy = echo_proxy(lab)
    size = 20_000_000
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=IO_TIMEOUT)
    conn.request("GET", f"/big?size={size}", headers={"Host": HOST})
    r = conn.getresponse()
    assert r.status == 200
    length = r.getheader("content-length")
    got = 0
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        got += len(b)
    conn.close()
    assert got == size
    if length is not None:
        assert int(length) == size


def test_slow_reader_gets_the_whole_large_response(lab):
    proxy = echo_proxy(lab)
    size = 8_000_000
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT) as s:
        s.sendall(f"GET /big?size={size} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        head, rest = read_head(s)
        status, headers = parse_head(head)
        assert status == 200
        time.sleep(0.3)  # let the proxy find the client's window full
        got = len(rest)
        # A slow consumer first (small reads with pauses: the proxy must stop reading upstream
        # and resume, not buffer the body), then a fast one for the rest.
        for _ in range(40):
            got += len(s.recv(4096))
            time.sleep(0.01)
        deadline = time.monotonic() + 20
        while got < size and time.monotonic() < deadline:
            b = s.recv(1 << 16)
            if not b:
                break
            got += len(b)
    assert got == size


def test_expect_100_continue(lab):
    proxy = echo_proxy(lab)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT) as s:
        s.sendall(f"POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 11\r\n"
                  "Expect: 100-continue\r\n\r\n".encode())
        head, rest = read_head(s, timeout=3)
        assert parse_head(head)[0] == 100, head
        s.sendall(b"hello world")
        if b"\r\n\r\n" in rest:
            final = rest
        else:
            h2, more = read_head(s)
            final = rest + h2 + more
        head2, body = final.split(b"\r\n\r\n", 1)
        status, headers = parse_head(head2 + b"\r\n\r\n")
        assert status == 200, final
        assert dict(headers)["x-echo-body-bytes"] == "11"


def test_upgrade_is_tunnelled_after_101(lab):
    proxy = echo_proxy(lab)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT) as s:
        s.sendall(f"GET /chat HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\n"
                  "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
        head, rest = read_head(s)
        status, headers = parse_head(head)
        assert status == 101, head
        assert dict(headers).get("upgrade", "").lower() == "websocket", headers
        assert "upgrade" in dict(headers).get("connection", "").lower(), headers
        # Bytes now flow raw, both ways, in several round trips and one large burst.
        echoed = rest
        for msg in (b"hello", b"\x00\x01\x02binary\xff", b"GET / HTTP/1.1\r\n\r\n"):
            s.sendall(msg)
            echoed += _recv_exactly(s, len(msg) - len(echoed))
            assert echoed == msg
            echoed = b""
        # A burst larger than the socket buffers: sent by a thread while this one reads back.
        big = os.urandom(2_000_000)
        sender = threading.Thread(target=s.sendall, args=(big,), daemon=True)
        sender.start()
        assert _recv_exactly(s, len(big)) == big
        sender.join(IO_TIMEOUT)


def _recv_exactly(s, n, timeout=IO_TIMEOUT):
    buf = b""
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        b = s.recv(n - len(buf))
        if not b:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += b
    return buf


def test_head_response_has_no_body_and_the_connection_goes_on(lab):
    proxy = echo_proxy(lab)
    c = proxy.client(HOST)
    r = c.request("HEAD", "/h")
    assert r.status == 200 and r.body == b"", r
    assert r.header("x-echo-method") == "HEAD"
    r = c.request("GET", "/g")  # would hang or misparse if the proxy waited for a HEAD body
    assert r.status == 200 and r.text == "payment-v1\n", r
    c.close()


def test_no_content_response_and_the_connection_goes_on(lab):
    proxy = echo_proxy(lab)
    c = proxy.client(HOST)
    r = c.request(path="/n?status=204")
    assert r.status == 204 and r.body == b"", r
    assert c.request(path="/g").text == "payment-v1\n"
    c.close()


def test_upstream_closing_after_a_response_is_not_reused(lab):
    up_proxy = echo_proxy(lab)
    c = up_proxy.client(HOST)
    for i in range(10):
        # Every other answer comes with "connection: close" from mesh-echo: the proxy must open
        # a fresh upstream connection next time and keep the client's open.
        path = f"/x{i}?close=1" if i % 2 == 0 else f"/x{i}"
        r = c.request(path=path)
        assert r.status == 200 and r.text == "payment-v1\n", (i, r)
    c.close()


def test_local_answers_keep_the_client_connection(lab):
    proxy = echo_proxy(lab)
    c = proxy.client(HOST)
    assert c.request().status == 200
    c.host = "nowhere.example.com"
    r = c.request()
    assert r.status == 404 and r.header("x-mesh-error") == "no route", r
    c.host = HOST
    assert c.request().text == "payment-v1\n"
    c.close()


def test_pipelined_requests_with_bodies_keep_their_framing(lab):
    proxy = echo_proxy(lab)
    reqs = [
        f"POST /a HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 5\r\n\r\nhello",
        f"POST /b HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
        f"GET /c HTTP/1.1\r\nHost: {HOST}\r\n\r\n",
        f"POST /d HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ]
    received, closed = _raw(proxy, "".join(reqs).encode())
    assert closed
    responses = parse_responses(received)
    got = [(r.status, r.header("x-echo-path"), r.header("x-echo-body-bytes")) for r in responses]
    assert got == [(200, "/a", "5"), (200, "/b", "7"), (200, "/c", "0"), (200, "/d", "0")], got


def test_many_concurrent_clients_are_all_served(lab):
    proxy = echo_proxy(lab)

    def one(i):
        c = proxy.client(HOST)
        try:
            return [c.request(path=f"/m{i}/{k}").status for k in range(20)]
        finally:
            c.close()

    results = run_parallel(one, 64)
    assert all(r == [200] * 20 for r in results), [r for r in results if r != [200] * 20][:3]


def test_idle_client_connection_is_closed_after_the_idle_timeout(lab):
    proxy = echo_proxy(lab, "--idle-timeout", "300ms")
    c = proxy.client(HOST)
    assert c.request().status == 200
    start = time.monotonic()
    c.sock.settimeout(3)
    assert c.sock.recv(1) == b""  # closed by the proxy, not by us
    assert 0.25 <= time.monotonic() - start < 2.0
    c.close()
