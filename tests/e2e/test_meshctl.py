# SPDX-License-Identifier: Apache-2.0
"""meshctl as a user drives it: apply the seed's examples, read them back in every format,
change, diff, validate and delete them, and get the exit codes and messages right."""
import json
import re
import shutil

import pytest

from conftest import EXAMPLES, base_env, strip_versions

# What examples/ holds, in the order apply reads it (file names sorted, documents in file order).
EXAMPLE_RESOURCES = [
    ("kubernetesconfig", "production"),
    ("meshconfig", "istio"),
    ("meshconfig", "linkerd"),
    ("observabilityconfig", "default"),
    ("circuitbreaker", "payment-service"),
    ("virtualservice", "payment"),
    ("securitypolicy", "payment-security"),
    ("virtualservice", "payment-service"),
    ("service", "payment-v1"),
    ("service", "payment-v2"),
    ("service", "web-v1"),
    ("service", "web-v2"),
    ("service", "orders"),
    ("faultinjection", "web-service"),
    ("virtualservice", "web-service"),
]

KIND_NAMES = {
    "virtualservice": "VirtualService",
    "securitypolicy": "SecurityPolicy",
    "circuitbreaker": "CircuitBreaker",
    "faultinjection": "FaultInjection",
    "service": "Service",
    "meshconfig": "MeshConfig",
    "observabilityconfig": "ObservabilityConfig",
    "kubernetesconfig": "KubernetesConfig",
}

# The table columns between NAME and GENERATION, per kind.
KIND_COLUMNS = {
    "virtualservice": ["HOSTS", "GATEWAYS", "ROUTES"],
    "securitypolicy": ["MTLS", "RULES"],
    "circuitbreaker": ["SERVICE", "MAX-CONN", "MAX-PENDING", "MAX-REQ", "MAX-RETRIES"],
    "faultinjection": ["SERVICE", "DELAY", "ABORT"],
    "service": ["PROTOCOL", "ENDPOINTS"],
    "meshconfig": ["PROVIDER", "VERSION"],
    "observabilityconfig": ["PROMETHEUS", "GRAFANA", "JAEGER"],
    "kubernetesconfig": ["CONTEXT", "TARGET-NAMESPACE"],
}

BAD_WEIGHTS = """\
apiVersion: mesh.clusterdb.io/v1
kind: VirtualService
metadata:
  name: broken
spec:
  hosts: [broken.example.com]
  http_routes:
    - destinations:
        - host: web-v1
          weight: 90
        - host: web-v2
          weight: 5
"""

STANDALONE_VS = """\
apiVersion: mesh.clusterdb.io/v1
kind: VirtualService
metadata:
  name: from-stdin
  namespace: default
spec:
  hosts: [stdin.example.com]
  http_routes:
    - destinations:
        - host: web-v1
"""


def example_names(kind):
    return sorted(name for k, name in EXAMPLE_RESOURCES if k == kind)


def parse_table(text):
    """Rows of an aligned table as dicts, checking that every cell starts under its header."""
    lines = text.rstrip("\n").split("\n")
    header = lines[0]
    names = header.split()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    rows = []
    for line in lines[1:]:
        assert line == line.rstrip(), f"trailing blanks in {line!r}"
        cells = [m for m in re.finditer(r"\S+", line)]
        assert len(cells) == len(names), f"{line!r} does not have the columns {names}"
        for cell, start in zip(cells, starts):
            assert cell.start() == start, f"{line!r} is not aligned with {header!r}"
        rows.append(dict(zip(names, (c.group() for c in cells))))
    return names, rows


def write(path, text):
    path.write_text(text)
    return path


def copy_examples(dst):
    dst.mkdir(parents=True, exist_ok=True)
    for f in EXAMPLES.iterdir():
        if f.is_file() and f.suffix in (".yaml", ".yml", ".json"):
            shutil.copy(f, dst / f.name)
    return dst


# --- apply -----------------------------------------------------------------------------------


def test_apply_examples_creates_every_resource_in_input_order(mesh):
    out = mesh.apply_examples()
    assert out.splitlines() == [f"{k}/{n} created" for k, n in EXAMPLE_RESOURCES]


def test_reapply_reports_everything_unchanged_and_writes_nothing(mesh):
    mesh.apply_examples()
    before = mesh.snapshot()
    out = mesh.apply_examples()
    assert out.splitlines() == [f"{k}/{n} unchanged" for k, n in EXAMPLE_RESOURCES]
    assert mesh.snapshot() == before


def test_changed_resource_is_configured_with_generation_2(mesh, tmp_path):
    mesh.apply_examples()
    old = mesh.get_json("vs", "payment-service")
    changed = (EXAMPLES / "payment-virtual-service.yaml").read_text()
    changed = changed.replace("weight: 90", "weight: 75").replace("weight: 10", "weight: 25")
    out = mesh.ok("apply", "-f", write(tmp_path / "vs.yaml", changed))
    assert out == "virtualservice/payment-service configured\n"

    new = mesh.get_json("vs", "payment-service")
    assert old["metadata"]["generation"] == 1
    assert new["metadata"]["generation"] == 2
    assert new["metadata"]["resource_version"] > old["metadata"]["resource_version"]
    weights = [d["weight"] for d in new["spec"]["http_routes"][0]["destinations"]]
    assert weights == [75, 25]
    _, rows = parse_table(mesh.ok("get", "vs"))
    assert {r["NAME"]: r["GENERATION"] for r in rows} == {
        "payment": "1", "payment-service": "2", "web-service": "1"}


def test_apply_from_stdin(mesh):
    out = mesh.ok("apply", "-f", "-", input=STANDALONE_VS)
    assert out == "virtualservice/from-stdin created\n"
    assert mesh.get_json("vs", "from-stdin")["spec"]["hosts"] == ["stdin.example.com"]


def test_apply_several_files_in_one_transaction(mesh):
    out = mesh.ok(
        "apply",
        "-f", EXAMPLES / "services.yaml",
        "-f", EXAMPLES / "payment-virtual-service.yaml",
    )
    assert out.splitlines()[-1] == "virtualservice/payment-service created"
    assert len(out.splitlines()) == 6


def test_invalid_file_in_a_directory_writes_nothing_from_the_directory(mesh, tmp_path):
    d = copy_examples(tmp_path / "in")
    # sorted last, so that every valid file before it has been read already
    write(d / "zz-broken.yaml", BAD_WEIGHTS)
    rc, out, err = mesh.run("apply", "-f", d)
    assert rc == 1
    assert out == ""
    assert re.search(
        r"zz-broken\.yaml:\d+:\d+: spec\.http_routes\[0\]\.destinations: "
        r"weights sum to 95, must be 100",
        err,
    ), err
    assert mesh.snapshot() == []


def test_every_problem_is_printed_before_refusing(mesh, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    write(d / "a.yaml", BAD_WEIGHTS)
    write(d / "b.yaml", BAD_WEIGHTS.replace("weight: 5", "weight: 1"))
    rc, _, err = mesh.run("apply", "-f", d)
    assert rc == 1
    assert re.search(r"a\.yaml:\d+:\d+: .*weights sum to 95", err), err
    assert re.search(r"b\.yaml:\d+:\d+: .*weights sum to 91", err), err
    assert mesh.snapshot() == []


def test_a_resource_defined_twice_is_refused(mesh, tmp_path):
    # twice in one file (the parser sees it) and once in each of two files (meshctl sees it)
    one = write(tmp_path / "twice.yaml", STANDALONE_VS + "---\n" + STANDALONE_VS)
    rc, out, err = mesh.run("apply", "-f", one)
    assert rc == 1 and out == ""
    assert "duplicate VirtualService default/from-stdin" in err
    a = write(tmp_path / "a.yaml", STANDALONE_VS)
    b = write(tmp_path / "b.yaml", STANDALONE_VS)
    rc, out, err = mesh.run("apply", "-f", a, "-f", b)
    assert rc == 1 and out == ""
    assert err == (
        f"{b}: metadata.name: duplicate VirtualService default/from-stdin (first defined in {a})\n"
    )
    rc, out, err = mesh.run("validate", "-f", a, "-f", b)
    assert rc == 1 and out == f"{a}: 1 document valid\n"
    assert "duplicate VirtualService default/from-stdin" in err
    assert mesh.snapshot() == []


def test_stale_resource_version_is_a_conflict_and_writes_nothing(mesh, tmp_path):
    mesh.apply_examples()
    stale = mesh.ok("get", "vs", "payment-service", "-o", "yaml")
    assert "resource_version:" in stale
    newer = (EXAMPLES / "payment-virtual-service.yaml").read_text().replace(
        "external-gateway", "internal-gateway"
    )
    mesh.ok("apply", "-f", write(tmp_path / "newer.yaml", newer))
    before = mesh.snapshot()
    stale = stale.replace("payment.example.com", "pay.example.com")
    rc, out, err = mesh.run("apply", "-f", write(tmp_path / "stale.yaml", stale))
    assert rc == 1, out
    assert err.startswith("error: ")
    assert mesh.snapshot() == before


def test_json_input_files_equal_yaml_ones(mesh, other_mesh, tmp_path):
    vs = {
        "apiVersion": "mesh.clusterdb.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "payment-service", "namespace": "default"},
        "spec": {
            "hosts": ["payment.example.com"],
            "gateways": ["external-gateway"],
            "http_routes": [
                {
                    "name": "primary",
                    "matches": [{"path": "/api/v1/*"}],
                    "destinations": [
                        {"host": "payment-v1", "weight": 90},
                        {"host": "payment-v2", "weight": 10},
                    ],
                }
            ],
        },
    }
    cb = {
        "apiVersion": "mesh.clusterdb.io/v1",
        "kind": "CircuitBreaker",
        "metadata": {"name": "payment-service", "namespace": "default"},
        "spec": {
            "service": "payment-service",
            "max_connections": 100,
            "max_pending_requests": 100,
            "max_requests": 1000,
            "max_retries": 3,
            "detection": {"consecutive_errors": 5, "interval": "10s", "base_ejection_time": "30s"},
        },
    }
    d = tmp_path / "json"
    d.mkdir()
    # one file with a top-level array: one document per element
    write(d / "both.json", json.dumps([vs, cb], indent=2))
    assert mesh.ok("apply", "-f", d).splitlines() == [
        "virtualservice/payment-service created",
        "circuitbreaker/payment-service created",
    ]
    other_mesh.ok(
        "apply",
        "-f", EXAMPLES / "payment-virtual-service.yaml",
        "-f", EXAMPLES / "payment-circuit-breaker.yaml",
    )
    for kind in ("vs", "cb"):
        from_json = strip_versions(mesh.get_json(kind, "payment-service"))
        from_yaml = strip_versions(other_mesh.get_json(kind, "payment-service"))
        assert from_json == from_yaml
    # and applying the YAML over what JSON created changes nothing
    out = mesh.ok("apply", "-f", EXAMPLES / "payment-virtual-service.yaml")
    assert out == "virtualservice/payment-service unchanged\n"


def test_recursive_reads_subdirectories_only_with_R(mesh, tmp_path):
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    shutil.copy(EXAMPLES / "services.yaml", d / "services.yaml")
    shutil.copy(EXAMPLES / "web-traffic-split.yaml", d / "sub" / "web.yaml")
    write(d / "notes.txt", "not a resource file")
    out = mesh.ok("apply", "-f", d)
    assert "virtualservice/web-service" not in out
    out = mesh.ok("apply", "-R", "-f", d)
    assert "virtualservice/web-service created" in out


def test_apply_with_nothing_to_apply_fails(mesh, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = mesh.run("apply", "-f", empty)
    assert rc == 1 and err.startswith("error: no .yaml, .yml or .json files")
    rc, _, err = mesh.run("apply", "-f", tmp_path / "missing.yaml")
    assert rc == 1 and "missing.yaml" in err and "No such file" in err


# --- get -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KIND_NAMES))
def test_get_every_kind_in_every_format(mesh, kind):
    mesh.apply_examples()
    names = example_names(kind)

    header, rows = parse_table(mesh.ok("get", kind))
    assert header == ["NAME"] + KIND_COLUMNS[kind] + ["GENERATION"]
    assert [r["NAME"] for r in rows] == names
    assert all(r["GENERATION"] == "1" for r in rows)

    docs = mesh.get_json(kind)
    assert isinstance(docs, list)
    assert [d["metadata"]["name"] for d in docs] == names
    assert {d["kind"] for d in docs} == {KIND_NAMES[kind]}
    assert all(d["apiVersion"] == "mesh.clusterdb.io/v1" for d in docs)

    yaml_text = mesh.ok("get", kind, "-o", "yaml")
    assert yaml_text.count(f"kind: {KIND_NAMES[kind]}") == len(names)
    for name in names:
        assert re.search(rf"^\s+name: {re.escape(name)}$", yaml_text, re.M), yaml_text

    assert mesh.ok("get", kind, "-o", "name").splitlines() == [f"{kind}/{n}" for n in names]

    # one by name: JSON is the object itself, YAML one document, the table one row
    one = mesh.get_json(kind, names[0])
    assert one["metadata"]["name"] == names[0]
    assert one["metadata"]["generation"] == 1
    assert one["metadata"]["resource_version"] >= 1
    _, rows = parse_table(mesh.ok("get", kind, names[0]))
    assert [r["NAME"] for r in rows] == [names[0]]


def test_get_table_cells_show_the_seed_values(mesh):
    mesh.apply_examples()
    _, vs = parse_table(mesh.ok("get", "vs"))
    assert vs == [
        {"NAME": "payment", "HOSTS": "payment", "GATEWAYS": "-", "ROUTES": "1",
         "GENERATION": "1"},
        {"NAME": "payment-service", "HOSTS": "payment.example.com",
         "GATEWAYS": "external-gateway", "ROUTES": "1", "GENERATION": "1"},
        {"NAME": "web-service", "HOSTS": "web.example.com", "GATEWAYS": "-", "ROUTES": "1",
         "GENERATION": "1"},
    ]
    _, sp = parse_table(mesh.ok("get", "sp"))
    assert sp == [{"NAME": "payment-security", "MTLS": "strict", "RULES": "1", "GENERATION": "1"}]
    _, cb = parse_table(mesh.ok("get", "cb"))
    assert cb == [{"NAME": "payment-service", "SERVICE": "payment-service", "MAX-CONN": "100",
                   "MAX-PENDING": "100", "MAX-REQ": "1000", "MAX-RETRIES": "3",
                   "GENERATION": "1"}]
    _, fi = parse_table(mesh.ok("get", "fi"))
    assert fi == [{"NAME": "web-service", "SERVICE": "web-service", "DELAY": "100ms",
                   "ABORT": "503@10%", "GENERATION": "1"}]
    _, svc = parse_table(mesh.ok("get", "svc"))
    assert {r["NAME"]: r["ENDPOINTS"] for r in svc} == {
        "orders": "127.0.0.1:18085", "payment-v1": "127.0.0.1:18081",
        "payment-v2": "127.0.0.1:18082", "web-v1": "127.0.0.1:18083",
        "web-v2": "127.0.0.1:18084",
    }
    assert {r["PROTOCOL"] for r in svc} == {"http"}
    _, mc = parse_table(mesh.ok("get", "mc"))
    assert [(r["NAME"], r["PROVIDER"], r["VERSION"]) for r in mc] == [
        ("istio", "istio", "1.14"), ("linkerd", "linkerd", "2.11")]
    _, oc = parse_table(mesh.ok("get", "oc"))
    assert oc == [{"NAME": "default", "PROMETHEUS": "http://prometheus:9090",
                   "GRAFANA": "http://grafana:3000", "JAEGER": "http://jaeger:16686",
                   "GENERATION": "1"}]
    _, kc = parse_table(mesh.ok("get", "kc"))
    assert kc == [{"NAME": "production", "CONTEXT": "production", "TARGET-NAMESPACE": "default",
                   "GENERATION": "1"}]


def test_get_payment_service_yaml_is_the_seed_virtual_service(mesh):
    mesh.apply_examples()
    text = mesh.ok("get", "vs", "payment-service", "-n", "default", "-o", "yaml")
    for pattern in [
        r"^apiVersion: mesh\.clusterdb\.io/v1$",
        r"^kind: VirtualService$",
        r"^  name: payment-service$",
        r"^  namespace: default$",
        r"^  resource_version: \d+$",
        r"^  generation: 1$",
        r"^spec:$",
        r"^\s+- payment\.example\.com$",
        r"^\s+- external-gateway$",
        r"^\s+(- )?name: primary$",
        r"^\s+(- )?path: [\"']?/api/v1/\*[\"']?$",
        r"^\s+(- )?host: payment-v1$",
        r"^\s+weight: 90$",
        r"^\s+(- )?host: payment-v2$",
        r"^\s+weight: 10$",
    ]:
        assert re.search(pattern, text, re.M), f"{pattern} not in:\n{text}"

    doc = mesh.get_json("vs", "payment-service", "-n", "default")
    assert doc["spec"]["hosts"] == ["payment.example.com"]
    assert doc["spec"]["gateways"] == ["external-gateway"]
    route = doc["spec"]["http_routes"][0]
    assert route["name"] == "primary"
    assert route["matches"][0]["path"] == "/api/v1/*"
    assert route["destinations"] == [
        {"host": "payment-v1", "weight": 90},
        {"host": "payment-v2", "weight": 10},
    ]


def test_get_all_lists_every_kind(mesh):
    mesh.apply_examples()
    names = mesh.ok("get", "all", "-o", "name").splitlines()
    assert sorted(names) == sorted(f"{k}/{n}" for k, n in EXAMPLE_RESOURCES)
    table = mesh.ok("get", "all")
    sections = table.strip("\n").split("\n\n")
    assert len(sections) == len(KIND_NAMES)
    for section in sections:
        header, rows = parse_table(section)
        kind = rows[0]["NAME"].split("/")[0]
        assert header == ["NAME"] + KIND_COLUMNS[kind] + ["GENERATION"]
        assert [r["NAME"] for r in rows] == [f"{kind}/{n}" for n in example_names(kind)]
    docs = mesh.get_json("all")
    assert len(docs) == len(EXAMPLE_RESOURCES)
    assert mesh.ok("get", "all", "-o", "yaml").count("apiVersion: mesh.clusterdb.io/v1") == len(
        EXAMPLE_RESOURCES
    )


def test_get_accepts_kind_names_plurals_and_comma_lists(mesh):
    mesh.apply_examples()
    expected = mesh.ok("get", "vs", "-o", "name")
    for spelling in ("VirtualService", "virtualservice", "virtualservices", "VIRTUALSERVICES"):
        assert mesh.ok("get", spelling, "-o", "name") == expected
    both = mesh.ok("get", "vs,cb", "-o", "name").splitlines()
    assert both == [
        "virtualservice/payment",
        "virtualservice/payment-service",
        "virtualservice/web-service",
        "circuitbreaker/payment-service",
    ]


def test_all_namespaces(mesh, tmp_path):
    mesh.apply_examples()
    staging = (EXAMPLES / "web-traffic-split.yaml").read_text().replace(
        "namespace: default", "namespace: staging"
    )
    mesh.ok("apply", "-f", write(tmp_path / "staging.yaml", staging))

    _, rows = parse_table(mesh.ok("get", "vs"))
    assert [r["NAME"] for r in rows] == ["payment", "payment-service", "web-service"]
    _, rows = parse_table(mesh.ok("get", "vs", "-n", "staging"))
    assert [r["NAME"] for r in rows] == ["web-service"]

    header, rows = parse_table(mesh.ok("get", "vs", "-A"))
    assert header[:2] == ["NAMESPACE", "NAME"]
    assert [(r["NAMESPACE"], r["NAME"]) for r in rows] == [
        ("default", "payment"),
        ("default", "payment-service"),
        ("default", "web-service"),
        ("staging", "web-service"),
    ]
    docs = mesh.get_json("vs", "--all-namespaces")
    assert [d["metadata"]["namespace"] for d in docs] == [
        "default", "default", "default", "staging"]
    assert mesh.get_json("vs", "web-service", "-n", "staging")["metadata"]["namespace"] == "staging"

    rc, out, err = mesh.run("get", "vs", "-n", "nowhere")
    assert (rc, out, err) == (0, "", "No resources found in nowhere namespace.\n")


def test_get_on_an_empty_store(mesh):
    rc, out, err = mesh.run("get", "vs")
    assert (rc, out, err) == (0, "", "No resources found in default namespace.\n")
    rc, out, err = mesh.run("get", "all", "-A")
    assert (rc, out, err) == (0, "", "No resources found.\n")
    assert mesh.get_json("svc") == []


def test_get_missing_name_fails_with_the_library_message(mesh):
    mesh.apply_examples()
    rc, out, err = mesh.run("get", "vs", "foo")
    assert rc == 1 and out == ""
    assert err.startswith("error: ") and "not found" in err.lower()
    assert "VirtualService default/foo" in err


# --- delete ----------------------------------------------------------------------------------


def test_delete_by_kind_and_name(mesh):
    mesh.apply_examples()
    assert mesh.ok("delete", "vs", "payment-service") == "virtualservice/payment-service deleted\n"
    assert mesh.ok("get", "vs", "-o", "name") == (
        "virtualservice/payment\nvirtualservice/web-service\n")
    assert mesh.ok("delete", "svc", "web-v1", "web-v2", "-n", "default").splitlines() == [
        "service/web-v1 deleted",
        "service/web-v2 deleted",
    ]

    before = mesh.snapshot()
    rc, out, err = mesh.run("delete", "vs", "payment-service")
    assert rc == 1 and out == ""
    assert err.startswith("error: ") and "VirtualService default/payment-service" in err
    rc, out, err = mesh.run("delete", "vs", "payment-service", "--ignore-not-found")
    assert (rc, out, err) == (0, "", "")
    assert mesh.snapshot() == before


def test_delete_missing_one_of_several_still_deletes_the_others(mesh):
    mesh.apply_examples()
    rc, out, err = mesh.run("delete", "svc", "web-v1", "nope", "web-v2")
    assert rc == 1
    assert out.splitlines() == ["service/web-v1 deleted", "service/web-v2 deleted"]
    assert "nope" in err


def test_delete_by_file_and_directory(mesh):
    mesh.apply_examples()
    out = mesh.ok("delete", "-f", EXAMPLES / "services.yaml")
    assert out.splitlines() == [
        f"service/{n} deleted" for n in ("payment-v1", "payment-v2", "web-v1", "web-v2", "orders")
    ]
    assert mesh.get_json("svc") == []

    rc, out, err = mesh.run("delete", "-f", EXAMPLES)
    assert rc == 1  # the services were already gone
    assert "virtualservice/payment-service deleted" in out
    assert err.count("error: ") == 5
    assert mesh.snapshot() == []

    mesh.apply_examples()
    out = mesh.ok("delete", "-f", EXAMPLES, "--ignore-not-found")
    assert out.splitlines() == [f"{k}/{n} deleted" for k, n in EXAMPLE_RESOURCES]
    assert mesh.ok("delete", "-f", EXAMPLES, "--ignore-not-found") == ""


# --- validate --------------------------------------------------------------------------------


def test_validate_examples_without_a_store(mesh, tmp_path):
    out = mesh.ok("validate", "-f", EXAMPLES)
    lines = out.splitlines()
    files = sorted(f.name for f in EXAMPLES.glob("*.yaml"))
    assert len(lines) == len(files)
    for line, name in zip(lines, files):
        assert re.fullmatch(rf".*/{re.escape(name)}: \d+ documents? valid", line), line
    assert any(line.endswith("services.yaml: 5 documents valid") for line in lines)
    assert any(line.endswith("payment-virtual-service.yaml: 1 document valid") for line in lines)
    assert not mesh.store.exists(), "validate must not create a store"


def test_validate_reports_every_problem_with_position_and_path(mesh, tmp_path):
    bad = write(tmp_path / "payment.yaml", BAD_WEIGHTS)
    rc, out, err = mesh.run("validate", "-f", bad, "-f", EXAMPLES / "services.yaml")
    assert rc == 1
    assert out.splitlines() == [f"{EXAMPLES / 'services.yaml'}: 5 documents valid"]
    assert re.fullmatch(
        r".*payment\.yaml:\d+:\d+: spec\.http_routes\[0\]\.destinations: "
        r"weights sum to 95, must be 100\n",
        err,
    ), err


def test_validate_stdin(mesh):
    out = mesh.ok("validate", "-f", "-", input=STANDALONE_VS)
    assert out == "<stdin>: 1 document valid\n"
    rc, out, err = mesh.run("validate", "-f", "-", input="kind: [unclosed\n")
    assert rc == 1 and out == ""
    assert err.startswith("<stdin>:")


def test_validate_refuses_stdin_twice(mesh):
    rc, _, err = mesh.run("validate", "-f", "-", "-f", "-", input=STANDALONE_VS)
    assert rc == 1 and "only once" in err


# --- diff ------------------------------------------------------------------------------------


def apply_unified(old, diff):
    """Applies a unified diff (one file) to old's lines; checks every context and removed line
    against old, so that a wrong hunk header or line fails."""
    old_lines = old.splitlines()
    new_lines = []
    pos = 0
    lines = diff.splitlines()
    i = 2
    while i < len(lines):
        m = re.fullmatch(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", lines[i])
        assert m, f"bad hunk header {lines[i]!r}"
        a_start, a_len = int(m.group(1)), int(m.group(2) or 1)
        b_len = int(m.group(4) or 1)
        first = a_start - 1 if a_len else a_start
        new_lines += old_lines[pos:first]
        pos = first
        i += 1
        seen_a = seen_b = 0
        while i < len(lines) and not lines[i].startswith("@@"):
            tag, text = lines[i][0], lines[i][1:]
            if tag in " -":
                assert old_lines[pos] == text, f"line {pos + 1}: {old_lines[pos]!r} != {text!r}"
                pos += 1
                seen_a += 1
            if tag in " +":
                new_lines.append(text)
                seen_b += 1
            i += 1
        assert (seen_a, seen_b) == (a_len, b_len)
    return new_lines + old_lines[pos:]


def yaml_without_versions(mesh, kind, name):
    text = mesh.ok("get", kind, name, "-o", "yaml")
    return "\n".join(
        line for line in text.splitlines()
        if not re.match(r"^\s+(resource_version|generation): ", line)
    ) + "\n"


def test_diff_new_resource_is_all_added(mesh):
    f = EXAMPLES / "payment-virtual-service.yaml"
    out = mesh.ok("diff", "-f", f)
    lines = out.splitlines()
    assert lines[0] == "--- live/VirtualService/default/payment-service"
    assert lines[1] == "+++ file/VirtualService/default/payment-service"
    assert re.fullmatch(r"@@ -0,0 \+1,(\d+) @@", lines[2])
    assert all(line.startswith("+") for line in lines[3:])
    assert "+kind: VirtualService" in lines
    assert mesh.snapshot() == [], "diff must not write"
    rc, out2, _ = mesh.run("diff", "--exit-code", "-f", f)
    assert (rc, out2) == (1, out)


def test_diff_after_apply_is_empty(mesh):
    mesh.apply_examples()
    rc, out, err = mesh.run("diff", "--exit-code", "-f", EXAMPLES)
    assert (rc, out, err) == (0, "", "")


def test_diff_shows_changes_as_a_correct_unified_diff(mesh, other_mesh, tmp_path):
    mesh.apply_examples()
    before = mesh.snapshot()
    changed = (EXAMPLES / "payment-virtual-service.yaml").read_text()
    # one change near the top, one near the bottom: two hunks
    changed = changed.replace("payment.example.com", "pay.example.com")
    changed = changed.replace("weight: 90", "weight: 60").replace("weight: 10", "weight: 40")
    f = write(tmp_path / "vs.yaml", changed)

    rc, out, err = mesh.run("diff", "-f", f)
    assert rc == 0 and err == ""
    assert out.startswith(
        "--- live/VirtualService/default/payment-service\n"
        "+++ file/VirtualService/default/payment-service\n@@ "
    )
    assert re.search(r"^-\s+- payment\.example\.com$", out, re.M)
    assert re.search(r"^\+\s+- pay\.example\.com$", out, re.M)
    assert re.search(r"^-\s+weight: 90$", out, re.M)
    assert re.search(r"^\+\s+weight: 60$", out, re.M)
    assert "resource_version" not in out and "generation" not in out

    other_mesh.ok("apply", "-f", f)
    old = yaml_without_versions(mesh, "vs", "payment-service")
    new = yaml_without_versions(other_mesh, "vs", "payment-service")
    assert apply_unified(old, out) == new.splitlines()

    rc, _, _ = mesh.run("diff", "--exit-code", "-f", f)
    assert rc == 1
    assert mesh.snapshot() == before


def test_diff_refuses_invalid_input(mesh, tmp_path):
    rc, out, err = mesh.run("diff", "-f", write(tmp_path / "bad.yaml", BAD_WEIGHTS))
    assert rc == 1 and out == ""
    assert "weights sum to 95" in err


# --- usage, exit codes, help -----------------------------------------------------------------


def test_unknown_kind_lists_the_known_ones_and_every_alias_works(mesh):
    rc, out, err = mesh.run("get", "foo")
    assert rc == 1 and out == ""
    m = re.fullmatch(r'error: unknown kind "foo" \(known: (.*)\)\n', err)
    assert m, err
    known = re.findall(r"(\w+) \((\w+)\)", m.group(1))
    assert {k for k, _ in known} == set(KIND_NAMES)
    assert {a for _, a in known} == {"vs", "sp", "cb", "fi", "svc", "mc", "oc", "kc"}
    for kind, alias in known:
        rc, _, err = mesh.run("get", alias)
        assert rc == 0, f"alias {alias}: {err}"
    rc, _, err = mesh.run("delete", "foo", "x")
    assert rc == 1 and 'unknown kind "foo"' in err


@pytest.mark.parametrize(
    "args, message, help_for",
    [
        (["frobnicate"], 'unknown command "frobnicate" for "meshctl"', None),
        (["--bogus", "get", "vs"], "unknown flag: --bogus", None),
        (["get", "vs", "--bogus"], "unknown flag: --bogus", "get"),
        (["get", "vs", "-x"], "unknown flag: -x", "get"),
        (["get"], "get needs a KIND", "get"),
        (["get", "vs", "-o"], "flag needs an argument: -o", "get"),
        (["get", "vs", "--output"], "flag needs an argument: --output", "get"),
        (["get", "vs", "-o", "xml"], 'unknown output format "xml"', "get"),
        (["get", "vs", "-n", "a", "-A"], "-n and -A cannot be used together", "get"),
        (["get", "vs", "a", "b"], "at most one NAME", "get"),
        (["apply"], "apply needs at least one -f", "apply"),
        (["apply", "file.yaml"], 'unexpected argument "file.yaml"', "apply"),
        (["apply", "-f"], "flag needs an argument: -f", "apply"),
        (["delete"], "delete needs KIND NAME or -f", "delete"),
        (["delete", "vs"], "delete vs needs a NAME", "delete"),
        (["delete", "vs", "x", "-f", "y.yaml"], "either -f or KIND NAME", "delete"),
        (["validate"], "validate needs at least one -f", "validate"),
        (["diff", "-f", "x.yaml", "--exit-codes"], "unknown flag: --exit-codes", "diff"),
        (["version", "extra"], 'unexpected argument "extra"', "version"),
        (["help", "nope"], 'unknown command "nope"', None),
    ],
)
def test_usage_errors_exit_2_with_a_pointer_to_help(mesh, args, message, help_for):
    rc, out, err = mesh.run(*args)
    assert rc == 2, (rc, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("error: ") and message in lines[0], err
    hint = f"Run 'meshctl help {help_for}' for usage." if help_for else "Run 'meshctl help' for usage."
    assert lines[1] == hint


def test_no_command_prints_help_and_exits_2(mesh):
    rc, out, err = mesh.run()
    assert rc == 2 and out == ""
    assert "Commands:" in err


def test_global_help_lists_every_command_with_a_summary(mesh):
    for flag in ("--help", "-h"):
        out = mesh.ok(flag)
        assert "Usage:\n  meshctl [--store DIR | --server URL [--token FILE]] COMMAND" in out
        for cmd in ("apply", "get", "delete", "validate", "diff", "backup", "restore", "version",
                    "help"):
            assert re.search(rf"^  {cmd}\s+\S.+$", out, re.M), f"{cmd} missing from:\n{out}"
    assert mesh.ok("help") == mesh.ok("--help")


@pytest.mark.parametrize("cmd", ["apply", "get", "delete", "validate", "diff", "backup", "restore",
                                 "version", "help"])
def test_command_help(mesh, cmd):
    text = mesh.ok("help", cmd)
    assert f"  meshctl {cmd}" in text
    assert mesh.ok(cmd, "--help") == text
    assert mesh.ok(cmd, "-h") == text
    if cmd not in ("version", "help"):
        assert "Examples:" in text and "Flags:" in text


def test_version(mesh):
    out = mesh.ok("version")
    assert out.splitlines()[0] == "meshctl 0.1.0"
    assert re.match(r"libmesh 0\.1\.0\b", out.splitlines()[1])
    assert mesh.ok("--version") == out


def test_store_flag_after_the_command_and_mesh_store_env(mesh, tmp_path):
    store = tmp_path / "elsewhere"
    mesh.ok("apply", "-f", EXAMPLES / "services.yaml", "--store", store, store=False)
    env = base_env()
    env["MESH_STORE"] = str(store)
    out = mesh.ok("get", "svc", "-o", "name", store=False, env=env)
    assert len(out.splitlines()) == 5
    # without either, ./.mesh in the working directory
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    mesh.ok("apply", "-f", EXAMPLES / "services.yaml", store=False, cwd=cwd)
    assert (cwd / ".mesh").is_dir()
