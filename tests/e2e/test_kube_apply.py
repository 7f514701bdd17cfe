# SPDX-License-Identifier: Apache-2.0
"""`meshctl apply` and `meshctl diff` against a Kubernetes cluster: the seed's examples rendered
for Istio and Linkerd, server-side applied (created, configured, unchanged), conflicts with
another field manager (409, then --force), --prune by our managed-by label (never the user's own
Services, which we only annotate), diffs of the fields we set, and the cluster's errors in words.
The server is tests/e2e/kube_fake.py (TLS, authentication, server-side apply with field managers,
list by label, delete, Status errors)."""
import json
import os
import re
import socket
import subprocess

import pytest

from conftest import EXAMPLES, RUN_TIMEOUT, base_env, check_sanitizer_output, meshctl_path
from kube_fake import ISTIO_CRDS, LINKERD_CRDS, FakeKube

PLURAL = {"VirtualService": "virtualservices", "DestinationRule": "destinationrules",
          "Gateway": "gateways", "PeerAuthentication": "peerauthentications",
          "AuthorizationPolicy": "authorizationpolicies", "Telemetry": "telemetries",
          "Server": "servers", "HTTPRoute": "httproutes",
          "MeshTLSAuthentication": "meshtlsauthentications",
          "NetworkAuthentication": "networkauthentications", "Service": "services",
          "Namespace": "namespaces"}
SERVER_FIELDS = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp")
ISTIO_BASE = [EXAMPLES / "mesh-istio.yaml", EXAMPLES / "kubernetes.yaml",
              EXAMPLES / "services.yaml"]


@pytest.fixture
def kube(tmp_path):
    fake = FakeKube(tmp_path, crds=ISTIO_CRDS + LINKERD_CRDS).start()
    yield fake
    fake.stop()


@pytest.fixture
def kcfg(tmp_path, kube):
    # examples/kubernetes.yaml names the context "production".
    return kube.kubeconfig(tmp_path / "kc", context="production")


def meshctl(tmp_path, *args, kubeconfig=None):
    env = base_env()
    env.pop("KUBECONFIG", None)
    env["HOME"] = str(tmp_path)  # no ~/.kube/config of the machine's
    if kubeconfig:
        env["KUBECONFIG"] = str(kubeconfig)
    argv = [str(meshctl_path()), "--store", str(tmp_path / "store"), *map(str, args)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    check_sanitizer_output(r.stderr, argv)
    return r.returncode, r.stdout, r.stderr


def files(*paths):
    out = []
    for p in paths:
        out += ["-f", p]
    return out


def rendered(tmp_path, *args):
    rc, out, err = meshctl(tmp_path, "render", *args, "-o", "json")
    assert rc == 0, err
    return json.loads(out)["items"]


def key(obj):
    group = obj["apiVersion"].rpartition("/")[0]
    meta = obj["metadata"]
    ns = None if obj["kind"] == "Namespace" else meta["namespace"]
    return group, PLURAL[obj["kind"]], ns, meta["name"]


def live(kube, obj):
    got = kube.find(*key(obj))
    assert got is not None, f"{obj['kind']} {obj['metadata']['name']} is not in the cluster"
    for k in SERVER_FIELDS:
        got["metadata"].pop(k, None)
    return got


def label(obj):
    meta = obj["metadata"]
    if obj["kind"] == "Namespace":
        return f"{obj['kind']}/{meta['name']}"
    return f"{obj['kind']}/{meta['namespace']}/{meta['name']}"


def test_apply_istio_examples_and_read_them_back(tmp_path, kube, kcfg):
    args = ["--provider", "istio", "--allow-partial", *files(EXAMPLES)]
    want = rendered(tmp_path, *args)
    rc, out, err = meshctl(tmp_path, "apply", *args, kubeconfig=kcfg)
    assert rc == 0, err
    assert out.splitlines() == [f"{label(o)} created" for o in want]
    # The partial translation's warning, as render prints it.
    assert "warning: SecurityPolicy default/payment-security spec.mtls.certificate_authority" in err
    for obj in want:
        assert live(kube, obj) == obj
    # Server-side apply, as meshctl's field manager, without force; the object read first.
    patches = [(p, ct) for m, p, ct, _ in kube.requests if m == "PATCH"]
    assert len(patches) == len(want)
    for path, ctype in patches:
        assert path.endswith("?fieldManager=meshctl") and ctype == "application/apply-patch+yaml"
    assert ("PATCH", "/apis/networking.istio.io/v1beta1/namespaces/default/virtualservices/"
            "web-service?fieldManager=meshctl") in [(m, p) for m, p, _, _ in kube.requests]
    # The seed's MeshConfig (Istio 1.14) decides the version when --version is not given.
    split = files(*ISTIO_BASE, EXAMPLES / "web-traffic-split.yaml")
    rc, out, err = meshctl(tmp_path, "apply", *split, kubeconfig=kcfg)
    assert rc == 0, err
    assert "VirtualService/default/web-service configured" in out
    assert kube.find("networking.istio.io", "virtualservices", "default",
                     "web-service")["apiVersion"] == "networking.istio.io/v1beta1"


def test_apply_twice_is_unchanged_and_a_change_is_configured(tmp_path, kube, kcfg):
    args = files(*ISTIO_BASE, EXAMPLES / "web-traffic-split.yaml")
    rc, first, err = meshctl(tmp_path, "apply", *args, kubeconfig=kcfg)
    assert rc == 0, err
    assert first.splitlines() and all(l.endswith(" created") for l in first.splitlines())
    rc, again, err = meshctl(tmp_path, "apply", *args, kubeconfig=kcfg)
    assert rc == 0, err
    assert again.splitlines() == [l.replace(" created", " unchanged")
                                  for l in first.splitlines()]
    changed = tmp_path / "split.yaml"
    changed.write_text((EXAMPLES / "web-traffic-split.yaml").read_text()
                       .replace("weight: 80", "weight: 70").replace("weight: 20", "weight: 30"))
    rc, out, err = meshctl(tmp_path, "apply", *files(*ISTIO_BASE, changed), kubeconfig=kcfg)
    assert rc == 0, err
    assert "VirtualService/default/web-service configured" in out.splitlines()
    assert "DestinationRule/default/web unchanged" in out.splitlines()
    vs = kube.find("networking.istio.io", "virtualservices", "default", "web-service")
    assert [r["weight"] for r in vs["spec"]["http"][0]["route"]] == [70, 30]
    # The input's KubernetesConfig chose the namespace and context; the store was not touched.
    assert not (tmp_path / "store").exists()


def test_conflict_with_another_field_manager_then_force(tmp_path, kube, kcfg):
    args = ["--provider", "istio", "--version", "1.30",
            *files(EXAMPLES / "services.yaml", EXAMPLES / "web-traffic-split.yaml")]
    mine = next(o for o in rendered(tmp_path, *args) if o["kind"] == "VirtualService")
    theirs = json.loads(json.dumps(mine))
    theirs["metadata"].pop("labels")
    theirs["metadata"].pop("annotations")
    theirs["spec"]["http"][0]["route"][0]["weight"] = 50
    theirs["spec"]["http"][0]["route"][1]["weight"] = 50
    code, _ = kube.apply_as("kubectl", theirs, "virtualservices")
    assert code == 201
    rc, out, err = meshctl(tmp_path, "apply", *args, kubeconfig=kcfg)
    assert rc == 1
    assert err.strip() == (
        "error: cannot apply VirtualService default/web-service: the API server answered 409 "
        "Conflict: Apply failed with 1 conflict: conflict with \"kubectl\" using "
        "networking.istio.io/v1: .spec.http (another field manager owns these fields: --force "
        "takes them over for meshctl)")
    # The others were applied all the same.
    assert "DestinationRule/default/web created" in out.splitlines()
    assert kube.find("networking.istio.io", "virtualservices", "default",
                     "web-service")["spec"]["http"][0]["route"][0]["weight"] == 50
    rc, out, err = meshctl(tmp_path, "apply", *args, "--force", kubeconfig=kcfg)
    assert rc == 0, err
    assert "VirtualService/default/web-service configured" in out.splitlines()
    assert "DestinationRule/default/web unchanged" in out.splitlines()
    vs = kube.find("networking.istio.io", "virtualservices", "default", "web-service")
    assert [r["weight"] for r in vs["spec"]["http"][0]["route"]] == [80, 20]
    assert any(m == "PATCH" and p.endswith("?fieldManager=meshctl&force=true")
               for m, p, _, _ in kube.requests)


def test_prune_removes_what_the_input_no_longer_renders(tmp_path, kube, kcfg):
    full = files(*ISTIO_BASE, EXAMPLES / "payment-virtual-service.yaml",
                 EXAMPLES / "web-traffic-split.yaml")
    rc, out, err = meshctl(tmp_path, "apply", *full, kubeconfig=kcfg)
    assert rc == 0, err
    # Someone else's VirtualService, not labelled ours, in the same namespace; and one labelled
    # ours in a namespace this input no longer names (an earlier input's).
    other = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": {"name": "reviews", "namespace": "default"},
             "spec": {"hosts": ["reviews"]}}
    kube.apply_as("kubectl", other, "virtualservices")
    elsewhere = {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
                 "metadata": {"name": "web-service", "namespace": "shop",
                              "labels": {"app.kubernetes.io/managed-by": "clusterdb-mesh"}},
                 "spec": {"hosts": ["web"]}}
    kube.apply_as("meshctl", elsewhere, "virtualservices")
    rc, out, err = meshctl(tmp_path, "apply", "--prune",
                           *files(*ISTIO_BASE, EXAMPLES / "payment-virtual-service.yaml"),
                           kubeconfig=kcfg)
    assert rc == 0, err
    lines = out.splitlines()
    assert "VirtualService/default/payment-service unchanged" in lines
    pruned = sorted(l for l in lines if l.endswith(" pruned"))
    assert pruned == ["DestinationRule/default/web pruned",
                      "VirtualService/default/web-service pruned",
                      "VirtualService/shop/web-service pruned"]
    assert sorted(lines[-3:]) == pruned  # after everything was applied
    assert kube.find("networking.istio.io", "virtualservices", "default", "web-service") is None
    assert kube.find("networking.istio.io", "destinationrules", "default", "web") is None
    assert kube.find("networking.istio.io", "virtualservices", "shop", "web-service") is None
    assert kube.find("networking.istio.io", "virtualservices", "default", "reviews") is not None
    assert kube.find("networking.istio.io", "virtualservices", "default",
                     "payment-service") is not None
    # Listed by our label in every namespace, at the version the server serves (discovery), not
    # the version this render wrote (v1beta1 for the seed's Istio 1.14).
    lists = [p for m, p, _, _ in kube.requests if m == "GET" and "labelSelector=" in p]
    assert "/apis/networking.istio.io/v1/virtualservices?labelSelector=" \
           "app.kubernetes.io%2Fmanaged-by%3Dclusterdb-mesh" in lists
    assert not any("/namespaces/" in p for p in lists)
    # Nothing left to prune.
    rc, out, err = meshctl(tmp_path, "apply", "--prune",
                           *files(*ISTIO_BASE, EXAMPLES / "payment-virtual-service.yaml"),
                           kubeconfig=kcfg)
    assert rc == 0, err
    assert "pruned" not in out


def test_linkerd_prune_keeps_the_users_services(tmp_path, kube, kcfg):
    lk = ["--provider", "linkerd", "--version", "2.20", "--allow-partial"]
    base = [EXAMPLES / "mesh-linkerd.yaml", EXAMPLES / "kubernetes.yaml",
            EXAMPLES / "services.yaml", EXAMPLES / "payment-virtual-service.yaml"]
    full = files(*base, EXAMPLES / "payment-circuit-breaker.yaml",
                 EXAMPLES / "payment-security.yaml")
    # Our annotations go on the user's own Service: without it, apply says so.
    rc, out, err = meshctl(tmp_path, "apply", *lk, *full, kubeconfig=kcfg)
    assert rc == 1
    assert "error: Service/default/payment-v1 does not exist: what we render for it are " \
           "annotations for your own Service: create it (with its ports) first, then apply " \
           "again\n" in err
    assert "error: Service/default/payment-v2 does not exist:" in err
    assert kube.find("", "services", "default", "payment-v1") is None
    for name in ("payment-v1", "payment-v2"):
        svc = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": "default",
                            "annotations": {"mesh.clusterdb.io/source":
                                            "CircuitBreaker/default/payment-service"}},
               "spec": {"ports": [{"port": 80, "targetPort": 8080}],
                        "selector": {"app": "payment"}}}
        assert kube.apply_as("kubectl", svc, "services")[0] == 201
    rc, out, err = meshctl(tmp_path, "apply", *lk, *full, kubeconfig=kcfg)
    assert rc == 0, err
    lines = out.splitlines()
    # The first run applied all but the Services already.
    assert "Service/default/payment-v1 configured" in lines
    assert "Server/default/payment-v1 unchanged" in lines
    assert "Namespace/default unchanged" in lines
    svc = kube.find("", "services", "default", "payment-v1")
    assert svc["metadata"]["annotations"]["balancer.linkerd.io/failure-accrual"] == "consecutive"
    assert svc["spec"]["ports"] == [{"port": 80, "targetPort": 8080}]
    # Without the circuit breaker and the security policy: their labelled objects go, the
    # Services (annotated, never labelled) stay.
    rc, out, err = meshctl(tmp_path, "apply", *lk, "--prune", *files(*base), kubeconfig=kcfg)
    assert rc == 0, err
    pruned = sorted(l for l in out.splitlines() if l.endswith(" pruned"))
    assert pruned == ["AuthorizationPolicy/default/payment-security-rule0-payment-v1 pruned",
                      "AuthorizationPolicy/default/payment-security-rule0-payment-v2 pruned",
                      "HTTPRoute/default/payment-security-rule0-payment-v1 pruned",
                      "HTTPRoute/default/payment-security-rule0-payment-v2 pruned",
                      "MeshTLSAuthentication/default/payment-security-rule0 pruned",
                      "Server/default/payment-v1 pruned",
                      "Server/default/payment-v2 pruned"]
    # The Namespace lost the annotations of what is no longer applied.
    assert "Namespace/default configured" in out.splitlines()
    for name in ("payment-v1", "payment-v2"):
        assert kube.find("", "services", "default", name)["spec"]["ports"][0]["port"] == 80
        assert kube.find("policy.linkerd.io", "servers", "default", name) is None
    assert kube.all("policy.linkerd.io") == []
    assert kube.find("", "namespaces", None, "default") is not None


def test_diff_against_the_cluster(tmp_path, kube, kcfg):
    args = files(*ISTIO_BASE, EXAMPLES / "web-traffic-split.yaml")
    # Nothing there yet: every object is all added lines.
    rc, out, err = meshctl(tmp_path, "diff", *args, kubeconfig=kcfg)
    assert rc == 0, err
    assert "--- live/VirtualService/default/web-service\n" \
           "+++ rendered/VirtualService/default/web-service\n" in out
    assert "+kind: VirtualService\n" in out
    assert [l for l in out.splitlines() if l.startswith("-") and not l.startswith("--- ")] == []
    assert kube.all() == []  # nothing written
    meshctl(tmp_path, "apply", *args, kubeconfig=kcfg)
    rc, out, err = meshctl(tmp_path, "diff", "--exit-code", *args, kubeconfig=kcfg)
    assert (rc, out) == (0, ""), err  # what the server adds is not a difference
    changed = tmp_path / "split.yaml"
    changed.write_text((EXAMPLES / "web-traffic-split.yaml").read_text()
                       .replace("weight: 80", "weight: 70").replace("weight: 20", "weight: 30"))
    rc, out, err = meshctl(tmp_path, "diff", *files(*ISTIO_BASE, changed), kubeconfig=kcfg)
    assert rc == 0, err
    assert out == (
        "--- live/VirtualService/default/web-service\n"
        "+++ rendered/VirtualService/default/web-service\n"
        "@@ -18,10 +18,10 @@\n"
        "         - destination:\n"
        "             host: web.default.svc.cluster.local\n"
        "             subset: v1\n"
        "-          weight: 80\n"
        "+          weight: 70\n"
        "         - destination:\n"
        "             host: web.default.svc.cluster.local\n"
        "             subset: v2\n"
        "-          weight: 20\n"
        "+          weight: 30\n"
        "       retries:\n"
        "         attempts: 0\n")
    rc, _, _ = meshctl(tmp_path, "diff", "--exit-code", *files(*ISTIO_BASE, changed),
                       kubeconfig=kcfg)
    assert rc == 1
    # Only the one apply wrote anything.
    assert [m for m, _, _, _ in kube.requests if m != "GET"] == ["PATCH"] * 3


def test_cluster_errors_in_words(tmp_path, kube, kcfg):
    args = files(*ISTIO_BASE, EXAMPLES / "web-traffic-split.yaml")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    down = kube.kubeconfig(tmp_path / "down", context="production",
                           server=f"https://127.0.0.1:{port}")
    rc, out, err = meshctl(tmp_path, "apply", *args, kubeconfig=down)
    assert rc == 1 and out == ""
    assert err.startswith("error: cannot read the server's version: cannot reach the API server "
                          f"at https://127.0.0.1:{port}:")
    stale = kube.kubeconfig(tmp_path / "stale", context="production", auth="token",
                            token="stale-token")
    for cmd in ("apply", "diff"):
        rc, out, err = meshctl(tmp_path, cmd, *args, kubeconfig=stale)
        assert rc == 1 and out == ""
        assert err.strip() == (
            "error: cannot read the server's version: the API server answered 401 Unauthorized: "
            "Unauthorized (the API server does not accept the credentials of the kubeconfig's "
            "user: token, client certificate or exec plugin)")
    kube.crds = set()
    rc, out, err = meshctl(tmp_path, "apply", *args, kubeconfig=kcfg)
    assert rc == 1 and "Istio's CRDs are not installed in this cluster" in err
    assert not [r for r in kube.requests if r[0] == "PATCH"]
    # Flags that only mean something for a cluster, with the store; an unknown provider.
    rc, out, err = meshctl(tmp_path, "apply", "--provider", "native", "--prune", *args)
    assert rc == 2 and "--provider native applies to the store" in err
    rc, out, err = meshctl(tmp_path, "apply", "--provider", "consul", *args)
    assert rc == 2 and 'unknown provider "consul"' in err
    rc, out, err = meshctl(tmp_path, "apply", "--context", "production",
                           *files(EXAMPLES / "services.yaml"), kubeconfig=kcfg)
    assert rc == 1 and "no provider: give --provider istio|linkerd" in err


def test_the_store_stays_the_default(tmp_path, kube, kcfg):
    # examples/ names both istio and linkerd: stored, as before; so is --provider native.
    rc, out, err = meshctl(tmp_path, "apply", *files(EXAMPLES), kubeconfig=kcfg)
    assert rc == 0, err
    assert "virtualservice/payment-service created" in out.splitlines()
    rc, out, err = meshctl(tmp_path, "apply", "--provider", "native",
                           *files(EXAMPLES / "mesh-istio.yaml"), kubeconfig=kcfg)
    assert rc == 0, err
    assert out.splitlines() == ["meshconfig/istio unchanged"]
    assert kube.requests == []


def test_flags_win_over_the_inputs_kubernetes_config(tmp_path, kube):
    args = files(*ISTIO_BASE, EXAMPLES / "web-traffic-split.yaml")
    staging = kube.kubeconfig(tmp_path / "kc", context="staging")
    # examples/kubernetes.yaml names the context production, which this kubeconfig lacks.
    rc, out, err = meshctl(tmp_path, "apply", *args, kubeconfig=staging)
    assert rc == 1 and out == ""
    assert err.strip() == 'error: context "production" is not in KUBECONFIG (contexts: staging)'
    assert kube.requests == []
    rc, out, err = meshctl(tmp_path, "apply", "--context", "staging", *args, kubeconfig=staging)
    assert rc == 0, err
    assert "VirtualService/default/web-service created" in out.splitlines()
    # --kubeconfig instead of $KUBECONFIG.
    rc, out, err = meshctl(tmp_path, "apply", "--context", "staging", "--kubeconfig", staging,
                           "-n", "shop", "--prune", *args)
    assert rc == 0, err
    lists = [p for m, p, _, _ in kube.requests if m == "GET" and "labelSelector=" in p]
    assert any(p.startswith("/apis/networking.istio.io/v1/virtualservices?") for p in lists)
    assert any(p.startswith("/apis/telemetry.istio.io/v1/telemetries?") for p in lists)


def test_prune_lists_at_the_versions_an_older_istio_serves(tmp_path):
    """Istio 1.14 serves networking.istio.io up to v1beta1 and telemetry only at v1alpha1:
    prune asks the server (API discovery) instead of assuming the newest."""
    old = FakeKube(tmp_path, crds=ISTIO_CRDS, served={
        "networking.istio.io": [
            ("v1beta1", ["virtualservices", "destinationrules", "gateways"]),
            ("v1alpha3", ["virtualservices", "destinationrules", "gateways"])],
        "security.istio.io": [("v1beta1", ["peerauthentications", "authorizationpolicies"])],
        "telemetry.istio.io": [("v1alpha1", ["telemetries"])]})
    old.start()
    try:
        kc = old.kubeconfig(tmp_path / "kc", context="production")
        full = files(*ISTIO_BASE, EXAMPLES / "payment-virtual-service.yaml",
                     EXAMPLES / "web-traffic-split.yaml")
        rc, out, err = meshctl(tmp_path, "apply", *full, kubeconfig=kc)
        assert rc == 0, err
        rc, out, err = meshctl(tmp_path, "apply", "--prune",
                               *files(*ISTIO_BASE, EXAMPLES / "payment-virtual-service.yaml"),
                               kubeconfig=kc)
        assert rc == 0, err
        assert "VirtualService/default/web-service pruned" in out.splitlines()
        lists = [p for m, p, _, _ in old.requests if m == "GET" and "labelSelector=" in p]
        assert any(p.startswith("/apis/networking.istio.io/v1beta1/virtualservices?")
                   for p in lists)
        assert any(p.startswith("/apis/telemetry.istio.io/v1alpha1/telemetries?")
                   for p in lists)
        # The newest Istio's versions against this server: refused as the real one refuses them.
        rc, out, err = meshctl(tmp_path, "apply", "--version", "1.30", *full, kubeconfig=kc)
        assert rc == 1
        assert "404" in err and "VirtualService" in err, err
    finally:
        old.stop()


@pytest.mark.parametrize("provider,version", [("istio", "1.14"), ("istio", "1.30"),
                                              ("linkerd", "2.20")])
def test_every_example_applies_then_diffs_clean(tmp_path, kube, kcfg, provider, version):
    for name in ("payment-v1", "payment-v2"):  # the user's Services Linkerd annotates
        kube.apply_as("kubectl", {"apiVersion": "v1", "kind": "Service",
                                  "metadata": {"name": name, "namespace": "default"},
                                  "spec": {"ports": [{"port": 80}]}}, "services")
    args = ["--provider", provider, "--version", version, "--allow-partial", *files(EXAMPLES)]
    rc, out, err = meshctl(tmp_path, "apply", *args, kubeconfig=kcfg)
    assert rc == 0, err
    want = rendered(tmp_path, *args)
    assert len(out.splitlines()) == len(want)
    rc, out, err = meshctl(tmp_path, "diff", "--exit-code", *args, kubeconfig=kcfg)
    assert (rc, out) == (0, ""), err
    rc, out, err = meshctl(tmp_path, "apply", *args, kubeconfig=kcfg)
    assert rc == 0, err
    assert all(l.endswith(" unchanged") for l in out.splitlines())
