/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the translator and reader unit tests (read_file by test_security.c too): YAML
 * parsed into resources, the examples, lookups into the translated manifests' node trees and into
 * resources read back. Static inline, so that a suite
 * need not use every helper under -Wunused-function. */
#ifndef MESH_TESTS_TRANSLATION_CHECK_H
#define MESH_TESTS_TRANSLATION_CHECK_H

#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/document.h"
#include "mesh/resource.h"
#include "model/node.h"
#include "provider/translate.h"

/* --- building the input --- */

/* Parsed resources in the order added; owned, freed by input_free. */
struct input {
    struct mesh_resource **res;
    size_t n;
};

/* Parses text (named file in messages, NULL for none) and appends its resources to in; fails the
 * test if it does not parse. */
static inline void input_add_text(struct input *in, const char *text, const char *file)
{
    struct mesh_resource **res = NULL;
    size_t n = 0;
    struct mesh_diags diags = {0};
    if (mesh_parse_documents(text, strlen(text), file, &res, &n, &diags) != MESH_OK) {
        char *msg = diags.len ? mesh_diag_format(&diags.items[0]) : NULL;
        fail_msg("%s does not parse: %s", file ? file : "<input>", msg ? msg : "?");
    }
    /* One more than needed: text without documents must not make it realloc(p, 0). */
    in->res = realloc(in->res, (in->n + n + 1) * sizeof(*in->res));
    assert_non_null(in->res);
    memcpy(in->res + in->n, res, n * sizeof(*res));
    in->n += n;
    free(res);
}

/* The whole file at path (relative to the repository root) as a string the caller frees. */
static inline char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 1024 + 1 > cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static inline void input_add_file(struct input *in, const char *path)
{
    char *text = read_file(path);
    input_add_text(in, text, path);
    free(text);
}

static inline void input_free(struct input *in)
{
    mesh_resource_list_free(in->res, in->n);
    memset(in, 0, sizeof(*in));
}

/* Every file of examples/, in name order (both providers' MeshConfigs among them). */
static inline void input_add_examples(struct input *in)
{
    glob_t g;
    assert_int_equal(glob("examples/*.yaml", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 10);
    for (size_t i = 0; i < g.gl_pathc; i++)
        input_add_file(in, g.gl_pathv[i]);
    globfree(&g);
}

/* What the example at path refers to besides the Services, as the golden files
 * (tests/e2e/test_render.py) render it with it; NULL for nothing. */
static inline const char *example_context(const char *path)
{
    if (strstr(path, "payment-circuit-breaker"))
        return "examples/payment-virtual-service.yaml";
    if (strstr(path, "web-fault-injection"))
        return "examples/web-traffic-split.yaml";
    return NULL;
}

/* The resource of that kind, namespace (NULL: any) and name among res[0..n), or NULL. */
static inline const struct mesh_resource *find_resource(struct mesh_resource *const *res, size_t n,
                                                        enum mesh_kind kind, const char *ns,
                                                        const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (res[i]->kind == kind && (!ns || !strcmp(mesh_resource_namespace(res[i]), ns)) &&
            !strcmp(res[i]->name, name))
            return res[i];
    return NULL;
}

/* As find_resource, failing the test when there is none; the resource as its own struct. */
static inline const void *must_find_resource(struct mesh_resource *const *res, size_t n,
                                             enum mesh_kind kind, const char *ns, const char *name)
{
    const struct mesh_resource *r = find_resource(res, n, kind, ns, name);
    if (!r)
        fail_msg("no %s %s/%s among the %zu resources", mesh_kind_name(kind), ns ? ns : "*", name,
                 n);
    return r;
}

/* --- looking into the manifests --- */

/* The node at path under n: keys joined by '.' ("spec.rules[0].backendRefs[1].weight"), [N]
 * indexes a sequence, ["k.e.y"] is a key that holds dots (annotations, labels); a plain key may
 * hold '/' but not '.' or '['. NULL when any step is missing or of the wrong type. */
static inline const struct mesh_node *at(const struct mesh_node *n, const char *path)
{
    const char *p = path;
    while (n && *p) {
        char key[256];
        if (*p == '.') {
            p++;
            continue;
        }
        if (p[0] == '[' && p[1] == '"') {
            const char *end = strstr(p + 2, "\"]");
            assert_non_null(end);
            snprintf(key, sizeof(key), "%.*s", (int)(end - p - 2), p + 2);
            n = mesh_node_map_get(n, key);
            p = end + 2;
        } else if (*p == '[') {
            char *end = NULL;
            unsigned long i = strtoul(p + 1, &end, 10);
            assert_true(*end == ']');
            n = n->type == MESH_NODE_SEQ && i < n->len ? n->items[i] : NULL;
            p = end + 1;
        } else {
            size_t len = strcspn(p, ".[");
            snprintf(key, sizeof(key), "%.*s", (int)len, p);
            n = mesh_node_map_get(n, key);
            p += len;
        }
    }
    return n;
}

/* The scalar's text at path, or NULL when absent or not a scalar. */
static inline const char *text_at(const struct mesh_node *n, const char *path)
{
    const struct mesh_node *v = at(n, path);
    return v && v->type == MESH_NODE_SCALAR ? v->text : NULL;
}

/* How many items or pairs the node at path holds; 0 when absent or a scalar. */
static inline size_t len_at(const struct mesh_node *n, const char *path)
{
    const struct mesh_node *v = at(n, path);
    return v && v->type != MESH_NODE_SCALAR ? v->len : 0;
}

/* The object of that kind, namespace (NULL: one without a namespace) and name, or NULL. */
static inline const struct mesh_node *find(const struct mesh_translation *t, const char *kind,
                                           const char *ns, const char *name)
{
    for (size_t i = 0; i < t->n_objects; i++) {
        const struct mesh_node *o = t->objects[i];
        const char *k = text_at(o, "kind"), *s = text_at(o, "metadata.namespace"),
                   *m = text_at(o, "metadata.name");
        if (k && m && !strcmp(k, kind) && !strcmp(m, name) && (ns ? s && !strcmp(s, ns) : !s))
            return o;
    }
    return NULL;
}

/* As find, failing the test when there is no such object. */
static inline const struct mesh_node *must_find(const struct mesh_translation *t, const char *kind,
                                                const char *ns, const char *name)
{
    const struct mesh_node *o = find(t, kind, ns, name);
    if (!o)
        fail_msg("no %s %s/%s among the %zu objects", kind, ns ? ns : "", name, t->n_objects);
    return o;
}

static inline size_t count_kind(const struct mesh_translation *t, const char *kind)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_objects; i++) {
        const char *k = text_at(t->objects[i], "kind");
        n += k && !strcmp(k, kind);
    }
    return n;
}

/* t's objects as the YAML stream mesh_translation_print writes; the caller frees. */
static inline char *translation_yaml(const struct mesh_translation *t)
{
    char *yaml = NULL;
    assert_int_equal(mesh_translation_print(t, MESH_FORMAT_YAML, &yaml), MESH_OK);
    return yaml;
}

/* Whether w holds a message that is exactly text. */
static inline bool diags_has(const struct mesh_diags *w, const char *text)
{
    for (size_t i = 0; i < w->len; i++)
        if (!strcmp(w->items[i].message, text))
            return true;
    return false;
}

/* Whether w holds a message that contains part. */
static inline bool diags_has_part(const struct mesh_diags *w, const char *part)
{
    for (size_t i = 0; i < w->len; i++)
        if (strstr(w->items[i].message, part))
            return true;
    return false;
}

/* Whether t carries a warning whose message is exactly text. */
static inline bool has_warning(const struct mesh_translation *t, const char *text)
{
    return diags_has(&t->warnings, text);
}

/* Whether t carries a warning whose message contains part. */
static inline bool has_warning_part(const struct mesh_translation *t, const char *part)
{
    return diags_has_part(&t->warnings, part);
}

#endif
