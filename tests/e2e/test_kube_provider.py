# SPDX-License-Identifier: Apache-2.0
"""End to end: libmesh's istio and linkerd providers against a test API server (kube_fake.py).

The cluster is the store: a C program using mesh_apply_virtual_service() and
mesh_configure_circuit_breaker() with provider istio or linkerd makes Istio / Linkerd objects
there; `meshctl get --provider` reads the cluster's objects back as our resources (an edit made
with kubectl shows), `meshctl delete --provider` removes what a resource made and renders the
rest again; a write that fails half way is undone.
"""
import json
import subprocess

import pytest

from conftest import RUN_TIMEOUT, base_env, build_dir, check_sanitizer_output, meshctl_path
from kube_fake import ISTIO_CRDS, LINKERD_CRDS, FakeKube

MANAGED = {"app.kubernetes.io/managed-by": "clusterdb-mesh"}


@pytest.fixture
def kube(tmp_path):
    fake = FakeKube(tmp_path, crds=ISTIO_CRDS + LINKERD_CRDS).start()
    # The user's own Services, as their Deployments' manifests would have made them.
    for app, version in (("payment", None), ("payment", "v1"), ("payment", "v2"),
                         ("web", "v1"), ("web", "v2"), ("orders", None)):
        name = f"{app}-{version}" if version else app
        labels = {"app": app, **({"version": version} if version else {})}
        fake.apply_as("kubectl", {"apiVersion": "v1", "kind": "Service",
                                  "metadata": {"name": name, "namespace": "default",
                                               "labels": labels},
                                  "spec": {"selector": labels,
                                           "ports": [{"name": "http", "port": 80}]}}, "services")
    yield fake
    fake.stop()


@pytest.fixture
def kcfg(tmp_path, kube):
    return kube.kubeconfig(tmp_path / "kc", context="production")


def env_for(tmp_path, kubeconfig):
    env = base_env()
    env["HOME"] = str(tmp_path)
    env["KUBECONFIG"] = str(kubeconfig)
    return env


def run(tmp_path, argv, kubeconfig):
    argv = [str(a) for a in argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                       env=env_for(tmp_path, kubeconfig))
    check_sanitizer_output(r.stderr, argv)
    return r.returncode, r.stdout, r.stderr


def example(tmp_path, kubeconfig, *args):
    binary = build_dir() / "examples" / "kubernetes"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with `make`")
    return run(tmp_path, [binary, *args], kubeconfig)


def meshctl(tmp_path, kubeconfig, *args):
    return run(tmp_path, [meshctl_path(), "--store", tmp_path / "store", *args], kubeconfig)


def ours(kube, group, plural):
    return {(o["metadata"]["namespace"], o["metadata"]["name"]): o
            for o in kube.all(group, plural)
            if (o["metadata"].get("labels") or {}).items() >= MANAGED.items()}


def test_c_api_applies_to_istio_and_reads_back(tmp_path, kube, kcfg):
    rc, out, err = example(tmp_path, kcfg, "istio")
    assert rc == 0, err
    assert "applied to the cluster through provider istio; read back:" in out
    assert "route primary -> payment-v1 90%, payment-v2 10%" in out
    vs = ours(kube, "networking.istio.io", "virtualservices")[("default", "payment-service")]
    assert vs["apiVersion"] == "networking.istio.io/v1"
    assert vs["metadata"]["annotations"]["mesh.clusterdb.io/source"] == \
        "VirtualService/default/payment-service"
    route = vs["spec"]["http"][0]["route"]
    assert [(r["destination"]["subset"], r["weight"]) for r in route] == [("v1", 90), ("v2", 10)]
    rules = ours(kube, "networking.istio.io", "destinationrules")
    pool = rules[("default", "payment")]["spec"]["trafficPolicy"]["connectionPool"]
    assert pool["tcp"]["maxConnections"] == 100
    assert pool["http"]["http2MaxRequests"] == 1000
    assert rules[("default", "payment")]["metadata"]["annotations"][
        "mesh.clusterdb.io/source"] == "CircuitBreaker/default/payment-service"
    # The breaker read back from the DestinationRules, as our resource.
    rc, out, err = meshctl(tmp_path, kcfg, "get", "cb", "payment-service", "--provider", "istio",
                           "-o", "yaml")
    assert rc == 0, err
    assert "max_connections: 100" in out and "consecutive_errors: 5" in out
    assert "service: payment-service" in out
    # Again: nothing changes in the cluster.
    before = {k: o["metadata"]["resourceVersion"]
              for k, o in ours(kube, "networking.istio.io", "virtualservices").items()}
    n_patches = sum(1 for m, *_ in kube.requests if m == "PATCH")
    rc, out, err = example(tmp_path, kcfg, "istio")
    assert rc == 0, err
    after = {k: o["metadata"]["resourceVersion"]
             for k, o in ours(kube, "networking.istio.io", "virtualservices").items()}
    assert after == before
    assert sum(1 for m, *_ in kube.requests if m == "PATCH") == n_patches  # unchanged: not sent


def test_get_reads_what_kubectl_changed(tmp_path, kube, kcfg):
    rc, out, err = example(tmp_path, kcfg, "istio")
    assert rc == 0, err
    vs = kube.find("networking.istio.io", "virtualservices", "default", "payment-service")
    for r, w in zip(vs["spec"]["http"][0]["route"], (50, 50)):
        r["weight"] = w
    for k in ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp"):
        vs["metadata"].pop(k, None)
    kube.apply_as("kubectl", vs, "virtualservices", force=True)
    rc, out, err = meshctl(tmp_path, kcfg, "get", "vs", "-A", "--provider", "istio", "-o",
                           "json")
    assert rc == 0, err
    docs = json.loads(out)
    docs = docs if isinstance(docs, list) else docs.get("items", [docs])
    (payment,) = [d for d in docs if d["metadata"]["name"] == "payment-service"]
    dests = payment["spec"]["http_routes"][0]["destinations"]
    assert [(d["host"], d["weight"]) for d in dests] == [("payment-v1", 50), ("payment-v2", 50)]
    # The cluster's Services are ours to read.
    rc, out, err = meshctl(tmp_path, kcfg, "get", "svc", "--provider", "istio", "-o", "name")
    assert rc == 0, err
    assert {"service/payment-v1", "service/web-v2", "service/orders"} <= set(out.split())


def test_delete_removes_what_the_resource_made(tmp_path, kube, kcfg):
    rc, out, err = example(tmp_path, kcfg, "istio")
    assert rc == 0, err
    other = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": {"name": "reviews", "namespace": "default"},
             "spec": {"hosts": ["reviews"]}}
    kube.apply_as("kubectl", other, "virtualservices")
    rc, out, err = meshctl(tmp_path, kcfg, "delete", "cb", "payment-service", "--provider",
                           "istio")
    assert rc == 0, err
    assert out.splitlines() == ["circuitbreaker/payment-service deleted"]
    rules = ours(kube, "networking.istio.io", "destinationrules")
    # The subsets the route needs stay; the policy went with the breaker.
    assert "trafficPolicy" not in rules[("default", "payment")]["spec"]
    rc, out, err = meshctl(tmp_path, kcfg, "delete", "vs", "payment-service", "--provider",
                           "istio")
    assert rc == 0, err
    assert ours(kube, "networking.istio.io", "virtualservices") == {}
    assert kube.find("networking.istio.io", "virtualservices", "default", "reviews") is not None
    rc, out, err = meshctl(tmp_path, kcfg, "delete", "vs", "payment-service", "--provider",
                           "istio")
    assert rc == 1
    assert "error: Service not found: VirtualService default/payment-service" in err
    # Services are the cluster's: never deleted through us.
    rc, out, err = meshctl(tmp_path, kcfg, "delete", "svc", "payment-v1", "--provider", "istio")
    assert rc == 1
    assert "Services are the cluster's own: delete it there" in err
    assert kube.find("", "services", "default", "payment-v1") is not None


def test_linkerd_provider(tmp_path, kube, kcfg):
    rc, out, err = example(tmp_path, kcfg, "linkerd", "2.20")
    assert rc == 0, err
    # Linkerd's HTTPRoute keeps no rule names: the route comes back unnamed.
    assert "route (unnamed) -> payment-v1 90%, payment-v2 10%" in out
    routes = ours(kube, "policy.linkerd.io", "httproutes")
    assert routes, kube.all("policy.linkerd.io")
    refs = [b for rt in routes.values() for rule in rt["spec"]["rules"]
            for b in rule.get("backendRefs", [])]
    assert {(b["name"], b["weight"]) for b in refs} >= {("payment-v1", 90), ("payment-v2", 10)}
    # The failure-accrual annotations went on the user's Services, which stay theirs.
    svc = kube.find("", "services", "default", "payment-v1")
    assert any(k.startswith("balancer.linkerd.io/failure-accrual")
               for k in svc["metadata"].get("annotations", {}))
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80}]
    assert all(o["metadata"]["annotations"]["mesh.clusterdb.io/provider-version"] == "2.20"
               for o in routes.values())


def test_release_stamp_is_kept(tmp_path, kcfg, kube):
    """Written for Istio 1.14 (v1beta1), a later call without a version writes for 1.14 too."""
    rc, out, err = example(tmp_path, kcfg, "istio", "1.14")
    assert rc == 0, err
    vs = kube.find("networking.istio.io", "virtualservices", "default", "payment-service")
    assert vs["apiVersion"] == "networking.istio.io/v1beta1"
    assert vs["metadata"]["annotations"]["mesh.clusterdb.io/provider-version"] == "1.14"
    rc, out, err = meshctl(tmp_path, kcfg, "delete", "cb", "payment-service", "--provider",
                           "istio")
    assert rc == 0, err
    patched = [p for m, p, *_ in kube.requests if m == "PATCH"]
    assert patched and all("/networking.istio.io/v1/" not in p for p in patched), patched


def test_failed_write_is_undone(tmp_path, kube, kcfg):
    kube.refuse[("networking.istio.io", "destinationrules")] = (
        422, "Invalid", 'DestinationRule.networking.istio.io "payment" is invalid: refused')
    rc, out, err = example(tmp_path, kcfg, "istio")
    assert rc == 1
    assert "kubernetes: provider istio: cannot apply DestinationRule default/payment" in err
    assert "refused" in err
    # The VirtualService written before the refusal was taken back.
    assert ours(kube, "networking.istio.io", "virtualservices") == {}


def test_errors_in_words(tmp_path, kube, kcfg):
    # A Service the cluster lacks.
    kube.objects.pop(("", "services", "default", "payment-v2"))
    rc, out, err = example(tmp_path, kcfg, "istio")
    assert rc == 1
    assert "payment-v2" in err and "names no Service" in err, err
    assert ours(kube, "networking.istio.io", "virtualservices") == {}
    # A cluster without Istio.
    (tmp_path / "bare").mkdir()
    bare = FakeKube(tmp_path / "bare", crds=()).start()
    try:
        kc = bare.kubeconfig(tmp_path / "bare-kc", context="bare")
        rc, out, err = meshctl(tmp_path, kc, "get", "vs", "--provider", "istio")
        assert rc == 1
        assert "error: provider istio: Istio's CRDs are not installed in this cluster" in err
    finally:
        bare.stop()
    # Flags that name a cluster without a provider.
    rc, out, err = meshctl(tmp_path, kcfg, "get", "vs", "--context", "production")
    assert rc == 2
    assert "give --provider istio or linkerd too" in err
