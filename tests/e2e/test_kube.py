# SPDX-License-Identifier: Apache-2.0
"""meshctl against a Kubernetes API server: `meshctl cluster register` over HTTPS with client
certificates, bearer tokens and exec plugins, the provider's CRDs present or not, refused
credentials and an unreachable server. The server is tests/e2e/kube_fake.py (the network peer
only: TLS, authentication, the wire format and Status errors)."""
import os
import socket

import pytest

from conftest import RUN_TIMEOUT, Mesh, base_env
from kube_fake import ISTIO_CRDS, LINKERD_CRDS, FakeKube


@pytest.fixture
def kube(tmp_path):
    fake = FakeKube(tmp_path, crds=ISTIO_CRDS + LINKERD_CRDS).start()
    yield fake
    fake.stop()


def run(mesh, tmp_path, *args, kubeconfig=None):
    env = base_env()
    env.pop("KUBECONFIG", None)
    env["HOME"] = str(tmp_path)  # no ~/.kube/config of the machine's
    if kubeconfig:
        env["KUBECONFIG"] = str(kubeconfig)
    return mesh.run(*args, env=env, timeout=RUN_TIMEOUT)


def test_register_with_client_certificate(meshctl, mesh, tmp_path, kube):
    cfg = kube.kubeconfig(tmp_path / "kc", auth="cert", context="production")
    rc, out, err = run(mesh, tmp_path, "cluster", "register", "--context", "production",
                       "--namespace", "default", "--provider", "istio", kubeconfig=cfg)
    assert rc == 0, err
    assert out.splitlines()[0] == f"Kubernetes v1.30.2 at {kube.url} (context production, " \
                                  "namespace default)"
    for crd in ISTIO_CRDS:
        assert f"CRD {crd} installed" in out
    assert out.splitlines()[-1] == "cluster ready for istio"
    # Every request carried the client certificate; the CRDs were read by name.
    paths = [p for m, p, _, ident in kube.requests if ident == "cert:admin"]
    assert "/version" in paths
    assert "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" \
           "virtualservices.networking.istio.io" in paths
    assert all(ident == "cert:admin" for _, _, _, ident in kube.requests)


def test_register_with_token_file_ca_and_linkerd(meshctl, mesh, tmp_path, kube):
    cfg = kube.kubeconfig(tmp_path / "kc", auth="token", ca="file", namespace="shop")
    rc, out, err = run(mesh, tmp_path, "cluster", "register", "--provider", "linkerd",
                       kubeconfig=cfg)
    assert rc == 0, err
    assert "(context fake, namespace shop)" in out
    assert out.splitlines()[-1] == "cluster ready for linkerd"
    assert {ident for _, _, _, ident in kube.requests} == {"token"}


def test_register_with_exec_plugin(meshctl, mesh, tmp_path, kube):
    plugin = tmp_path / "get-token.sh"
    plugin.write_text("#!/bin/sh\nprintf '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                      "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s\"}}' \"$TOKEN\"\n")
    plugin.chmod(0o700)
    cfg = kube.kubeconfig(tmp_path / "kc", auth="none")
    text = cfg.read_text().replace(
        "user: {}", "user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
        "      command: ./get-token.sh\n      env: [{name: TOKEN, value: good-token}]")
    cfg.write_text(text)
    rc, out, err = run(mesh, tmp_path, "cluster", "register", "--provider", "istio",
                       kubeconfig=cfg)
    assert rc == 0, err + text
    assert {ident for _, _, _, ident in kube.requests} == {"token"}


def test_register_crds_missing(meshctl, mesh, tmp_path, kube):
    cfg = kube.kubeconfig(tmp_path / "kc")
    kube.crds = set(LINKERD_CRDS)
    rc, out, err = run(mesh, tmp_path, "cluster", "register", "--provider", "istio",
                       kubeconfig=cfg)
    assert rc == 1 and out == ""
    assert err.startswith("error: Istio's CRDs are not installed in this cluster (v1.30.2 at "
                          f"{kube.url}, context fake; missing: virtualservices.networking.istio.io,")
    assert "install Istio (istioctl install) or its base chart" in err
    assert err.rstrip().endswith("then run this again")
    kube.crds = set(LINKERD_CRDS) - {"servers.policy.linkerd.io"}
    rc, out, err = run(mesh, tmp_path, "cluster", "register", "--provider", "linkerd",
                       kubeconfig=cfg)
    assert rc == 1
    assert "some of Linkerd's CRDs are missing in this cluster" in err
    assert "missing: servers.policy.linkerd.io)" in err
    assert "linkerd install --crds" in err


def test_register_refused_credentials(meshctl, mesh, tmp_path, kube):
    cfg = kube.kubeconfig(tmp_path / "kc", auth="token", token="stale-token")
    rc, out, err = run(mesh, tmp_path, "cluster", "register", "--provider", "istio",
                       kubeconfig=cfg)
    assert rc == 1
    assert err.strip() == (
        "error: cannot read the server's version: the API server answered 401 Unauthorized: "
        "Unauthorized (the API server does not accept the credentials of the kubeconfig's "
        "user: token, client certificate or exec plugin)")


def test_register_unreachable_and_untrusted(meshctl, mesh, tmp_path, kube):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    cfg = kube.kubeconfig(tmp_path / "kc", server=f"https://127.0.0.1:{port}")
    rc, out, err = run(mesh, tmp_path, "cluster", "register", "--provider", "istio",
                       kubeconfig=cfg)
    assert rc == 1
    assert err.startswith(f"error: cannot read the server's version: cannot reach the API "
                          f"server at https://127.0.0.1:{port}:")
    # The system trust store does not know the fake's CA: TLS fails and says so.
    cfg = kube.kubeconfig(tmp_path / "kc2", ca="none")
    rc, out, err = run(mesh, tmp_path, "cluster", "register", "--provider", "istio",
                       kubeconfig=cfg)
    assert rc == 1
    assert f"TLS with the API server at {kube.url} failed" in err
    assert kube.requests == []


def test_register_kubeconfig_problems(meshctl, mesh, tmp_path, kube):
    cfg = kube.kubeconfig(tmp_path / "kc", context="staging")
    rc, out, err = run(mesh, tmp_path, "cluster", "register", "--context", "production",
                       "--provider", "istio", kubeconfig=cfg)
    assert rc == 1
    assert err.strip() == 'error: context "production" is not in KUBECONFIG (contexts: staging)'
    rc, out, err = run(mesh, tmp_path, "cluster", "register", "--provider", "istio")
    assert rc == 1
    assert f"cannot read kubeconfig {tmp_path}/.kube/config" in err
    rc, out, err = run(mesh, tmp_path, "cluster", "register", kubeconfig=cfg)
    assert rc == 2 and "no provider" in err
    rc, out, err = run(mesh, tmp_path, "cluster", "register", "--provider", "native",
                       kubeconfig=cfg)
    assert rc == 2 and 'unknown provider "native"' in err


def test_register_takes_the_provider_of_the_stored_mesh_config(meshctl, mesh, tmp_path, kube):
    cfg = kube.kubeconfig(tmp_path / "kc")
    # --provider native: a MeshConfig naming linkerd alone would otherwise go to the cluster.
    mesh.ok("apply", "--provider", "native", "-f", os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                                        "mesh-linkerd.yaml"))
    rc, out, err = run(mesh, tmp_path, "cluster", "register", kubeconfig=cfg)
    assert rc == 0, err
    assert out.splitlines()[-1] == "cluster ready for linkerd"
