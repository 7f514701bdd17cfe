/* SPDX-License-Identifier: Apache-2.0 */
/* The document envelope (apiVersion, kind, metadata, spec) and the seed's bare `mesh:` block:
 * resource <-> node tree, and the canonical JSON body the store keeps. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "kinds.h"
#include "mesh/mesh_config.h"
#include "model.h"

#define R struct mesh_resource

static const struct mesh_field metadata_fields[] = {
    {.name = "name",
     .type = MESH_F_STRING,
     .offset = offsetof(R, name),
     .check = MESH_CHECK_DNS_LABEL,
     .required = true},
    {.name = "namespace",
     .type = MESH_F_STRING,
     .offset = offsetof(R, ns),
     .check = MESH_CHECK_DNS_LABEL},
    {.name = "labels", .type = MESH_F_LABELS, .offset = offsetof(R, labels)},
    {.name = "resource_version",
     .type = MESH_F_U64,
     .offset = offsetof(R, resource_version),
     .min = 0,
     .max = INT64_MAX},
    {.name = "generation",
     .type = MESH_F_U64,
     .offset = offsetof(R, generation),
     .min = 0,
     .max = INT64_MAX},
};

static const struct mesh_schema metadata_schema = {sizeof(R), MESH_FIELDS(metadata_fields), -1,
                                                   NULL};

static const char *const envelope_keys[] = {"apiVersion", "kind", "metadata", "spec"};

/* --- resource -> node --- */

static struct mesh_node *metadata_node(const struct mesh_resource *res, bool with_versions)
{
    struct mesh_node *md = mesh_node_map();
    if (res->name)
        mesh_node_map_set(md, "name", mesh_node_str(res->name));
    mesh_node_map_set(md, "namespace", mesh_node_str(mesh_resource_namespace(res)));
    if (res->labels.len) {
        struct mesh_node *labels = mesh_node_map();
        for (size_t i = 0; i < res->labels.len; i++)
            mesh_node_map_set(labels, res->labels.items[i].key,
                              mesh_node_str(res->labels.items[i].value));
        mesh_node_map_set(md, "labels", labels);
    }
    if (with_versions && res->resource_version)
        mesh_node_map_set(md, "resource_version", mesh_node_int((long long)res->resource_version));
    if (with_versions && res->generation)
        mesh_node_map_set(md, "generation", mesh_node_int((long long)res->generation));
    return md;
}

static struct mesh_node *to_node(const struct mesh_resource *res, bool with_versions)
{
    const struct mesh_kind_info *k = mesh_kind_info(res->kind);
    struct mesh_node *doc = mesh_node_map();
    mesh_node_map_set(doc, "apiVersion", mesh_node_str(MESH_API_VERSION));
    mesh_node_map_set(doc, "kind", k ? mesh_node_str(k->name) : mesh_node_int(res->kind));
    mesh_node_map_set(doc, "metadata", metadata_node(res, with_versions));
    mesh_node_map_set(doc, "spec", k ? mesh_schema_encode(k->spec, res) : mesh_node_map());
    return doc;
}

struct mesh_node *mesh_model_to_node(const struct mesh_resource *res)
{
    return to_node(res, true);
}

enum mesh_err mesh_model_canonical_json(const struct mesh_resource *res, char **out)
{
    struct mesh_node *doc = to_node(res, false);
    *out = NULL;
    enum mesh_err err = mesh_json_write(doc, out);
    mesh_node_free(doc);
    return err;
}

bool mesh_model_same_content(const struct mesh_resource *a, const struct mesh_resource *b)
{
    char *ja = NULL, *jb = NULL;
    bool same = mesh_model_canonical_json(a, &ja) == MESH_OK &&
                mesh_model_canonical_json(b, &jb) == MESH_OK && strcmp(ja, jb) == 0;
    free(ja);
    free(jb);
    return same;
}

/* --- node -> resource --- */

static void unknown_key(struct mesh_decoder *d, const struct mesh_node *key,
                        const char *const *known, size_t n)
{
    const char *hint = mesh_did_you_mean(key->text, known, n);
    if (hint)
        mesh_decoder_error(d, key, key->text, "unknown field \"%s\" (did you mean \"%s\"?)",
                           key->text, hint);
    else
        mesh_decoder_error(d, key, key->text, "unknown field \"%s\"", key->text);
}

static bool decode_api_version(struct mesh_decoder *d, const struct mesh_node *root)
{
    const struct mesh_node *v = mesh_node_map_get(root, "apiVersion");
    if (!v) {
        mesh_decoder_error(d, root, "", "missing required field \"apiVersion\" (use \"%s\")",
                           MESH_API_VERSION);
        return false;
    }
    if (v->type != MESH_NODE_SCALAR) {
        mesh_decoder_error(d, v, "apiVersion", "must be \"%s\", got %s", MESH_API_VERSION,
                           mesh_node_type_name(v));
        return false;
    }
    if (strcmp(v->text, MESH_API_VERSION) != 0) {
        mesh_decoder_error(d, v, "apiVersion", "unsupported apiVersion \"%s\", must be \"%s\"",
                           v->text, MESH_API_VERSION);
        return false;
    }
    return true;
}

static const struct mesh_kind_info *decode_kind(struct mesh_decoder *d,
                                                const struct mesh_node *root)
{
    const struct mesh_node *v = mesh_node_map_get(root, "kind");
    if (!v) {
        mesh_decoder_error(d, root, "", "missing required field \"kind\"");
        return NULL;
    }
    if (v->type != MESH_NODE_SCALAR) {
        mesh_decoder_error(d, v, "kind", "must be a string, got %s", mesh_node_type_name(v));
        return NULL;
    }
    const char *names[MESH_KIND_COUNT];
    for (int i = 0; i < MESH_KIND_COUNT; i++) {
        names[i] = mesh_kind_info((enum mesh_kind)i)->name;
        if (strcmp(v->text, names[i]) == 0)
            return mesh_kind_info((enum mesh_kind)i);
    }
    const char *text = v->text;
    const char *hint = mesh_did_you_mean(text, names, MESH_KIND_COUNT);
    if (hint)
        mesh_decoder_error(d, v, "kind", "unknown kind \"%s\" (did you mean \"%s\"?)", text, hint);
    else
        mesh_decoder_error(d, v, "kind",
                           "unknown kind \"%s\", must be one of VirtualService, SecurityPolicy, "
                           "CircuitBreaker, FaultInjection, Service, MeshConfig, "
                           "ObservabilityConfig, KubernetesConfig",
                           text);
    return NULL;
}

static const struct mesh_node *required_map(struct mesh_decoder *d, const struct mesh_node *root,
                                            const char *key)
{
    const struct mesh_node *v = mesh_node_map_get(root, key);
    if (!v)
        mesh_decoder_error(d, root, "", "missing required field \"%s\"", key);
    else if (v->type != MESH_NODE_MAP)
        mesh_decoder_error(d, v, key, "must be a mapping, got %s", mesh_node_type_name(v));
    else
        return v;
    return NULL;
}

static struct mesh_resource *decode_envelope(struct mesh_decoder *d, const struct mesh_node *root)
{
    for (size_t i = 0; i < root->len; i++) {
        const struct mesh_node *key = root->pairs[i].key;
        bool known = false;
        for (size_t k = 0; k < 4; k++)
            known = known || strcmp(key->text, envelope_keys[k]) == 0;
        if (!known)
            unknown_key(d, key, envelope_keys, 4);
    }
    bool api_ok = decode_api_version(d, root);
    const struct mesh_kind_info *k = decode_kind(d, root);
    const struct mesh_node *md = required_map(d, root, "metadata");
    const struct mesh_node *spec = required_map(d, root, "spec");
    if (!api_ok || !k || !md || !spec)
        return NULL;
    struct mesh_resource *res = mesh_resource_new(k->kind, NULL, NULL);
    if (!res)
        return NULL;
    mesh_schema_decode(d, &metadata_schema, md, res, "metadata");
    mesh_schema_decode(d, k->spec, spec, res, "spec");
    return res;
}

/* The seed writes its mesh configuration as a bare `mesh:` block; it becomes a MeshConfig named
 * after its provider, so that the seed's Istio and Linkerd blocks can live side by side. */
static struct mesh_resource *decode_seed_block(struct mesh_decoder *d, const struct mesh_node *root)
{
    static const char *const keys[] = {"mesh"};
    for (size_t i = 0; i < root->len; i++)
        if (strcmp(root->pairs[i].key->text, "mesh") != 0)
            unknown_key(d, root->pairs[i].key, keys, 1);
    const struct mesh_node *block = required_map(d, root, "mesh");
    if (!block)
        return NULL;
    struct mesh_resource *res = mesh_resource_new(MESH_KIND_MESH_CONFIG, NULL, NULL);
    if (!res)
        return NULL;
    mesh_schema_decode(d, &mesh_mesh_config_schema, block, res, "mesh");
    const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)res;
    res->name = xstrdup(mc->provider ? mc->provider : "default");
    return res;
}

enum mesh_err mesh_model_from_node(const struct mesh_node *root, const char *file,
                                   struct mesh_resource **out, struct mesh_diags *diags)
{
    struct mesh_decoder d = {file, diags, 0};
    struct mesh_resource *res = NULL;
    *out = NULL;
    if (!root || root->type != MESH_NODE_MAP) {
        mesh_decoder_error(&d, root, "",
                           "a document must be a mapping with apiVersion, kind, "
                           "metadata and spec");
        return MESH_E_INVALID;
    }
    if (!mesh_node_map_get(root, "apiVersion") && mesh_node_map_get(root, "mesh"))
        res = decode_seed_block(&d, root);
    else
        res = decode_envelope(&d, root);
    if (d.errors || !res) {
        mesh_resource_free(res);
        return d.errors ? MESH_E_INVALID : MESH_E_NOMEM;
    }
    *out = res;
    return MESH_OK;
}

char *mesh_model_diags_text(const struct mesh_diags *diags)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < diags->len; i++) {
        char *line = mesh_diag_format(&diags->items[i]);
        mesh_strbuf_printf(&sb, "%s%s", i ? "\n" : "", line);
        free(line);
    }
    return mesh_strbuf_take(&sb);
}

enum mesh_err mesh_model_from_json(const char *body, struct mesh_resource **out, char **errmsg)
{
    struct mesh_node_docs docs = {0};
    struct mesh_diags diags = {0};
    *out = NULL;
    enum mesh_err err = mesh_json_read(body, strlen(body), "<stored>", &docs, &diags);
    if (err == MESH_OK && docs.len != 1) {
        mesh_diags_add(&diags, "<stored>", 0, 0, "", "expected one document, found %zu", docs.len);
        err = MESH_E_INVALID;
    }
    if (err == MESH_OK)
        err = mesh_model_from_node(docs.items[0].root, "<stored>", out, &diags);
    if (err != MESH_OK && errmsg)
        *errmsg = mesh_model_diags_text(&diags);
    mesh_node_docs_free(&docs);
    mesh_diags_clear(&diags);
    return err;
}
