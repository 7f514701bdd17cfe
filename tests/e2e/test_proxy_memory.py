# SPDX-License-Identifier: Apache-2.0
"""Bodies stream through meshproxy with bounded memory: a 1 GiB upload passes while the proxy's
resident memory stays under 32 MiB."""
import socket
import threading

from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    IO_TIMEOUT,
    echo_services,
    lab,
    parse_head,
    proxy_binaries,
    read_head,
    route,
    virtual_service,
)

HOST = "payment.example.com"
GIB = 1 << 30
RSS_LIMIT = 32 << 20


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_one_gib_upload_streams_with_bounded_memory(lab):
    e = lab.echo("payment-v1")
    proxy = lab.proxy(echo_services(e) + [virtual_service("payment", [HOST], route("payment-v1"))])
    peak = [rss_bytes(proxy.proc.pid)]
    done = threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_bytes(proxy.proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    chunk = b"x" * (1 << 20)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT * 6) as s:
        s.sendall(f"POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {GIB}\r\n\r\n"
                  .encode())
        for _ in range(GIB // len(chunk)):
            s.sendall(chunk)
        head, _ = read_head(s, timeout=IO_TIMEOUT * 6)
    done.set()
    sampler.join()
    status, headers = parse_head(head)
    assert status == 200, head
    assert dict(headers)["x-echo-body-bytes"] == str(GIB)
    print(f"peak RSS {peak[0] / (1 << 20):.1f} MiB")
    assert peak[0] < RSS_LIMIT, f"peak RSS {peak[0] / (1 << 20):.1f} MiB"
