/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer harness for the model: YAML/JSON readers and writers, and the resource parser and
 * printer. Any input a reader accepts must print, re-read to the same thing, and print again
 * byte for byte the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/document.h"
#include "model/node.h"

#define MAX_INPUT (64 * 1024)

typedef enum mesh_err (*read_fn)(const char *, size_t, const char *, struct mesh_node_docs *,
                                 struct mesh_diags *);
typedef enum mesh_err (*write_fn)(const struct mesh_node *, char **);

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

/* A JSON top-level array reads back as one document per element: gather them again. */
static struct mesh_node *take_root(struct mesh_node_docs *docs, bool seq)
{
    if (!seq) {
        check(docs->len == 1);
        struct mesh_node *root = docs->items[0].root;
        docs->items[0].root = NULL;
        return root;
    }
    struct mesh_node *root = mesh_node_seq();
    for (size_t i = 0; i < docs->len; i++) {
        mesh_node_seq_append(root, docs->items[i].root);
        docs->items[i].root = NULL;
    }
    return root;
}

/* Writes root, reads it back (must succeed), and returns the re-read tree and the text. */
static struct mesh_node *write_and_reread(const struct mesh_node *root, read_fn rd, write_fn wr,
                                          char **text)
{
    struct mesh_node_docs docs = {0};
    struct mesh_diags diags = {0};
    *text = NULL;
    if (wr(root, text) != MESH_OK)
        return NULL;
    check(rd(*text, strlen(*text), "reread", &docs, &diags) == MESH_OK);
    struct mesh_node *back = take_root(&docs, rd == mesh_json_read && root->type == MESH_NODE_SEQ);
    mesh_node_docs_free(&docs);
    mesh_diags_clear(&diags);
    return back;
}

/* YAML keeps every scalar's text, so its round trip is exact; JSON respells YAML-only numbers
 * (0x1F, .5), so it must only be exact from its second print on. */
static void check_node_round_trip(const struct mesh_node *root, read_fn rd, write_fn wr, bool exact)
{
    char *first = NULL, *second = NULL;
    struct mesh_node *back = write_and_reread(root, rd, wr, &first);
    if (!back) {
        check(!exact); /* only JSON may refuse a tree (.inf, huge integers) */
        goto out;
    }
    check(!exact || mesh_node_equal(root, back));
    struct mesh_node *again = write_and_reread(back, rd, wr, &second);
    check(again != NULL && strcmp(first, second) == 0 && mesh_node_equal(back, again));
    mesh_node_free(again);
out:
    mesh_node_free(back);
    free(first);
    free(second);
}

static void fuzz_nodes(const char *text, size_t len, read_fn rd)
{
    struct mesh_node_docs docs = {0};
    struct mesh_diags diags = {0};
    if (rd(text, len, "fuzz", &docs, &diags) == MESH_OK) {
        check(diags.len == 0);
        for (size_t i = 0; i < docs.len; i++) {
            if (!docs.items[i].root)
                continue;
            check_node_round_trip(docs.items[i].root, mesh_yaml_read, mesh_yaml_write, true);
            check_node_round_trip(docs.items[i].root, mesh_json_read, mesh_json_write, false);
        }
    } else {
        check(diags.len > 0 && docs.len == 0);
    }
    mesh_node_docs_free(&docs);
    mesh_diags_clear(&diags);
}

static char *print_reparse_print(struct mesh_resource **res, size_t n, enum mesh_format format)
{
    char *first = NULL, *second = NULL;
    struct mesh_resource **back = NULL;
    size_t n_back = 0;
    struct mesh_diags diags = {0};
    check(mesh_print_documents((const struct mesh_resource *const *)res, n, format, &first) ==
          MESH_OK);
    check(mesh_parse_documents(first, strlen(first), "printed", &back, &n_back, &diags) == MESH_OK);
    check(n_back == n);
    check(mesh_print_documents((const struct mesh_resource *const *)back, n_back, format,
                               &second) == MESH_OK);
    check(strcmp(first, second) == 0);
    mesh_resource_list_free(back, n_back);
    mesh_diags_clear(&diags);
    free(first);
    return second;
}

static void fuzz_documents(const char *text, size_t len)
{
    struct mesh_resource **res = NULL;
    size_t n = 0;
    struct mesh_diags diags = {0};
    if (mesh_parse_documents(text, len, "fuzz", &res, &n, &diags) == MESH_OK && n > 0) {
        free(print_reparse_print(res, n, MESH_FORMAT_YAML));
        free(print_reparse_print(res, n, MESH_FORMAT_JSON));
    }
    mesh_resource_list_free(res, n);
    mesh_diags_clear(&diags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    /* A copy of exactly size bytes, so that reading past the end is caught. */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    fuzz_nodes(text, size, mesh_yaml_read);
    fuzz_nodes(text, size, mesh_json_read);
    fuzz_documents(text, size);
    free(text);
    return 0;
}
