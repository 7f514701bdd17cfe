/* SPDX-License-Identifier: Apache-2.0 */
/* The public document API: parse a whole source (many documents, YAML or JSON) into validated
 * resources, validate resources built in code, and print resources back. */
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "kinds.h"
#include "mesh/document.h"
#include "model.h"

static bool looks_like_json(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')
            continue;
        return text[i] == '{' || text[i] == '[';
    }
    return false;
}

/* The same resource twice in one source is a mistake: the second would silently win. */
static void check_duplicates(struct mesh_resource **res, const unsigned *lines, size_t n,
                             const char *file, struct mesh_diags *diags)
{
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (res[i]->kind != res[j]->kind || strcmp(res[i]->name, res[j]->name) != 0 ||
                strcmp(mesh_resource_namespace(res[i]), mesh_resource_namespace(res[j])) != 0)
                continue;
            mesh_diags_add(diags, file, lines[i], 1, "metadata.name",
                           "duplicate %s %s/%s (first defined at line %u)",
                           mesh_kind_name(res[i]->kind), mesh_resource_namespace(res[i]),
                           res[i]->name, lines[j]);
            break;
        }
    }
}

enum mesh_err mesh_parse_documents(const char *text, size_t len, const char *file,
                                   struct mesh_resource ***out, size_t *n, struct mesh_diags *diags)
{
    struct mesh_node_docs docs = {0};
    struct mesh_resource **res = NULL;
    unsigned *lines = NULL;
    size_t count = 0, before = diags->len;
    *out = NULL;
    *n = 0;
    if (!file)
        file = "<input>";
    enum mesh_err err = looks_like_json(text, len) ? mesh_json_read(text, len, file, &docs, diags)
                                                   : mesh_yaml_read(text, len, file, &docs, diags);
    if (err != MESH_OK)
        goto out;
    res = xcalloc(docs.len ? docs.len : 1, sizeof(*res));
    lines = xcalloc(docs.len ? docs.len : 1, sizeof(*lines));
    for (size_t i = 0; i < docs.len; i++) {
        if (!docs.items[i].root)
            continue; /* an empty document, as after a trailing "---" */
        if (mesh_model_from_node(docs.items[i].root, file, &res[count], diags) == MESH_OK)
            lines[count++] = docs.items[i].root->line;
    }
    check_duplicates(res, lines, count, file, diags);
    if (diags->len > before) {
        err = MESH_E_INVALID;
        goto out;
    }
    *out = res;
    *n = count;
    res = NULL;
out:
    mesh_resource_list_free(res, count);
    free(lines);
    mesh_node_docs_free(&docs);
    return err;
}

enum mesh_err mesh_validate_resource(const struct mesh_resource *res, struct mesh_diags *diags)
{
    const struct mesh_kind_info *k = res ? mesh_kind_info(res->kind) : NULL;
    if (!k) {
        mesh_diags_add(diags, "<input>", 0, 0, "kind", "unknown kind %d",
                       res ? (int)res->kind : -1);
        return MESH_E_INVALID;
    }
    /* Code-built resources go through the very decoder files go through: one set of rules. */
    char *where = xasprintf("%s %s/%s", k->name, mesh_resource_namespace(res),
                            res->name ? res->name : "(unnamed)");
    struct mesh_node *doc = mesh_model_to_node(res);
    struct mesh_resource *check = NULL;
    enum mesh_err err = mesh_model_from_node(doc, where, &check, diags);
    mesh_resource_free(check);
    mesh_node_free(doc);
    free(where);
    return err;
}

enum mesh_err mesh_print_documents(const struct mesh_resource *const *res, size_t n,
                                   enum mesh_format format, char **out)
{
    enum mesh_err err = MESH_OK;
    *out = NULL;
    if (format == MESH_FORMAT_JSON) {
        struct mesh_node *root = n == 1 ? mesh_model_to_node(res[0]) : mesh_node_seq();
        for (size_t i = 0; n != 1 && i < n; i++)
            mesh_node_seq_append(root, mesh_model_to_node(res[i]));
        err = mesh_json_write(root, out);
        mesh_node_free(root);
        return err;
    }
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < n && err == MESH_OK; i++) {
        struct mesh_node *doc = mesh_model_to_node(res[i]);
        char *text = NULL;
        err = mesh_yaml_write(doc, &text);
        mesh_node_free(doc);
        if (err == MESH_OK) {
            if (i)
                mesh_strbuf_puts(&sb, "---\n");
            mesh_strbuf_puts(&sb, text);
        }
        free(text);
    }
    if (err != MESH_OK) {
        mesh_strbuf_free(&sb);
        return err;
    }
    *out = mesh_strbuf_take(&sb);
    return MESH_OK;
}
