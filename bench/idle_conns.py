#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Holds N keep-alive client connections open on a proxy so that its idle RSS can be sampled.

Usage: idle_conns.py PORT COUNT HOST PATH

Opens COUNT connections to 127.0.0.1:PORT, sends one `GET PATH` with `Host: HOST` on each and
reads the whole response, so every connection has really been accepted and served by the
proxy. Then prints `ready OK_COUNT` and waits (at most HOLD_SECONDS) for a line or EOF on
stdin; before closing it prints `open STILL_OPEN`: how many connections the proxy had kept
open while they idled. Exit status 0 when all COUNT responses were 200, 1 otherwise.
"""
import errno
import resource
import selectors
import socket
import sys
import time

HOLD_SECONDS = 120  # the harness samples within a second or two; this only bounds a hang
IO_SECONDS = 30  # bound on connecting, sending and reading all the responses


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def response_complete(data):
    """Returns the status code once `data` holds a whole response with a Content-Length body."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = data[:head_end].decode("latin-1").split("\r\n")
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if len(data) < head_end + 4 + length:
        return None
    return int(head[0].split()[1])


def still_open(sock):
    """True when the peer has not closed the connection (a read would block, not return EOF)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def main():
    port, count, host, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    raise_fd_limit(count + 64)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    deadline = time.monotonic() + IO_SECONDS

    socks = []
    sel = selectors.DefaultSelector()
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, f"connect to 127.0.0.1:{port}: {errno.errorcode.get(err, err)}")
        socks.append(s)
        sel.register(s, selectors.EVENT_WRITE, bytearray())

    # Send each request as soon as its connect completes, then read until each response is
    # whole: all connections progress together, so 1,000 of them take well under a second.
    pending = count
    ok = 0
    while pending and time.monotonic() < deadline:
        for key, events in sel.select(timeout=1.0):
            s, buf = key.fileobj, key.data
            if events & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, f"connect to 127.0.0.1:{port}: {errno.errorcode[err]}")
                # A 50-byte request always fits an empty socket buffer.
                s.sendall(request)
                sel.modify(s, selectors.EVENT_READ, buf)
                continue
            chunk = s.recv(65536)
            if chunk:
                buf += chunk
            status = response_complete(bytes(buf))
            if status is None and chunk:
                continue
            sel.unregister(s)
            pending -= 1
            ok += status == 200
    sel.close()

    print(f"ready {ok}", flush=True)
    if _stdin_ready(HOLD_SECONDS):
        sys.stdin.readline()
    print(f"open {sum(still_open(s) for s in socks)}", flush=True)
    for s in socks:
        s.close()
    return 0 if ok == count else 1


def _stdin_ready(timeout):
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ)
    ready = sel.select(timeout=timeout)
    sel.close()
    return bool(ready)


if __name__ == "__main__":
    sys.exit(main())
