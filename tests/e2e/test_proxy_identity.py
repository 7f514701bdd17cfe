# SPDX-License-Identifier: Apache-2.0
"""Workload certificates, end to end with real processes: every sidecar and gateway gets one from
meshd's CA once registered (SPIFFE ID spiffe://cluster.local/ns/NS/sa/NAME), shows it in
/config_dump, /metrics and `meshctl proxy-config ... secret`, and renews it at half its lifetime
with a new key while traffic flows through the sidecars without a single failure. With meshd
down across a renewal time the renewals fail (counted, logged), the old certificate stays, and
traffic flows; once meshd is back the next renewal succeeds. Static mode has no identity. The
private key is never in a log, a dump or meshctl's output.

meshd, sidecars and gateways come from test_mesh_live's fixtures (ports the kernel picks, stopped
by PID); every wait is bounded.
"""
import datetime
import hashlib
import json
import ssl
import threading
import time

from conftest import SAN
from proxy_fixtures import (  # noqa: F401 - lab and proxy_binaries are fixtures
    Client,
    Metrics,
    echo_services,
    lab,
    proxy_binaries,
    route,
    virtual_service,
    wait_until,
)
from test_mesh_live import (  # noqa: F401 - live and meshd_binary are fixtures
    has_endpoints,
    live,
    meshd_binary,
)

TD = "cluster.local"
TTL = 20  # seconds, meshd --cert-ttl in the renewal tests
SKEW = 60  # meshd back-dates notBefore this much (MESH_CA_CLOCK_SKEW_S)
SLACK = 2.0 if SAN else 1.0  # polling and scheduling on top of the renewal time
KEY_WORDS = "PRIVATE KEY"


def spiffe(name, ns="default"):
    return f"spiffe://{TD}/ns/{ns}/sa/{name}"


def unix(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def identity(proxy):
    return proxy.dump()["identity"]


def has_certificate(proxy):
    return identity(proxy)["spiffe_id"] is not None


def metrics(proxy):
    resp = proxy.admin("/metrics")
    assert resp.status == 200
    return Metrics(resp.text)


def renewals(proxy, result):
    return metrics(proxy).sum("mesh_certificate_renewals_total", result=result)


def root_fingerprint(live):
    """SHA-256 of meshd's root certificate (DATA_DIR/ca/root-cert.pem), "AB:CD:..."."""
    der = ssl.PEM_cert_to_DER_cert((live.data_dir / "ca" / "root-cert.pem").read_text())
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def meshctl(mesh, live, *args):
    """meshctl --server MESHD ARGS; returns stdout after checking it exited 0."""
    rc, out, err = mesh.run("--server", live.meshd.url, *args, store=False)
    assert rc == 0, f"meshctl {args} exited {rc}:\n{out}\n{err}"
    assert KEY_WORDS not in out + err
    return out


def table_rows(out):
    return [ln.split() for ln in out.strip().splitlines() if ln.strip()]


def assert_no_key_anywhere(live):
    for p in live.procs:
        assert KEY_WORDS not in p.stderr(), f"{p.name} logged key material"


class Traffic:
    """Requests from a client sidecar's outbound listener to a service behind another sidecar,
    continuously, on fresh connections and on one keep-alive connection, until stopped. Every
    answer must come from the service's app."""

    def __init__(self, client, host):
        self.client, self.host = client, host
        self.ok = 0
        self.failures = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _check(self, r):
        if r.status == 200 and r.header("x-echo-name") == self.host:
            self.ok += 1
        else:
            self.failures.append((r.status, r.header("x-mesh-error")))

    def _run(self):
        keep = None
        while not self.done.is_set():
            try:
                self._check(self.client.request(self.host))
                if keep is None:
                    keep = Client(self.client.port, self.host)
                self._check(keep.request())
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


def payment_and_client(live, flags):
    """meshd with flags, payment-v1 behind a sidecar, and an orders sidecar whose outbound
    listener routes to it."""
    live.start_meshd(flags)
    v1 = live.sidecar("payment-v1", live.echo("payment-v1"), version="v1")
    orders = live.sidecar("orders", live.echo("orders"))
    orders.wait_dump(lambda d: has_endpoints(d, [("payment-v1", v1.inbound)]),
                     "payment-v1's endpoint")
    for p in (v1, orders):
        p.wait_dump(lambda d: d["identity"]["spiffe_id"] is not None, "a certificate")
    return v1, orders


# --- tests ---


def test_sidecar_and_gateway_get_their_certificates(live, mesh):
    live.start_meshd(["--heartbeat-ttl", "30s"])
    v1 = live.sidecar("payment-v1", live.echo("payment-v1"), version="v1")
    gw = live.gateway("external-gateway")
    for p, name in ((v1, "payment-v1"), (gw, "external-gateway")):
        p.wait_dump(lambda d, name=name: d["identity"]["spiffe_id"] == spiffe(name),
                    f"the certificate of {name}")
        ident = identity(p)
        assert ident["ca"] == "mesh-root"
        assert ident["issuer"] == ident["trust_bundle"][0]["subject"]
        assert ident["issuer"].startswith("CN=ClusterDB Mesh root CA")
        assert [r["sha256"] for r in ident["trust_bundle"]] == [root_fingerprint(live)]
        assert len(ident["serial"]) >= 16 and int(ident["serial"], 16) > 0
        # meshd's default lifetime (24 h), from a notBefore back-dated for clock skew.
        life = unix(ident["not_after"]) - unix(ident["not_before"])
        assert abs(life - (24 * 3600 + SKEW)) <= 2, ident
        now = time.time()
        assert unix(ident["not_before"]) <= now <= unix(ident["not_after"])
        assert ident["renewal"]["renewals"] == 1 and ident["renewal"]["failures"] == 0
        # Renewal at half the lifetime plus up to 5% of it (jitter), counted from issuance.
        next_at = unix(ident["renewal"]["next_attempt"])
        assert now + 12 * 3600 - 60 <= next_at <= now + 13.2 * 3600 + 60, ident

        m = metrics(p)
        assert m.types["mesh_certificate_expiry_timestamp_seconds"] == "gauge"
        assert m.sum("mesh_certificate_expiry_timestamp_seconds") == unix(ident["not_after"])
        assert m.sum("mesh_certificate_renewals_total", result="success") == 1
        assert m.find("mesh_certificate_renewals_total", result="failure") == \
            [({"result": "failure"}, 0)]

        assert (f"msg=\"workload certificate issued\" id={p.id} spiffe_id={spiffe(name)} "
                f"serial={ident['serial']} not_after={ident['not_after']}") in p.stderr()
        # The YAML dump ends with the same identity.
        yaml_dump = p.admin("/config_dump").text
        assert f"\nidentity:\n  spiffe_id: \"{spiffe(name)}\"\n" in yaml_dump
        assert f"  serial: \"{ident['serial']}\"\n" in yaml_dump
        assert KEY_WORDS not in yaml_dump and KEY_WORDS not in p.admin(
            "/config_dump?format=json").text

    # meshd says the same about whom it issued to.
    assert f"spiffe_id={spiffe('payment-v1')}" in live.meshd.stderr()

    # meshctl proxy-config ... secret, through meshd and straight from the admin listener.
    ident = identity(v1)
    out = meshctl(mesh, live, "proxy-config", v1.id, "secret")
    rows = table_rows(out)
    assert rows[0] == ["SPIFFE", "ID", "SERIAL", "NOT", "BEFORE", "NOT", "AFTER", "CA"]
    assert rows[1] == [spiffe("payment-v1"), ident["serial"], ident["not_before"],
                       ident["not_after"], "mesh-root"]
    assert root_fingerprint(live) in out
    got = json.loads(meshctl(mesh, live, "proxy-config", "payment-v1", "secret", "-o", "json"))
    assert got == identity(v1)
    got = json.loads(meshctl(mesh, live, "proxy-config", "external-gateway", "secret", "-o",
                             "json"))
    assert got["spiffe_id"] == spiffe("external-gateway")
    admin = f"127.0.0.1:{gw.admin_port}"
    assert spiffe("external-gateway") in meshctl(mesh, live, "proxy-config", "--admin", admin,
                                                 "secret")
    out = meshctl(mesh, live, "proxy-config", v1.id, "all")
    assert f"Identity: {spiffe('payment-v1')}, serial {ident['serial']}" in out
    whole = json.loads(meshctl(mesh, live, "proxy-config", v1.id, "all", "-o", "json"))
    assert whole["identity"]["spiffe_id"] == spiffe("payment-v1")
    assert_no_key_anywhere(live)


def test_renewal_at_half_life_keeps_traffic_flowing(live, mesh):
    v1, orders = payment_and_client(live, ["--cert-ttl", f"{TTL}s"])
    traffic = Traffic(orders, "payment-v1")
    try:
        for p in (v1, orders):
            first = identity(p)
            issued = unix(first["not_after"]) - TTL  # meshd back-dates notBefore, not this
            # A new serial at half the lifetime (10 s, plus up to 1 s of jitter)...
            p.wait_dump(lambda d, s=first["serial"]: d["identity"]["serial"] != s,
                        "the first renewal", timeout=TTL)
            took = time.time() - issued
            second = identity(p)
            print(f"{p.name}: renewed {took:.1f}s after issuance")
            assert TTL / 2 - 1 <= took <= TTL / 2 + 1 + 1 + SLACK, (took, first, second)
            assert second["spiffe_id"] == first["spiffe_id"]
            assert unix(second["not_after"]) > unix(first["not_after"])
            # ... and again, half of the new one's lifetime later.
            p.wait_dump(lambda d, s=second["serial"]: d["identity"]["serial"] != s,
                        "the second renewal", timeout=TTL)
            assert len({first["serial"], second["serial"], identity(p)["serial"]}) == 3
            assert renewals(p, "success") >= 3 and renewals(p, "failure") == 0
            assert "workload certificate renewed" in p.stderr()
    finally:
        sent = traffic.stop()
    assert sent > 100, sent
    for p in (v1, orders):
        assert f"serial={identity(p)['serial']}" in p.stderr()
        assert "lvl=error" not in p.stderr()
        out = meshctl(mesh, live, "proxy-config", p.id, "secret")
        assert identity(p)["serial"] in out or renewals(p, "success") >= 4  # renewed meanwhile
    assert_no_key_anywhere(live)


def test_meshd_down_across_a_renewal_then_back(live, mesh):
    v1, orders = payment_and_client(live, ["--cert-ttl", f"{TTL}s", "--heartbeat-ttl", "30s"])
    # Start from a fresh certificate of v1's, so the timeline below has its whole lifetime.
    start = identity(v1)["serial"]
    v1.wait_dump(lambda d: d["identity"]["serial"] != start, "a fresh certificate", timeout=TTL)
    before = identity(v1)
    due = unix(before["renewal"]["next_attempt"])
    traffic = Traffic(orders, "payment-v1")
    try:
        # meshd goes away shortly before the renewal is due.
        wait_until(lambda: time.time() >= due - 1.5, TTL, interval=0.05,
                   what="the renewal to come close")
        live.kill_meshd()
        wait_until(lambda: renewals(v1, "failure") >= 2, 8 + SLACK, interval=0.1,
                   what="two failed renewals")
        during = identity(v1)
        assert during["serial"] == before["serial"]  # the current certificate stays
        assert during["renewal"]["failures"] >= 2
        assert during["renewal"]["last_error"].startswith("meshd unreachable: ")
        m = metrics(v1)
        assert m.sum("mesh_certificate_expiry_timestamp_seconds") == unix(before["not_after"])
        assert m.sum("mesh_certificate_renewals_total", result="failure") >= 2
        assert ("msg=\"certificate renewal failed: keeping the current certificate\" "
                f"id={v1.id} error=\"meshd unreachable: ") in v1.stderr()
        assert time.time() < unix(before["not_after"])  # still valid: nothing expired yet
    finally:
        sent = traffic.stop()  # traffic flowed throughout the outage
    assert sent > 20, sent

    # meshd back on the same port and data dir (same CA): the proxies register again and the
    # renewal succeeds at once, before the certificate runs out.
    live.start_meshd()
    v1.wait_dump(lambda d: d["identity"]["serial"] != before["serial"],
                 "the renewal after meshd's restart", timeout=10)
    after = identity(v1)
    assert time.time() < unix(before["not_after"]) + SLACK
    assert after["spiffe_id"] == before["spiffe_id"]
    assert after["trust_bundle"] == before["trust_bundle"]
    assert renewals(v1, "success") >= 3
    assert "lvl=error" not in v1.stderr()  # never expired, so never loud
    assert "workload certificate renewed" in v1.stderr().split("certificate renewal failed")[-1]
    # Traffic again, once the restarted meshd knows both sidecars (its registry starts empty).
    orders.wait_dump(lambda d: has_endpoints(d, [("payment-v1", v1.inbound)]),
                     "payment-v1's endpoint from the restarted meshd")
    assert orders.request("payment-v1").header("x-echo-name") == "payment-v1"
    out = meshctl(mesh, live, "proxy-config", v1.id, "secret")
    assert "failed" in out and spiffe("payment-v1") in out
    assert_no_key_anywhere(live)


def test_static_mode_has_no_identity(lab, mesh):
    e = lab.echo("payment-v1")
    p = lab.proxy(echo_services(e) +
                  [virtual_service("payment", ["payment.example.com"], route("payment-v1"))])
    dump = json.loads(p.admin("/config_dump?format=json").body)
    assert dump["mode"] == "static" and dump["identity"] is None
    assert "identity:" not in p.admin("/config_dump").text
    m = p.metrics()
    assert m.sum("mesh_certificate_expiry_timestamp_seconds") == 0
    assert m.find("mesh_certificate_renewals_total") == []
    assert m.types["mesh_certificate_renewals_total"] == "counter"
    admin = f"127.0.0.1:{p.admin_port}"
    out = mesh.ok("proxy-config", "--admin", admin, "secret")
    assert "No workload certificate: the proxy runs in static mode" in out
    assert json.loads(mesh.ok("proxy-config", "--admin", admin, "secret", "-o", "json")) is None
    assert KEY_WORDS not in p.stderr()
