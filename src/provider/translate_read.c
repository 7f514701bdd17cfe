/* SPDX-License-Identifier: Apache-2.0 */
/* What the Istio and Linkerd readers share (translate.h): the source annotation read back, field
 * lookups on API objects, Kubernetes Services as our Services, and decoding what a reader built
 * into valid resources. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "mesh/service.h"
#include "model/model.h"
#include "translate.h"

bool mesh_read_source(const struct mesh_node *obj, enum mesh_kind *kind, char **ns, char **name)
{
    const struct mesh_node *ann =
        mesh_node_map_get(mesh_node_map_get(obj, "metadata"), "annotations");
    /* The key holds dots: looked up whole, not as a mesh_read_str path. */
    const struct mesh_node *value = mesh_node_map_get(ann, MESH_SOURCE_ANNOTATION);
    const char *text = value && value->type == MESH_NODE_SCALAR ? value->text : NULL;
    *ns = *name = NULL;
    if (!text)
        return false;
    /* "KIND/NS/NAME": no part empty, exactly two slashes. */
    const char *a = strchr(text, '/');
    const char *b = a ? strchr(a + 1, '/') : NULL;
    if (!a || !b || a == text || b == a + 1 || !b[1] || strchr(b + 1, '/'))
        return false;
    char *k = xstrndup(text, (size_t)(a - text));
    bool ok = mesh_kind_parse(k, kind) == MESH_OK;
    free(k);
    if (!ok)
        return false;
    *ns = xstrndup(a + 1, (size_t)(b - a - 1));
    *name = xstrdup(b + 1);
    return true;
}

const char *mesh_read_str(const struct mesh_node *map, const char *path)
{
    const struct mesh_node *n = map;
    const char *p = path;
    while (n && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        char key[128];
        if (len >= sizeof(key))
            return NULL;
        memcpy(key, p, len);
        key[len] = '\0';
        n = mesh_node_map_get(n, key);
        p += len + (dot ? 1 : 0);
    }
    return n && n->type == MESH_NODE_SCALAR && n->scalar_kind != MESH_SCALAR_NULL ? n->text : NULL;
}

const char *mesh_read_name(const struct mesh_node *obj)
{
    return mesh_read_str(obj, "metadata.name");
}

const char *mesh_read_namespace(const struct mesh_node *obj)
{
    const char *ns = mesh_read_str(obj, "metadata.namespace");
    return ns && ns[0] ? ns : "default";
}

/* Istio's protocol selection: appProtocol, else the port name up to its first '-'. */
static const char *kube_port_protocol(const struct mesh_node *port)
{
    static const char *const known[] = {"http", "http2", "grpc", "tcp"};
    const char *p = mesh_read_str(port, "appProtocol");
    if (!p)
        p = mesh_read_str(port, "name");
    if (!p)
        return NULL;
    size_t len = strcspn(p, "-");
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strlen(known[i]) == len && strncmp(known[i], p, len) == 0)
            return known[i];
    return NULL;
}

struct mesh_node *mesh_read_doc(const char *kind, const char *name, const char *ns,
                                struct mesh_node **spec)
{
    struct mesh_node *doc = mesh_node_map();
    mesh_node_map_set(doc, "apiVersion", mesh_node_str(MESH_API_VERSION));
    mesh_node_map_set(doc, "kind", mesh_node_str(kind));
    struct mesh_node *meta = mesh_node_map();
    mesh_node_map_set(meta, "name", mesh_node_str(name));
    mesh_node_map_set(meta, "namespace", mesh_node_str(ns));
    mesh_node_map_set(doc, "metadata", meta);
    *spec = mesh_node_map();
    mesh_node_map_set(doc, "spec", *spec);
    return doc;
}

struct mesh_node *mesh_read_copy(const struct mesh_node *n)
{
    if (!n)
        return NULL;
    if (n->type == MESH_NODE_SCALAR)
        return mesh_node_scalar(n->scalar_kind, n->text);
    struct mesh_node *c = n->type == MESH_NODE_SEQ ? mesh_node_seq() : mesh_node_map();
    for (size_t i = 0; i < n->len; i++) {
        if (n->type == MESH_NODE_SEQ)
            mesh_node_seq_append(c, mesh_read_copy(n->items[i]));
        else
            mesh_node_map_set(c, n->pairs[i].key->text, mesh_read_copy(n->pairs[i].value));
    }
    return c;
}

/* "KIND NS/NAME[ FIELD]: not read: why": the one spelling of every reader's warning. */
static void warn_text(struct mesh_diags *warnings, const struct mesh_node *obj, const char *field,
                      const char *why)
{
    const char *kind = mesh_read_str(obj, "kind");
    const char *name = mesh_read_name(obj);
    bool has_field = field && *field;
    mesh_diags_add(warnings, NULL, 0, 0, has_field ? field : "", "%s %s/%s%s%s: not read: %s",
                   kind ? kind : "object", mesh_read_namespace(obj), name ? name : "(unnamed)",
                   has_field ? " " : "", has_field ? field : "", why);
}

void mesh_read_warnv(struct mesh_diags *warnings, const struct mesh_node *obj, const char *field,
                     const char *fmt, va_list ap)
{
    char why[1024];
    vsnprintf(why, sizeof(why), fmt, ap);
    warn_text(warnings, obj, field, why);
}

struct mesh_resource *mesh_read_kube_service(const struct mesh_node *obj)
{
    const char *api = mesh_read_str(obj, "apiVersion");
    const char *kind = mesh_read_str(obj, "kind");
    const char *name = mesh_read_name(obj);
    if (!api || !kind || !name || strcmp(api, "v1") != 0 || strcmp(kind, "Service") != 0)
        return NULL;

    struct mesh_node *spec;
    struct mesh_node *doc = mesh_read_doc("Service", name, mesh_read_namespace(obj), &spec);
    struct mesh_node *meta = mesh_node_map_get(doc, "metadata");
    const struct mesh_node *labels =
        mesh_node_map_get(mesh_node_map_get(obj, "metadata"), "labels");
    if (labels && labels->type == MESH_NODE_MAP) {
        struct mesh_node *copy = mesh_node_map();
        for (size_t i = 0; i < labels->len; i++)
            if (labels->pairs[i].value->type == MESH_NODE_SCALAR)
                mesh_node_map_set(copy, labels->pairs[i].key->text,
                                  mesh_node_str(labels->pairs[i].value->text));
        mesh_node_map_set(meta, "labels", copy);
    }
    const struct mesh_node *ports = mesh_node_map_get(mesh_node_map_get(obj, "spec"), "ports");
    const char *protocol = ports && ports->type == MESH_NODE_SEQ && ports->len
                               ? kube_port_protocol(ports->items[0])
                               : NULL;
    if (protocol)
        mesh_node_map_set(spec, "protocol", mesh_node_str(protocol));

    struct mesh_resource *res = NULL;
    struct mesh_diags diags = {0};
    if (mesh_model_from_node(doc, NULL, &res, &diags) != MESH_OK)
        res = NULL; /* labels Kubernetes allows and we do not: the Service is not ours to read */
    mesh_diags_clear(&diags);
    mesh_node_free(doc);
    return res;
}

struct mesh_node *mesh_kube_service_object(const struct mesh_service *svc)
{
    const struct mesh_resource *r = &svc->res;
    struct mesh_node *obj = mesh_node_map();
    mesh_node_map_set(obj, "apiVersion", mesh_node_str("v1"));
    mesh_node_map_set(obj, "kind", mesh_node_str("Service"));
    struct mesh_node *meta = mesh_node_map();
    mesh_node_map_set(meta, "name", mesh_node_str(r->name));
    mesh_node_map_set(meta, "namespace", mesh_node_str(mesh_resource_namespace(r)));
    struct mesh_node *labels = mesh_node_map();
    struct mesh_node *selector = mesh_node_map();
    for (size_t i = 0; i < r->labels.len; i++) {
        const char *k = r->labels.items[i].key, *v = r->labels.items[i].value;
        mesh_node_map_set(labels, k, mesh_node_str(v));
        if (strcmp(k, "app") == 0 || strcmp(k, "version") == 0)
            mesh_node_map_set(selector, k, mesh_node_str(v));
    }
    mesh_node_map_set(meta, "labels", labels);
    mesh_node_map_set(obj, "metadata", meta);
    struct mesh_node *spec = mesh_node_map();
    if (selector->len)
        mesh_node_map_set(spec, "selector", selector);
    else
        mesh_node_free(selector);
    struct mesh_node *port = mesh_node_map();
    mesh_node_map_set(port, "name", mesh_node_str(svc->protocol ? svc->protocol : "http"));
    mesh_node_map_set(port, "port", mesh_node_int(80));
    struct mesh_node *ports = mesh_node_seq();
    mesh_node_seq_append(ports, port);
    mesh_node_map_set(spec, "ports", ports);
    mesh_node_map_set(obj, "spec", spec);
    return obj;
}

void mesh_read_emit(struct mesh_node *doc, const struct mesh_node *obj,
                    struct mesh_resource ***list, size_t *len, size_t *cap,
                    struct mesh_diags *warnings)
{
    struct mesh_resource *res = NULL;
    struct mesh_diags diags = {0};
    if (mesh_model_from_node(doc, NULL, &res, &diags) == MESH_OK) {
        xgrow((void **)list, cap, *len + 1, sizeof(**list));
        (*list)[(*len)++] = res;
    } else {
        char *why = mesh_model_diags_text(&diags);
        warn_text(warnings, obj, NULL, why);
        free(why);
    }
    mesh_diags_clear(&diags);
    mesh_node_free(doc);
}

static int compare_resources(const void *pa, const void *pb)
{
    const struct mesh_resource *a = *(const struct mesh_resource *const *)pa;
    const struct mesh_resource *b = *(const struct mesh_resource *const *)pb;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    int c = strcmp(mesh_resource_namespace(a), mesh_resource_namespace(b));
    return c ? c : strcmp(a->name ? a->name : "", b->name ? b->name : "");
}

void mesh_read_sort(struct mesh_resource **list, size_t n)
{
    if (n > 1)
        qsort(list, n, sizeof(*list), compare_resources);
}
