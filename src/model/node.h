/* SPDX-License-Identifier: Apache-2.0 */
/* A generic document tree (map / sequence / scalar) that remembers where each node was written,
 * so that validation errors can name file:line:col. YAML and JSON are read into it and printed
 * from it; the typed resource structs are decoded from it. */
#ifndef MESH_MODEL_NODE_H
#define MESH_MODEL_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh/document.h"
#include "mesh/err.h"

enum mesh_node_type {
    MESH_NODE_SCALAR = 0,
    MESH_NODE_SEQ,
    MESH_NODE_MAP,
};

/* How a scalar resolves: a quoted YAML scalar is always a string; a plain one is resolved like
 * YAML 1.2 core (null, true/false, integers, floats), else a string. */
enum mesh_scalar_kind {
    MESH_SCALAR_STR = 0,
    MESH_SCALAR_INT,
    MESH_SCALAR_FLOAT,
    MESH_SCALAR_BOOL,
    MESH_SCALAR_NULL,
};

struct mesh_node;

struct mesh_node_pair {
    struct mesh_node *key; /* always a scalar */
    struct mesh_node *value;
};

struct mesh_node {
    enum mesh_node_type type;
    unsigned line, col; /* 1-based start of the node in its source; 0 when built in code */
    /* MESH_NODE_SCALAR */
    enum mesh_scalar_kind scalar_kind;
    char *text; /* the scalar as written, unquoted and unescaped ("1.14", "true", "") */
    /* MESH_NODE_SEQ: items; MESH_NODE_MAP: pairs, in document order */
    struct mesh_node **items;
    struct mesh_node_pair *pairs;
    size_t len;
    size_t cap;
};

/* Builders (abort on allocation failure: control plane and CLI only). */
struct mesh_node *mesh_node_scalar(enum mesh_scalar_kind kind, const char *text);
struct mesh_node *mesh_node_str(const char *text);
struct mesh_node *mesh_node_int(long long v);
struct mesh_node *mesh_node_float(double v); /* shortest text that reads back as v */
struct mesh_node *mesh_node_bool(bool v);
struct mesh_node *mesh_node_seq(void);
struct mesh_node *mesh_node_map(void);
void mesh_node_seq_append(struct mesh_node *seq, struct mesh_node *item); /* takes item */
void mesh_node_map_set(struct mesh_node *map, const char *key,
                       struct mesh_node *value); /* takes value; appends */
void mesh_node_free(struct mesh_node *node);

/* Lookups: NULL when absent or when node is not a map. Borrowed. */
struct mesh_node *mesh_node_map_get(const struct mesh_node *map, const char *key);

/* Deep structural equality (types, scalar kinds and texts, order of pairs). Positions ignored. */
bool mesh_node_equal(const struct mesh_node *a, const struct mesh_node *b);

/* How a plain (unquoted, untagged) scalar's text resolves under the YAML 1.2 core schema. Used by
 * the readers and by the YAML writer to decide when a string needs quotes. */
enum mesh_scalar_kind mesh_node_resolve_plain(const char *text);

/* Index of the first pair of map whose key text repeats an earlier key's text, or map->len when
 * every key is distinct (or map is not a map). Readers call it to refuse duplicate keys. */
size_t mesh_node_map_find_duplicate(const struct mesh_node *map);

/* A document of a multi-document source. */
struct mesh_node_doc {
    struct mesh_node *root; /* NULL for an empty document */
    unsigned line;          /* where the document starts */
};

struct mesh_node_docs {
    struct mesh_node_doc *items;
    size_t len;
};

void mesh_node_docs_free(struct mesh_node_docs *docs);

/* Limits on untrusted input: a source over these is refused with a message, never truncated. */
#define MESH_NODE_MAX_DEPTH 64
#define MESH_NODE_MAX_NODES 200000

/* Reads every YAML document of text. On a syntax error returns MESH_E_INVALID and adds one diag
 * (file:line:col: the parser's problem in words); docs is left empty. Aliases are expanded
 * (counted against MESH_NODE_MAX_NODES). */
enum mesh_err mesh_yaml_read(const char *text, size_t len, const char *file,
                             struct mesh_node_docs *docs, struct mesh_diags *diags);

/* Reads JSON: one value, or several concatenated; a top-level array of objects is one document
 * per element. Strict JSON (Jansson). Positions are exact for every node. */
enum mesh_err mesh_json_read(const char *text, size_t len, const char *file,
                             struct mesh_node_docs *docs, struct mesh_diags *diags);

/* Prints one node tree as a YAML document body (block style, 2-space indent, strings quoted
 * only when a plain scalar would read back as another kind or is not plain-safe). Appends to
 * *out (malloc'ed, may start NULL). */
enum mesh_err mesh_yaml_write(const struct mesh_node *root, char **out);

/* Prints one node tree as JSON, 2-space indented, keys in tree order. */
enum mesh_err mesh_json_write(const struct mesh_node *root, char **out);

/* Adds a diag (copies every string). */
void mesh_diags_add(struct mesh_diags *diags, const char *file, unsigned line, unsigned col,
                    const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
