/* SPDX-License-Identifier: Apache-2.0 */
/* The native provider's meshd client: the same calls as the embedded store, made over meshd's
 * REST API (docs/api.md) when mesh_config.server names a meshd. */
#include "native.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/strbuf.h"
#include "mesh/mesh.h"
#include "model/model.h"
#include "net/http_client.h"
#include "net/http_client_tls.h"

#define REMOTE_CONNECT_TIMEOUT_MS 3000
#define REMOTE_TIMEOUT_MS         60000
/* A list of every resource of a kind can be large (10,000 routes); a bound all the same. */
#define REMOTE_MAX_BODY (256u << 20)
#define TOKEN_FILE_MAX  4096
#define PEER_NAME       "meshd"

struct remote {
    char *base;                      /* "http://127.0.0.1:15010": no trailing slash */
    char *token;                     /* NULL = none: reads may still be open on loopback */
    char *ca_file;                   /* https://: meshd's CA bundle; NULL = the system store */
    struct mesh_http_client *client; /* one mesh is used by one thread at a time */
};

/* --- opening --- */

/* The first line of path, without surrounding blanks, in a new string. */
static enum mesh_err read_token_file(struct mesh *mesh, const char *path, const char *from,
                                     char **out)
{
    char buf[TOKEN_FILE_MAX + 1];
    enum mesh_err err = MESH_OK;

    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return mesh_set_error(mesh, MESH_E_IO, "cannot read the meshd token file %s (%s): %s", path,
                              from, strerror(errno));
    size_t n = fread(buf, 1, TOKEN_FILE_MAX, f);
    if (ferror(f)) {
        err = mesh_set_error(mesh, MESH_E_IO, "cannot read the meshd token file %s (%s): %s", path,
                             from, strerror(errno));
        goto out;
    }
    buf[n] = '\0';
    char *p = buf;
    while (isspace((unsigned char)*p))
        p++;
    p[strcspn(p, "\r\n")] = '\0';
    size_t len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        p[--len] = '\0';
    if (len == 0) {
        err = mesh_set_error(mesh, MESH_E_INVALID, "the meshd token file %s (%s) is empty", path,
                             from);
        goto out;
    }
    *out = strdup(p);
    if (!*out)
        err = mesh_set_error(mesh, MESH_E_NOMEM, "reading %s: out of memory", path);
out:
    fclose(f);
    return err;
}

/* The token in effect: the config's, else $MESH_TOKEN_FILE's first line, else $MESH_TOKEN. */
static enum mesh_err find_token(struct mesh *mesh, const struct mesh_config *cfg, char **out)
{
    const char *file = getenv("MESH_TOKEN_FILE");
    const char *env = getenv("MESH_TOKEN");

    *out = NULL;
    if (cfg->token && cfg->token[0]) {
        *out = strdup(cfg->token);
        return *out ? MESH_OK : mesh_set_error(mesh, MESH_E_NOMEM, "token: out of memory");
    }
    if (file && file[0])
        return read_token_file(mesh, file, "from $MESH_TOKEN_FILE", out);
    if (env && env[0]) {
        *out = strdup(env);
        return *out ? MESH_OK : mesh_set_error(mesh, MESH_E_NOMEM, "token: out of memory");
    }
    return MESH_OK;
}

/* "127.0.0.1:15010" and "http://127.0.0.1:15010/" both become "http://127.0.0.1:15010". */
static enum mesh_err normalize_base(struct mesh *mesh, const char *server, char **out)
{
    struct mesh_strbuf sb;
    const char *scheme_end = strstr(server, "://");

    *out = NULL;
    if (strpbrk(server, " \t\r\n?#"))
        return mesh_set_error(mesh, MESH_E_INVALID,
                              "server \"%s\": not a URL (want http://HOST:PORT)", server);
    if (scheme_end && strncmp(server, "http://", 7) != 0 && strncmp(server, "https://", 8) != 0)
        return mesh_set_error(mesh, MESH_E_INVALID,
                              "server \"%s\": meshd speaks http:// or https:// only", server);
    const char *host = scheme_end ? scheme_end + 3 : server;
    if (!host[0] || host[0] == '/')
        return mesh_set_error(mesh, MESH_E_INVALID,
                              "server \"%s\": no host (want http://HOST:PORT)", server);
    mesh_strbuf_init(&sb, 0);
    if (!scheme_end)
        mesh_strbuf_puts(&sb, "http://");
    mesh_strbuf_puts(&sb, server);
    while (sb.len > 0 && sb.data[sb.len - 1] == '/')
        sb.data[--sb.len] = '\0';
    *out = mesh_strbuf_take(&sb);
    return MESH_OK;
}

static void remote_close(void *state)
{
    struct remote *r = state;
    if (!r)
        return;
    mesh_http_client_free(r->client);
    free(r->base);
    free(r->token);
    free(r->ca_file);
    free(r);
}

static enum mesh_err remote_open(struct mesh *mesh, const struct mesh_config *cfg, void **state)
{
    struct remote *r = NULL;
    enum mesh_err err;

    *state = NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return mesh_set_error(mesh, MESH_E_NOMEM, "meshd client: out of memory");
    err = normalize_base(mesh, cfg->server, &r->base);
    if (err != MESH_OK)
        goto out;
    err = find_token(mesh, cfg, &r->token);
    if (err != MESH_OK)
        goto out;
    const char *ca_file = cfg->ca_file && cfg->ca_file[0] ? cfg->ca_file : getenv("MESH_CACERT");
    if (ca_file && ca_file[0] && !(r->ca_file = strdup(ca_file))) {
        err = mesh_set_error(mesh, MESH_E_NOMEM, "meshd client: out of memory");
        goto out;
    }
    if (strncmp(r->base, "https://", 8) == 0)
        mesh_http_client_tls_install();
    err = mesh_http_client_new(&r->client);
    if (err != MESH_OK) {
        mesh_set_error(mesh, err, "meshd client: cannot start the HTTP client: %s",
                       mesh_strerror(err));
        goto out;
    }
    /* No request yet: meshd may come up later, and each call says if it cannot be reached. */
    *state = r;
    r = NULL; /* the mesh owns it now */
out:
    remote_close(r);
    return err;
}

/* --- requests --- */

/* Appends s percent-encoded as one URL path segment. */
static void put_segment(struct mesh_strbuf *sb, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            mesh_strbuf_append(sb, s, 1);
        else
            mesh_strbuf_printf(sb, "%%%02X", c);
    }
}

/* base + "/v1/namespaces/NS/KIND[/NAME]", or base + "/v1/KIND" when ns is NULL. */
static char *resource_url(const struct remote *r, enum mesh_kind kind, const char *ns,
                          const char *name)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_puts(&sb, r->base);
    mesh_strbuf_puts(&sb, "/v1/");
    if (ns) {
        mesh_strbuf_puts(&sb, "namespaces/");
        put_segment(&sb, ns);
        mesh_strbuf_puts(&sb, "/");
    }
    put_segment(&sb, mesh_kind_name(kind));
    if (name) {
        mesh_strbuf_puts(&sb, "/");
        put_segment(&sb, name);
    }
    return mesh_strbuf_take(&sb);
}

/* Sends one request; on MESH_OK *resp is meshd's answer (any status). Transport failures become
 * the mesh's error, in the client's words ("cannot reach meshd at URL: connection refused"). */
static enum mesh_err call(struct mesh *mesh, struct remote *r, const char *method, const char *url,
                          const char *body, struct mesh_http_response *resp)
{
    char *msg = NULL;
    struct mesh_http_request req = {
        .method = method,
        .url = url,
        .peer_name = PEER_NAME,
        .token = r->token,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .content_type = "application/json",
        .connect_timeout_ms = REMOTE_CONNECT_TIMEOUT_MS,
        .timeout_ms = REMOTE_TIMEOUT_MS,
        .max_body = REMOTE_MAX_BODY,
        .want_headers = {"Retry-After"}, /* slot 0, read by refused() */
        .ca_file = r->ca_file,
    };
    enum mesh_err err = mesh_http_client_do(r->client, &req, resp, &msg);
    if (err != MESH_OK)
        mesh_set_error(mesh, err, "%s", msg ? msg : mesh_strerror(err));
    free(msg);
    return err;
}

/* Turns a meshd error answer into the mesh's error: the enum the status stands for, and meshd's
 * own message, which already names the resource and field. */
static enum mesh_err refused(struct mesh *mesh, const struct remote *r,
                             const struct mesh_http_response *resp, const char *what)
{
    enum mesh_err err = mesh_http_status_err(resp->status);
    char *msg = mesh_http_error_message(resp->status, resp->body, resp->body_len);
    const char *text = msg ? msg : "out of memory";

    if (err == MESH_OK)
        err = MESH_E_INTERNAL; /* a status the caller did not expect */
    switch (resp->status) {
    case 400:
    case 404:
    case 409:
        mesh_set_error(mesh, err, "%s", text);
        break;
    case 401:
        if (r->token)
            mesh_set_error(mesh, err,
                           "meshd refused the token (401): pass --token FILE or set "
                           "MESH_TOKEN_FILE to meshd's DATA_DIR/token");
        else
            mesh_set_error(mesh, err,
                           "meshd needs a token to %s (401): pass --token FILE or set "
                           "MESH_TOKEN_FILE to meshd's DATA_DIR/token",
                           what);
        break;
    case 429:
        mesh_set_error(mesh, err,
                       "meshd at %s is rate limiting this client (429): %s; retry %s%s%s", r->base,
                       text, resp->header_values[0] ? "after " : "later",
                       resp->header_values[0] ? resp->header_values[0] : "",
                       resp->header_values[0] ? " s" : "");
        break;
    default:
        mesh_set_error(mesh, err, "meshd at %s could not %s (%ld): %s", r->base, what, resp->status,
                       text);
        break;
    }
    free(msg);
    return err;
}

/* Parses an answer body as JSON; a body that is not JSON is meshd misbehaving. */
static enum mesh_err parse_json(struct mesh *mesh, const struct remote *r,
                                const struct mesh_http_response *resp, const char *what,
                                json_t **out)
{
    json_error_t jerr;
    *out = json_loadb(resp->body, resp->body_len, 0, &jerr);
    if (!*out)
        return mesh_set_error(mesh, MESH_E_INTERNAL,
                              "meshd at %s answered %s with something that is not JSON: %s",
                              r->base, what, jerr.text);
    return MESH_OK;
}

/* --- the provider calls --- */

/* {"items": [document, ...]} with each document's resource_version, so that meshd can refuse a
 * stale one (409), exactly as the embedded store does. */
static enum mesh_err apply_body(const struct mesh_resource *const *res, size_t n, char **out)
{
    struct mesh_node *root = mesh_node_map();
    struct mesh_node *items = mesh_node_seq();
    for (size_t i = 0; i < n; i++)
        mesh_node_seq_append(items, mesh_model_to_node(res[i]));
    mesh_node_map_set(root, "items", items);
    *out = NULL;
    enum mesh_err err = mesh_json_write(root, out);
    mesh_node_free(root);
    return err;
}

static enum mesh_err read_outcome(struct mesh *mesh, const struct remote *r, json_t *item, size_t i,
                                  struct mesh_apply_result *result)
{
    const char *outcome = json_string_value(json_object_get(item, "outcome"));
    json_t *rv = json_object_get(item, "resource_version");
    json_t *gen = json_object_get(item, "generation");

    if (!outcome || !json_is_integer(rv) || !json_is_integer(gen) || json_integer_value(rv) < 0 ||
        json_integer_value(gen) < 0)
        return mesh_set_error(mesh, MESH_E_INTERNAL,
                              "meshd at %s: result %zu lacks outcome, resource_version or "
                              "generation",
                              r->base, i);
    if (strcmp(outcome, "created") == 0)
        result->outcome = MESH_APPLY_CREATED;
    else if (strcmp(outcome, "configured") == 0)
        result->outcome = MESH_APPLY_CONFIGURED;
    else if (strcmp(outcome, "unchanged") == 0)
        result->outcome = MESH_APPLY_UNCHANGED;
    else
        return mesh_set_error(mesh, MESH_E_INTERNAL, "meshd at %s: result %zu: outcome \"%s\"",
                              r->base, i, outcome);
    result->resource_version = (uint64_t)json_integer_value(rv);
    result->generation = (uint64_t)json_integer_value(gen);
    return MESH_OK;
}

/* POSTs res[0..n) to base + path ("/v1/apply", "/v1/restore") and reads one result per
 * document into results. On MESH_OK *answer (caller json_decref's) is meshd's whole answer, for
 * what else it says. what names the call in messages ("apply"). */
static enum mesh_err post_documents(struct mesh *mesh, struct remote *r, const char *path,
                                    const char *what, const struct mesh_resource *const *res,
                                    size_t n, struct mesh_apply_result *results, json_t **answer)
{
    struct mesh_http_response resp = {0};
    json_t *root = NULL;
    char *body = NULL, *url = NULL, *call_name = NULL;

    *answer = NULL;
    enum mesh_err err = apply_body(res, n, &body);
    if (err != MESH_OK) {
        mesh_set_error(mesh, err, "%s: cannot encode the documents: %s", what, mesh_strerror(err));
        goto out;
    }
    url = malloc(strlen(r->base) + strlen(path) + 1);
    call_name = malloc(strlen("POST ") + strlen(path) + 1);
    if (!url || !call_name) {
        err = mesh_set_error(mesh, MESH_E_NOMEM, "%s: out of memory", what);
        goto out;
    }
    sprintf(url, "%s%s", r->base, path);
    sprintf(call_name, "POST %s", path);
    err = call(mesh, r, "POST", url, body, &resp);
    if (err != MESH_OK)
        goto out;
    if (resp.status != 200 && resp.status != 201) {
        err = refused(mesh, r, &resp, what);
        goto out;
    }
    err = parse_json(mesh, r, &resp, call_name, &root);
    if (err != MESH_OK)
        goto out;
    json_t *items = json_object_get(root, "items");
    if (json_array_size(items) != n) {
        err = mesh_set_error(mesh, MESH_E_INTERNAL,
                             "meshd at %s answered %zu %s results for %zu documents", r->base,
                             json_array_size(items), what, n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        err = read_outcome(mesh, r, json_array_get(items, i), i, &results[i]);
        if (err != MESH_OK)
            goto out;
    }
    *answer = root;
    root = NULL; /* the caller's now */
out:
    json_decref(root);
    mesh_http_response_clear(&resp);
    free(call_name);
    free(url);
    free(body);
    return err;
}

static enum mesh_err remote_apply(struct mesh *mesh, void *state,
                                  const struct mesh_resource *const *res, size_t n,
                                  struct mesh_apply_result *results)
{
    json_t *answer = NULL;
    enum mesh_err err = post_documents(mesh, state, "/v1/apply", "apply", res, n, results, &answer);
    json_decref(answer);
    return err;
}

/* POST /v1/restore: meshd applies the restore rule inside its own transaction, and says which
 * way it went. */
static enum mesh_err remote_restore(struct mesh *mesh, void *state,
                                    const struct mesh_resource *const *res, size_t n,
                                    struct mesh_apply_result *results, enum mesh_restore_mode *mode)
{
    struct remote *r = state;
    json_t *answer = NULL;
    enum mesh_err err = post_documents(mesh, r, "/v1/restore", "restore", res, n, results, &answer);
    if (err == MESH_E_NOTFOUND) {
        /* Only a meshd without the route answers 404 here: libmesh then restores by apply. */
        return mesh_set_error(mesh, MESH_E_UNSUPPORTED, "meshd at %s has no /v1/restore", r->base);
    }
    if (err != MESH_OK)
        goto out;
    const char *how = json_string_value(json_object_get(answer, "mode"));
    if (how && strcmp(how, "versions_kept") == 0) {
        *mode = MESH_RESTORE_VERSIONS_KEPT;
    } else if (how && strcmp(how, "applied") == 0) {
        *mode = MESH_RESTORE_APPLIED;
    } else {
        err = mesh_set_error(mesh, MESH_E_INTERNAL,
                             "meshd at %s: the restore answer's mode is %s%s%s, not versions_kept "
                             "or applied",
                             r->base, how ? "\"" : "", how ? how : "missing", how ? "\"" : "");
    }
out:
    json_decref(answer);
    return err;
}

/* Decodes one document meshd sent (a tree read from its answer) into a new resource. */
static enum mesh_err decode_doc(struct mesh *mesh, const struct remote *r,
                                const struct mesh_node *doc, struct mesh_resource **out)
{
    struct mesh_diags diags = {0};
    enum mesh_err err = mesh_model_from_node(doc, "meshd answer", out, &diags);
    if (err != MESH_OK) {
        char *why = mesh_model_diags_text(&diags);
        err = mesh_set_error(mesh, MESH_E_INTERNAL,
                             "meshd at %s sent a document libmesh cannot read: %s", r->base,
                             why && *why ? why : mesh_strerror(err));
        free(why);
    }
    mesh_diags_clear(&diags);
    return err;
}

/* Reads meshd's JSON answer into a node tree (numbers keep their text, unlike a Jansson round
 * trip). */
static enum mesh_err read_answer(struct mesh *mesh, const struct remote *r,
                                 const struct mesh_http_response *resp, struct mesh_node_docs *docs)
{
    struct mesh_diags diags = {0};
    enum mesh_err err = mesh_json_read(resp->body, resp->body_len, "meshd answer", docs, &diags);
    if (err == MESH_OK && (docs->len != 1 || !docs->items[0].root)) {
        mesh_node_docs_free(docs);
        err = MESH_E_INVALID;
    }
    if (err != MESH_OK) {
        char *why = mesh_model_diags_text(&diags);
        err = mesh_set_error(mesh, MESH_E_INTERNAL,
                             "meshd at %s sent an answer that is not one JSON value: %s", r->base,
                             why && *why ? why : mesh_strerror(err));
        free(why);
    }
    mesh_diags_clear(&diags);
    return err;
}

static enum mesh_err remote_get(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                                const char *name, struct mesh_resource **out)
{
    struct remote *r = state;
    struct mesh_http_response resp = {0};
    struct mesh_node_docs docs = {0};
    char *url = resource_url(r, kind, ns, name);

    *out = NULL;
    enum mesh_err err = call(mesh, r, "GET", url, NULL, &resp);
    if (err != MESH_OK)
        goto out;
    if (resp.status != 200) {
        err = refused(mesh, r, &resp, "get");
        goto out;
    }
    err = read_answer(mesh, r, &resp, &docs);
    if (err != MESH_OK)
        goto out;
    err = decode_doc(mesh, r, docs.items[0].root, out);
out:
    mesh_node_docs_free(&docs);
    mesh_http_response_clear(&resp);
    free(url);
    return err;
}

static enum mesh_err remote_list(struct mesh *mesh, void *state, enum mesh_kind kind,
                                 const char *ns, struct mesh_resource ***out, size_t *n)
{
    struct remote *r = state;
    struct mesh_http_response resp = {0};
    struct mesh_node_docs docs = {0};
    struct mesh_resource **list = NULL;
    size_t done = 0;
    char *url = resource_url(r, kind, ns, NULL);

    *out = NULL;
    *n = 0;
    enum mesh_err err = call(mesh, r, "GET", url, NULL, &resp);
    if (err != MESH_OK)
        goto out;
    if (resp.status != 200) {
        err = refused(mesh, r, &resp, "list");
        goto out;
    }
    err = read_answer(mesh, r, &resp, &docs);
    if (err != MESH_OK)
        goto out;
    const struct mesh_node *items = mesh_node_map_get(docs.items[0].root, "items");
    if (!items || items->type != MESH_NODE_SEQ) {
        err = mesh_set_error(mesh, MESH_E_INTERNAL, "meshd at %s: the list answer has no items",
                             r->base);
        goto out;
    }
    list = calloc(items->len ? items->len : 1, sizeof(*list));
    if (!list) {
        err = mesh_set_error(mesh, MESH_E_NOMEM, "list %s: out of memory", mesh_kind_name(kind));
        goto out;
    }
    for (; done < items->len; done++) {
        err = decode_doc(mesh, r, items->items[done], &list[done]);
        if (err != MESH_OK)
            goto out;
    }
    *out = list;
    *n = done;
    list = NULL; /* the caller owns it now */
out:
    mesh_resource_list_free(list, done);
    mesh_node_docs_free(&docs);
    mesh_http_response_clear(&resp);
    free(url);
    return err;
}

static enum mesh_err remote_remove(struct mesh *mesh, void *state, enum mesh_kind kind,
                                   const char *ns, const char *name)
{
    struct remote *r = state;
    struct mesh_http_response resp = {0};
    char *url = resource_url(r, kind, ns, name);

    enum mesh_err err = call(mesh, r, "DELETE", url, NULL, &resp);
    if (err == MESH_OK && resp.status != 200 && resp.status != 204)
        err = refused(mesh, r, &resp, "delete");
    mesh_http_response_clear(&resp);
    free(url);
    return err;
}

const struct mesh_provider_ops mesh_native_remote_ops = {
    .name = "native",
    .open = remote_open,
    .close = remote_close,
    .apply = remote_apply,
    .get = remote_get,
    .list = remote_list,
    .remove = remote_remove,
    .restore = remote_restore,
};
