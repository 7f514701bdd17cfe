# SPDX-License-Identifier: Apache-2.0
"""Fixtures and helpers for the meshproxy end-to-end tests: real meshproxy and mesh-echo
processes on free loopback ports, config documents, HTTP clients (http.client and raw sockets),
a recording upstream that shows exactly what the proxy forwarded, and /metrics parsing.

Every process is stopped by PID (SIGTERM, then SIGKILL after a bound) when its test ends; its
stderr is kept in the test's tmp_path and shown when the test fails. A meshproxy that does not
exit 0 after SIGTERM fails the test. With SAN=1 any process whose stderr holds a sanitizer
report fails the test too.
"""
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import SAN, SAN_MARKERS, build_dir

START_TIMEOUT = 10.0  # seconds for a process to say it is ready (sanitizer builds start slowly)
STOP_TIMEOUT = 8.0  # SIGTERM to exit, before SIGKILL
IO_TIMEOUT = 10.0  # any single socket operation of a test
API = "mesh.clusterdb.io/v1"


def meshproxy_path():
    return build_dir() / "meshproxy"


def mesh_echo_path():
    return build_dir() / "mesh-echo"


def free_ports(n):
    """n distinct loopback ports that were free a moment ago (the kernel picked them)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Polls pred() until it returns a true value (returned) or timeout seconds pass (fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- processes ---


class Process:
    """A child process whose stderr (and stdout) go to files in the test's directory."""

    def __init__(self, name, argv, log_dir):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.stderr_path = log_dir / f"{name}.stderr"
        self.stdout_path = log_dir / f"{name}.stdout"
        self.rc = None
        self.killed = False
        self.stopped_by_us = False
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, close_fds=True
            )
        self.pid = self.proc.pid

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """The exit code, or None when it is still running after timeout seconds."""
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.rc

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL when it has not exited within timeout. Returns the exit code."""
        if self.alive():
            self.stopped_by_us = True
            os.kill(self.pid, signal.SIGTERM)
            if self.wait(timeout) is None:
                self.killed = True
                os.kill(self.pid, signal.SIGKILL)
                self.wait(5)
        self.rc = self.proc.poll()
        return self.rc

    def wait_for_stderr(self, text, timeout=START_TIMEOUT):
        def seen():
            if text in self.stderr():
                return True
            if not self.alive():
                pytest.fail(f"{self.name} exited ({self.proc.poll()}) before printing {text!r}:\n"
                            f"{self.stderr()}")
            return False

        wait_until(seen, timeout, what=f"{self.name} to print {text!r}")

    def sanitizer_report(self):
        if not SAN:
            return None
        err = self.stderr()
        return err if any(m in err for m in SAN_MARKERS) else None


class Echo(Process):
    """A mesh-echo instance: answers with its name. It listens on a port the kernel picks and
    says which in its ready line, so no other process can take the port in between."""

    def __init__(self, name, log_dir, workers=None):
        argv = [mesh_echo_path(), "--listen", "127.0.0.1:0", "--name", name]
        if workers:
            argv += ["--workers", workers]
        super().__init__(f"echo-{name}", argv, log_dir)
        self.echo_name = name

    def wait_ready(self):
        ready = f"mesh-echo {self.echo_name} listening on "
        self.wait_for_stderr(ready)
        m = re.search(re.escape(ready) + r"(\S+):(\d+)", self.stderr())
        assert m, self.stderr()
        self.port = int(m.group(2))
        self.addr = f"127.0.0.1:{self.port}"


class Proxy(Process):
    """A meshproxy with its own config file, listener and admin listener."""

    def __init__(self, docs, log_dir, workers=2, flags=(), name="meshproxy"):
        self.port, self.admin_port = free_ports(2)
        self.config_path = log_dir / f"{name}.json"
        self.write_config(docs)
        argv = [
            meshproxy_path(),
            "--config", self.config_path,
            "--listen", f"127.0.0.1:{self.port}",
            "--admin", f"127.0.0.1:{self.admin_port}",
            "--workers", workers,
            "--drain-timeout", "3s",
            *flags,
        ]
        super().__init__(name, argv, log_dir)

    def write_config(self, docs):
        """Replaces the config file atomically (a reload never sees half a file)."""
        text = docs if isinstance(docs, str) else config_text(docs)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    def wait_ready(self, may_fail=False):
        """Waits for /ready. Returns False when may_fail and the process exited because a port
        was taken; fails the test on any other exit."""
        def ready():
            if not self.alive():
                if may_fail and "in use" in self.stderr():
                    return "port taken"
                pytest.fail(f"meshproxy exited ({self.proc.poll()}) at start:\n{self.stderr()}")
            try:
                return self.admin("/ready", timeout=1).status == 200
            except OSError:
                return False

        return wait_until(ready, START_TIMEOUT, what="meshproxy /ready") is True

    def reload(self, docs, expect):
        """Writes docs, sends SIGHUP and waits until stderr says expect one more time."""
        before = self.stderr().count(expect)
        self.write_config(docs)
        self.signal(signal.SIGHUP)
        wait_until(lambda: self.stderr().count(expect) > before, START_TIMEOUT,
                   what=f"meshproxy to log {expect!r} after SIGHUP")

    def request(self, method="GET", path="/", host=None, headers=None, body=None, **kw):
        return request(self.port, method, path, host, headers, body, **kw)

    def client(self, host):
        return Client(self.port, host)

    def admin(self, path, timeout=IO_TIMEOUT):
        return request(self.admin_port, "GET", path, "localhost", timeout=timeout)

    def metrics(self):
        resp = self.admin("/metrics")
        assert resp.status == 200, resp
        return Metrics(resp.text)


class Harness:
    """Everything one test started; stopped and checked when the test ends."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.procs = []
        self.upstreams = []
        self.problems = []

    def echo(self, name, **kw):
        e = Echo(name, self.log_dir, **kw)
        self.procs.append(e)  # before waiting: one that never gets ready is stopped too
        e.wait_ready()
        return e

    def echos(self, *names):
        return [self.echo(n) for n in names]

    def proxy(self, docs, workers=2, flags=(), name="meshproxy"):
        for attempt in range(3):
            p = Proxy(docs, self.log_dir, workers=workers, flags=flags, name=name)
            self.procs.append(p)
            if p.wait_ready(may_fail=attempt < 2):
                return p
            # The ports were free when picked; another process took one since: pick again.
            self.procs.remove(p)

    def upstream(self, name, status=200, **kw):
        """A RecordingUpstream (a Python thread, not a process)."""
        u = RecordingUpstream(name, status=status, **kw)
        self.upstreams.append(u)
        return u

    def close(self):
        for u in self.upstreams:
            u.close()
        for p in self.procs:
            was_running = p.alive()
            rc = p.stop()
            if isinstance(p, Proxy):
                if not was_running and not p.stopped_by_us and rc != 0:
                    self.problems.append(f"{p.name} died during the test with exit code {rc}")
                elif was_running and (p.killed or rc != 0):
                    how = "had to be killed" if p.killed else f"exited {rc}"
                    self.problems.append(f"{p.name} {how} after SIGTERM")
            report = p.sanitizer_report()
            if report:
                self.problems.append(f"sanitizer report from {p.name}")
        if self.problems:
            pytest.fail("; ".join(self.problems) + " (stderr below)", pytrace=False)


@pytest.fixture(scope="session")
def proxy_binaries():
    for path in (meshproxy_path(), mesh_echo_path()):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is not built: run `make` first (or set MESH_BUILD)")


@pytest.fixture
def lab(proxy_binaries, tmp_path):
    """A Harness: start echoes, recording upstreams and proxies; all stopped at the end. The
    processes' stderr is printed, which pytest shows for failed tests only."""
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        try:
            h.close()
        finally:
            for p in h.procs:
                print(f"--- {p.name} ({' '.join(p.argv)}) stderr ---\n{p.stderr()[-6000:]}")


# --- config documents ---


def service(name, *endpoints, namespace=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": API, "kind": "Service", "metadata": meta,
            "spec": {"endpoints": list(endpoints)}}


def virtual_service(name, hosts, *routes):
    return {"apiVersion": API, "kind": "VirtualService", "metadata": {"name": name},
            "spec": {"hosts": list(hosts), "http_routes": list(routes)}}


def route(*destinations, matches=None, name=None, **extra):
    """destinations: "svc" or ("svc", weight)."""
    dests = []
    for d in destinations:
        if isinstance(d, tuple):
            dests.append({"host": d[0], "weight": d[1]})
        else:
            dests.append({"host": d})
    r = {}
    if name:
        r["name"] = name
    if matches is not None:
        r["matches"] = matches
    r["destinations"] = dests
    r.update(extra)
    return r


def circuit_breaker(name, service_host, **spec):
    return {"apiVersion": API, "kind": "CircuitBreaker", "metadata": {"name": name},
            "spec": {"service": service_host, **spec}}


def fault_injection(name, service_host, **spec):
    return {"apiVersion": API, "kind": "FaultInjection", "metadata": {"name": name},
            "spec": {"service": service_host, **spec}}


def config_text(docs):
    """The documents as a JSON array (JSON is accepted wherever YAML is)."""
    return json.dumps(docs, indent=1) + "\n"


def echo_services(*echoes):
    """One Service per echo, named after it."""
    return [service(e.echo_name, e.addr) for e in echoes]


# --- HTTP clients ---


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (lower-case name, value)
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    @property
    def text(self):
        return self.body.decode(errors="replace")

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


def _response(r):
    body = r.read()
    return Response(r.status, [(k.lower(), v) for k, v in r.getheaders()], body)


def request(port, method="GET", path="/", host=None, headers=None, body=None,
            timeout=IO_TIMEOUT, encode_chunked=False):
    """One request on a fresh connection, with an explicit Host header."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        hdrs["Host"] = host or f"127.0.0.1:{port}"
        conn.request(method, path, body=body, headers=hdrs, encode_chunked=encode_chunked)
        return _response(conn.getresponse())
    finally:
        conn.close()


class Client:
    """A keep-alive client connection that must stay the same connection throughout: a reconnect
    would hide a proxy that closed it, so none is made."""

    def __init__(self, port, host, timeout=IO_TIMEOUT):
        self.host = host
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.conn.connect()
        self.sock = self.conn.sock

    def request(self, method="GET", path="/", headers=None, body=None):
        hdrs = dict(headers or {})
        hdrs["Host"] = self.host
        self.conn.request(method, path, body=body, headers=hdrs)
        r = _response(self.conn.getresponse())
        assert self.conn.sock is self.sock, "the proxy closed a keep-alive connection"
        return r

    def close(self):
        self.conn.close()


def raw_exchange(port, data, timeout=5.0, read_until_close=True):
    """Sends data on a fresh connection and reads until the peer closes (or timeout).
    Returns (bytes received, whether the peer closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        return read_all(s, timeout, read_until_close)


def read_all(s, timeout, until_close=True):
    deadline = time.monotonic() + timeout
    chunks = []
    closed = False
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not b:
            closed = True
            break
        chunks.append(b)
        if not until_close:
            break
    return b"".join(chunks), closed


def read_head(s, timeout=5.0):
    """Reads from s up to the end of one response head. Returns (head, bytes after it)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete response head, got {buf!r}")
        s.settimeout(left)
        b = s.recv(65536)
        if not b:
            raise ConnectionError(f"connection closed, got {buf!r}")
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def parse_head(head):
    """(status, [(lower-case name, value)]) of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    assert parts[0].startswith("HTTP/1."), f"not a status line: {lines[0]!r}"
    headers = []
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers.append((k.strip().lower(), v.strip()))
    return int(parts[1]), headers


def parse_responses(data):
    """Splits a byte stream of responses framed by content-length (or none) into Responses."""
    out = []
    while data:
        if b"\r\n\r\n" not in data:
            raise AssertionError(f"incomplete response head: {data[:200]!r}")
        head, data = data.split(b"\r\n\r\n", 1)
        status, headers = parse_head(head + b"\r\n\r\n")
        length = 0
        for k, v in headers:
            if k == "content-length":
                length = int(v)
        assert len(data) >= length, f"truncated body: want {length}, have {len(data)}"
        out.append(Response(status, headers, data[:length]))
        data = data[length:]
    return out


def curl(*args, input=None, timeout=IO_TIMEOUT):
    """Runs curl with a bounded time; returns (rc, stdout bytes, stderr text)."""
    proc = subprocess.run(["curl", "--max-time", str(int(timeout)), *map(str, args)],
                          input=input, capture_output=True, timeout=timeout + 5)
    return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")


def run_parallel(fn, n, timeout=30):
    """Runs fn(i) for i in 0..n on n threads released together; returns results in order.
    A thread's exception is returned as its result."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def body(i):
        try:
            barrier.wait(timeout=timeout)
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - reported to the test as the result
            results[i] = e

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a client thread hung"
    return results


# --- a recording upstream ---


class RecordingUpstream:
    """A tiny HTTP/1.1 upstream that records every request head it receives and the connection
    it came on, and answers `status` with body "NAME\\n", keep-alive. It shows exactly what the
    proxy forwarded (headers mesh-echo does not echo), how many connections it opened, and how
    many requests reached it at all."""

    def __init__(self, name, status=200, port=None, response_headers="", misbehave=None):
        self.name = name
        self.status = status
        self.response_headers = response_headers.encode()  # "name: value\r\n" lines
        # None: answer properly. "hangup": close without answering. "truncate": promise a
        # 1000-byte body, send 10 bytes of it and close. "smuggle": a response head with both
        # Content-Length and Transfer-Encoding.
        self.misbehave = misbehave
        self.lock = threading.Lock()
        self.requests = []  # (connection number, method, target, [(name, value)])
        self.connections = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port or 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.echo_name = name
        self.socks = []
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def request_count(self):
        with self.lock:
            return len(self.requests)

    def _accept(self):
        while not self.closing:
            try:
                s, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
                self.socks.append(s)
            threading.Thread(target=self._serve, args=(s, n), daemon=True).start()

    def _serve(self, s, n):
        s.settimeout(30)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    b = s.recv(65536)
                    if not b:
                        return
                    buf += b
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = []
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers.append((k.strip().lower(), v.strip()))
                length = sum(int(v) for k, v in headers if k == "content-length")
                while len(buf) < length:
                    b = s.recv(65536)
                    if not b:
                        return
                    buf += b
                buf = buf[length:]
                with self.lock:
                    self.requests.append((n, method, target, headers))
                if self.misbehave == "hangup":
                    return
                if self.misbehave == "truncate":
                    s.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 10)
                    return
                if self.misbehave == "smuggle":
                    s.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n"
                              b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n")
                    return
                body = f"{self.name}\n".encode()
                s.sendall(b"HTTP/1.1 %d Status\r\ncontent-length: %d\r\nx-echo-name: %s\r\n%s\r\n"
                          % (self.status, len(body), self.name.encode(), self.response_headers)
                          + body)
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                s.close()

    def close(self):
        self.closing = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for s in self.socks:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        self.thread.join(5)


# --- metrics ---

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """Parsed Prometheus text: samples as (name, {labels}, value)."""

    def __init__(self, text):
        self.text = text
        self.samples = []
        self.types = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                self.types[name] = kind
                continue
            if not line or line.startswith("#"):
                continue
            m = _SAMPLE.match(line)
            assert m, f"not a Prometheus sample line: {line!r}"
            labels = dict(_LABEL.findall(m.group(2) or ""))
            self.samples.append((m.group(1), labels, float(m.group(3))))

    def find(self, name, **labels):
        return [(lab, v) for n, lab, v in self.samples
                if n == name and all(lab.get(k) == str(want) for k, want in labels.items())]

    def sum(self, name, **labels):
        return sum(v for _, v in self.find(name, **labels))
