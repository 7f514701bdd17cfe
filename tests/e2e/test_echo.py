# SPDX-License-Identifier: Apache-2.0
"""End to end: mesh-echo, the test upstream, driven with raw sockets and http.client.

Each test starts build/mesh-echo on a free loopback port (port 0, read back from the ready
line), talks HTTP/1.1 to it as a client or a proxy would, and stops it with SIGTERM by PID,
expecting exit status 0. Under SAN=1 any sanitizer report in its stderr fails the test.
"""
import http.client
import os
import pathlib
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("MESH_BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
ECHO = BUILD / "mesh-echo"
SAN = os.environ.get("SAN") == "1"
SAN_MARKERS = ("Sanitizer", "runtime error:")
READY = re.compile(r"mesh-echo (\S+) listening on (\S+):(\d+)")
IO_TIMEOUT = 20  # seconds for any single socket operation: only catches hangs


class Echo:
    """A running mesh-echo; its stderr is collected by a thread so the pipe never fills."""

    def __init__(self, name="alpha", workers=None, listen="127.0.0.1:0"):
        if not os.access(ECHO, os.X_OK):
            pytest.fail(f"{ECHO} is not built: run `make` first (or set MESH_BUILD)")
        argv = [str(ECHO), "--listen", listen, "--name", name]
        if workers is not None:
            argv += ["--workers", str(workers)]
        self.name = name
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()
        if not self.ready.wait(10):
            self.stop(expect_rc=None)
            pytest.fail(f"mesh-echo did not print its ready line:\n{self.stderr()}")
        m = READY.search(self.lines[0])
        assert m and m.group(1) == name, self.lines[0]
        self.host = m.group(2)
        self.port = int(m.group(3))

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            if READY.search(line):
                self.ready.set()

    def stderr(self):
        return "".join(self.lines)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, expect_rc=0, timeout=10):
        """SIGTERM by PID; asserts a prompt exit with expect_rc and no sanitizer report."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"mesh-echo did not exit within {timeout}s of SIGTERM")
        self.reader.join(5)
        if SAN:
            for marker in SAN_MARKERS:
                assert marker not in self.stderr(), f"sanitizer report:\n{self.stderr()}"
        if expect_rc is not None:
            assert rc == expect_rc, f"mesh-echo exited {rc}:\n{self.stderr()}"
        return rc

    def client(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=IO_TIMEOUT)

    def connect(self):
        return Raw(socket.create_connection((self.host, self.port), timeout=IO_TIMEOUT))


class Raw:
    """A raw socket with just enough HTTP/1.1 response parsing to check framing by hand."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _more(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def read_exact(self, n):
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_head(self):
        """(status, {lowercased name: [values]}) of the next response head."""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        assert version == "HTTP/1.1", lines[0]
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return int(status), headers

    def read_response(self, head_request=False):
        """(status, headers, body) of the next response, framed by Content-Length."""
        status, headers = self.read_head()
        n = int(headers.get("content-length", ["0"])[0])
        body = b"" if head_request else self.read_exact(n)
        return status, headers, body

    def at_eof(self, timeout=5):
        """True when the server closed the connection (after whatever is buffered)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(IO_TIMEOUT)

    def close(self):
        self.sock.close()


def one(headers, name):
    values = headers.get(name)
    assert values is not None and len(values) == 1, (name, headers)
    return values[0]


def pattern(n, offset=0):
    """The bytes of a ?size= body: "abcdefghijklmnopqrstuvwxyz" repeated."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz"
    reps = (offset + n) // 26 + 2
    return (alphabet * reps)[offset : offset + n]


@pytest.fixture
def echo():
    e = Echo()
    yield e
    e.stop()


def test_answers_with_its_name_and_describes_the_request(echo):
    c = echo.client()
    c.request("GET", "/hello/world?x=1&y=2", headers={"Accept": "*/*"})
    r = c.getresponse()
    assert r.status == 200
    assert r.read() == b"alpha\n"
    assert r.getheader("x-echo-name") == "alpha"
    assert r.getheader("x-echo-method") == "GET"
    assert r.getheader("x-echo-path") == "/hello/world"
    assert r.getheader("x-echo-query") == "x=1&y=2"
    assert r.getheader("x-echo-host") == f"{echo.host}:{echo.port}"
    assert r.getheader("x-echo-body-bytes") == "0"
    assert r.getheader("content-length") == "6"
    assert r.getheader("x-echo-header-accept") is None  # only x- headers are echoed
    c.close()


def test_echoes_x_headers_including_forwarding_ones(echo):
    raw = echo.connect()
    raw.send(
        "GET /h HTTP/1.1\r\nHost: svc\r\nX-Request-Id: req-42\r\n"
        "X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\nx-custom: a\r\nX-Custom: b\r\n"
        "Not-X: no\r\n\r\n"
    )
    status, headers, body = raw.read_response()
    assert status == 200 and body == b"alpha\n"
    assert one(headers, "x-echo-header-x-request-id") == "req-42"
    assert one(headers, "x-echo-header-x-forwarded-for") == "10.0.0.1, 10.0.0.2"
    assert headers["x-echo-header-x-custom"] == ["a", "b"]
    assert not any(k.startswith("x-echo-header-not") for k in headers)
    assert one(headers, "x-echo-host") == "svc"
    raw.close()


def test_keep_alive_serves_many_requests_on_one_connection(echo):
    c = echo.client()
    for i in range(20):
        c.request("GET", f"/n/{i}")
        r = c.getresponse()
        assert r.status == 200 and r.getheader("x-echo-path") == f"/n/{i}"
        assert r.getheader("connection") is None
        r.read()
        if i == 0:
            sock = c.sock
        assert c.sock is sock  # http.client reconnects when the server closed: it did not
    c.close()


def test_pipelined_requests_are_answered_in_order(echo):
    raw = echo.connect()
    # A slow one first: the fast ones behind it must still come back after it.
    reqs = ["GET /p/0?delay=150ms HTTP/1.1\r\nHost: a\r\n\r\n"]
    reqs += [f"GET /p/{i} HTTP/1.1\r\nHost: a\r\n\r\n" for i in range(1, 200)]
    reqs.append("POST /p/200 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    reqs.append("GET /p/201?size=70000 HTTP/1.1\r\nHost: a\r\n\r\n")
    reqs.append("GET /p/202 HTTP/1.1\r\nHost: a\r\n\r\n")
    raw.send("".join(reqs))
    for i in range(203):
        status, headers, body = raw.read_response()
        assert status == 200
        assert one(headers, "x-echo-path") == f"/p/{i}"
        if i == 200:
            assert one(headers, "x-echo-body-bytes") == "5"
        if i == 201:
            assert body == pattern(70000)
    raw.close()


def test_pipelined_bodies_split_across_writes(echo):
    raw = echo.connect()
    data = (
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789"
        b"POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
        b"GET /c HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    for i in range(len(data)):  # one byte per write: every boundary falls mid-something
        raw.send(data[i : i + 1])
    got = [raw.read_response() for _ in range(3)]
    assert [one(h, "x-echo-path") for _, h, _ in got] == ["/a", "/b", "/c"]
    assert [one(h, "x-echo-body-bytes") for _, h, _ in got] == ["10", "3", "0"]
    raw.close()


def test_content_length_body_is_counted(echo):
    c = echo.client()
    body = os.urandom(1 << 20)
    c.request("POST", "/upload", body=body, headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse()
    assert r.status == 200
    assert r.getheader("x-echo-method") == "POST"
    assert r.getheader("x-echo-body-bytes") == str(len(body))
    assert r.read() == b"alpha\n"
    c.close()


def test_large_upload_is_streamed_not_buffered(echo):
    total = 256 << 20
    raw = echo.connect()
    raw.send(f"PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: {total}\r\n\r\n")
    block = b"z" * (1 << 20)
    rss_before = echo.rss_kib()
    for _ in range(total // len(block)):
        raw.send(block)
    status, headers, _ = raw.read_response()
    assert status == 200
    assert one(headers, "x-echo-body-bytes") == str(total)
    growth_mib = (echo.rss_kib() - rss_before) / 1024
    assert growth_mib < 32, f"RSS grew by {growth_mib:.1f} MiB while reading a 256 MiB body"
    raw.close()


def test_chunked_body_with_extensions_and_trailers(echo):
    raw = echo.connect()
    raw.send(
        "POST /chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n"
        "1;name=value\r\n \r\n"
        "A\r\n0123456789\r\n"
        "0\r\nX-Trailer: yes\r\n\r\n"
        "GET /after HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    status, headers, _ = raw.read_response()
    assert status == 200 and one(headers, "x-echo-body-bytes") == "16"
    status, headers, _ = raw.read_response()
    assert status == 200 and one(headers, "x-echo-path") == "/after"
    raw.close()


def test_large_chunked_upload(echo):
    raw = echo.connect()
    raw.send("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"q" * 100000
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    for _ in range(300):
        raw.send(framed)
    raw.send(b"0\r\n\r\n")
    status, headers, _ = raw.read_response()
    assert status == 200 and one(headers, "x-echo-body-bytes") == str(300 * len(chunk))
    raw.close()


def test_bad_chunk_size_is_refused_and_closed(echo):
    raw = echo.connect()
    raw.send("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    status, headers, _ = raw.read_response()
    assert status == 400
    assert one(headers, "connection") == "close"
    assert raw.at_eof()
    raw.close()


def test_status_parameter(echo):
    c = echo.client()
    for code in (201, 404, 500, 503):
        c.request("GET", f"/s?status={code}")
        r = c.getresponse()
        assert r.status == code
        assert r.read() == b"alpha\n"
    c.close()
    raw = echo.connect()
    for code in (204, 304):
        raw.send(f"GET /s?status={code}&size=100 HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers = raw.read_head()
        assert status == code
        assert "content-length" not in headers
    # Nothing followed those heads: the next response starts right away.
    raw.send("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    status, headers, body = raw.read_response()
    assert status == 200 and one(headers, "x-echo-path") == "/next" and body == b"alpha\n"
    raw.send("GET /s?status=abc HTTP/1.1\r\nHost: a\r\n\r\n")
    status, _, _ = raw.read_response()
    assert status == 400
    raw.close()


def test_delay_uses_a_timer_and_does_not_block_others(echo):
    slow = echo.connect()
    t0 = time.monotonic()
    slow.send("GET /slow?delay=400ms HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.05)
    # Another client is answered at once while the slow one waits (same single worker).
    c = echo.client()
    t1 = time.monotonic()
    c.request("GET", "/fast")
    r = c.getresponse()
    r.read()
    assert r.status == 200 and time.monotonic() - t1 < 0.3
    status, headers, _ = slow.read_response()
    elapsed = time.monotonic() - t0
    assert status == 200 and one(headers, "x-echo-path") == "/slow"
    assert 0.4 <= elapsed < 5
    # Other duration spellings.
    for spelling, seconds in (("0.2s", 0.2), ("150", 0.15), ("1.5s", 1.5)):
        t0 = time.monotonic()
        c.request("GET", f"/d?delay={spelling}")
        r = c.getresponse()
        r.read()
        assert r.status == 200
        assert seconds <= time.monotonic() - t0 < seconds + 3
    c.request("GET", "/d?delay=soon")
    r = c.getresponse()
    r.read()
    assert r.status == 400
    c.close()
    slow.close()


def test_size_parameter(echo):
    c = echo.client()
    for n in (0, 1, 26, 1000, 70000, 5_000_000):
        c.request("GET", f"/z?size={n}")
        r = c.getresponse()
        assert r.status == 200
        assert r.getheader("content-length") == str(n)
        body = r.read()
        assert len(body) == n and body == pattern(n)
    # HEAD: the length of what GET would send, no body.
    c.request("HEAD", "/z?size=123456")
    r = c.getresponse()
    assert r.getheader("content-length") == "123456"
    assert r.read() == b""
    c.request("GET", "/z")
    r = c.getresponse()
    assert r.read() == b"alpha\n"
    c.close()


def test_close_parameter(echo):
    raw = echo.connect()
    raw.send("GET /bye?close=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    status, headers, body = raw.read_response()
    assert status == 200 and body == b"alpha\n"
    assert one(headers, "connection") == "close"
    assert raw.at_eof()
    raw.close()
    # Connection: close from the client works the same.
    raw = echo.connect()
    raw.send("GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    status, headers, _ = raw.read_response()
    assert one(headers, "connection") == "close" and raw.at_eof()
    raw.close()


def test_http10_keep_alive_rules(echo):
    raw = echo.connect()
    raw.send("GET /old HTTP/1.0\r\n\r\n")
    status, headers, body = raw.read_response()
    assert status == 200 and body == b"alpha\n" and one(headers, "connection") == "close"
    assert raw.at_eof()
    raw.close()
    raw = echo.connect()
    raw.send("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, headers, _ = raw.read_response()
    assert one(headers, "connection") == "keep-alive"
    raw.send("GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, headers, _ = raw.read_response()
    assert one(headers, "x-echo-path") == "/again"
    raw.close()


def test_websocket_upgrade_becomes_a_raw_echo(echo):
    raw = echo.connect()
    raw.send(
        "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nX-Request-Id: ws-1\r\n\r\n"
        "early bytes|"
    )
    status, headers = raw.read_head()
    assert status == 101
    assert one(headers, "upgrade").lower() == "websocket"
    assert one(headers, "x-echo-header-x-request-id") == "ws-1"
    assert raw.read_exact(len("early bytes|")) == b"early bytes|"
    raw.send(b"GET / HTTP/1.1\r\n\r\n")  # not HTTP any more: echoed as is
    assert raw.read_exact(18) == b"GET / HTTP/1.1\r\n\r\n"
    # A few MiB both ways at once: the echo pushes back instead of buffering without bound.
    data = os.urandom(8 << 20)
    sender = threading.Thread(target=raw.send, args=(data,))
    sender.start()
    assert raw.read_exact(len(data)) == data
    sender.join()
    # Half-close: the echo finishes and closes too.
    raw.sock.shutdown(socket.SHUT_WR)
    assert raw.at_eof()
    raw.close()


def test_upgrade_other_than_websocket_is_plain_http(echo):
    raw = echo.connect()
    raw.send("GET /h2 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
    status, headers, body = raw.read_response()
    assert status == 200 and body == b"alpha\n"
    raw.close()


def test_expect_100_continue(echo):
    raw = echo.connect()
    raw.send(
        "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    status, headers = raw.read_head()
    assert status == 100  # before any body byte was sent
    raw.send("hello")
    status, headers, body = raw.read_response()
    assert status == 200 and one(headers, "x-echo-body-bytes") == "5"
    # Without a body there is nothing to continue.
    raw.send("GET /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n")
    status, headers, body = raw.read_response()
    assert status == 200
    raw.close()


def test_malformed_requests_get_an_error_and_a_close(echo):
    cases = [
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
            "Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET /" + "a" * 20000 + " HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + "b" * 90000 + "\r\n\r\n", 431),
        ("this is not http\r\n\r\n", 400),
    ]
    for request, code in cases:
        raw = echo.connect()
        raw.send(request)
        status, headers, _ = raw.read_response()
        assert status == code, request[:40]
        assert one(headers, "connection") == "close"
        assert raw.at_eof()
        raw.close()


def test_large_head_within_limits_is_echoed(echo):
    raw = echo.connect()
    big = "v" * 60000
    raw.send(f"GET /big HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n")
    status, headers, _ = raw.read_response()
    assert status == 200 and one(headers, "x-echo-header-x-big") == big
    raw.close()


def test_client_disconnects_mid_request_do_not_hurt(echo):
    for request in (
        "GET /half HTTP/1.1\r\nHost",
        "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc",
        "GET /slow?delay=100ms HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /z?size=50000000 HTTP/1.1\r\nHost: a\r\n\r\n",
    ):
        raw = echo.connect()
        raw.send(request)
        linger_zero = struct.pack("ii", 1, 0)
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
        raw.close()  # an abortive close (RST) in the middle of things
    time.sleep(0.3)
    c = echo.client()
    c.request("GET", "/still-there")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"alpha\n"
    c.close()


def test_several_workers_serve_in_parallel():
    e = Echo(name="multi", workers=4)
    try:
        assert sum(1 for line in e.lines if READY.search(line)) == 1
        results = []

        def client(i):
            c = e.client()
            for j in range(20):
                c.request("GET", f"/w/{i}/{j}?delay=10ms")
                r = c.getresponse()
                results.append((r.status, r.read()))
            c.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 16 * 20
        assert all(status == 200 and body == b"multi\n" for status, body in results)
        assert time.monotonic() - t0 < 20
    finally:
        e.stop()


def test_sigterm_exits_promptly_with_connections_open():
    e = Echo(name="term", workers=2)
    idle = e.connect()
    idle.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    idle.read_response()
    busy = e.connect()
    busy.send("GET /slow?delay=30s HTTP/1.1\r\nHost: a\r\n\r\n")
    partial = e.connect()
    partial.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nxx")
    time.sleep(0.1)
    t0 = time.monotonic()
    e.stop(expect_rc=0)
    assert time.monotonic() - t0 < 2
    for r in (idle, busy, partial):
        r.close()


def test_sigint_exits_zero():
    e = Echo(name="int")
    e.proc.send_signal(signal.SIGINT)
    e.stop(expect_rc=0)


def test_explicit_port_and_flag_errors():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    e = Echo(name="fixed", listen=f"127.0.0.1:{port}")
    try:
        assert e.port == port
        # The port is really taken.
        s = socket.socket()
        with pytest.raises(OSError):
            s.bind(("127.0.0.1", port))
        s.close()
    finally:
        e.stop()
    for argv, needle in (
        (["--name", "x"], "--listen and --name are required"),
        (["--listen", "127.0.0.1:1"], "--listen and --name are required"),
        (["--listen", "nowhere", "--name", "x"], "missing ':port'"),
        (["--listen", "127.0.0.1:0", "--name", "bad\x01name"], "--name"),
        (["--listen", "127.0.0.1:0", "--name", "x", "--workers", "0"], "--workers"),
        (["--listen", "127.0.0.1:0", "--name", "x", "--bogus", "1"], "unknown flag --bogus"),
    ):
        proc = subprocess.run([str(ECHO)] + argv, capture_output=True, text=True, timeout=10)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert needle in proc.stderr, (argv, proc.stderr)
    proc = subprocess.run(
        [str(ECHO), "--listen", "192.0.2.1:80", "--name", "x"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert proc.returncode == 1
    assert "listen 192.0.2.1:80: bind:" in proc.stderr
