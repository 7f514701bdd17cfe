# SPDX-License-Identifier: Apache-2.0
"""`meshctl render`: the seed's examples as Istio and Linkerd manifests.

Golden tests: each example, rendered with what it refers to (the Services, and for a policy the
VirtualService it guards) and the seed's MeshConfig for the provider, equals the reviewed file in
tests/golden/PROVIDER-VERSION/ (with the warnings of a partial translation in NAME.warnings); so
does the whole examples/ directory at once (examples.yaml). Each provider is rendered at the
seed's version (Istio 1.14, Linkerd 2.11: much of what we emit needs a later Linkerd, and is
refused) and at the newest version we know. After a deliberate change to a translator, regenerate them with
MESH_UPDATE_GOLDEN=1 and review the diff before committing.

Schema tests: every object rendered from any example validates against the real CRD OpenAPI
schema of its kind and version, read from ../shared/schemas (upstream Istio, Linkerd and Gateway
API CRDs, reference data kept outside the repository); they are skipped, saying so, where that
folder is absent. Core objects (a partial v1 Service or Namespace carrying annotations) have no
CRD and are checked for their own shape.
"""
import json
import os
import pathlib
import re
import subprocess

import pytest
import yaml

from conftest import EXAMPLES, ROOT, RUN_TIMEOUT, check_sanitizer_output, meshctl_path

GOLDEN = ROOT / "tests" / "golden"
SCHEMAS = ROOT.parent / "shared" / "schemas"
UPDATE = os.environ.get("MESH_UPDATE_GOLDEN") == "1"
PROVIDERS = ("istio", "linkerd")
# (provider, version): the seed's (from its MeshConfig), and the newest we know.
TARGETS = (("istio", "1.14"), ("istio", "1.30"), ("linkerd", "2.11"), ("linkerd", "2.20"))
MESH_CONFIG = {"istio": EXAMPLES / "mesh-istio.yaml", "linkerd": EXAMPLES / "mesh-linkerd.yaml"}
# The examples that are resources to render (the MeshConfigs and Services come with each).
EXAMPLE_FILES = sorted(p for p in EXAMPLES.glob("*.yaml")
                       if p.name not in ("mesh-istio.yaml", "mesh-linkerd.yaml"))
# What an example refers to besides the Services: a translator refuses a dangling reference.
CONTEXT = {"payment-circuit-breaker": ["payment-virtual-service.yaml"],
           "web-fault-injection": ["web-traffic-split.yaml"]}
MANAGED = ("app.kubernetes.io/managed-by", "clusterdb-mesh")
SOURCE = "mesh.clusterdb.io/source"


def render(*args, check=True):
    argv = [str(meshctl_path()), "render", *map(str, args)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")}
    r = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    check_sanitizer_output(r.stderr, argv)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def render_example(provider, version, example):
    """example: a file of examples/, or examples/ itself."""
    if example == EXAMPLES:
        files = [EXAMPLES]
    else:
        files = [MESH_CONFIG[provider], EXAMPLES / "services.yaml"]
        files += [EXAMPLES / f for f in CONTEXT.get(example.stem, [])]
        if example != EXAMPLES / "services.yaml":
            files.append(example)
    args = ["--provider", provider, "--version", version]
    for f in files:
        args += ["-f", f]
    return render(*args, "--allow-partial", check=False)


def objects(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


# --- golden files ---


@pytest.mark.parametrize("provider,version", TARGETS, ids=lambda v: v)
@pytest.mark.parametrize("example", EXAMPLE_FILES + [EXAMPLES], ids=lambda p: p.stem)
def test_examples_render_as_the_reviewed_golden_files(provider, version, example):
    r = render_example(provider, version, example)
    assert r.returncode == 0, r.stderr
    warnings = "".join(ln + "\n" for ln in r.stderr.splitlines() if ln.startswith("warning: "))
    out = GOLDEN / f"{provider}-{version}" / f"{example.stem}.yaml"
    warn = GOLDEN / f"{provider}-{version}" / f"{example.stem}.warnings"
    if UPDATE:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(r.stdout)
        if warnings:
            warn.write_text(warnings)
        elif warn.exists():
            warn.unlink()
    assert out.exists(), f"no golden file {out}: run with MESH_UPDATE_GOLDEN=1 and review it"
    assert r.stdout == out.read_text(), f"{out} differs: review, then MESH_UPDATE_GOLDEN=1"
    assert warnings == (warn.read_text() if warn.exists() else ""), f"{warn} differs"
    source = r"[A-Za-z]+/[a-z0-9-]+/[a-z0-9.-]+"
    for obj in objects(r.stdout):
        meta = obj["metadata"]
        assert re.fullmatch(f"{source}(,{source})*", meta["annotations"][SOURCE]), obj
        # Objects we create carry our label, so that a prune finds exactly them; the user's own
        # Services and Namespaces, which we only annotate, must never look like ours.
        if obj["apiVersion"] == "v1":
            assert MANAGED[0] not in meta.get("labels", {}), obj
        else:
            assert meta["labels"][MANAGED[0]] == MANAGED[1], obj


def test_every_golden_file_belongs_to_an_example():
    expected = {f"{p.stem}.yaml" for p in EXAMPLE_FILES} | {"examples.yaml"}
    assert {p.name for p in GOLDEN.iterdir()} == {f"{p}-{v}" for p, v in TARGETS}
    for provider, version in TARGETS:
        have = {p.name for p in (GOLDEN / f"{provider}-{version}").glob("*.yaml")}
        assert have == expected, f"{provider} {version}: stale or missing golden files"


# --- CRD schemas ---


def load_crds():
    """{(group, version, kind): openAPIV3Schema} of every CRD in ../shared/schemas."""
    crds = {}
    for path in sorted(SCHEMAS.rglob("*.yaml")):
        text = re.sub(r"\{\{[^}]*\}\}", "X", path.read_text())  # the Linkerd charts' Helm lines
        for doc in yaml.safe_load_all(text):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for v in spec["versions"]:
                if v.get("served", True) and "schema" in v:
                    crds[(spec["group"], v["name"], spec["names"]["kind"])] = \
                        v["schema"]["openAPIV3Schema"]
    return crds


def as_json_schema(node):
    """Kubernetes structural schema → JSON Schema: int-or-string fields, and the OpenAPI
    keywords JSON Schema does not know, which it would ignore anyway."""
    if isinstance(node, dict):
        out = {k: as_json_schema(v) for k, v in node.items()}
        if out.pop("x-kubernetes-int-or-string", False):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [as_json_schema(v) for v in node]
    return node


@pytest.fixture(scope="module")
def crds():
    if not SCHEMAS.is_dir():
        pytest.skip(f"no CRD schemas at {SCHEMAS} (the shared reference data is not on this "
                    "machine): nothing to validate against")
    import jsonschema  # noqa: F401 - python3-jsonschema, installed by make deps
    return load_crds()


def check_core(obj):
    """The core objects a translator may emit to carry annotations: nothing but metadata."""
    assert obj["apiVersion"] == "v1" and obj["kind"] in ("Service", "Namespace"), obj
    assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}, obj
    assert obj.get("spec", {}) == {}, obj
    assert obj["metadata"].get("annotations"), obj


@pytest.mark.parametrize("provider,version", TARGETS, ids=lambda v: v)
def test_every_rendered_object_validates_against_its_crd(provider, version, crds):
    import jsonschema
    checked = set()
    for example in EXAMPLE_FILES + [EXAMPLES]:
        r = render_example(provider, version, example)
        assert r.returncode == 0, r.stderr
        for obj in objects(r.stdout):
            group, _, api_version = obj["apiVersion"].rpartition("/")
            if not group:
                check_core(obj)
                continue
            schema = crds.get((group, api_version, obj["kind"]))
            assert schema, f"{example.name}: no CRD serves {obj['apiVersion']} {obj['kind']}"
            try:
                jsonschema.validate(obj, as_json_schema(schema))
            except jsonschema.ValidationError as e:
                pytest.fail(f"{example.name}: {obj['kind']} {obj['metadata']['name']}: "
                            f"{'.'.join(map(str, e.absolute_path))}: {e.message}")
            checked.add((obj["apiVersion"], obj["kind"]))
    # Linkerd 2.11 predates every CRD we emit: all of it is refused, nothing is left to check.
    assert checked or (provider, version) == ("linkerd", "2.11"), "nothing was validated"


def test_the_validator_refuses_a_wrong_field(crds):
    """The schema test would notice: a field of the wrong type fails against the real CRD."""
    import jsonschema
    schema = as_json_schema(crds[("networking.istio.io", "v1", "VirtualService")])
    bad = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": "x"}, "spec": {"hosts": "payment"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# --- the command ---


def test_json_output_is_a_list_of_the_same_objects():
    args = ["--provider", "istio", "-f", MESH_CONFIG["istio"], "-f", EXAMPLES / "services.yaml",
            "-f", EXAMPLES / "payment-virtual-service.yaml"]
    as_yaml = objects(render(*args).stdout)
    as_json = json.loads(render(*args, "-o", "json").stdout)
    assert as_json["apiVersion"] == "v1" and as_json["kind"] == "List"
    assert as_json["items"] == as_yaml


def test_provider_comes_from_the_mesh_config():
    r = render("-f", MESH_CONFIG["istio"], "-f", EXAMPLES / "services.yaml", "-f",
               EXAMPLES / "payment-virtual-service.yaml")
    assert any(o["apiVersion"].startswith("networking.istio.io/") for o in objects(r.stdout))
    r = render("-f", EXAMPLES / "services.yaml", check=False)
    assert r.returncode == 1
    assert "no provider: give --provider istio|linkerd" in r.stderr


def test_unknown_provider_and_formats_are_refused():
    r = render("--provider", "consul", "-f", EXAMPLES / "services.yaml", check=False)
    assert r.returncode == 2 and 'unknown provider "consul" (use istio or linkerd)' in r.stderr
    r = render("--provider", "istio", "-o", "xml", "-f", EXAMPLES / "services.yaml", check=False)
    assert r.returncode == 2 and 'unknown output format "xml"' in r.stderr


def test_invalid_input_is_refused_with_its_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: mesh.clusterdb.io/v1\nkind: VirtualService\nmetadata:\n"
                   "  name: x\nspec:\n  hosts: [a]\n  http_routes:\n"
                   "    - destinations: [{host: b, weight: 900}]\n")
    r = render("--provider", "istio", "-f", bad, check=False)
    assert r.returncode == 1
    assert re.search(r"bad\.yaml:8:\d+: spec\.http_routes\[0\]\.destinations\[0\]\.weight",
                     r.stderr), r.stderr


def test_linkerd_refuses_what_it_cannot_express_unless_partial():
    """The seed's circuit breaker has max_connections: Linkerd has no concurrency limit."""
    args = ["--provider", "linkerd", "-f", MESH_CONFIG["linkerd"], "-f",
            EXAMPLES / "services.yaml", "-f", EXAMPLES / "payment-circuit-breaker.yaml"]
    r = render(*args, check=False)
    assert r.returncode == 1
    assert "linkerd cannot express circuit breaker: max_connections" in r.stderr, r.stderr
    assert "--allow-partial" in r.stderr
    r = render(*args, "--allow-partial")
    assert "warning: CircuitBreaker default/" in r.stderr
    assert "linkerd cannot express circuit breaker: max_connections" in r.stderr


def test_capability_matrix_is_what_docs_providers_md_shows():
    matrix = render("--capabilities").stdout
    assert matrix.startswith("| feature | native | istio | linkerd |")
    doc = (ROOT / "docs" / "providers.md").read_text()
    begin, end = "<!-- capability matrix: begin -->\n", "<!-- capability matrix: end -->"
    assert begin in doc and end in doc, "docs/providers.md lost its matrix markers"
    shown = doc.split(begin, 1)[1].split(end, 1)[0]
    assert shown == matrix, ("docs/providers.md's matrix is stale: replace it with the output "
                             "of `meshctl render --capabilities`")
