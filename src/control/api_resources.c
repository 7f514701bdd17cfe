/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's resource routes: one resource (GET, PUT, DELETE), lists, the multi-document apply and
 * restore, each in one transaction, and /v1/version and /v1/health. Bodies are parsed and
 * validated by the same code as meshctl's files, with "request body" as the file name. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "core/strbuf.h"
#include "core/xalloc.h"
#include "mesh/mesh.h"
#include "model/kinds.h"
#include "model/model.h"
#include "model/node.h"
#include "model/schema.h"

#define BODY_FILE "request body"

/* --- answers --- */

enum format {
    FMT_JSON,
    FMT_YAML,
};

/* The ?format= of a read; false (answered) when malformed. */
static bool read_format(struct mesh_httpd_req *req, enum format *fmt)
{
    bool bad = false;
    char *v = mesh_api_query(req, "format", &bad);
    bool ok = true;
    *fmt = FMT_JSON;
    if (bad || (v && strcmp(v, "json") != 0 && strcmp(v, "yaml") != 0)) {
        mesh_api_error(req, 400, NULL, "format: must be json or yaml");
        ok = false;
    } else if (v && strcmp(v, "yaml") == 0) {
        *fmt = FMT_YAML;
    }
    free(v);
    return ok;
}

static const char *content_type(enum format fmt)
{
    return fmt == FMT_YAML ? "application/yaml" : "application/json";
}

static void send_resource(struct mesh_httpd_req *req, int status, const struct mesh_resource *res,
                          enum format fmt)
{
    char *text = NULL;
    enum mesh_err err =
        mesh_print_documents(&res, 1, fmt == FMT_YAML ? MESH_FORMAT_YAML : MESH_FORMAT_JSON, &text);
    if (err != MESH_OK)
        mesh_api_error(req, 500, NULL, "cannot print %s %s/%s: %s", mesh_kind_name(res->kind),
                       mesh_resource_namespace(res), res->name, mesh_strerror(err));
    else
        mesh_api_send(req, status, content_type(fmt), NULL, text);
    free(text);
}

/* {"items": [...]} in JSON; the documents one after the other ("---") in YAML. */
static void send_list(struct mesh_httpd_req *req, struct mesh_resource **res, size_t n,
                      enum format fmt)
{
    char *text = NULL;
    enum mesh_err err;
    if (fmt == FMT_YAML) {
        err = n ? mesh_print_documents((const struct mesh_resource *const *)res, n,
                                       MESH_FORMAT_YAML, &text)
                : MESH_OK;
    } else {
        struct mesh_node *root = mesh_node_map();
        struct mesh_node *items = mesh_node_seq();
        for (size_t i = 0; i < n; i++)
            mesh_node_seq_append(items, mesh_model_to_node(res[i]));
        mesh_node_map_set(root, "items", items);
        err = mesh_json_write(root, &text);
        mesh_node_free(root);
    }
    if (err != MESH_OK)
        mesh_api_error(req, 500, NULL, "cannot print the list: %s", mesh_strerror(err));
    else
        mesh_api_send(req, 200, content_type(fmt), NULL, text ? text : "");
    free(text);
}

static void send_json(struct mesh_httpd_req *req, int status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2));
    if (!text)
        abort(); /* control plane: out of memory is fatal, as with xalloc */
    char *body = xasprintf("%s\n", text);
    mesh_api_send(req, status, "application/json", NULL, body);
    free(body);
    free(text);
    json_decref(doc);
}

/* The HTTP status a store error stands for. */
static int store_status(enum mesh_err err)
{
    switch (err) {
    case MESH_E_CONFLICT:
        return 409;
    case MESH_E_INVALID:
        return 400;
    case MESH_E_NOTFOUND:
        return 404;
    default:
        return 500;
    }
}

/* --- reading stored resources --- */

/* Decodes a record; answers 500 and returns NULL when it cannot be read. */
static struct mesh_resource *decode_record(struct mesh_httpd_req *req,
                                           const struct mesh_store_record *rec)
{
    struct mesh_resource *res = NULL;
    char *msg = NULL;
    if (mesh_model_from_json(rec->body, &res, &msg) != MESH_OK) {
        mesh_api_error(req, 500, NULL, "stored %s %s/%s is unreadable: %s", rec->kind, rec->ns,
                       rec->name, msg ? msg : "?");
        free(msg);
        return NULL;
    }
    res->resource_version = rec->resource_version;
    res->generation = rec->generation;
    return res;
}

static void not_found(struct mesh_httpd_req *req, enum mesh_kind kind, const char *ns,
                      const char *name)
{
    /* meshctl's words (mesh.c), so a user sees the same thing either way */
    mesh_api_error(req, 404, NULL, "Service not found: %s %s/%s", mesh_kind_name(kind), ns, name);
}

static void get_one(struct mesh_api *api, struct mesh_httpd_req *req, enum mesh_kind kind,
                    const char *ns, const char *name)
{
    struct mesh_store *st = api->store;
    struct mesh_store_record rec = {0};
    enum format fmt;
    if (!read_format(req, &fmt))
        return;
    enum mesh_err err = st->ops->get(st, mesh_kind_name(kind), ns, name, &rec);
    if (err == MESH_E_NOTFOUND) {
        not_found(req, kind, ns, name);
    } else if (err != MESH_OK) {
        mesh_api_error(req, 500, NULL, "%s", mesh_store_error(st));
    } else {
        struct mesh_resource *res = decode_record(req, &rec);
        if (res)
            send_resource(req, 200, res, fmt);
        mesh_resource_free(res);
    }
    mesh_store_record_clear(&rec);
}

static void get_list(struct mesh_api *api, struct mesh_httpd_req *req, enum mesh_kind kind,
                     const char *ns)
{
    struct mesh_store *st = api->store;
    struct mesh_store_record *recs = NULL;
    struct mesh_resource **list = NULL;
    size_t n = 0, done = 0;
    enum format fmt;
    if (!read_format(req, &fmt))
        return;
    enum mesh_err err = st->ops->list(st, mesh_kind_name(kind), ns, &recs, &n);
    if (err != MESH_OK) {
        mesh_api_error(req, 500, NULL, "list %s in %s: %s", mesh_kind_name(kind),
                       ns ? ns : "every namespace", mesh_store_error(st));
        return;
    }
    list = xcalloc(n ? n : 1, sizeof(*list));
    for (; done < n; done++) {
        list[done] = decode_record(req, &recs[done]);
        if (!list[done])
            goto out;
    }
    send_list(req, list, n, fmt);
out:
    mesh_resource_list_free(list, done);
    mesh_store_records_free(recs, n);
}

/* --- reading request bodies --- */

/* Media types whose body is parsed by its content (JSON when it starts with '{' or '[', else
 * YAML). Form-urlencoded is curl's default for -d, which people use to send a file. */
static bool acceptable_type(struct mesh_slice ct)
{
    static const char *const ok[] = {
        "application/json",
        "application/yaml",
        "application/x-yaml",
        "text/yaml",
        "text/x-yaml",
        "text/plain",
        "application/octet-stream",
        "application/x-www-form-urlencoded",
    };
    size_t len = 0;
    while (len < ct.len && ct.p[len] != ';' && ct.p[len] != ' ')
        len++;
    struct mesh_slice type = mesh_slice_make(ct.p, len);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (mesh_slice_eq_cstr_nocase(type, ok[i]))
            return true;
    return (len > 5 && mesh_slice_eq_cstr_nocase(mesh_slice_make(ct.p + len - 5, 5), "+json")) ||
           (len > 5 && mesh_slice_eq_cstr_nocase(mesh_slice_make(ct.p + len - 5, 5), "+yaml"));
}

static bool looks_like_json(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')
            continue;
        return text[i] == '{' || text[i] == '[';
    }
    return false;
}

/* {"items": [document, ...]}, as the list routes answer and libmesh sends: the items array,
 * or NULL when root is anything else. */
static const struct mesh_node *items_wrapper(const struct mesh_node_docs *docs)
{
    if (docs->len != 1 || !docs->items[0].root)
        return NULL;
    const struct mesh_node *root = docs->items[0].root;
    if (root->type != MESH_NODE_MAP || root->len != 1)
        return NULL;
    const struct mesh_node *items = mesh_node_map_get(root, "items");
    return items && items->type == MESH_NODE_SEQ ? items : NULL;
}

/* Decodes each item as mesh_parse_documents decodes each document, with the same check for a
 * resource given twice. */
static enum mesh_err decode_items(const struct mesh_node *items, struct mesh_resource ***out,
                                  size_t *n, struct mesh_diags *diags)
{
    struct mesh_resource **res = xcalloc(items->len ? items->len : 1, sizeof(*res));
    unsigned *lines = xcalloc(items->len ? items->len : 1, sizeof(*lines));
    size_t count = 0, before = diags->len;
    for (size_t i = 0; i < items->len; i++)
        if (mesh_model_from_node(items->items[i], BODY_FILE, &res[count], diags) == MESH_OK)
            lines[count++] = items->items[i]->line;
    for (size_t i = 1; i < count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (res[i]->kind != res[j]->kind || strcmp(res[i]->name, res[j]->name) != 0 ||
                strcmp(mesh_resource_namespace(res[i]), mesh_resource_namespace(res[j])) != 0)
                continue;
            mesh_diags_add(diags, BODY_FILE, lines[i], 1, "metadata.name",
                           "duplicate %s %s/%s (first defined at line %u)",
                           mesh_kind_name(res[i]->kind), mesh_resource_namespace(res[i]),
                           res[i]->name, lines[j]);
            break;
        }
    }
    free(lines);
    if (diags->len > before) {
        mesh_resource_list_free(res, count);
        return MESH_E_INVALID;
    }
    *out = res;
    *n = count;
    return MESH_OK;
}

/* Parses and validates the request body: one document or many. On false the request has been
 * answered (400 with every problem, one per line, or 415). */
static bool read_documents(struct mesh_httpd_req *req, struct mesh_resource ***out, size_t *n)
{
    struct mesh_diags diags = {0};
    struct mesh_node_docs docs = {0};
    struct mesh_slice ct = mesh_httpd_header(req, "content-type");
    bool ok = false;
    char *text = NULL;

    *out = NULL;
    *n = 0;
    if (ct.p && ct.len && !acceptable_type(ct)) {
        mesh_api_error(req, 415, NULL,
                       "content-type \"%.*s\" is neither JSON nor YAML: send application/json or "
                       "application/yaml",
                       (int)ct.len, ct.p);
        return false;
    }
    if (memchr(req->body, '\0', req->body_len)) {
        mesh_api_error(req, 415, NULL,
                       BODY_FILE " holds a NUL byte: it is neither JSON nor YAML text");
        return false;
    }
    size_t len = req->body_len;
    while (len && strchr(" \t\r\n", req->body[len - 1]))
        len--;
    if (len == 0) {
        mesh_api_error(req, 400, NULL,
                       BODY_FILE " is empty: send the resource documents (YAML or JSON)");
        return false;
    }
    text = xstrndup(req->body, req->body_len);
    enum mesh_err err = MESH_E_AGAIN;
    if (looks_like_json(text, req->body_len)) {
        err = mesh_json_read(text, req->body_len, BODY_FILE, &docs, &diags);
        const struct mesh_node *items = err == MESH_OK ? items_wrapper(&docs) : NULL;
        if (items)
            err = decode_items(items, out, n, &diags);
        else if (err == MESH_OK)
            err = MESH_E_AGAIN; /* an ordinary document or array: the common path below */
    }
    if (err == MESH_E_AGAIN)
        err = mesh_parse_documents(text, req->body_len, BODY_FILE, out, n, &diags);
    if (err == MESH_E_INVALID) {
        char *msg = mesh_model_diags_text(&diags);
        mesh_api_error(req, 400, NULL, "%s", msg && *msg ? msg : BODY_FILE ": invalid");
        free(msg);
    } else if (err != MESH_OK) {
        mesh_api_error(req, 500, NULL, BODY_FILE ": %s", mesh_strerror(err));
    } else if (*n == 0) {
        mesh_api_error(req, 400, NULL, "no resources found in the " BODY_FILE);
    } else {
        ok = true;
    }
    if (!ok) {
        mesh_resource_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    mesh_node_docs_free(&docs);
    mesh_diags_clear(&diags);
    free(text);
    return ok;
}

/* --- writing --- */

/* Stores res[0..n) in one transaction, all or nothing, as the embedded provider does. On false
 * the request has been answered with the error and nothing was written. */
static bool store_all(struct mesh_api *api, struct mesh_httpd_req *req,
                      struct mesh_resource *const *res, size_t n,
                      struct mesh_store_put_result *results)
{
    struct mesh_store *st = api->store;
    enum mesh_err err = st->ops->begin(st);
    if (err != MESH_OK) {
        mesh_api_error(req, 500, NULL, "store: cannot begin a transaction: %s",
                       mesh_store_error(st));
        return false;
    }
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        const char *kind = mesh_kind_name(res[i]->kind);
        const char *ns = mesh_resource_namespace(res[i]);
        char *body = NULL;
        err = mesh_model_canonical_json(res[i], &body);
        if (err != MESH_OK) {
            free(body);
            st->ops->rollback(st);
            mesh_api_error(req, 500, NULL, "%s %s/%s: cannot encode: %s", kind, ns, res[i]->name,
                           mesh_strerror(err));
            return false;
        }
        err = st->ops->put(st, kind, ns, res[i]->name, body, res[i]->resource_version, &results[i]);
        free(body);
        if (err != MESH_OK) {
            /* formatted before the rollback, which may replace the store's message */
            char *msg = xasprintf("%s %s/%s: %s", kind, ns, res[i]->name, mesh_store_error(st));
            st->ops->rollback(st);
            mesh_api_error(req, store_status(err), NULL, "%s", msg);
            free(msg);
            return false;
        }
        changed = changed || !results[i].unchanged;
    }
    err = st->ops->commit(st);
    if (err != MESH_OK) {
        char *msg = xstrdup(mesh_store_error(st));
        st->ops->rollback(st);
        mesh_api_error(req, 500, NULL, "store: cannot commit: %s", msg);
        free(msg);
        return false;
    }
    if (changed)
        mesh_api_changed(api);
    return true;
}

static const char *outcome(const struct mesh_store_put_result *r)
{
    return r->created ? "created" : r->unchanged ? "unchanged" : "configured";
}

/* The items of an apply or restore answer: one result per document, in order. */
static json_t *result_items(struct mesh_resource *const *res, size_t n,
                            const struct mesh_store_put_result *results)
{
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            items, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "kind", mesh_kind_name(res[i]->kind),
                             "namespace", mesh_resource_namespace(res[i]), "name", res[i]->name,
                             "outcome", outcome(&results[i]), "resource_version",
                             (json_int_t)results[i].resource_version, "generation",
                             (json_int_t)results[i].generation));
    return items;
}

void mesh_api_apply(struct mesh_api *api, struct mesh_httpd_req *req)
{
    struct mesh_resource **res = NULL;
    size_t n = 0;
    if (!read_documents(req, &res, &n))
        return;
    struct mesh_store_put_result *results = xcalloc(n, sizeof(*results));
    if (store_all(api, req, res, n, results))
        send_json(req, 200, json_pack("{s:o}", "items", result_items(res, n, results)));
    free(results);
    mesh_resource_list_free(res, n);
}

/* Restores res[0..n) by the store's restore rule (mesh_store_restore) in one transaction, all or
 * nothing, then wakes the watches as an apply does. On false the request has been answered with
 * the error and nothing was written. */
static bool restore_all(struct mesh_api *api, struct mesh_httpd_req *req,
                        struct mesh_resource *const *res, size_t n,
                        struct mesh_store_put_result *results, bool *kept_versions)
{
    struct mesh_store *st = api->store;
    struct mesh_store_restore_item *items = xcalloc(n, sizeof(*items));
    char **bodies = xcalloc(n, sizeof(*bodies));
    bool ok = false, in_tx = false;

    for (size_t i = 0; i < n; i++) {
        items[i] = (struct mesh_store_restore_item){
            .kind = mesh_kind_name(res[i]->kind),
            .ns = mesh_resource_namespace(res[i]),
            .name = res[i]->name,
            .resource_version = res[i]->resource_version,
            .generation = res[i]->generation,
        };
        enum mesh_err err = mesh_model_canonical_json(res[i], &bodies[i]);
        if (err != MESH_OK) {
            mesh_api_error(req, 500, NULL, "%s %s/%s: cannot encode: %s", items[i].kind,
                           items[i].ns, items[i].name, mesh_strerror(err));
            goto out;
        }
        items[i].body = bodies[i];
    }
    enum mesh_err err = st->ops->begin(st);
    if (err != MESH_OK) {
        mesh_api_error(req, 500, NULL, "store: cannot begin a transaction: %s",
                       mesh_store_error(st));
        goto out;
    }
    in_tx = true;
    err = mesh_store_restore(st, items, n, results, kept_versions);
    if (err != MESH_OK) {
        /* formatted before the rollback, which may replace the store's message; the store's
         * message names the resource */
        char *msg = xstrdup(mesh_store_error(st));
        st->ops->rollback(st);
        in_tx = false;
        mesh_api_error(req, store_status(err), NULL, "%s", msg);
        free(msg);
        goto out;
    }
    err = st->ops->commit(st);
    in_tx = false;
    if (err != MESH_OK) {
        char *msg = xstrdup(mesh_store_error(st));
        st->ops->rollback(st);
        mesh_api_error(req, 500, NULL, "store: cannot commit: %s", msg);
        free(msg);
        goto out;
    }
    bool changed = false;
    for (size_t i = 0; i < n; i++)
        changed = changed || !results[i].unchanged;
    if (changed)
        mesh_api_changed(api);
    ok = true;
out:
    if (in_tx)
        st->ops->rollback(st);
    for (size_t i = 0; i < n; i++)
        free(bodies[i]);
    free(bodies);
    free(items);
    return ok;
}

void mesh_api_restore(struct mesh_api *api, struct mesh_httpd_req *req)
{
    struct mesh_resource **res = NULL;
    size_t n = 0;
    bool kept = false;
    if (!read_documents(req, &res, &n))
        return;
    struct mesh_store_put_result *results = xcalloc(n, sizeof(*results));
    if (restore_all(api, req, res, n, results, &kept))
        send_json(req, 200,
                  json_pack("{s:s,s:o}", "mode", kept ? "versions_kept" : "applied", "items",
                            result_items(res, n, results)));
    free(results);
    mesh_resource_list_free(res, n);
}

/* A namespace or name from the path, checked as the document's would be. */
static bool path_label_ok(struct mesh_httpd_req *req, const char *what, const char *value)
{
    char why[256];
    if (mesh_text_ok(MESH_CHECK_DNS_LABEL, value, why, sizeof(why)))
        return true;
    mesh_api_error(req, 400, NULL, "the path's %s: %s", what, why);
    return false;
}

static void put_one(struct mesh_api *api, struct mesh_httpd_req *req, enum mesh_kind kind,
                    const char *ns, const char *name)
{
    struct mesh_resource **res = NULL;
    size_t n = 0;
    struct mesh_store_put_result result = {0};
    enum format fmt;

    if (!read_format(req, &fmt) || !path_label_ok(req, "namespace", ns) ||
        !path_label_ok(req, "name", name) || !read_documents(req, &res, &n))
        return;
    struct mesh_resource *r = res[0];
    if (n != 1) {
        mesh_api_error(req, 400, NULL,
                       BODY_FILE ": PUT takes one document, found %zu (POST /v1/apply takes "
                                 "several)",
                       n);
    } else if (r->kind != kind) {
        mesh_api_error(req, 400, NULL,
                       BODY_FILE ": kind: %s does not match the path, which names %s",
                       mesh_kind_name(r->kind), mesh_kind_name(kind));
    } else if (strcmp(r->name, name) != 0) {
        mesh_api_error(req, 400, NULL,
                       BODY_FILE ": metadata.name: \"%s\" does not match the path, which names "
                                 "\"%s\"",
                       r->name, name);
    } else if (r->ns && strcmp(r->ns, ns) != 0) {
        mesh_api_error(req, 400, NULL,
                       BODY_FILE ": metadata.namespace: \"%s\" does not match the path, which "
                                 "names \"%s\"",
                       r->ns, ns);
    } else {
        if (!r->ns)
            r->ns = xstrdup(ns); /* defaulted from the path */
        if (store_all(api, req, &r, 1, &result)) {
            r->resource_version = result.resource_version;
            r->generation = result.generation;
            send_resource(req, result.created ? 201 : 200, r, fmt);
        }
    }
    mesh_resource_list_free(res, n);
}

/* ?resource_version=N on DELETE: refuse (409) unless the resource is at that version. */
static bool expected_version(struct mesh_httpd_req *req, uint64_t *out)
{
    bool bad = false;
    char *v = mesh_api_query(req, "resource_version", &bad);
    *out = 0;
    if (v && !bad) {
        char *end = NULL;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        bad = errno || end == v || *end || v[0] == '-' || x > INT64_MAX;
        *out = x;
    }
    if (bad)
        mesh_api_error(req, 400, NULL, "resource_version: must be a non-negative integer");
    free(v);
    return !bad;
}

static void delete_one(struct mesh_api *api, struct mesh_httpd_req *req, enum mesh_kind kind,
                       const char *ns, const char *name)
{
    struct mesh_store *st = api->store;
    struct mesh_store_record rec = {0};
    struct mesh_resource *res = NULL;
    const char *kind_name = mesh_kind_name(kind);
    uint64_t expected;

    if (!expected_version(req, &expected))
        return;
    enum mesh_err err = st->ops->begin(st);
    if (err != MESH_OK) {
        mesh_api_error(req, 500, NULL, "store: cannot begin a transaction: %s",
                       mesh_store_error(st));
        return;
    }
    err = st->ops->get(st, kind_name, ns, name, &rec);
    if (err == MESH_OK && !(res = decode_record(req, &rec)))
        err = MESH_E_INTERNAL; /* answered */
    else if (err == MESH_E_NOTFOUND)
        not_found(req, kind, ns, name);
    else if (err != MESH_OK)
        mesh_api_error(req, 500, NULL, "%s", mesh_store_error(st));
    if (err == MESH_OK) {
        err = st->ops->remove(st, kind_name, ns, name, expected);
        if (err != MESH_OK)
            mesh_api_error(req, store_status(err), NULL, "%s %s/%s: %s", kind_name, ns, name,
                           mesh_store_error(st));
    }
    if (err == MESH_OK) {
        err = st->ops->commit(st);
        if (err != MESH_OK)
            mesh_api_error(req, 500, NULL, "store: cannot commit: %s", mesh_store_error(st));
    }
    if (err != MESH_OK) {
        st->ops->rollback(st);
    } else {
        mesh_api_changed(api);
        send_resource(req, 200, res, FMT_JSON);
    }
    mesh_resource_free(res);
    mesh_store_record_clear(&rec);
}

/* --- routing --- */

static bool parse_kind(struct mesh_httpd_req *req, const char *text, enum mesh_kind *kind)
{
    if (mesh_kind_parse(text, kind) == MESH_OK)
        return true;
    mesh_api_error(req, 404, NULL,
                   "unknown kind \"%s\": use VirtualService (vs), SecurityPolicy (sp), "
                   "CircuitBreaker (cb), FaultInjection (fi), Service (svc), MeshConfig, "
                   "ObservabilityConfig or KubernetesConfig, in any case, singular or plural",
                   text);
    return false;
}

void mesh_api_resources(struct mesh_api *api, struct mesh_httpd_req *req, char **segs, size_t n)
{
    enum mesh_h1_method m = req->head->method_id;
    bool read = m == MESH_H1_M_GET || m == MESH_H1_M_HEAD;
    enum mesh_kind kind;

    if (n == 1) {
        if (!parse_kind(req, segs[0], &kind))
            return;
        if (!read)
            mesh_api_method_not_allowed(req, "GET, HEAD");
        else
            get_list(api, req, kind, NULL);
        return;
    }
    if (strcmp(segs[0], "namespaces") != 0 || (n != 3 && n != 4)) {
        mesh_api_error(req, 404, NULL, "no such path: %.*s", (int)req->head->path.len,
                       req->head->path.p);
        return;
    }
    if (!parse_kind(req, segs[2], &kind))
        return;
    if (n == 3) {
        if (!read)
            mesh_api_method_not_allowed(req, "GET, HEAD");
        else
            get_list(api, req, kind, segs[1]);
        return;
    }
    if (read)
        get_one(api, req, kind, segs[1], segs[3]);
    else if (m == MESH_H1_M_PUT)
        put_one(api, req, kind, segs[1], segs[3]);
    else if (m == MESH_H1_M_DELETE)
        delete_one(api, req, kind, segs[1], segs[3]);
    else
        mesh_api_method_not_allowed(req, "GET, HEAD, PUT, DELETE");
}

void mesh_api_version(struct mesh_api *api, struct mesh_httpd_req *req)
{
    uint64_t v = 0;
    if (api->store->ops->current_version(api->store, &v) != MESH_OK) {
        mesh_api_error(req, 500, NULL, "store: %s", mesh_store_error(api->store));
        return;
    }
    send_json(req, 200,
              json_pack("{s:s,s:I}", "version", MESH_VERSION, "store_version", (json_int_t)v));
}

void mesh_api_health(struct mesh_api *api, struct mesh_httpd_req *req)
{
    uint64_t v = 0;
    size_t proxies = 0;
    mesh_registry_list(api->reg, &proxies);
    bool store_ok = api->store->ops->current_version(api->store, &v) == MESH_OK;
    char *store = store_ok ? xstrdup("ok") : xasprintf("error: %s", mesh_store_error(api->store));
    send_json(req, store_ok ? 200 : 503,
              json_pack("{s:s,s:s,s:I,s:I}", "status", store_ok ? "ok" : "degraded", "store", store,
                        "proxies", (json_int_t)proxies, "time_ms", (json_int_t)mesh_api_wall_ms()));
    free(store);
}
