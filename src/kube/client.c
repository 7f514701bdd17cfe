/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes API client (client.h) over libcurl. */
#include "client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "net/curl_body.h"

/* An API answer bigger than this is refused: a list of our objects is far smaller. */
#define KUBE_MAX_BODY      (64u << 20)
#define KUBE_FIELD_MANAGER "meshctl"

/* A kind's served version, as discovery found it: asked once per client. */
struct served_version {
    char *group_kind; /* "networking.istio.io/VirtualService" */
    char *api_version;
};

struct mesh_kube_client {
    CURL *curl;
    char *server;
    char *token;
    long timeout_ms;
    char errbuf[CURL_ERROR_SIZE];
    struct served_version *served;
    size_t n_served, cap_served;
};

/* --- kinds --- */

/* Every kind istio.c and linkerd.c emit, and the plural the API server spells its URL with. */
static const struct mesh_kube_kind kinds[] = {
    {"VirtualService", "networking.istio.io", "virtualservices", true},
    {"DestinationRule", "networking.istio.io", "destinationrules", true},
    {"Gateway", "networking.istio.io", "gateways", true},
    {"PeerAuthentication", "security.istio.io", "peerauthentications", true},
    {"AuthorizationPolicy", "security.istio.io", "authorizationpolicies", true},
    {"Telemetry", "telemetry.istio.io", "telemetries", true},
    {"Server", "policy.linkerd.io", "servers", true},
    {"HTTPRoute", "policy.linkerd.io", "httproutes", true},
    {"AuthorizationPolicy", "policy.linkerd.io", "authorizationpolicies", true},
    {"MeshTLSAuthentication", "policy.linkerd.io", "meshtlsauthentications", true},
    {"NetworkAuthentication", "policy.linkerd.io", "networkauthentications", true},
    {"HTTPRoute", "gateway.networking.k8s.io", "httproutes", true},
    {"Service", "", "services", true},
    {"Namespace", "", "namespaces", false},
    {"CustomResourceDefinition", "apiextensions.k8s.io", "customresourcedefinitions", false},
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const struct mesh_kube_kind *mesh_kube_kinds(size_t *n)
{
    *n = N_KINDS;
    return kinds;
}

const struct mesh_kube_kind *mesh_kube_kind_find(const char *group, const char *kind)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcmp(kinds[i].group, group) == 0 && strcmp(kinds[i].kind, kind) == 0)
            return &kinds[i];
    return NULL;
}

/* "networking.istio.io/v1" -> group "networking.istio.io"; "v1" -> "" (core). *group: malloc'ed. */
static char *group_of(const char *api_version)
{
    const char *slash = strchr(api_version, '/');
    return slash ? xstrndup(api_version, (size_t)(slash - api_version)) : xstrdup("");
}

enum mesh_err mesh_kube_path(const char *api_version, const char *kind, const char *ns,
                             const char *name, char **out, char **errmsg)
{
    char *group = group_of(api_version);
    const struct mesh_kube_kind *k = mesh_kube_kind_find(group, kind);
    enum mesh_err err = MESH_OK;
    struct mesh_strbuf sb;

    mesh_strbuf_init(&sb, 0);
    if (!k) {
        err = MESH_E_UNSUPPORTED;
        *errmsg =
            xasprintf("kind %s of %s is not one meshctl knows how to address", kind, api_version);
        goto out;
    }
    mesh_strbuf_printf(&sb, "%s/%s", group[0] ? "/apis" : "/api", api_version);
    if (k->namespaced && ns && *ns)
        mesh_strbuf_printf(&sb, "/namespaces/%s", ns);
    mesh_strbuf_printf(&sb, "/%s", k->plural);
    if (name)
        mesh_strbuf_printf(&sb, "/%s", name);
    *out = mesh_strbuf_take(&sb);
out:
    mesh_strbuf_free(&sb);
    free(group);
    return err;
}

/* --- the client --- */

enum mesh_err mesh_kube_client_new(const struct mesh_kube_credentials *cred, long timeout_ms,
                                   struct mesh_kube_client **out, char **errmsg)
{
    struct mesh_kube_client *c = NULL;
    enum mesh_err err = MESH_OK;
    CURLcode rc = CURLE_OK;

    *out = NULL;
    CURLcode init_rc = mesh_curl_global_init();
    if (init_rc != CURLE_OK) {
        *errmsg = xasprintf("libcurl cannot start: %s", curl_easy_strerror(init_rc));
        return MESH_E_INTERNAL;
    }
    c = xcalloc(1, sizeof(*c));
    c->server = xstrdup(cred->server);
    c->token = xstrdup(cred->token);
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : MESH_KUBE_DEFAULT_TIMEOUT_MS;
    c->curl = curl_easy_init();
    if (!c->curl) {
        err = MESH_E_INTERNAL;
        *errmsg = xstrdup("libcurl cannot make a handle");
        goto out;
    }
    /* Options that hold for every request: what to trust, who we are, how long to wait. */
    CURL *h = c->curl;
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                              c->timeout_ms < 10000 ? c->timeout_ms : 10000L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_USERAGENT, "meshctl (clusterdb-mesh)");
    if (rc == CURLE_OK && cred->insecure) {
        rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (rc == CURLE_OK && cred->ca_pem) {
        /* The cluster's CA only, as kubectl trusts it: not the system store besides. */
        struct curl_blob blob = {cred->ca_pem, cred->ca_len, CURL_BLOB_COPY};
        rc = curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    if (rc == CURLE_OK && cred->cert_pem) {
        struct curl_blob cert = {cred->cert_pem, cred->cert_len, CURL_BLOB_COPY};
        struct curl_blob key = {cred->key_pem, cred->key_len, CURL_BLOB_COPY};
        rc = curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
    }
    if (rc != CURLE_OK) {
        err = MESH_E_INTERNAL;
        *errmsg = xasprintf("libcurl refused an option: %s", curl_easy_strerror(rc));
        goto out;
    }
    *out = c;
    c = NULL;
out:
    mesh_kube_client_free(c);
    return err;
}

void mesh_kube_client_free(struct mesh_kube_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    if (c->token)
        memset(c->token, 0, strlen(c->token));
    free(c->token);
    free(c->server);
    for (size_t i = 0; i < c->n_served; i++) {
        free(c->served[i].group_kind);
        free(c->served[i].api_version);
    }
    free(c->served);
    free(c);
}

const char *mesh_kube_client_server(const struct mesh_kube_client *c)
{
    return c->server;
}

/* --- requests --- */

/* What a transport failure means to the user. */
static enum mesh_err transport_error(const struct mesh_kube_client *c, CURLcode rc,
                                     const char *what, char **errmsg)
{
    const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    enum mesh_err err = MESH_E_UNAVAILABLE;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        *errmsg = xasprintf("%s: the API server at %s did not answer within %ld ms (%s)", what,
                            c->server, c->timeout_ms, detail);
        return err;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CLIENTCERT:
        *errmsg = xasprintf("%s: TLS with the API server at %s failed: %s (check the cluster's "
                            "certificate-authority and the user's client certificate in the "
                            "kubeconfig)",
                            what, c->server, detail);
        return MESH_E_TLS;
    default:
        *errmsg = xasprintf("%s: cannot reach the API server at %s: %s", what, c->server, detail);
        return err;
    }
}

/* Sends METHOD server+path with body (may be NULL) of content_type. MESH_OK with *status and
 * *resp (malloc'ed, NUL-terminated) whatever the status; else a transport error. */
static enum mesh_err request(struct mesh_kube_client *c, const char *method, const char *path,
                             const char *content_type, const char *body, const char *what,
                             long *status, char **resp, size_t *resp_len, char **errmsg)
{
    struct mesh_curl_body sink = {0};
    struct curl_slist *headers = NULL;
    char *url = xasprintf("%s%s", c->server, path);
    char *auth = NULL, *ctype = NULL;
    enum mesh_err err = MESH_OK;
    CURL *h = c->curl;
    CURLcode rc = CURLE_OK;

    mesh_curl_body_init(&sink, KUBE_MAX_BODY);
    c->errbuf[0] = '\0';
    headers = curl_slist_append(headers, "Accept: application/json");
    if (c->token) {
        auth = xasprintf("Authorization: Bearer %s", c->token);
        headers = curl_slist_append(headers, auth);
    }
    if (content_type) {
        ctype = xasprintf("Content-Type: %s", content_type);
        headers = curl_slist_append(headers, ctype);
    }
    if (!headers) {
        err = MESH_E_NOMEM;
        *errmsg = xstrdup("out of memory");
        goto out;
    }
    rc = curl_easy_setopt(h, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (rc == CURLE_OK) {
        if (body) {
            rc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
            if (rc == CURLE_OK)
                rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        } else {
            rc = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
            /* HTTPGET resets the method; the custom one (DELETE) goes back on top. */
            if (rc == CURLE_OK)
                rc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        }
    }
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, mesh_curl_body_write);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h);
    if (rc == CURLE_WRITE_ERROR && sink.too_big) {
        err = MESH_E_IO;
        *errmsg = xasprintf("%s: the API server's answer is larger than %u MiB", what,
                            KUBE_MAX_BODY >> 20);
        goto out;
    }
    if (rc != CURLE_OK) {
        err = transport_error(c, rc, what, errmsg);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    *resp_len = sink.sb.len;
    *resp = mesh_strbuf_take(&sink.sb);
out:
    /* The handle must not keep pointers to what is freed here. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(headers);
    if (auth)
        memset(auth, 0, strlen(auth));
    free(auth);
    free(ctype);
    free(url);
    mesh_strbuf_free(&sink.sb);
    return err;
}

/* The JSON body as a node tree (caller frees), or NULL when it is not one JSON object. */
static struct mesh_node *parse_object(const char *body, size_t len)
{
    struct mesh_node_docs docs = {0};
    struct mesh_diags diags = {0};
    struct mesh_node *root = NULL;
    if (len > 0 && mesh_json_read(body, len, "response", &docs, &diags) == MESH_OK &&
        docs.len == 1 && docs.items[0].root && docs.items[0].root->type == MESH_NODE_MAP) {
        root = docs.items[0].root;
        docs.items[0].root = NULL;
    }
    mesh_node_docs_free(&docs);
    mesh_diags_clear(&diags);
    return root;
}

static const char *node_text(const struct mesh_node *map, const char *key)
{
    const struct mesh_node *n = mesh_node_map_get(map, key);
    return n && n->type == MESH_NODE_SCALAR ? n->text : NULL;
}

static const char *http_phrase(long status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "error";
}

char *mesh_kube_status_message(long status, const char *body, size_t len, const char *what,
                               enum mesh_err *err)
{
    struct mesh_node *st = parse_object(body, len);
    const char *kind = node_text(st, "kind");
    bool is_status = kind && strcmp(kind, "Status") == 0;
    const char *reason = is_status ? node_text(st, "reason") : NULL;
    const char *message = is_status ? node_text(st, "message") : NULL;
    struct mesh_strbuf sb;

    switch (status) {
    case 404:
        *err = MESH_E_NOTFOUND;
        break;
    case 409:
        *err = MESH_E_CONFLICT;
        break;
    case 400:
    case 422:
        *err = MESH_E_INVALID;
        break;
    default:
        *err = MESH_E_UNAVAILABLE;
        break;
    }
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_printf(&sb, "%s: the API server answered %ld %s", what, status,
                       reason && *reason ? reason : http_phrase(status));
    if (message && *message) {
        mesh_strbuf_printf(&sb, ": %s", message);
    } else if (!is_status && len > 0) {
        /* Not a Status (a proxy in front of the server, say): its first line, printable. */
        mesh_strbuf_puts(&sb, ": ");
        for (size_t i = 0; i < len && i < 200 && body[i] != '\n'; i++)
            mesh_strbuf_printf(&sb, "%c", body[i] >= 0x20 && body[i] < 0x7f ? body[i] : '?');
    }
    if (status == 401)
        mesh_strbuf_puts(&sb, " (the API server does not accept the credentials of the "
                              "kubeconfig's user: token, client certificate or exec plugin)");
    else if (status == 403)
        mesh_strbuf_puts(&sb, " (the kubeconfig's user lacks the RBAC permission for this)");
    mesh_node_free(st);
    return mesh_strbuf_take(&sb);
}

/* Sends the request; MESH_OK with *out (the JSON object answered, may be NULL when empty) on a
 * 2xx, else the Status turned into an error. *status_out (may be NULL) gets the status. */
static enum mesh_err call(struct mesh_kube_client *c, const char *method, const char *path,
                          const char *content_type, const char *body, const char *what,
                          struct mesh_node **out, long *status_out, char **errmsg)
{
    char *resp = NULL;
    size_t len = 0;
    long status = 0;
    enum mesh_err err =
        request(c, method, path, content_type, body, what, &status, &resp, &len, errmsg);
    if (err != MESH_OK)
        goto out;
    if (status_out)
        *status_out = status;
    if (status < 200 || status > 299) {
        *errmsg = mesh_kube_status_message(status, resp, len, what, &err);
        goto out;
    }
    if (out) {
        *out = parse_object(resp, len);
        if (!*out) {
            err = MESH_E_INVALID;
            *errmsg = xasprintf("%s: the API server at %s answered %ld with no JSON object", what,
                                c->server, status);
        }
    }
out:
    free(resp);
    return err;
}

enum mesh_err mesh_kube_version(struct mesh_kube_client *c, char **git_version, char **errmsg)
{
    struct mesh_node *v = NULL;
    enum mesh_err err = call(c, "GET", "/version", NULL, NULL, "cannot read the server's version",
                             &v, NULL, errmsg);
    if (err != MESH_OK)
        return err;
    const char *gv = node_text(v, "gitVersion");
    if (!gv) {
        err = MESH_E_INVALID;
        *errmsg = xasprintf("the API server at %s answered /version without a gitVersion: is "
                            "this a Kubernetes API server?",
                            c->server);
    } else {
        *git_version = xstrdup(gv);
    }
    mesh_node_free(v);
    return err;
}

/* Whether the APIResourceList at path (/apis/GROUP/VERSION) names plural. */
static enum mesh_err version_serves(struct mesh_kube_client *c, const char *path,
                                    const char *plural, bool *serves, char **errmsg)
{
    struct mesh_node *list = NULL;
    char *what = xasprintf("cannot read the resources of %s", path);
    enum mesh_err err = call(c, "GET", path, NULL, NULL, what, &list, NULL, errmsg);
    *serves = false;
    const struct mesh_node *res = err == MESH_OK ? mesh_node_map_get(list, "resources") : NULL;
    for (size_t i = 0; res && res->type == MESH_NODE_SEQ && i < res->len && !*serves; i++) {
        const char *name = node_text(res->items[i], "name");
        *serves = name && strcmp(name, plural) == 0;
    }
    mesh_node_free(list);
    free(what);
    return err;
}

enum mesh_err mesh_kube_served_version(struct mesh_kube_client *c, const char *group,
                                       const char *kind, char **api_version, char **errmsg)
{
    const struct mesh_kube_kind *k = mesh_kube_kind_find(group, kind);
    struct mesh_node *g = NULL;
    char *path = xasprintf("/apis/%s", group);
    char *what = xasprintf("cannot read which versions of %s the server serves", group);
    enum mesh_err err = MESH_E_NOTFOUND;

    *api_version = NULL;
    char *group_kind = xasprintf("%s/%s", group, kind);
    for (size_t i = 0; i < c->n_served; i++)
        if (strcmp(c->served[i].group_kind, group_kind) == 0) {
            *api_version = xstrdup(c->served[i].api_version);
            err = MESH_OK;
            goto out;
        }
    if (!k) {
        *errmsg = xasprintf("%s: no %s in %s that we know of", what, kind, group);
        err = MESH_E_UNSUPPORTED;
        goto out;
    }
    if ((err = call(c, "GET", path, NULL, NULL, what, &g, NULL, errmsg)) != MESH_OK)
        goto out;
    /* The preferred version first, then the others in the server's order. */
    const char *preferred = node_text(mesh_node_map_get(g, "preferredVersion"), "groupVersion");
    const struct mesh_node *versions = mesh_node_map_get(g, "versions");
    size_t n = versions && versions->type == MESH_NODE_SEQ ? versions->len : 0;
    for (size_t i = 0; i <= n && !*api_version && err == MESH_OK; i++) {
        const char *gv = i == 0 ? preferred : node_text(versions->items[i - 1], "groupVersion");
        if (!gv || (i > 0 && preferred && strcmp(gv, preferred) == 0))
            continue;
        char *vpath = xasprintf("/apis/%s", gv);
        bool serves = false;
        err = version_serves(c, vpath, k->plural, &serves, errmsg);
        if (err == MESH_OK && serves)
            *api_version = xstrdup(gv);
        free(vpath);
    }
    if (err == MESH_OK && !*api_version) {
        err = MESH_E_NOTFOUND;
        *errmsg = xasprintf("the API server at %s serves no version of %s with %s", c->server,
                            group, k->plural);
    }
    if (err == MESH_OK) {
        xgrow((void **)&c->served, &c->cap_served, c->n_served + 1, sizeof(*c->served));
        c->served[c->n_served++] = (struct served_version){group_kind, xstrdup(*api_version)};
        group_kind = NULL;
    }
out:
    free(group_kind);
    mesh_node_free(g);
    free(what);
    free(path);
    return err;
}

enum mesh_err mesh_kube_crd_installed(struct mesh_kube_client *c, const char *name, bool *installed,
                                      char **errmsg)
{
    char *path = xasprintf("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s", name);
    char *what = xasprintf("cannot read CustomResourceDefinition %s", name);
    struct mesh_node *crd = NULL;
    enum mesh_err err = call(c, "GET", path, NULL, NULL, what, &crd, NULL, errmsg);
    *installed = err == MESH_OK;
    if (err == MESH_E_NOTFOUND) {
        err = MESH_OK;
        free(*errmsg);
        *errmsg = NULL;
    }
    mesh_node_free(crd);
    free(what);
    free(path);
    return err;
}

/* "VirtualService default/payment" or "Namespace payments" */
static char *describe(const char *kind, const char *ns, const char *name)
{
    return ns && *ns ? xasprintf("%s %s/%s", kind, ns, name) : xasprintf("%s %s", kind, name);
}

enum mesh_err mesh_kube_apply(struct mesh_kube_client *c, const struct mesh_node *obj, bool force,
                              struct mesh_node **live, bool *created, char **errmsg)
{
    const struct mesh_node *meta = mesh_node_map_get(obj, "metadata");
    const char *api = node_text(obj, "apiVersion"), *kind = node_text(obj, "kind");
    const char *name = node_text(meta, "name"), *ns = node_text(meta, "namespace");
    char *path = NULL, *url = NULL, *body = NULL, *what = NULL;
    struct mesh_node *answer = NULL;
    long status = 0;
    enum mesh_err err;

    if (!api || !kind || !name) {
        *errmsg = xstrdup("cannot apply an object without apiVersion, kind and metadata.name");
        return MESH_E_INVALID;
    }
    what = describe(kind, ns, name);
    if ((err = mesh_kube_path(api, kind, ns, name, &path, errmsg)) != MESH_OK)
        goto out;
    if ((err = mesh_json_write(obj, &body)) != MESH_OK) {
        *errmsg = xasprintf("cannot apply %s: cannot print it as JSON", what);
        goto out;
    }
    url = xasprintf("%s?fieldManager=" KUBE_FIELD_MANAGER "%s", path, force ? "&force=true" : "");
    char *doing = xasprintf("cannot apply %s", what);
    /* JSON is YAML: the apply-patch+yaml content type takes it as it is. */
    err = call(c, "PATCH", url, "application/apply-patch+yaml", body, doing, &answer, &status,
               errmsg);
    free(doing);
    if (err != MESH_OK)
        goto out;
    if (created)
        *created = status == 201;
    if (live) {
        *live = answer;
        answer = NULL;
    }
out:
    mesh_node_free(answer);
    free(body);
    free(url);
    free(path);
    free(what);
    return err;
}

enum mesh_err mesh_kube_get(struct mesh_kube_client *c, const char *api_version, const char *kind,
                            const char *ns, const char *name, struct mesh_node **out, char **errmsg)
{
    char *path = NULL, *obj = describe(kind, ns, name);
    char *what = xasprintf("cannot read %s", obj);
    enum mesh_err err = mesh_kube_path(api_version, kind, ns, name, &path, errmsg);
    if (err == MESH_OK)
        err = call(c, "GET", path, NULL, NULL, what, out, NULL, errmsg);
    free(what);
    free(obj);
    free(path);
    return err;
}

enum mesh_err mesh_kube_list(struct mesh_kube_client *c, const char *api_version, const char *kind,
                             const char *ns, const char *label_selector, struct mesh_node **items,
                             char **errmsg)
{
    char *path = NULL, *url = NULL, *what = NULL;
    struct mesh_node *list = NULL;
    enum mesh_err err = mesh_kube_path(api_version, kind, ns, NULL, &path, errmsg);

    if (err != MESH_OK)
        goto out;
    what = ns ? xasprintf("cannot list %s in namespace %s", kind, ns)
              : xasprintf("cannot list %s", kind);
    if (label_selector) {
        char *sel = curl_easy_escape(c->curl, label_selector, 0);
        if (!sel) {
            err = MESH_E_NOMEM;
            *errmsg = xstrdup("out of memory");
            goto out;
        }
        url = xasprintf("%s?labelSelector=%s", path, sel);
        curl_free(sel);
    } else {
        url = xstrdup(path);
    }
    if ((err = call(c, "GET", url, NULL, NULL, what, &list, NULL, errmsg)) != MESH_OK)
        goto out;
    /* The list's items, taken out of it: an absent or null items is an empty list. */
    *items = mesh_node_seq();
    for (size_t i = 0; i < list->len; i++) {
        struct mesh_node_pair *p = &list->pairs[i];
        if (strcmp(p->key->text, "items") != 0 || p->value->type != MESH_NODE_SEQ)
            continue;
        mesh_node_free(*items);
        *items = p->value;
        p->value = mesh_node_seq();
        break;
    }
    /* A built-in kind's list items come without apiVersion and kind (the list names them once);
     * the caller gets objects that stand on their own. */
    for (size_t i = 0; i < (*items)->len; i++) {
        struct mesh_node *item = (*items)->items[i];
        if (item->type != MESH_NODE_MAP)
            continue;
        if (!node_text(item, "apiVersion"))
            mesh_node_map_set(item, "apiVersion", mesh_node_str(api_version));
        if (!node_text(item, "kind"))
            mesh_node_map_set(item, "kind", mesh_node_str(kind));
    }
out:
    mesh_node_free(list);
    free(what);
    free(url);
    free(path);
    return err;
}

enum mesh_err mesh_kube_delete(struct mesh_kube_client *c, const char *api_version,
                               const char *kind, const char *ns, const char *name, char **errmsg)
{
    char *path = NULL, *obj = describe(kind, ns, name);
    char *what = xasprintf("cannot delete %s", obj);
    enum mesh_err err = mesh_kube_path(api_version, kind, ns, name, &path, errmsg);
    if (err == MESH_OK)
        err = call(c, "DELETE", path, NULL, NULL, what, NULL, NULL, errmsg);
    free(what);
    free(obj);
    free(path);
    return err;
}
