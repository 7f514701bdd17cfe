/* SPDX-License-Identifier: Apache-2.0 */
/* Kinds and their names, and the life cycle every resource shares (new, clone, free). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xalloc.h"
#include "kinds.h"
#include "mesh/resource.h"
#include "model.h"

static const struct mesh_kind_info kinds[MESH_KIND_COUNT] = {
    {MESH_KIND_VIRTUAL_SERVICE, "VirtualService", "virtualservices", "vs",
     &mesh_virtual_service_schema},
    {MESH_KIND_SECURITY_POLICY, "SecurityPolicy", "securitypolicies", "sp",
     &mesh_security_policy_schema},
    {MESH_KIND_CIRCUIT_BREAKER, "CircuitBreaker", "circuitbreakers", "cb",
     &mesh_circuit_breaker_schema},
    {MESH_KIND_FAULT_INJECTION, "FaultInjection", "faultinjections", "fi",
     &mesh_fault_injection_schema},
    {MESH_KIND_SERVICE, "Service", "services", "svc", &mesh_service_schema},
    {MESH_KIND_MESH_CONFIG, "MeshConfig", "meshconfigs", "mc", &mesh_mesh_config_schema},
    {MESH_KIND_OBSERVABILITY_CONFIG, "ObservabilityConfig", "observabilityconfigs", "oc",
     &mesh_observability_config_schema},
    {MESH_KIND_KUBERNETES_CONFIG, "KubernetesConfig", "kubernetesconfigs", "kc",
     &mesh_kubernetes_config_schema},
};

const struct mesh_kind_info *mesh_kind_info(enum mesh_kind kind)
{
    if ((int)kind < 0 || kind >= MESH_KIND_COUNT)
        return NULL;
    return &kinds[kind];
}

const char *mesh_kind_name(enum mesh_kind kind)
{
    const struct mesh_kind_info *k = mesh_kind_info(kind);
    return k ? k->name : NULL;
}

enum mesh_err mesh_kind_parse(const char *text, enum mesh_kind *out)
{
    for (size_t i = 0; text && i < MESH_KIND_COUNT; i++) {
        if (strcasecmp(text, kinds[i].name) == 0 || strcasecmp(text, kinds[i].plural) == 0 ||
            strcasecmp(text, kinds[i].alias) == 0) {
            *out = kinds[i].kind;
            return MESH_OK;
        }
    }
    return MESH_E_NOTFOUND;
}

struct mesh_resource *mesh_resource_new(enum mesh_kind kind, const char *name, const char *ns)
{
    const struct mesh_kind_info *k = mesh_kind_info(kind);
    if (!k)
        return NULL;
    struct mesh_resource *res = calloc(1, k->spec->size);
    if (!res)
        return NULL;
    mesh_schema_init(k->spec, res);
    res->kind = kind;
    res->name = name ? strdup(name) : NULL;
    res->ns = ns ? strdup(ns) : NULL;
    if ((name && !res->name) || (ns && !res->ns)) {
        mesh_resource_free(res);
        return NULL;
    }
    return res;
}

void mesh_resource_free(struct mesh_resource *res)
{
    if (!res)
        return;
    const struct mesh_kind_info *k = mesh_kind_info(res->kind);
    if (k)
        mesh_schema_free(k->spec, res);
    free(res->name);
    free(res->ns);
    mesh_labels_clear(&res->labels);
    free(res);
}

struct mesh_resource *mesh_resource_clone(const struct mesh_resource *res)
{
    const struct mesh_kind_info *k = res ? mesh_kind_info(res->kind) : NULL;
    if (!k)
        return NULL;
    struct mesh_resource *copy = xmalloc(k->spec->size);
    mesh_schema_copy(k->spec, copy, res);
    copy->name = xstrdup(res->name);
    copy->ns = xstrdup(res->ns);
    memset(&copy->labels, 0, sizeof(copy->labels));
    for (size_t i = 0; i < res->labels.len; i++)
        mesh_labels_set(&copy->labels, res->labels.items[i].key, res->labels.items[i].value);
    return copy;
}

const char *mesh_resource_namespace(const struct mesh_resource *res)
{
    return res && res->ns ? res->ns : MESH_DEFAULT_NAMESPACE;
}

bool mesh_labels_has(const struct mesh_labels *labels, const char *key, const char *value,
                     size_t value_len)
{
    for (size_t l = 0; l < labels->len; l++) {
        const struct mesh_label *lb = &labels->items[l];
        if (lb->key && lb->value && strcmp(lb->key, key) == 0 &&
            strncmp(lb->value, value, value_len) == 0 && lb->value[value_len] == '\0')
            return true;
    }
    return false;
}

void mesh_resource_list_free(struct mesh_resource **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        mesh_resource_free(list[i]);
    free(list);
}

enum mesh_err mesh_string_list_add(struct mesh_string_list *list, const char *s)
{
    char *copy = strdup(s ? s : "");
    char **items = realloc(list->items, (list->len + 1) * sizeof(*items));
    if (!copy || !items) {
        free(copy);
        if (items)
            list->items = items;
        return MESH_E_NOMEM;
    }
    items[list->len++] = copy;
    list->items = items;
    return MESH_OK;
}

void mesh_string_list_clear(struct mesh_string_list *list)
{
    for (size_t i = 0; i < list->len; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->len = 0;
}

enum mesh_err mesh_labels_set(struct mesh_labels *labels, const char *key, const char *value)
{
    char *v = strdup(value ? value : "");
    if (!v)
        return MESH_E_NOMEM;
    for (size_t i = 0; i < labels->len; i++) {
        if (strcmp(labels->items[i].key, key) == 0) {
            free(labels->items[i].value);
            labels->items[i].value = v;
            return MESH_OK;
        }
    }
    char *k = strdup(key);
    struct mesh_label *items = realloc(labels->items, (labels->len + 1) * sizeof(*items));
    if (!k || !items) {
        free(k);
        free(v);
        if (items)
            labels->items = items;
        return MESH_E_NOMEM;
    }
    items[labels->len].key = k;
    items[labels->len].value = v;
    labels->items = items;
    labels->len++;
    return MESH_OK;
}

void mesh_labels_clear(struct mesh_labels *labels)
{
    for (size_t i = 0; i < labels->len; i++) {
        free(labels->items[i].key);
        free(labels->items[i].value);
    }
    free(labels->items);
    labels->items = NULL;
    labels->len = 0;
}
