# SPDX-License-Identifier: Apache-2.0
"""A stand-in for a Kubernetes API server, for meshctl's Kubernetes client tests.

It plays the network peer only, as a test collector would for a telemetry exporter: HTTPS on
loopback with a CA made by the openssl CLI, client-certificate or bearer-token authentication
(401 otherwise), /version, CustomResourceDefinitions by name (a configurable set installed),
server-side apply (PATCH application/apply-patch+yaml with fieldManager, force, and 409 when
another manager owns a field being changed), GET, LIST with labelSelector, DELETE, and errors as
the real server writes them (kind: Status with reason, message, code). Objects are kept in memory
with resourceVersion, generation, uid and a minimal managedFields.
"""
import copy
import http.server
import json
import ssl
import threading
import urllib.parse
import uuid

import yaml

from test_meshd_ca import make_ca, openssl

VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.2",
    "gitCommit": "39683505b630ff2121012f3c5b16215a1449d5ed",
    "gitTreeState": "clean",
    "buildDate": "2024-06-11T20:21:00Z",
    "goVersion": "go1.22.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}

ISTIO_CRDS = (
    "virtualservices.networking.istio.io",
    "destinationrules.networking.istio.io",
    "gateways.networking.istio.io",
    "peerauthentications.security.istio.io",
    "authorizationpolicies.security.istio.io",
    "telemetries.telemetry.istio.io",
)
LINKERD_CRDS = (
    "servers.policy.linkerd.io",
    "httproutes.policy.linkerd.io",
    "authorizationpolicies.policy.linkerd.io",
    "meshtlsauthentications.policy.linkerd.io",
    "networkauthentications.policy.linkerd.io",
)

# What the server serves per API group, preferred version first, each version with the plurals it
# has (as the newest Istio and Linkerd install them). A test of an older release passes its own.
SERVED = {
    "": [("v1", ["services", "namespaces"])],
    "networking.istio.io": [
        ("v1", ["virtualservices", "destinationrules", "gateways"]),
        ("v1beta1", ["virtualservices", "destinationrules", "gateways"]),
        ("v1alpha3", ["virtualservices", "destinationrules", "gateways"]),
    ],
    "security.istio.io": [
        ("v1", ["peerauthentications", "authorizationpolicies"]),
        ("v1beta1", ["peerauthentications", "authorizationpolicies"]),
    ],
    "telemetry.istio.io": [("v1", ["telemetries"]), ("v1alpha1", ["telemetries"])],
    "policy.linkerd.io": [
        ("v1beta3", ["servers", "httproutes"]),
        ("v1beta2", ["servers", "httproutes"]),
        ("v1beta1", ["servers", "httproutes"]),
        ("v1alpha1", ["authorizationpolicies", "meshtlsauthentications",
                      "networkauthentications", "httproutes"]),
    ],
    "apiextensions.k8s.io": [("v1", ["customresourcedefinitions"])],
}

# Only the kinds a test stores; the path's plural is what the server knows them by.
CLUSTER_SCOPED = {("", "namespaces"), ("apiextensions.k8s.io", "customresourcedefinitions")}


def at_version(obj, group, version):
    """obj as read at group/version: the real server converts; these kinds differ in name only."""
    return dict(obj, apiVersion=f"{group}/{version}" if group else version)


def status(code, reason, message, details=None):
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return code, body


def leaves(obj, prefix=()):
    """The field paths of obj's leaves (lists are atomic), metadata kept to labels/annotations."""
    out = {}
    for k, v in obj.items():
        p = prefix + (k,)
        if p in (("apiVersion",), ("kind",)):
            continue
        if prefix == ("metadata",) and k not in ("labels", "annotations"):
            continue
        if isinstance(v, dict) and v:
            out.update(leaves(v, p))
        else:
            out[p] = v
    return out


def get_path(obj, path):
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def del_path(obj, path):
    parents = []
    for k in path[:-1]:
        if not isinstance(obj, dict) or k not in obj:
            return
        parents.append((obj, k))
        obj = obj[k]
    if isinstance(obj, dict):
        obj.pop(path[-1], None)
    for parent, k in reversed(parents):  # drop maps emptied by the removal
        if parent[k] == {}:
            del parent[k]


def strip(obj):
    """obj without what the server itself keeps in metadata."""
    obj = copy.deepcopy(obj)
    for k in ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp"):
        obj.get("metadata", {}).pop(k, None)
    return obj


def merge(base, patch):
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)


def selector_matches(selector, labels):
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v:
                return False
        elif labels.get(term) is None:
            return False
    return True


class FakeKube:
    """The server, its PKI and its objects. Start with start(), stop with stop()."""

    def __init__(self, tmp_path, crds=(), tokens=("good-token",), version=None, served=None):
        self.dir = tmp_path
        self.served = dict(SERVED, **(served or {}))
        self.crds = set(crds)
        self.tokens = set(tokens)
        self.version = dict(VERSION, **(version or {}))
        self.lock = threading.Lock()
        self.objects = {}  # (group, plural, ns, name) -> object
        self.owners = {}  # same key -> {manager: {path: value}}
        self.requests = []  # (method, path, content-type, identity)
        self.refuse = {}  # (group, plural) -> (code, reason, message): applies to it fail
        self.rv = 1000
        self.ca = make_ca(tmp_path, "kube-ca", "/CN=kube-ca")
        self.server_cert, self.server_key = self._issue("kube-apiserver",
                                                        "DNS:localhost,IP:127.0.0.1", server=True)
        self.client_cert, self.client_key = self._issue("admin", None, server=False)
        self.httpd = None
        self.thread = None

    def _issue(self, cn, san, server):
        key, csr, cert = (self.dir / f"{cn}-key.pem", self.dir / f"{cn}.csr",
                          self.dir / f"{cn}-cert.pem")
        ext = self.dir / f"{cn}.ext"
        lines = ["basicConstraints=CA:FALSE",
                 "extendedKeyUsage=" + ("serverAuth" if server else "clientAuth")]
        if san:
            lines.append("subjectAltName=" + san)
        ext.write_text("\n".join(lines) + "\n")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-subj", f"/CN={cn}/O=system:masters", "-keyout", key, "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", self.ca[0], "-CAkey", self.ca[1],
                "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert)
        return cert, key

    # --- lifecycle ---

    def start(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        ctx.load_verify_locations(self.ca[0])
        ctx.verify_mode = ssl.CERT_OPTIONAL
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                code, answer = fake.handle(method, self.path, self.headers, body,
                                           self.connection.getpeercert())
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self.handle_one("GET")

            def do_PATCH(self):
                self.handle_one("PATCH")

            def do_DELETE(self):
                self.handle_one("DELETE")

            def do_PUT(self):
                self.handle_one("PUT")

            def do_POST(self):
                self.handle_one("POST")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)
            self.httpd = None

    @property
    def url(self):
        return f"https://127.0.0.1:{self.httpd.server_address[1]}"

    def kubeconfig(self, path, auth="cert", context="fake", namespace=None, token=None,
                   ca="data", server=None):
        """Writes a kubeconfig for this server: auth "cert" (client certificate files), "token"
        (token, default a good one), "none"; ca "data" (base64), "file" or "none"."""
        import base64
        cluster = {"server": server or self.url}
        if ca == "data":
            cluster["certificate-authority-data"] = base64.b64encode(
                self.ca[0].read_bytes()).decode()
        elif ca == "file":
            cluster["certificate-authority"] = str(self.ca[0])
        user = {}
        if auth == "cert":
            user = {"client-certificate": str(self.client_cert),
                    "client-key": str(self.client_key)}
        elif auth == "token":
            user = {"token": token or sorted(self.tokens)[0]}
        ctx = {"cluster": "fake-cluster", "user": "fake-user"}
        if namespace:
            ctx["namespace"] = namespace
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake-cluster", "cluster": cluster}],
            "users": [{"name": "fake-user", "user": user}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(doc))
        return path

    # --- the objects, for tests ---

    def key_of(self, obj, plural):
        group = obj["apiVersion"].rpartition("/")[0]
        meta = obj["metadata"]
        ns = None if (group, plural) in CLUSTER_SCOPED else meta.get("namespace", "default")
        return (group, plural, ns, meta["name"])

    def find(self, group, plural, ns, name):
        with self.lock:
            obj = self.objects.get((group, plural, ns, name))
            return copy.deepcopy(obj)

    def all(self, group=None, plural=None):
        with self.lock:
            return [copy.deepcopy(o) for k, o in sorted(self.objects.items(), key=lambda i: i[0])
                    if (group is None or k[0] == group) and (plural is None or k[1] == plural)]

    def apply_as(self, manager, obj, plural, force=False):
        """Server-side applies obj as another field manager (kubectl, a controller)."""
        with self.lock:
            return self._apply(self.key_of(obj, plural), obj, manager, force)

    # --- the protocol ---

    def handle(self, method, raw_path, headers, body, peercert):
        url = urllib.parse.urlsplit(raw_path)
        query = dict(urllib.parse.parse_qsl(url.query))
        auth = headers.get("Authorization", "")
        identity = None
        if peercert:
            identity = "cert:" + dict(x[0] for x in peercert["subject"])["commonName"]
        elif auth.startswith("Bearer ") and auth[7:] in self.tokens:
            identity = "token"
        with self.lock:
            self.requests.append((method, raw_path, headers.get("Content-Type"), identity))
        if identity is None:
            return status(401, "Unauthorized", "Unauthorized")
        if url.path == "/version" and method == "GET":
            return 200, self.version
        parts = [p for p in url.path.split("/") if p]
        if method == "GET" and parts and parts[0] == "apis" and len(parts) in (2, 3):
            return self._discovery(*parts[1:])
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return status(404, "NotFound", "the server could not find the requested resource")
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            return status(404, "NotFound", "the server could not find the requested resource")
        plural, name = rest[0], (rest[1] if len(rest) == 2 else None)
        if plural not in dict(self.served.get(group, [])).get(version, []):
            return status(404, "NotFound", "the server could not find the requested resource")
        if group == "apiextensions.k8s.io" and plural == "customresourcedefinitions":
            return self._crd(method, name)
        if (group, plural) not in CLUSTER_SCOPED and name is not None and ns is None:
            return status(404, "NotFound", "the server could not find the requested resource")
        with self.lock:
            if method == "GET" and name is None:
                return self._list(group, version, plural, ns, query.get("labelSelector"))
            key = (group, plural, ns, name)
            if method == "GET":
                obj = self.objects.get(key)
                if obj is None:
                    return self._not_found(group, plural, name)
                return 200, at_version(obj, group, version)
            if method == "DELETE":
                if key not in self.objects:
                    return self._not_found(group, plural, name)
                del self.objects[key]
                self.owners.pop(key, None)
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Success",
                             "details": {"name": name, "group": group, "kind": plural}}
            if method == "PATCH":
                if (group, plural) in self.refuse:
                    return status(*self.refuse[(group, plural)])
                return self._patch(key, version, headers, body, query)
        return status(405, "MethodNotAllowed",
                      f"the server does not allow this method on the requested resource")

    def _discovery(self, group, version=None):
        """APIGroup for /apis/GROUP, APIResourceList for /apis/GROUP/VERSION."""
        versions = self.served.get(group)
        if not versions or (version and version not in dict(versions)):
            return status(404, "NotFound", "the server could not find the requested resource")
        if version is None:
            gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v, _ in versions]
            return 200, {"kind": "APIGroup", "apiVersion": "v1", "name": group,
                         "versions": gvs, "preferredVersion": gvs[0]}
        return 200, {"kind": "APIResourceList", "apiVersion": "v1",
                     "groupVersion": f"{group}/{version}",
                     "resources": [{"name": p, "namespaced": (group, p) not in CLUSTER_SCOPED,
                                    "verbs": ["get", "list", "patch", "delete"]}
                                   for p in dict(versions)[version]]}

    def _not_found(self, group, plural, name):
        res = f"{plural}.{group}" if group else plural
        return status(404, "NotFound", f'{res} "{name}" not found',
                      {"name": name, "group": group, "kind": plural})

    def _crd(self, method, name):
        if method != "GET" or name is None:
            return status(405, "MethodNotAllowed", "not allowed on this fake")
        if name not in self.crds:
            return self._not_found("apiextensions.k8s.io", "customresourcedefinitions", name)
        plural, _, group = name.partition(".")
        return 200, {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                     "metadata": {"name": name}, "spec": {"group": group,
                                                          "names": {"plural": plural}}}

    def _list(self, group, version, plural, ns, selector):
        items = []
        for (g, p, n, _), obj in sorted(self.objects.items(), key=lambda i: i[0]):
            if g != group or p != plural or (ns is not None and n != ns):
                continue
            if selector and not selector_matches(selector,
                                                 obj["metadata"].get("labels") or {}):
                continue
            items.append(at_version(obj, group, version))
        kind = (items[0]["kind"] if items else plural) + "List"
        return 200, {"apiVersion": f"{group}/{version}" if group else version, "kind": kind,
                     "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    def _patch(self, key, version, headers, body, query):
        group, plural, ns, name = key
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/apply-patch+yaml":
            return status(415, "UnsupportedMediaType",
                          f"the body of the request was in an unknown format - accepted media "
                          f"types include: application/json-patch+json, "
                          f"application/merge-patch+json, application/apply-patch+yaml")
        manager = query.get("fieldManager")
        if not manager:
            return status(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: '
                          'fieldManager: Required value: is required for apply patch')
        try:
            obj = yaml.safe_load(body.decode())
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            return status(400, "BadRequest", f"error decoding YAML: {e}")
        if not isinstance(obj, dict) or not obj.get("kind") or not obj.get("apiVersion"):
            return status(400, "BadRequest", "invalid object: apiVersion and kind are required")
        meta = obj.get("metadata") or {}
        if meta.get("name") != name or (ns is not None and meta.get("namespace", ns) != ns):
            return status(400, "BadRequest",
                          "the name of the object does not match the name on the URL")
        if obj["apiVersion"] != (f"{group}/{version}" if group else version):
            return status(400, "BadRequest", "the apiVersion does not match the URL")
        return self._apply(key, obj, manager, query.get("force") == "true")

    def _apply(self, key, patch, manager, force):
        group, plural, ns, name = key
        patch = copy.deepcopy(patch)
        if ns is not None:
            patch.setdefault("metadata", {})["namespace"] = ns
        existing = self.objects.get(key)
        new_leaves = leaves(patch)
        owners = self.owners.setdefault(key, {})
        if existing is None and group == "" and plural == "services" and \
                not (patch.get("spec") or {}).get("ports"):
            self.owners.pop(key, None)
            return status(422, "Invalid", f'Service "{name}" is invalid: spec.ports: Required '
                          f'value', {"name": name, "kind": "Service", "causes": [
                              {"reason": "FieldValueRequired", "message": "Required value",
                               "field": "spec.ports"}]})
        conflicts = []
        for other, fields in owners.items():
            if other == manager:
                continue
            for path, value in new_leaves.items():
                if path in fields and get_path(existing, path) != value:
                    conflicts.append((other, path))
        if conflicts and not force:
            api = patch["apiVersion"]
            what = ", ".join(f'conflict with "{m}" using {api}: .{".".join(p)}'
                             for m, p in conflicts)
            n = len(conflicts)
            return status(409, "Conflict",
                          f"Apply failed with {n} conflict{'s' if n > 1 else ''}: {what}",
                          {"name": name, "group": group, "kind": plural,
                           "causes": [{"reason": "FieldManagerConflict",
                                       "message": f'conflict with "{m}" using {api}',
                                       "field": "." + ".".join(p)} for m, p in conflicts]})
        for other in list(owners):
            if other != manager and force:
                for path in new_leaves:
                    owners[other].pop(path, None)
        obj = copy.deepcopy(existing) if existing else {}
        # Fields this manager set before and no longer sets (and nobody else owns) go away.
        for path in owners.get(manager, {}):
            if path not in new_leaves and not any(path in f for m, f in owners.items()
                                                  if m != manager):
                del_path(obj, path)
        merge(obj, patch)
        owners[manager] = new_leaves
        meta = obj.setdefault("metadata", {})
        changed = existing is None or strip(existing) != strip(obj)
        if existing is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = "2024-06-12T10:00:00Z"
            meta["generation"] = 1
        elif (existing.get("spec") != obj.get("spec")):
            meta["generation"] = existing["metadata"].get("generation", 1) + 1
        if changed or existing is None:
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
        meta["managedFields"] = [{"manager": m, "operation": "Apply",
                                  "apiVersion": obj["apiVersion"], "fieldsType": "FieldsV1"}
                                 for m in sorted(owners)]
        self.objects[key] = obj
        return (201 if existing is None else 200), copy.deepcopy(obj)
