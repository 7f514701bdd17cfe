# SPDX-License-Identifier: Apache-2.0
"""meshctl over bad input, one case per validation rule: `apply` and `validate` refuse the file
with exit 1, print exactly FILE:LINE:COL: FIELD.PATH: message for every problem, and the store
(pre-populated with examples/) is left byte-for-byte as it was.

The table CASES is the list of rules. Each case is a file name (the rule, as the id), the file's
text and the problems meshctl must print, without the leading "FILE:". Documents are built by
doc(), whose header is five lines, so a spec body starts on line 6; routes() adds the hosts and
http_routes lines, so its routes start on line 8.
"""
import json
import shutil

import pytest

from conftest import Mesh

API = "apiVersion: mesh.clusterdb.io/v1\n"
RFC1123 = (
    "is not a valid name: use at most 63 lower-case letters, digits and '-', starting and "
    "ending with a letter or digit (RFC 1123)"
)
KINDS = (
    "VirtualService, SecurityPolicy, CircuitBreaker, FaultInjection, Service, MeshConfig, "
    "ObservabilityConfig, KubernetesConfig"
)
METHODS = "GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH"
RETRY_ON = "5xx, gateway-error, reset, connect-failure"
PROTOCOLS = "http, http2, grpc, tcp"
DURATION_SYNTAX = 'use a number and a unit (ms, s, m, h), like 100ms, 10s or 1m30s'
HOST = 'is not a valid host: use a DNS name like payment.example.com, optionally starting with "*."'
SERVICE_HOST = "is not a valid service host: use name, name.namespace or name.namespace.svc"
ADDRESS = "is not a valid address: use host:port, like 127.0.0.1:8080 or [::1]:8080"
URL = "is not a valid URL: use http://host:port or https://host:port"
IDENTITY = (
    "is not a valid identity: use service.namespace, service.namespace.svc, "
    'spiffe://trust-domain/ns/NAMESPACE/sa/SERVICE, or "*"'
)
AUTHZ_PATH = (
    "is not a valid path: use an exact path (/api/v1/process), a prefix ending in '*' (/api/*), "
    'or "*"'
)
QUANTITY = (
    "is not a valid quantity: use a number with an optional unit, like 100m, 0.5, 128Mi or 1Gi"
)
PATH_FORMS = 'must be a path ("/a", "/api/v1/*") or {exact|prefix|regex: …}'
R0 = "spec.http_routes[0]"
M0 = R0 + ".matches[0]"
D0 = R0 + ".destinations[0]"


def doc(kind, spec, metadata="  name: bad\n"):
    """A YAML document; with the default metadata, spec's first line is line 6."""
    return f"{API}kind: {kind}\nmetadata:\n{metadata}spec:\n{spec}"


HOSTS_LINE = "  hosts: [web.example.com]\n"
ROUTES_LINES = "  http_routes:\n    - destinations:\n        - host: web-v1\n"
ROUTES_OK = HOSTS_LINE + ROUTES_LINES
HOSTS = HOSTS_LINE + "  http_routes:\n"


def meta(metadata):
    """A valid VirtualService with the given metadata body (from line 4)."""
    return doc("VirtualService", ROUTES_OK, metadata)


def routes(body):
    """A VirtualService whose http_routes items (body) start on line 8."""
    return doc("VirtualService", HOSTS + body)


def match(lines):
    """A route whose first match's body (lines, 8 spaces in) starts on line 9."""
    return routes("    - matches:\n" + lines + "      destinations:\n        - host: web-v1\n")


def headers(lines):
    """A match whose headers mapping (lines, 12 spaces in) starts on line 10."""
    return match("        - headers:\n" + lines)


def route_field(line):
    """A route whose first line (line 8) is `    - <line>`, followed by one destination."""
    return routes(f"    - {line}\n      destinations:\n        - host: web-v1\n")


def abort(lines):
    """A FaultInjection whose abort body (lines, 4 spaces in) starts on line 8."""
    return doc("FaultInjection", "  service: web-service\n  abort:\n" + lines)


def case(rule, text, *problems, ext="yaml"):
    return pytest.param(f"{rule}.{ext}", text, list(problems), id=rule)


CASES = [
    # --- YAML syntax and the reader's limits: one message, no field path -----------------------
    case("yaml-mapping-value-in-scalar",
         doc("Service", "  protocol: http\n", "  name: bad: worse\n"),
         "4:12: mapping values are not allowed in this context"),
    # libyaml notices the missing ']' where the next key starts
    case("yaml-unclosed-flow-sequence",
         doc("VirtualService", "  hosts: [web.example.com\n  http_routes: []\n"),
         "7:14: did not find expected ',' or ']' while parsing a flow sequence"),
    case("yaml-tab-indentation", f"{API}kind: Service\nmetadata:\n\tname: bad\nspec: {{}}\n",
         "4:1: found character that cannot start any token while scanning for the next token"),
    case("yaml-bad-indentation",
         f"{API}kind: Service\nmetadata:\n  name: bad\n namespace: default\nspec: {{}}\n",
         "5:2: did not find expected key while parsing a block mapping"),
    case("yaml-unterminated-quote", f'{API}kind: "Service\nmetadata:\n  name: bad\n',
         "5:1: found unexpected end of stream while scanning a quoted scalar"),
    case("yaml-duplicate-key", meta("  name: bad\n  name: worse\n"), '5:3: duplicate key "name"'),
    case("yaml-duplicate-top-level-key", doc("Service", "  protocol: http\n") + "kind: Service\n",
         '7:1: duplicate key "kind"'),
    case("yaml-tag-does-not-match", abort("    http_status: !!int abc\n"),
         '8:18: value "abc" does not match tag !!int'),
    case("yaml-undefined-alias", doc("VirtualService", "  hosts: *hosts\n"),
         '6:10: undefined alias "hosts"'),
    case("yaml-key-not-a-scalar", f"{API}? [kind, name]\n: Service\n",
         "2:3: mapping keys must be scalars"),
    case("yaml-nul-in-string", doc("Service", '  protocol: "ht\\0tp"\n'),
         "6:13: strings must not contain NUL characters"),
    case("yaml-invalid-utf8", f"{API}kind: Serv".encode() + b"\xffice\n",
         "2:11: invalid leading UTF-8 octet (#xFF)"),
    case("yaml-control-character", f"{API}kind: Serv\x01ice\n",
         "2:11: control characters are not allowed (#x01)"),
    case("yaml-nesting-over-64-levels", "a: " + "[" * 70 + "]" * 70 + "\n",
         "1:67: nesting deeper than 64 levels"),
    case("yaml-alias-expansion-over-node-limit",
         "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
                   for p, n in zip("abcdef", "bcdefg")),
         "6:8: more than 200000 nodes (aliases expanded); refusing the input"),
    # --- JSON syntax: Jansson's words, at the last character of the offending token -------------
    case("json-missing-comma",
         '{\n  "apiVersion": "mesh.clusterdb.io/v1",\n  "kind": "Service"\n'
         '  "metadata": {"name": "bad"},\n  "spec": {}\n}\n',
         "4:12: '}' expected near '\"metadata\"'", ext="json"),
    case("json-trailing-comma",
         '{\n  "apiVersion": "mesh.clusterdb.io/v1",\n  "kind": "Service",\n}\n',
         "4:1: string or '}' expected near '}'", ext="json"),
    case("json-unexpected-end",
         '{\n  "apiVersion": "mesh.clusterdb.io/v1",\n  "kind": "Service",\n',
         "4:1: string or '}' expected near end of file", ext="json"),
    case("json-single-quotes", "{'kind': 'Service'}\n",
         "1:2: string or '}' expected near '''", ext="json"),
    case("json-duplicate-key",
         '{\n  "apiVersion": "mesh.clusterdb.io/v1",\n  "kind": "Service",\n'
         '  "metadata": {"name": "bad", "name": "worse"},\n  "spec": {}\n}\n',
         '4:31: duplicate key "name"', ext="json"),
    # the second of two concatenated values: Jansson counts from where that value starts
    case("json-syntax-error-in-second-value",
         '{"apiVersion": "mesh.clusterdb.io/v1", "kind": "Service", "metadata": {"name": "a"},'
         ' "spec": {}}\n\n  {"apiVersion": "mesh.clusterdb.io/v1",\n'
         '   "kind": "Service" "metadata": {}}\n',
         "4:31: '}' expected near '\"metadata\"'", ext="json"),
    case("json-nul-escape",
         '{"apiVersion": "mesh.clusterdb.io/v1", "kind": "Service", "metadata": '
         '{"name": "a\\u0000b"}, "spec": {}}\n',
         "1:89: strings must not contain NUL characters (\\u0000)", ext="json"),
    # --- the document envelope ------------------------------------------------------------------
    case("document-is-a-list", "- kind: Service\n- kind: Service\n",
         "1:1: a document must be a mapping with apiVersion, kind, metadata and spec"),
    case("document-is-a-scalar", "Service\n",
         "1:1: a document must be a mapping with apiVersion, kind, metadata and spec"),
    case("apiversion-missing", "kind: Service\nmetadata:\n  name: bad\nspec: {}\n",
         '1:1: missing required field "apiVersion" (use "mesh.clusterdb.io/v1")'),
    case("apiversion-unsupported", doc("Service", "  protocol: http\n").replace("/v1", "/v2"),
         '1:13: apiVersion: unsupported apiVersion "mesh.clusterdb.io/v2", '
         'must be "mesh.clusterdb.io/v1"'),
    case("apiversion-not-a-string", doc("Service", "  protocol: http\n").replace(
         "mesh.clusterdb.io/v1", "[mesh.clusterdb.io/v1]"),
         '1:13: apiVersion: must be "mesh.clusterdb.io/v1", got a list'),
    case("kind-missing", f"{API}metadata:\n  name: bad\nspec: {{}}\n",
         '1:1: missing required field "kind"'),
    case("kind-unknown-did-you-mean", doc("VirtualServce", ROUTES_OK),
         '2:7: kind: unknown kind "VirtualServce" (did you mean "VirtualService"?)'),
    case("kind-wrong-case-did-you-mean", doc("virtualservice", ROUTES_OK),
         '2:7: kind: unknown kind "virtualservice" (did you mean "VirtualService"?)'),
    case("kind-unknown", doc("Deployment", ROUTES_OK),
         f'2:7: kind: unknown kind "Deployment", must be one of {KINDS}'),
    case("kind-not-a-string", doc("[Service]", "  protocol: http\n"),
         "2:7: kind: must be a string, got a list"),
    case("metadata-missing", f"{API}kind: Service\nspec: {{}}\n",
         '1:1: missing required field "metadata"'),
    case("metadata-not-a-mapping", f"{API}kind: Service\nmetadata: bad\nspec: {{}}\n",
         "3:11: metadata: must be a mapping, got a string"),
    case("spec-missing", f"{API}kind: Service\nmetadata:\n  name: bad\n",
         '1:1: missing required field "spec"'),
    case("spec-a-list", doc("Service", "").replace("spec:\n", "spec: []\n"),
         "5:7: spec: must be a mapping, got a list"),
    case("spec-empty", doc("Service", ""), "5:6: spec: must be a mapping, got null"),
    case("unknown-top-level-field", doc("Service", "  protocol: http\n") + "status: {}\n",
         '7:1: status: unknown field "status"'),
    case("unknown-top-level-field-did-you-mean",
         doc("Service", "  protocol: http\n").replace("kind:", "Kind:"),
         '2:1: Kind: unknown field "Kind" (did you mean "kind"?)',
         '1:1: missing required field "kind"'),
    case("misspelled-metadata-did-you-mean",
         doc("Service", "  protocol: http\n").replace("metadata:", "metdata:"),
         '3:1: metdata: unknown field "metdata" (did you mean "metadata"?)',
         '1:1: missing required field "metadata"'),
    # --- the seed's bare `mesh:` block ----------------------------------------------------------
    case("seed-unknown-field-did-you-mean",
         "mesh:\n  provider: istio\n  mtsl:\n    enabled: true\n",
         '3:3: mesh.mtsl: unknown field "mtsl" (did you mean "mtls"?)'),
    case("seed-extra-top-level-key", "mesh:\n  provider: istio\nprovider: istio\n",
         '3:1: provider: unknown field "provider"'),
    case("seed-not-a-mapping", "mesh: istio\n", "1:7: mesh: must be a mapping, got a string"),
    case("seed-ha-replicas-below-1", "mesh:\n  provider: linkerd\n  ha:\n    replicas: 0\n",
         "4:15: mesh.ha.replicas: must be between 1 and 15, got 0"),
    case("seed-ha-replicas-above-15", "mesh:\n  provider: linkerd\n  ha:\n    replicas: 16\n",
         "4:15: mesh.ha.replicas: must be between 1 and 15, got 16"),
    case("seed-sampling-rate-over-100", "mesh:\n  telemetry:\n    sampling_rate: 150\n",
         "3:20: mesh.telemetry.sampling_rate: percentage must be between 0 and 100, got 150"),
    case("seed-sampling-rate-negative", "mesh:\n  telemetry:\n    sampling_rate: -0.5\n",
         "3:20: mesh.telemetry.sampling_rate: percentage must be between 0 and 100, got -0.5"),
    case("seed-sampling-rate-with-percent-sign", "mesh:\n  telemetry:\n    sampling_rate: 10%\n",
         "3:20: mesh.telemetry.sampling_rate: must be a percentage between 0 and 100, "
         "got a string"),
    case("seed-mtls-enabled-not-boolean", "mesh:\n  mtls:\n    enabled: yes\n",
         "3:14: mesh.mtls.enabled: must be true or false, got a string"),
    case("seed-server-not-a-url", "mesh:\n  provider: istio\n  server: ftp://mesh:8080\n",
         f'3:11: mesh.server: "ftp://mesh:8080" {URL}'),
    case("seed-quantities-invalid",
         "mesh:\n  proxy:\n    resources:\n      cpu: lots\n      memory: 128MB\n",
         f'4:12: mesh.proxy.resources.cpu: "lots" {QUANTITY}',
         f'5:15: mesh.proxy.resources.memory: "128MB" {QUANTITY}'),
    case("seed-provider-not-rfc1123", "mesh:\n  provider: Istio\n",
         f'2:13: mesh.provider: "Istio" {RFC1123}'),
    case("seed-gateway-class-not-rfc1123", "mesh:\n  ingress:\n    gateway_class: istio_gw\n",
         f'3:20: mesh.ingress.gateway_class: "istio_gw" {RFC1123}'),
    # --- metadata -------------------------------------------------------------------------------
    case("name-missing", meta("  namespace: default\n"),
         '4:3: metadata: missing required field "name"'),
    case("name-misspelled-did-you-mean", meta("  nmae: bad\n"),
         '4:3: metadata.nmae: unknown field "nmae" (did you mean "name"?)',
         '4:3: metadata: missing required field "name"'),
    case("name-null", meta("  name:\n"), "4:8: metadata.name: must be a string, got null"),
    case("name-a-list", meta("  name: [bad]\n"),
         "4:9: metadata.name: must be a string, got a list"),
    case("name-upper-case-and-underscore", meta("  name: Payment_Service\n"),
         f'4:9: metadata.name: "Payment_Service" {RFC1123}'),
    case("name-with-a-dot", meta("  name: payment.service\n"),
         f'4:9: metadata.name: "payment.service" {RFC1123}'),
    case("name-starting-with-dash", meta("  name: -payment\n"),
         f'4:9: metadata.name: "-payment" {RFC1123}'),
    case("name-ending-with-dash", meta("  name: payment-\n"),
         f'4:9: metadata.name: "payment-" {RFC1123}'),
    case("name-64-characters", meta(f"  name: {'a' * 64}\n"),
         f'4:9: metadata.name: "{"a" * 64}" {RFC1123}'),
    case("name-empty", meta('  name: ""\n'), f'4:9: metadata.name: "" {RFC1123}'),
    case("namespace-not-rfc1123", meta("  name: bad\n  namespace: Prod\n"),
         f'5:14: metadata.namespace: "Prod" {RFC1123}'),
    case("labels-misspelled-did-you-mean", meta("  name: bad\n  lables:\n    app: web\n"),
         '5:3: metadata.lables: unknown field "lables" (did you mean "labels"?)'),
    case("labels-a-list", meta("  name: bad\n  labels: [web]\n"),
         "5:11: metadata.labels: must be a mapping of strings, got a list"),
    case("label-value-a-mapping", meta("  name: bad\n  labels:\n    app: {name: web}\n"),
         "6:10: metadata.labels.app: must be a string, got a mapping"),
    case("resource-version-negative", meta("  name: bad\n  resource_version: -1\n"),
         "5:21: metadata.resource_version: must be between 0 and 9223372036854775807, got -1"),
    # --- VirtualService: hosts, gateways, routes ------------------------------------------------
    case("hosts-missing", doc("VirtualService", "  http_routes:\n    - destinations:\n"
                              "        - host: web-v1\n"),
         "6:3: spec: needs at least one host"),
    case("hosts-empty", doc("VirtualService", "  hosts: []\n" + ROUTES_LINES),
         "6:10: spec.hosts: needs at least one host"),
    case("hosts-a-string-not-a-list", doc("VirtualService", ROUTES_OK.replace(
         "[web.example.com]", "web.example.com")),
         "6:10: spec.hosts: must be a list of strings, got a string"),
    case("host-invalid", doc("VirtualService", ROUTES_OK.replace(
         "[web.example.com]", "[web.example.com, Web_Site.example.com]")),
         f'6:28: spec.hosts[1]: "Web_Site.example.com" {HOST}'),
    case("gateway-not-rfc1123",
         doc("VirtualService", HOSTS_LINE + "  gateways: [External_Gateway]\n" + ROUTES_LINES),
         '7:14: spec.gateways[0]: "External_Gateway" is not a valid gateway: use NAME or '
         "NAMESPACE/NAME, each an RFC 1123 label (lower-case letters, digits and '-')"),
    case("routes-missing", doc("VirtualService", "  hosts: [web.example.com]\n"),
         "6:3: spec: needs at least one route"),
    case("routes-empty", doc("VirtualService", "  hosts: [web.example.com]\n  http_routes: []\n"),
         "7:16: spec.http_routes: needs at least one route"),
    case("routes-a-mapping-not-a-list", routes("    primary:\n      destinations: []\n"),
         "8:5: spec.http_routes: must be a list, got a mapping"),
    case("route-a-string-not-a-mapping",
         doc("VirtualService", "  hosts: [web.example.com]\n  http_routes: [primary]\n"),
         "7:17: spec.http_routes[0]: must be a mapping, got a string"),
    case("route-name-not-rfc1123", route_field("name: Primary_Route"),
         f'8:13: {R0}.name: "Primary_Route" {RFC1123}'),
    case("route-names-duplicate", routes(
        "    - name: primary\n      destinations:\n        - host: web-v1\n"
        "    - name: canary\n      destinations:\n        - host: web-v2\n"
        "    - name: primary\n      destinations:\n        - host: web-v2\n"),
         '14:13: spec.http_routes[2].name: duplicate route name "primary" '
         "(first at spec.http_routes[0])"),
    case("unknown-spec-field-did-you-mean",
         doc("VirtualService", ROUTES_OK.replace("  hosts:", "  host:")),
         '6:3: spec.host: unknown field "host" (did you mean "hosts"?)'),
    case("unknown-route-field-did-you-mean", routes("    - destination:\n        - host: web-v1\n"),
         f'8:7: {R0}.destination: unknown field "destination" (did you mean "destinations"?)'),
    # --- VirtualService: destinations and weights ------------------------------------------------
    case("destinations-missing", routes("    - name: primary\n"),
         f"8:7: {R0}: needs at least one destination"),
    case("destinations-empty", routes("    - destinations: []\n"),
         f"8:21: {R0}.destinations: needs at least one destination"),
    case("destination-host-missing", routes("    - destinations:\n        - weight: 100\n"),
         f'9:11: {D0}: missing required field "host"'),
    case("destination-host-invalid", routes("    - destinations:\n        - host: web_v1\n"),
         f'9:17: {D0}.host: "web_v1" {SERVICE_HOST}'),
    case("unknown-destination-field-did-you-mean",
         routes("    - destinations:\n        - host: web-v1\n          wieght: 100\n"),
         f'10:11: {D0}.wieght: unknown field "wieght" (did you mean "weight"?)'),
    case("weight-over-100",
         routes("    - destinations:\n        - host: web-v1\n          weight: 101\n"),
         f"10:19: {D0}.weight: must be between 0 and 100, got 101"),
    case("weight-negative",
         routes("    - destinations:\n        - host: web-v1\n          weight: -1\n"),
         f"10:19: {D0}.weight: must be between 0 and 100, got -1"),
    case("weight-a-string", routes("    - destinations:\n        - host: web-v1\n"
                                   "          weight: ninety\n"),
         f"10:19: {D0}.weight: must be an integer, got a string"),
    case("weight-a-fraction", routes("    - destinations:\n        - host: web-v1\n"
                                     "          weight: 50.5\n"),
         f"10:19: {D0}.weight: must be an integer, got a number"),
    case("weights-sum-below-100", routes(
        "    - destinations:\n        - host: web-v1\n          weight: 90\n"
        "        - host: web-v2\n          weight: 5\n"),
         f"9:9: {R0}.destinations: weights sum to 95, must be 100"),
    case("weights-sum-above-100", routes(
        "    - destinations:\n        - host: web-v1\n          weight: 90\n"
        "        - host: web-v2\n          weight: 20\n"),
         f"9:9: {R0}.destinations: weights sum to 110, must be 100"),
    case("weight-of-a-lone-destination-not-100",
         routes("    - destinations:\n        - host: web-v1\n          weight: 50\n"),
         f"9:9: {R0}.destinations: weights sum to 50, must be 100"),
    case("weight-missing-on-one-of-two", routes(
        "    - destinations:\n        - host: web-v1\n          weight: 90\n"
        "        - host: web-v2\n"),
         f"9:9: {R0}.destinations: weights sum to 90, must be 100"),
    case("weights-missing-on-two", routes(
        "    - destinations:\n        - host: web-v1\n        - host: web-v2\n"),
         f"9:9: {R0}.destinations: weights sum to 0, must be 100"),
    case("weights-per-route", routes(
        "    - destinations:\n        - host: web-v1\n"
        "    - destinations:\n        - host: web-v1\n          weight: 60\n"
        "        - host: web-v2\n          weight: 60\n"),
         "11:9: spec.http_routes[1].destinations: weights sum to 120, must be 100"),
    # --- VirtualService: path matches ------------------------------------------------------------
    case("path-not-starting-with-slash", match("        - path: api/v1\n"),
         f'9:17: {M0}.path: path "api/v1" must start with "/"'),
    case("path-prefix-not-starting-with-slash", match("        - path:\n            prefix: api\n"),
         f'10:21: {M0}.path.prefix: path "api" must start with "/"'),
    case("path-exact-not-starting-with-slash", match("        - path: {exact: api}\n"),
         f'9:25: {M0}.path.exact: path "api" must start with "/"'),
    case("path-regex-does-not-compile", match('        - path: {regex: "/api/(v1"}\n'),
         f'9:25: {M0}.path.regex: regex "/api/(v1" does not compile: Unmatched ( or \\('),
    case("path-match-unknown-did-you-mean", match("        - path: {prefx: /api}\n"),
         f'9:18: {M0}.path.prefx: unknown path match "prefx" (did you mean "prefix"?), '
         "must be exact, prefix or regex"),
    case("path-match-unknown", match("        - path: {glob: /api/*}\n"),
         f'9:18: {M0}.path.glob: unknown path match "glob", must be exact, prefix or regex'),
    case("path-match-two-keys", match("        - path: {exact: /a, prefix: /b}\n"),
         f"9:17: {M0}.path: must have exactly one of exact, prefix, regex"),
    case("path-a-list", match("        - path: [/a]\n"), f"9:17: {M0}.path: {PATH_FORMS}"),
    case("unknown-match-field-did-you-mean", match("        - paths: /a\n"),
         f'9:11: {M0}.paths: unknown field "paths" (did you mean "path"?)'),
    # --- VirtualService: header matches ----------------------------------------------------------
    case("header-matcher-unknown", headers("            x-canary: {contains: v2}\n"),
         f'10:24: {M0}.headers.x-canary.contains: unknown header match "contains", '
         "must be exact, prefix, regex or present"),
    case("header-matcher-unknown-did-you-mean", headers("            x-canary: {prefx: v2}\n"),
         f'10:24: {M0}.headers.x-canary.prefx: unknown header match "prefx" '
         '(did you mean "prefix"?), must be exact, prefix, regex or present'),
    case("header-regex-does-not-compile", headers('            x-canary: {regex: "[v2"}\n'),
         f'10:31: {M0}.headers.x-canary.regex: regex "[v2" does not compile: '
         "Unmatched [, [^, [:, [., or [="),
    case("header-present-false", headers("            x-canary: {present: false}\n"),
         f"10:33: {M0}.headers.x-canary.present: present must be true"),
    case("header-present-not-boolean", headers('            x-canary: {present: "yes"}\n'),
         f"10:33: {M0}.headers.x-canary.present: present must be true"),
    case("header-matcher-two-keys", headers("            x-canary: {exact: a, prefix: b}\n"),
         f"10:23: {M0}.headers.x-canary: must have exactly one of exact, prefix, regex, present"),
    case("header-matcher-a-list", headers("            x-canary: [v2]\n"),
         f"10:23: {M0}.headers.x-canary: must have exactly one of exact, prefix, regex, present"),
    case("header-exact-a-list", headers("            x-canary: {exact: [v2]}\n"),
         f"10:31: {M0}.headers.x-canary.exact: must be a string"),
    case("header-name-invalid", headers('            "x canary": v2\n'),
         f'10:13: {M0}.headers.x canary: "x canary" is not a valid header name'),
    case("header-names-duplicate-ignoring-case",
         headers("            X-Canary: v1\n            x-canary: v2\n"),
         f'11:13: {M0}.headers.x-canary: duplicate header "x-canary" (names are case-insensitive)'),
    case("headers-a-list", match("        - headers: [x-canary]\n"),
         f"9:20: {M0}.headers: must be a mapping of header name to matcher"),
    # --- methods ---------------------------------------------------------------------------------
    case("method-lower-case-did-you-mean", match("        - method: post\n"),
         f'9:19: {M0}.method: unknown HTTP method "post" (did you mean "POST"?)'),
    case("method-unknown", match("        - method: FETCH\n"),
         f'9:19: {M0}.method: unknown HTTP method "FETCH", must be one of {METHODS}'),
    # --- durations -------------------------------------------------------------------------------
    case("duration-not-a-duration", route_field("timeout: soon"),
         f'8:16: {R0}.timeout: invalid duration "soon": {DURATION_SYNTAX}'),
    case("duration-zero", route_field("timeout: 0s"),
         f"8:16: {R0}.timeout: duration must be positive, got 0s"),
    case("duration-rounds-to-zero", route_field("timeout: 0.4ms"),
         f"8:16: {R0}.timeout: duration must be positive, got 0.4ms"),
    case("duration-negative", route_field("timeout: -1s"),
         f'8:16: {R0}.timeout: invalid duration "-1s": {DURATION_SYNTAX}'),
    case("duration-over-24h", route_field("timeout: 25h"),
         f"8:16: {R0}.timeout: duration 25h is too long, at most 24h"),
    case("duration-just-over-24h", route_field("timeout: 24h1ms"),
         f"8:16: {R0}.timeout: duration 24h1ms is too long, at most 24h"),
    case("duration-too-large-to-count", route_field("timeout: 999999999999h"),
         f"8:16: {R0}.timeout: duration 999999999999h is too long, at most 24h"),
    case("duration-bare-number", route_field("timeout: 30"),
         f"8:16: {R0}.timeout: duration 30 needs a unit, like 30ms or 30s"),
    case("duration-bare-fraction", route_field("timeout: 1.5"),
         f"8:16: {R0}.timeout: duration 1.5 needs a unit, like 1.5ms or 1.5s"),
    case("duration-upper-case-unit", route_field("timeout: 10S"),
         f'8:16: {R0}.timeout: invalid duration "10S": {DURATION_SYNTAX}'),
    case("duration-a-list", route_field("timeout: [1s]"),
         f"8:16: {R0}.timeout: must be a duration like 100ms, 10s or 1m, got a list"),
    # --- retries ---------------------------------------------------------------------------------
    case("retry-attempts-over-100", route_field("retries:\n        attempts: 101"),
         f"9:19: {R0}.retries.attempts: must be between 0 and 100, got 101"),
    case("retry-per-try-timeout-bare-number", route_field("retries:\n        per_try_timeout: 2"),
         f"9:26: {R0}.retries.per_try_timeout: duration 2 needs a unit, like 2ms or 2s"),
    case("retry-conditions-unknown", route_field("retries:\n        retry_on: [5xxx, timeout]"),
         f'9:20: {R0}.retries.retry_on[0]: unknown retry condition "5xxx" (did you mean "5xx"?), '
         f"must be one of {RETRY_ON}",
         f'9:26: {R0}.retries.retry_on[1]: unknown retry condition "timeout", '
         f"must be one of {RETRY_ON}"),
    case("unknown-retry-field-did-you-mean", route_field("retries:\n        attemps: 3"),
         f'9:9: {R0}.retries.attemps: unknown field "attemps" (did you mean "attempts"?)'),
    # --- SecurityPolicy --------------------------------------------------------------------------
    case("mtls-mode-unknown-did-you-mean", doc("SecurityPolicy", "  mtls:\n    mode: strcit\n"),
         '7:11: spec.mtls.mode: unknown value "strcit" (did you mean "strict"?), '
         "must be one of strict, permissive, disable"),
    case("mtls-mode-unknown", doc("SecurityPolicy", '  mtls:\n    mode: "off"\n'),
         '7:11: spec.mtls.mode: unknown value "off", must be one of strict, permissive, disable'),
    case("mtls-mode-a-boolean", doc("SecurityPolicy", "  mtls:\n    mode: true\n"),
         '7:11: spec.mtls.mode: unknown value "true", must be one of strict, permissive, disable'),
    case("mtls-certificate-authority-not-rfc1123",
         doc("SecurityPolicy",
             "  mtls:\n    mode: strict\n    certificate_authority: Internal_CA\n"),
         f'8:28: spec.mtls.certificate_authority: "Internal_CA" {RFC1123}'),
    case("security-policy-sets-nothing", doc("SecurityPolicy", "  services: [payment]\n"),
         "6:3: spec: needs mtls.mode or at least one authorization rule"),
    case("authorization-rule-without-to",
         doc("SecurityPolicy", "  authorization:\n    - from: [orders.default.svc]\n"),
         '7:7: spec.authorization[0]: needs at least one service in "to"'),
    case("authorization-a-mapping", doc("SecurityPolicy", "  authorization:\n    to: [payment]\n"),
         "7:5: spec.authorization: must be a list, got a mapping"),
    case("identities-invalid", doc("SecurityPolicy", "  authorization:\n    - to: [payment]\n"
                                   '      from: [orders, "spiffe://cluster.local/ns/default"]\n'),
         f'8:14: spec.authorization[0].from[0]: "orders" {IDENTITY}',
         f'8:22: spec.authorization[0].from[1]: "spiffe://cluster.local/ns/default" {IDENTITY}'),
    case("authorization-method-lower-case-did-you-mean",
         doc("SecurityPolicy", "  authorization:\n    - to: [payment]\n      methods: [post]\n"),
         '8:17: spec.authorization[0].methods[0]: unknown HTTP method "post" '
         '(did you mean "POST"?)'),
    case("authorization-paths-invalid",
         doc("SecurityPolicy",
             "  authorization:\n    - to: [payment]\n      paths: [api/*, /api/*/x]\n"),
         f'8:15: spec.authorization[0].paths[0]: "api/*" {AUTHZ_PATH}',
         f'8:22: spec.authorization[0].paths[1]: "/api/*/x" {AUTHZ_PATH}'),
    case("authorization-to-invalid",
         doc("SecurityPolicy", "  authorization:\n    - to: [Payment]\n"),
         f'7:12: spec.authorization[0].to[0]: "Payment" {SERVICE_HOST}'),
    case("policy-services-invalid",
         doc("SecurityPolicy", "  services: [pay_ment]\n  mtls:\n    mode: strict\n"),
         f'6:14: spec.services[0]: "pay_ment" {SERVICE_HOST}'),
    # --- CircuitBreaker: limits -------------------------------------------------------------------
    case("limit-zero", doc("CircuitBreaker", "  service: payment\n  max_connections: 0\n"),
         "7:20: spec.max_connections: must be positive, got 0"),
    case("limit-negative",
         doc("CircuitBreaker", "  service: payment\n  max_pending_requests: -5\n"),
         "7:25: spec.max_pending_requests: must be positive, got -5"),
    case("limit-above-int32",
         doc("CircuitBreaker", "  service: payment\n  max_requests: 3000000000\n"),
         "7:17: spec.max_requests: must be between 1 and 2147483647, got 3000000000"),
    case("limit-beyond-64-bits",
         doc("CircuitBreaker", "  service: payment\n  max_requests: 99999999999999999999\n"),
         "7:17: spec.max_requests: integer 99999999999999999999 is out of range"),
    case("limit-a-string", doc("CircuitBreaker", "  service: payment\n  max_retries: three\n"),
         "7:16: spec.max_retries: must be an integer, got a string"),
    case("circuit-breaker-service-missing", doc("CircuitBreaker", "  max_connections: 10\n"),
         '6:3: spec: missing required field "service"'),
    case("circuit-breaker-sets-nothing", doc("CircuitBreaker", "  service: payment\n"),
         "6:3: spec: sets nothing: give max_connections, max_pending_requests, max_requests, "
         "max_retries or detection"),
    case("outlier-detection-out-of-range", doc("CircuitBreaker",
         "  service: payment\n  detection:\n    consecutive_errors: 0\n    interval: 0s\n"
         '    base_ejection_time: "10"\n    max_ejection_percent: 150\n'),
         "8:25: spec.detection.consecutive_errors: must be positive, got 0",
         "9:15: spec.detection.interval: duration must be positive, got 0s",
         f'10:25: spec.detection.base_ejection_time: invalid duration "10": {DURATION_SYNTAX}',
         "11:27: spec.detection.max_ejection_percent: must be between 0 and 100, got 150"),
    case("unknown-detection-field-did-you-mean",
         doc("CircuitBreaker", "  service: payment\n  detection:\n    consecutive_error: 5\n"),
         '8:5: spec.detection.consecutive_error: unknown field "consecutive_error" '
         '(did you mean "consecutive_errors"?)'),
    case("limit-camel-case-did-you-mean",
         doc("CircuitBreaker", "  service: payment\n  maxConnections: 5\n"),
         '7:3: spec.maxConnections: unknown field "maxConnections" '
         '(did you mean "max_connections"?)'),
    # --- FaultInjection: status codes, percentages, delays ----------------------------------------
    case("status-code-above-599", abort("    http_status: 600\n"),
         "8:18: spec.abort.http_status: must be between 200 and 599, got 600"),
    case("status-code-below-200", abort("    http_status: 199\n"),
         "8:18: spec.abort.http_status: must be between 200 and 599, got 199"),
    case("status-code-a-string", abort('    http_status: "503"\n'),
         "8:18: spec.abort.http_status: must be an integer, got a string"),
    case("status-code-null", abort("    http_status:\n"),
         "8:17: spec.abort.http_status: must be an integer, got null"),
    case("status-code-missing", abort("    percentage: 10\n"),
         '8:5: spec.abort: missing required field "http_status"'),
    case("percentage-over-100", abort("    http_status: 503\n    percentage: 150\n"),
         "9:17: spec.abort.percentage: percentage must be between 0 and 100, got 150"),
    case("percentage-negative", abort("    http_status: 503\n    percentage: -1\n"),
         "9:17: spec.abort.percentage: percentage must be between 0 and 100, got -1"),
    case("percentage-with-percent-sign", abort("    http_status: 503\n    percentage: 10%\n"),
         "9:17: spec.abort.percentage: must be a percentage between 0 and 100, got a string"),
    case("percentage-nan", abort("    http_status: 503\n    percentage: .nan\n"),
         "9:17: spec.abort.percentage: percentage must be between 0 and 100, got .nan"),
    case("percentage-infinite", abort("    http_status: 503\n    percentage: .inf\n"),
         "9:17: spec.abort.percentage: percentage must be between 0 and 100, got .inf"),
    case("delay-percentage-over-100",
         doc("FaultInjection", "  service: web-service\n  delay: 1s\n  delay_percentage: 100.5\n"),
         "8:21: spec.delay_percentage: percentage must be between 0 and 100, got 100.5"),
    case("delay-percentage-without-delay", doc("FaultInjection",
         "  service: web-service\n  delay_percentage: 50\n  abort:\n    http_status: 503\n"),
         "7:21: spec.delay_percentage: needs a delay"),
    case("delay-bare-number", doc("FaultInjection", "  service: web-service\n  delay: 100\n"),
         "7:10: spec.delay: duration 100 needs a unit, like 100ms or 100s"),
    case("fault-injection-sets-nothing", doc("FaultInjection", "  service: web-service\n"),
         "6:3: spec: needs a delay or an abort"),
    # --- Service: protocols and addresses ---------------------------------------------------------
    case("protocol-unknown-did-you-mean", doc("Service", "  protocol: https\n"),
         f'6:13: spec.protocol: unknown protocol "https" (did you mean "http"?), '
         f"must be one of {PROTOCOLS}"),
    case("protocol-unknown", doc("Service", "  protocol: websocket\n"),
         f'6:13: spec.protocol: unknown protocol "websocket", must be one of {PROTOCOLS}'),
    case("address-without-port", doc("Service", "  endpoints:\n    - 127.0.0.1\n"),
         f'7:7: spec.endpoints[0]: "127.0.0.1" {ADDRESS}'),
    case("address-port-zero", doc("Service", "  endpoints:\n    - 127.0.0.1:0\n"),
         f'7:7: spec.endpoints[0]: "127.0.0.1:0" {ADDRESS}'),
    case("addresses-invalid", doc("Service", '  endpoints:\n    - 127.0.0.1:70000\n'
                                  '    - "[::1]:8080"\n    - localhost:http\n    - "[::1]"\n'),
         f'7:7: spec.endpoints[0]: "127.0.0.1:70000" {ADDRESS}',
         f'9:7: spec.endpoints[2]: "localhost:http" {ADDRESS}',
         f'10:7: spec.endpoints[3]: "[::1]" {ADDRESS}'),
    case("address-in-long-form-invalid",
         doc("Service", "  endpoints:\n    - address: 10.0.0.1\n      labels: {zone: a}\n"),
         f'7:16: spec.endpoints[0].address: "10.0.0.1" {ADDRESS}'),
    case("endpoint-address-missing", doc("Service", "  endpoints:\n    - labels: {zone: a}\n"),
         '7:7: spec.endpoints[0]: missing required field "address"'),
    case("endpoint-address-misspelled-did-you-mean",
         doc("Service", "  endpoints:\n    - adress: 127.0.0.1:8080\n"),
         '7:7: spec.endpoints[0].adress: unknown field "adress" (did you mean "address"?)',
         '7:7: spec.endpoints[0]: missing required field "address"'),
    case("endpoints-a-string-not-a-list", doc("Service", "  endpoints: 127.0.0.1:8080\n"),
         "6:14: spec.endpoints: must be a list, got a string"),
    # --- ObservabilityConfig and KubernetesConfig -------------------------------------------------
    case("urls-invalid", doc("ObservabilityConfig", "  prometheus_endpoint: prometheus:9090\n"
                             '  grafana_endpoint: "http://"\n'
                             "  jaeger_endpoint: http://jaeger:99999\n"),
         f'6:24: spec.prometheus_endpoint: "prometheus:9090" {URL}',
         f'7:21: spec.grafana_endpoint: "http://" {URL}',
         f'8:20: spec.jaeger_endpoint: "http://jaeger:99999" {URL}'),
    case("unknown-observability-field",
         doc("ObservabilityConfig", "  prometheus_url: http://p:9090\n"),
         '6:3: spec.prometheus_url: unknown field "prometheus_url"'),
    case("kubernetes-namespace-not-rfc1123", doc("KubernetesConfig", "  namespace: Default\n"),
         f'6:14: spec.namespace: "Default" {RFC1123}'),
    case("unknown-kubernetes-field-did-you-mean", doc("KubernetesConfig", "  contxt: production\n"),
         '6:3: spec.contxt: unknown field "contxt" (did you mean "context"?)'),
    # --- several documents in one file ------------------------------------------------------------
    # the first defines bad in "default" implicitly, the second explicitly: the same resource
    case("resource-defined-twice-in-one-file",
         "---\n" + meta("  name: bad\n") + "---\n" + meta("  name: bad\n  namespace: default\n"),
         "12:1: metadata.name: duplicate VirtualService default/bad (first defined at line 2)"),
    case("seed-block-defined-twice-in-one-file",
         "mesh:\n  provider: istio\n---\nmesh:\n  provider: istio\n  version: 1.15\n",
         "4:1: metadata.name: duplicate MeshConfig default/istio (first defined at line 1)"),
    # a new resource, a change to a stored one, then two bad documents: every problem of the
    # file is printed and nothing of it is written
    case("several-documents-some-bad",
         meta("  name: new-route\n") + "---\n"
         + doc("Service", "  protocol: http2\n  endpoints: [127.0.0.1:18081]\n",
               "  name: payment-v1\n") + "---\n"
         + doc("Service", "  protocol: udp\n", "  name: orders\n") + "---\n"
         + doc("CircuitBreaker", "  service: payment\n  max_connections: 0\n  max_requests: -1\n",
               "  name: Bad_Name\n"),
         f'24:13: spec.protocol: unknown protocol "udp" (did you mean "tcp"?), '
         f"must be one of {PROTOCOLS}",
         f'29:9: metadata.name: "Bad_Name" {RFC1123}',
         "32:20: spec.max_connections: must be positive, got 0",
         "33:17: spec.max_requests: must be positive, got -1"),
    case("several-documents-last-has-a-syntax-error",
         meta("  name: new-route\n") + "---\n" + f"{API}kind: Service\nmetadata: {{name: [x}}\n",
         "13:20: did not find expected ',' or ']' while parsing a flow sequence"),
    # --- positions in JSON files ------------------------------------------------------------------
    case("json-weights-sum-below-100", json.dumps({
        "apiVersion": "mesh.clusterdb.io/v1", "kind": "VirtualService",
        "metadata": {"name": "bad"},
        "spec": {"hosts": ["web.example.com"], "http_routes": [{"destinations": [
            {"host": "web-v1", "weight": 90}, {"host": "web-v2", "weight": 5}]}]},
    }, indent=2) + "\n",
         f"13:25: {R0}.destinations: weights sum to 95, must be 100", ext="json"),
    # a top-level array is one document per element; the first is valid and new
    case("json-array-with-bad-documents", json.dumps([
        {"apiVersion": "mesh.clusterdb.io/v1", "kind": "Service", "metadata": {"name": "new-svc"},
         "spec": {"protocol": "http"}},
        {"apiVersion": "mesh.clusterdb.io/v1", "kind": "Service", "metadata": {"name": "bad"},
         "spec": {"protocol": "https", "endpoints": ["127.0.0.1"]}},
        {"apiVersion": "mesh.clusterdb.io/v1", "kind": "CircuitBreaker",
         "metadata": {"name": "bad", "namespace": "Prod"},
         "spec": {"service": "payment", "max_connections": 10}},
    ], indent=2) + "\n",
         f'19:19: spec.protocol: unknown protocol "https" (did you mean "http"?), '
         f"must be one of {PROTOCOLS}",
         f'21:9: spec.endpoints[0]: "127.0.0.1" {ADDRESS}',
         f'30:20: metadata.namespace: "Prod" {RFC1123}',
         ext="json"),
    case("json-one-line", '{"apiVersion": "mesh.clusterdb.io/v1", "kind": "Service", '
         '"metadata": {"name": "bad"}, "spec": {"protocol": "https"}}',
         f'1:109: spec.protocol: unknown protocol "https" (did you mean "http"?), '
         f"must be one of {PROTOCOLS}", ext="json"),
    case("json-null-for-a-required-field",
         '{"apiVersion": "mesh.clusterdb.io/v1", "kind": "Service", "metadata": {"name": null},'
         ' "spec": {}}\n',
         "1:80: metadata.name: must be a string, got null", ext="json"),
    case("json-float-for-an-integer",
         '{"apiVersion": "mesh.clusterdb.io/v1", "kind": "CircuitBreaker", "metadata": '
         '{"name": "bad"}, "spec": {"service": "payment", "max_connections": 1.0}}\n',
         "1:145: spec.max_connections: must be an integer, got a number", ext="json"),
    # columns count characters, not bytes ("ë" is two bytes)
    case("json-column-after-multibyte-text",
         '{"apiVersion": "mesh.clusterdb.io/v1", "kind": "Service", "metadata": {"name": "bad", '
         '"labels": {"owner": "zoë"}}, "spec": {"protocol": "https"}}\n',
         f'1:137: spec.protocol: unknown protocol "https" (did you mean "http"?), '
         f"must be one of {PROTOCOLS}", ext="json"),
    case("json-syntax-error-after-multibyte-text",
         '{"apiVersion": "mesh.clusterdb.io/v1", "kind": "Service", "metadata": {"name": "bad", '
         '"labels": {"owner": "zoë"}} "spec": {}}\n',
         "1:120: '}' expected near '\"spec\"'", ext="json"),
    case("yaml-column-after-multibyte-text",
         f'{API}kind: Service\nmetadata: {{name: bad, labels: {{owner: "zoë"}}, nmae: x}}\n'
         "spec: {}\n",
         '3:47: metadata.nmae: unknown field "nmae" (did you mean "name"?)'),
]
CASES_BY_ID = {c.id: c.values for c in CASES}


@pytest.fixture(scope="module")
def seeded_store(meshctl, tmp_path_factory):
    """A store with examples/ applied, and its `get all -A -o json` text."""
    mesh = Mesh(tmp_path_factory.mktemp("seeded") / "store")
    mesh.apply_examples()
    snapshot = mesh.ok("get", "all", "-A", "-o", "json")
    assert len(json.loads(snapshot)) == 15
    return mesh.store, snapshot


@pytest.fixture
def seeded(seeded_store, tmp_path):
    """A private copy of the seeded store (a test that wrongly writes spoils only its own)."""
    store, snapshot = seeded_store
    shutil.copytree(store, tmp_path / "store")
    return Mesh(tmp_path / "store"), snapshot


def write_input(path, text):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def assert_refused(mesh, snapshot, path, problems):
    """apply and validate both exit 1 with exactly these problem lines; the store is as it was."""
    want = "".join(f"{path}:{p}\n" for p in problems)
    rc, out, err = mesh.run("apply", "-f", path)
    assert (rc, out) == (1, ""), err
    assert err == want
    assert mesh.ok("get", "all", "-A", "-o", "json") == snapshot
    nowhere = path.parent / "no-store-here"
    nowhere.mkdir(exist_ok=True)
    rc, out, err = mesh.run("validate", "-f", path, store=False, cwd=nowhere)
    assert (rc, out) == (1, ""), err
    assert err == want
    assert list(nowhere.iterdir()) == [], "validate must not create a store"


@pytest.mark.parametrize("name, text, problems", CASES)
def test_bad_input_is_refused_with_its_exact_message(seeded, tmp_path, name, text, problems):
    mesh, snapshot = seeded
    path = write_input(tmp_path / name, text)
    assert_refused(mesh, snapshot, path, problems)


def test_the_good_documents_of_a_refused_file_would_have_been_written(seeded, tmp_path):
    # The control for "several-documents-some-bad": without its bad documents the same file
    # creates one resource and changes another, so the unchanged snapshot above means something.
    mesh, snapshot = seeded
    _, text, _ = CASES_BY_ID["several-documents-some-bad"]
    good = "---\n".join(text.split("---\n")[:2])
    out = mesh.ok("apply", "-f", write_input(tmp_path / "good.yaml", good))
    assert out == "virtualservice/new-route created\nservice/payment-v1 configured\n"
    assert mesh.ok("get", "all", "-A", "-o", "json") != snapshot


def test_every_file_of_a_directory_reports_its_problems(seeded, tmp_path):
    # Problems are grouped by file, in the order files are read (names sorted), and one valid
    # file among invalid ones is not written either.
    mesh, snapshot = seeded
    d = tmp_path / "in"
    d.mkdir()
    write_input(d / "a-weights.yaml", CASES_BY_ID["weights-sum-below-100"][1])
    write_input(d / "b-valid.yaml", meta("  name: new-route\n"))
    write_input(d / "c-status.yaml", CASES_BY_ID["status-code-above-599"][1])
    rc, out, err = mesh.run("apply", "-f", d)
    assert (rc, out) == (1, "")
    assert err == (
        f"{d}/a-weights.yaml:9:9: {R0}.destinations: weights sum to 95, must be 100\n"
        f"{d}/c-status.yaml:8:18: spec.abort.http_status: must be between 200 and 599, got 600\n"
    )
    assert mesh.ok("get", "all", "-A", "-o", "json") == snapshot


@pytest.mark.parametrize("written", ["0503", "0x1F7", "0o767", "+503"])
def test_integers_are_read_as_yaml_1_2_core(mesh, tmp_path, written):
    # "0503" is decimal 503 in YAML 1.2; read as C octal it would be stored as 323, a valid but
    # different status code.
    path = write_input(tmp_path / "fault.yaml", abort(f"    http_status: {written}\n"))
    mesh.ok("apply", "-f", path)
    assert mesh.get_json("fi", "bad")["spec"]["abort"] == {"http_status": 503}

