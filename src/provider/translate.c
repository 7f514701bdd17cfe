/* SPDX-License-Identifier: Apache-2.0 */
/* What the Istio and Linkerd translators share (translate.h): objects with our labels and
 * annotations, refusals worded from the capability tables, the output order and printing, and
 * the capability matrix of docs/providers.md. */
#include "translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/xalloc.h"

static const char *const feature_names[MESH_FEAT_COUNT] = {
    [MESH_FEAT_HOSTS] = "hosts",
    [MESH_FEAT_GATEWAYS] = "gateways and ingress",
    [MESH_FEAT_MATCH_PATH] = "path match (exact, prefix, regex)",
    [MESH_FEAT_MATCH_HEADER_EXACT] = "header match (exact, regex, present)",
    [MESH_FEAT_MATCH_HEADER_PREFIX] = "header prefix match",
    [MESH_FEAT_MATCH_METHOD] = "method match",
    [MESH_FEAT_WEIGHTED_SPLIT] = "weighted traffic split",
    [MESH_FEAT_TIMEOUT] = "route timeout",
    [MESH_FEAT_RETRIES] = "retries",
    [MESH_FEAT_FAULT_DELAY] = "fault injection: delay",
    [MESH_FEAT_FAULT_ABORT] = "fault injection: abort",
    [MESH_FEAT_MAX_CONNECTIONS] = "circuit breaker: max_connections",
    [MESH_FEAT_MAX_PENDING] = "circuit breaker: max_pending_requests",
    [MESH_FEAT_MAX_REQUESTS] = "circuit breaker: max_requests",
    [MESH_FEAT_MAX_RETRIES] = "circuit breaker: max_retries",
    [MESH_FEAT_OUTLIER_CONSECUTIVE] = "outlier detection: consecutive errors, ejection time",
    [MESH_FEAT_OUTLIER_INTERVAL] = "outlier detection: interval",
    [MESH_FEAT_MTLS_STRICT] = "mTLS strict",
    [MESH_FEAT_MTLS_PERMISSIVE] = "mTLS permissive",
    [MESH_FEAT_MTLS_DISABLE] = "mTLS disable",
    [MESH_FEAT_AUTHZ] = "authorization (from, to, methods, paths)",
    [MESH_FEAT_TRACING_SAMPLING] = "tracing sampling rate",
    [MESH_FEAT_PROXY_RESOURCES] = "proxy resources (cpu, memory)",
};

const char *mesh_feature_name(enum mesh_feature f)
{
    return (int)f >= 0 && f < MESH_FEAT_COUNT ? feature_names[f] : "unknown feature";
}

const struct mesh_translator *mesh_translator_find(const char *name)
{
    static const struct mesh_translator *const all[] = {&mesh_translator_istio,
                                                        &mesh_translator_linkerd};
    for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

void mesh_translation_clear(struct mesh_translation *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_objects; i++)
        mesh_node_free(t->objects[i]);
    free(t->objects);
    mesh_diags_clear(&t->warnings);
    memset(t, 0, sizeof(*t));
}

struct mesh_node *mesh_translation_add(struct mesh_translation *t, const char *api_version,
                                       const char *kind, const char *name, const char *ns,
                                       const struct mesh_resource *src, struct mesh_node **spec)
{
    struct mesh_node *obj = mesh_node_map();
    mesh_node_map_set(obj, "apiVersion", mesh_node_str(api_version));
    mesh_node_map_set(obj, "kind", mesh_node_str(kind));
    struct mesh_node *meta = mesh_node_map();
    mesh_node_map_set(meta, "name", mesh_node_str(name));
    mesh_node_map_set(meta, "namespace", mesh_node_str(ns));
    struct mesh_node *labels = mesh_node_map();
    mesh_node_map_set(labels, MESH_MANAGED_BY_LABEL, mesh_node_str(MESH_MANAGED_BY_VALUE));
    mesh_node_map_set(meta, "labels", labels);
    if (src) {
        struct mesh_node *ann = mesh_node_map();
        char *source = xasprintf("%s/%s/%s", mesh_kind_name(src->kind),
                                 mesh_resource_namespace(src), src->name ? src->name : "");
        mesh_node_map_set(ann, MESH_SOURCE_ANNOTATION, mesh_node_str(source));
        free(source);
        mesh_node_map_set(meta, "annotations", ann);
    }
    mesh_node_map_set(obj, "metadata", meta);
    struct mesh_node *s = mesh_node_map();
    mesh_node_map_set(obj, "spec", s);
    if (spec)
        *spec = s;
    xgrow((void **)&t->objects, &t->cap, t->n_objects + 1, sizeof(*t->objects));
    t->objects[t->n_objects++] = obj;
    return obj;
}

enum mesh_err mesh_translation_refuse(const struct mesh_translator *tr,
                                      const struct mesh_translate_options *opt,
                                      struct mesh_translation *t, const struct mesh_resource *res,
                                      const char *path, enum mesh_feature f, char **errmsg)
{
    const char *note = "it has no such setting";
    for (size_t i = 0; i < tr->n_caps; i++)
        if (tr->caps[i].feature == f && tr->caps[i].note)
            note = tr->caps[i].note;
    char *why = xasprintf("%s cannot express %s: %s", tr->name, mesh_feature_name(f), note);
    enum mesh_err err = mesh_translation_refuse_why(opt, t, res, path, why, errmsg);
    free(why);
    return err;
}

enum mesh_err mesh_translation_refuse_why(const struct mesh_translate_options *opt,
                                          struct mesh_translation *t,
                                          const struct mesh_resource *res, const char *path,
                                          const char *why, char **errmsg)
{
    char *text = xasprintf("%s %s/%s %s: %s", mesh_kind_name(res->kind),
                           mesh_resource_namespace(res), res->name ? res->name : "", path, why);
    if (opt && opt->allow_partial) {
        mesh_diags_add(&t->warnings, NULL, 0, 0, path, "%s", text);
        free(text);
        return MESH_OK;
    }
    *errmsg = text;
    return MESH_E_UNSUPPORTED;
}

static const char *object_text(const struct mesh_node *obj, const char *key, const char *sub)
{
    const struct mesh_node *n = mesh_node_map_get(obj, key);
    if (sub)
        n = n ? mesh_node_map_get(n, sub) : NULL;
    return n && n->type == MESH_NODE_SCALAR && n->text ? n->text : "";
}

static int compare_objects(const void *pa, const void *pb)
{
    const struct mesh_node *a = *(const struct mesh_node *const *)pa;
    const struct mesh_node *b = *(const struct mesh_node *const *)pb;
    int c = strcmp(object_text(a, "kind", NULL), object_text(b, "kind", NULL));
    if (!c)
        c = strcmp(object_text(a, "metadata", "namespace"),
                   object_text(b, "metadata", "namespace"));
    if (!c)
        c = strcmp(object_text(a, "metadata", "name"), object_text(b, "metadata", "name"));
    return c;
}

void mesh_translation_sort(struct mesh_translation *t)
{
    if (t->n_objects > 1)
        qsort(t->objects, t->n_objects, sizeof(*t->objects), compare_objects);
}

void mesh_translate_duration(unsigned long long ms, char *buf, size_t len)
{
    if (ms % 60000 == 0 && ms)
        snprintf(buf, len, "%llum", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%llus", ms / 1000);
    else if (ms > 1000)
        snprintf(buf, len, "%llu.%03llus", ms / 1000, ms % 1000);
    else
        snprintf(buf, len, "%llums", ms);
    /* "1.500s" reads better as "1.5s": trailing zeros of a fraction go. */
    char *dot = strchr(buf, '.');
    if (dot) {
        char *s = strchr(dot, 's');
        char *end = s - 1;
        while (end > dot && *end == '0')
            end--;
        memmove(end + 1, s, strlen(s) + 1);
    }
}

enum mesh_err mesh_translation_print(const struct mesh_translation *t, enum mesh_format format,
                                     char **out)
{
    *out = NULL;
    if (format == MESH_FORMAT_JSON) {
        struct mesh_node *list = mesh_node_map();
        struct mesh_node *items = mesh_node_seq();
        mesh_node_map_set(list, "apiVersion", mesh_node_str("v1"));
        mesh_node_map_set(list, "kind", mesh_node_str("List"));
        mesh_node_map_set(list, "items", items);
        enum mesh_err err = MESH_OK;
        /* The objects are t's: borrowed into the list for printing, then taken back. */
        for (size_t i = 0; i < t->n_objects; i++)
            mesh_node_seq_append(items, t->objects[i]);
        err = mesh_json_write(list, out);
        items->len = 0;
        mesh_node_free(list);
        return err;
    }
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < t->n_objects; i++) {
        char *text = NULL;
        enum mesh_err err = mesh_yaml_write(t->objects[i], &text);
        if (err != MESH_OK) {
            free(text);
            mesh_strbuf_free(&sb);
            return err;
        }
        if (i)
            mesh_strbuf_puts(&sb, "---\n");
        mesh_strbuf_puts(&sb, text);
        free(text);
    }
    *out = mesh_strbuf_take(&sb);
    if (!*out)
        *out = xstrdup("");
    return MESH_OK;
}

static const char *support_cell(const struct mesh_translator *tr, enum mesh_feature f, char *buf,
                                size_t len)
{
    for (size_t i = 0; i < tr->n_caps; i++) {
        if (tr->caps[i].feature != f)
            continue;
        const char *mark = tr->caps[i].support == MESH_SUPPORT_FULL      ? "yes"
                           : tr->caps[i].support == MESH_SUPPORT_PARTIAL ? "partly"
                                                                         : "no";
        snprintf(buf, len, "%s: %s", mark, tr->caps[i].note ? tr->caps[i].note : "");
        return buf;
    }
    snprintf(buf, len, "no: not in the translator's table");
    return buf;
}

enum mesh_err mesh_capability_matrix(char **out)
{
    const struct mesh_translator *trs[] = {&mesh_translator_istio, &mesh_translator_linkerd};
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_puts(&sb, "| feature | native | istio | linkerd |\n|---|---|---|---|\n");
    for (int f = 0; f < MESH_FEAT_COUNT; f++) {
        char a[512], b[512];
        mesh_strbuf_printf(&sb, "| %s | yes | %s | %s |\n", mesh_feature_name((enum mesh_feature)f),
                           support_cell(trs[0], (enum mesh_feature)f, a, sizeof(a)),
                           support_cell(trs[1], (enum mesh_feature)f, b, sizeof(b)));
    }
    *out = mesh_strbuf_take(&sb);
    return MESH_OK;
}
