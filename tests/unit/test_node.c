/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the document tree and its YAML/JSON readers and writers, and diagnostics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "model/node.h"

typedef enum mesh_err (*read_fn)(const char *, size_t, const char *, struct mesh_node_docs *,
                                 struct mesh_diags *);

static struct mesh_node_docs read_ok(read_fn rd, const char *text)
{
    struct mesh_node_docs docs = {0};
    struct mesh_diags diags = {0};
    enum mesh_err err = rd(text, strlen(text), "t", &docs, &diags);
    if (err != MESH_OK && diags.len > 0) {
        char *msg = mesh_diag_format(&diags.items[0]);
        print_error("unexpected error: %s\n", msg);
        free(msg);
    }
    assert_int_equal(err, MESH_OK);
    assert_int_equal(diags.len, 0);
    mesh_diags_clear(&diags);
    return docs;
}

/* Reads text expecting failure; checks the code, that docs stayed empty, and the one message. */
static void expect_read_error(read_fn rd, const char *text, size_t len, enum mesh_err want,
                              const char *message)
{
    struct mesh_node_docs docs = {0};
    struct mesh_diags diags = {0};
    assert_int_equal(rd(text, len, "in.yaml", &docs, &diags), want);
    assert_int_equal(docs.len, 0);
    assert_null(docs.items);
    assert_int_equal(diags.len, 1);
    char *msg = mesh_diag_format(&diags.items[0]);
    assert_string_equal(msg, message);
    free(msg);
    mesh_diags_clear(&diags);
}

static void assert_pos(const struct mesh_node *n, unsigned line, unsigned col)
{
    assert_non_null(n);
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
}

static void assert_scalar(const struct mesh_node *n, enum mesh_scalar_kind kind, const char *text)
{
    assert_non_null(n);
    assert_int_equal(n->type, MESH_NODE_SCALAR);
    assert_int_equal(n->scalar_kind, kind);
    assert_string_equal(n->text, text);
}

static void test_yaml_read_records_positions_of_keys_and_values(void **state)
{
    (void)state;
    struct mesh_node_docs docs = read_ok(mesh_yaml_read, "# comment\n"
                                                         "kind: VirtualService\n"
                                                         "spec:\n"
                                                         "  hosts: [a, \"é\", c]\n"
                                                         "  routes:\n"
                                                         "    - name: x\n"
                                                         "      weight: 90\n");
    assert_int_equal(docs.len, 1);
    const struct mesh_node *root = docs.items[0].root;
    assert_int_equal(docs.items[0].line, 2);
    assert_pos(root, 2, 1);
    assert_pos(root->pairs[0].key, 2, 1);
    assert_pos(root->pairs[0].value, 2, 7);
    const struct mesh_node *spec = mesh_node_map_get(root, "spec");
    assert_pos(spec, 4, 3);
    const struct mesh_node *hosts = mesh_node_map_get(spec, "hosts");
    assert_pos(hosts, 4, 10);
    assert_pos(hosts->items[1], 4, 14);
    assert_pos(hosts->items[2], 4, 19); /* "é" is one column */
    const struct mesh_node *route = mesh_node_map_get(spec, "routes")->items[0];
    assert_pos(route, 6, 7);
    assert_pos(route->pairs[1].key, 7, 7);
    assert_pos(mesh_node_map_get(route, "weight"), 7, 15);
    mesh_node_docs_free(&docs);
}

static void test_json_read_records_positions_of_keys_and_values(void **state)
{
    (void)state;
    struct mesh_node_docs docs = read_ok(mesh_json_read, "{\n"
                                                         "  \"a\\u00e9\\n\": \"x\\\"y\",\n"
                                                         "  \"list\": [12, -1.5e3, true,\n"
                                                         "    null, {\"é\": false}],\n"
                                                         "\"z\":\"ü\"}");
    assert_int_equal(docs.len, 1);
    const struct mesh_node *root = docs.items[0].root;
    assert_pos(root, 1, 1);
    assert_scalar(root->pairs[0].key, MESH_SCALAR_STR, "a\xc3\xa9\n");
    assert_pos(root->pairs[0].key, 2, 3);
    assert_scalar(root->pairs[0].value, MESH_SCALAR_STR, "x\"y");
    assert_pos(root->pairs[0].value, 2, 16);
    const struct mesh_node *list = mesh_node_map_get(root, "list");
    assert_pos(list, 3, 11);
    assert_scalar(list->items[0], MESH_SCALAR_INT, "12");
    assert_pos(list->items[0], 3, 12);
    assert_scalar(list->items[1], MESH_SCALAR_FLOAT, "-1.5e3");
    assert_pos(list->items[1], 3, 16);
    assert_scalar(list->items[2], MESH_SCALAR_BOOL, "true");
    assert_pos(list->items[2], 3, 24);
    assert_scalar(list->items[3], MESH_SCALAR_NULL, "null");
    assert_pos(list->items[3], 4, 5);
    const struct mesh_node *inner = list->items[4];
    assert_pos(inner, 4, 11);
    assert_pos(inner->pairs[0].key, 4, 12);
    assert_pos(inner->pairs[0].value, 4, 17); /* "é" counts as one column */
    assert_pos(root->pairs[2].key, 5, 1);
    assert_pos(root->pairs[2].value, 5, 5);
    mesh_node_docs_free(&docs);
}

static void test_yaml_read_splits_documents_and_keeps_empty_ones(void **state)
{
    (void)state;
    struct mesh_node_docs docs = read_ok(mesh_yaml_read, "a: 1\n"
                                                         "---\n"
                                                         "b: 2\n"
                                                         "---\n"
                                                         "--- !!null\n"
                                                         "---\n"
                                                         "- x\n"
                                                         "---\n");
    assert_int_equal(docs.len, 6);
    assert_int_equal(docs.items[0].line, 1);
    assert_non_null(mesh_node_map_get(docs.items[0].root, "a"));
    assert_int_equal(docs.items[1].line, 2);
    assert_pos(docs.items[1].root, 3, 1);
    assert_null(docs.items[2].root);
    assert_int_equal(docs.items[2].line, 4);
    assert_null(docs.items[3].root);
    assert_int_equal(docs.items[4].root->type, MESH_NODE_SEQ);
    assert_int_equal(docs.items[4].line, 6);
    assert_null(docs.items[5].root); /* the trailing "---" */
    assert_int_equal(docs.items[5].line, 8);
    mesh_node_docs_free(&docs);
    assert_int_equal(docs.len, 0);

    docs = read_ok(mesh_yaml_read, "# only a comment\n");
    assert_int_equal(docs.len, 0);
    mesh_node_docs_free(&docs);
}

static void test_json_read_top_level_array_is_one_document_per_element(void **state)
{
    (void)state;
    struct mesh_node_docs docs = read_ok(mesh_json_read, "[\n  {\"a\": 1},\n  {\"b\": [2]}\n]\n");
    assert_int_equal(docs.len, 2);
    assert_int_equal(docs.items[0].line, 2);
    assert_pos(docs.items[0].root, 2, 3);
    assert_int_equal(docs.items[1].line, 3);
    assert_non_null(mesh_node_map_get(docs.items[1].root, "b"));
    mesh_node_docs_free(&docs);

    docs = read_ok(mesh_json_read, " [] ");
    assert_int_equal(docs.len, 0);
    mesh_node_docs_free(&docs);
}

static void test_json_read_concatenated_values_are_documents(void **state)
{
    (void)state;
    struct mesh_node_docs docs = read_ok(mesh_json_read, "{\"a\": 1}\n{\"b\": 2}{\"c\": 3}\n"
                                                         "[{\"d\": 4}, {\"e\": 5}] \"s\"\n");
    assert_int_equal(docs.len, 6);
    assert_pos(docs.items[1].root, 2, 1);
    assert_pos(docs.items[2].root, 2, 9);
    assert_pos(mesh_node_map_get(docs.items[2].root, "c"), 2, 15);
    assert_pos(docs.items[3].root, 3, 2);
    assert_pos(docs.items[4].root, 3, 12);
    assert_scalar(docs.items[5].root, MESH_SCALAR_STR, "s");
    assert_pos(docs.items[5].root, 3, 22);
    mesh_node_docs_free(&docs);
}

static void test_scalar_resolution_follows_yaml_core_schema(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum mesh_scalar_kind kind;
    } cases[] = {
        {"", MESH_SCALAR_NULL},      {"~", MESH_SCALAR_NULL},      {"null", MESH_SCALAR_NULL},
        {"Null", MESH_SCALAR_NULL},  {"NULL", MESH_SCALAR_NULL},   {"nULL", MESH_SCALAR_STR},
        {"true", MESH_SCALAR_BOOL},  {"True", MESH_SCALAR_BOOL},   {"TRUE", MESH_SCALAR_BOOL},
        {"false", MESH_SCALAR_BOOL}, {"yes", MESH_SCALAR_STR},     {"on", MESH_SCALAR_STR},
        {"12", MESH_SCALAR_INT},     {"-12", MESH_SCALAR_INT},     {"+7", MESH_SCALAR_INT},
        {"007", MESH_SCALAR_INT},    {"0x1F", MESH_SCALAR_INT},    {"0o17", MESH_SCALAR_INT},
        {"0x", MESH_SCALAR_STR},     {"0o8", MESH_SCALAR_STR},     {"1_000", MESH_SCALAR_STR},
        {"1.14", MESH_SCALAR_FLOAT}, {".5", MESH_SCALAR_FLOAT},    {"1.", MESH_SCALAR_FLOAT},
        {"-1e5", MESH_SCALAR_FLOAT}, {"1E+5", MESH_SCALAR_FLOAT},  {"1e", MESH_SCALAR_STR},
        {".inf", MESH_SCALAR_FLOAT}, {"-.Inf", MESH_SCALAR_FLOAT}, {".NaN", MESH_SCALAR_FLOAT},
        {"-.nan", MESH_SCALAR_STR},  {".", MESH_SCALAR_STR},       {"1.14.2", MESH_SCALAR_STR},
        {"250ms", MESH_SCALAR_STR},  {"-", MESH_SCALAR_STR},       {"2.10", MESH_SCALAR_FLOAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (mesh_node_resolve_plain(cases[i].text) != cases[i].kind)
            fail_msg("\"%s\" resolved as %d, want %d", cases[i].text,
                     (int)mesh_node_resolve_plain(cases[i].text), (int)cases[i].kind);
    }
}

static void test_yaml_read_quoted_and_tagged_scalars(void **state)
{
    (void)state;
    struct mesh_node_docs docs = read_ok(mesh_yaml_read, "a: \"true\"\n"
                                                         "b: '12'\n"
                                                         "c: !!str 1.5\n"
                                                         "d: !!int \"12\"\n"
                                                         "e: !custom 3\n"
                                                         "f: ! 4\n"
                                                         "g: |\n  two\n  lines\n"
                                                         "h: 2.10\n");
    const struct mesh_node *root = docs.items[0].root;
    assert_scalar(mesh_node_map_get(root, "a"), MESH_SCALAR_STR, "true");
    assert_scalar(mesh_node_map_get(root, "b"), MESH_SCALAR_STR, "12");
    assert_scalar(mesh_node_map_get(root, "c"), MESH_SCALAR_STR, "1.5");
    assert_scalar(mesh_node_map_get(root, "d"), MESH_SCALAR_INT, "12");
    assert_scalar(mesh_node_map_get(root, "e"), MESH_SCALAR_INT, "3");
    assert_scalar(mesh_node_map_get(root, "f"), MESH_SCALAR_STR, "4");
    assert_scalar(mesh_node_map_get(root, "g"), MESH_SCALAR_STR, "two\nlines\n");
    assert_scalar(mesh_node_map_get(root, "h"), MESH_SCALAR_FLOAT, "2.10");
    mesh_node_docs_free(&docs);

    const char *bad = "a: !!int abc\n";
    expect_read_error(mesh_yaml_read, bad, strlen(bad), MESH_E_INVALID,
                      "in.yaml:1:4: value \"abc\" does not match tag !!int");
}

static void test_yaml_read_syntax_errors_name_position_and_problem(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"a: [1, 2\nb: 3\n",
         "in.yaml:2:2: did not find expected ',' or ']' while parsing a flow sequence"},
        {"a: b: c\n", "in.yaml:1:5: mapping values are not allowed in this context"},
        {"a: 'x\n", "in.yaml:2:1: found unexpected end of stream while scanning a quoted scalar"},
        {"a: 1\n\tb: 2\n", "in.yaml:2:1: found a tab character that violates indentation while "
                           "scanning a plain scalar"},
        {"a: ok\nb: \x01\n", "in.yaml:2:4: control characters are not allowed (#x01)"},
        {"a: ok\nbé: \xff\n", "in.yaml:2:5: invalid leading UTF-8 octet (#xFF)"},
        {"a: *nowhere\n", "in.yaml:1:4: undefined alias \"nowhere\""},
        {"a: \"x\\0y\"\n", "in.yaml:1:4: strings must not contain NUL characters"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_read_error(mesh_yaml_read, cases[i].text, strlen(cases[i].text), MESH_E_INVALID,
                          cases[i].message);
}

static void test_yaml_read_error_after_good_documents_returns_none(void **state)
{
    (void)state;
    const char *text = "a: 1\n---\nb: 2\n---\nc: [\n";
    expect_read_error(mesh_yaml_read, text, strlen(text), MESH_E_INVALID,
                      "in.yaml:6:1: did not find expected node content while parsing a flow node");
}

static void test_json_read_syntax_errors_use_jansson_words_and_source_position(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"{\"a\": 1,}", "in.yaml:1:9: string or '}' expected near '}'"},
        {"{\"a\": 1}\n\n  {\"b\": tru}",
         "in.yaml:3:11: invalid token near 'tru'"}, /* second value: position in the source */
        {"{\"a\": 1}  {\"b\":\n [1,,2]}", "in.yaml:2:5: unexpected token near ','"},
        {"1e5e", "in.yaml:1:4: invalid token near 'e'"}, /* a number ends where JSON says */
        {"{'a': 1}", "in.yaml:1:2: string or '}' expected near '''"},
        {"{\"a\": \"\\u0000\"}", "in.yaml:1:14: strings must not contain NUL characters (\\u0000)"},
        {"{\"a\": 99999999999999999999}",
         "in.yaml:1:26: too big integer near '99999999999999999999'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_read_error(mesh_json_read, cases[i].text, strlen(cases[i].text), MESH_E_INVALID,
                          cases[i].message);
}

static void test_readers_refuse_duplicate_keys_at_the_second_key(void **state)
{
    (void)state;
    const char *yaml = "name: a\nspec:\n  x: 1\n  y: 2\n  x: 3\n";
    expect_read_error(mesh_yaml_read, yaml, strlen(yaml), MESH_E_INVALID,
                      "in.yaml:5:3: duplicate key \"x\"");
    const char *flow = "{b: 1, a: 1, b: 2, a: 3}";
    expect_read_error(mesh_yaml_read, flow, strlen(flow), MESH_E_INVALID,
                      "in.yaml:1:14: duplicate key \"b\"");
    const char *json = "{\"a\": 1,\n \"b\": {\"k\": 1, \"k\": 2}}";
    expect_read_error(mesh_json_read, json, strlen(json), MESH_E_INVALID,
                      "in.yaml:2:16: duplicate key \"k\"");
}

static void test_yaml_read_refuses_non_scalar_keys(void **state)
{
    (void)state;
    const char *text = "a: 1\n? [x, y]\n: 2\n";
    expect_read_error(mesh_yaml_read, text, strlen(text), MESH_E_INVALID,
                      "in.yaml:2:3: mapping keys must be scalars");
    const char *alias = "a: &m {x: 1}\n*m : 2\n";
    expect_read_error(mesh_yaml_read, alias, strlen(alias), MESH_E_INVALID,
                      "in.yaml:2:1: mapping keys must be scalars");
}

static char *nested(const char *open, const char *close, int depth)
{
    size_t lo = strlen(open), lc = strlen(close);
    char *s = malloc((lo + lc) * (size_t)depth + 1);
    char *p = s;
    for (int i = 0; i < depth; i++, p += lo)
        memcpy(p, open, lo);
    for (int i = 0; i < depth; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    return s;
}

static void test_readers_refuse_nesting_over_the_depth_limit(void **state)
{
    (void)state;
    char *ok = nested("[", "]", MESH_NODE_MAX_DEPTH);
    struct mesh_node_docs docs = read_ok(mesh_yaml_read, ok);
    mesh_node_docs_free(&docs);
    docs = read_ok(mesh_json_read, ok);
    mesh_node_docs_free(&docs);
    free(ok);

    char *deep = nested("[", "]", MESH_NODE_MAX_DEPTH + 1);
    expect_read_error(mesh_yaml_read, deep, strlen(deep), MESH_E_INVALID,
                      "in.yaml:1:65: nesting deeper than 64 levels");
    expect_read_error(mesh_json_read, deep, strlen(deep), MESH_E_INVALID,
                      "in.yaml:1:65: nesting deeper than 64 levels");
    free(deep);

    /* An alias may not carry a deep subtree below the limit either. */
    char *inner = nested("[", "]", 40);
    size_t n = strlen(inner) * 2 + 64;
    char *text = malloc(n);
    char *outer = nested("[", "]", 30);
    snprintf(text, n, "a: &x %s\nb: %.*s*x%s\n", inner, 30, outer, outer + 30);
    expect_read_error(mesh_yaml_read, text, strlen(text), MESH_E_INVALID,
                      "in.yaml:2:34: nesting deeper than 64 levels");
    free(text);
    free(outer);
    free(inner);
}

static void test_yaml_read_expands_aliases(void **state)
{
    (void)state;
    struct mesh_node_docs docs = read_ok(
        mesh_yaml_read, "base: &b {name: x, ports: [1, 2]}\ncopy: *b\nscalar: &s hi\nre: *s\n");
    const struct mesh_node *root = docs.items[0].root;
    const struct mesh_node *copy = mesh_node_map_get(root, "copy");
    assert_true(mesh_node_equal(mesh_node_map_get(root, "base"), copy));
    assert_ptr_not_equal(mesh_node_map_get(root, "base"), copy);
    assert_pos(copy, 2, 7);
    assert_scalar(mesh_node_map_get(root, "re"), MESH_SCALAR_STR, "hi");
    mesh_node_docs_free(&docs);

    /* Anchors do not cross documents. */
    const char *text = "a: &x 1\n---\nb: *x\n";
    expect_read_error(mesh_yaml_read, text, strlen(text), MESH_E_INVALID,
                      "in.yaml:3:4: undefined alias \"x\"");
}

static void test_yaml_read_refuses_alias_bomb_quickly(void **state)
{
    (void)state;
    const char *bomb =
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
        "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
        "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    clock_t start = clock();
    expect_read_error(
        mesh_yaml_read, bomb, strlen(bomb), MESH_E_INVALID,
        "in.yaml:6:11: more than 200000 nodes (aliases expanded); refusing the input");
    assert_true((double)(clock() - start) / CLOCKS_PER_SEC < 5.0);
}

static void test_json_read_refuses_too_many_nodes(void **state)
{
    (void)state;
    size_t count = MESH_NODE_MAX_NODES + 10;
    char *text = malloc(count * 2 + 3);
    char *p = text;
    *p++ = '[';
    for (size_t i = 0; i < count; i++) {
        *p++ = '0';
        *p++ = ',';
    }
    p[-1] = ']';
    *p = '\0';
    struct mesh_node_docs docs = {0};
    struct mesh_diags diags = {0};
    assert_int_equal(mesh_json_read(text, strlen(text), NULL, &docs, &diags), MESH_E_INVALID);
    assert_int_equal(docs.len, 0);
    assert_int_equal(diags.len, 1);
    assert_string_equal(diags.items[0].file, "<input>");
    assert_string_equal(diags.items[0].message, "more than 200000 nodes; refusing the input");
    mesh_diags_clear(&diags);
    free(text);
}

static const char *const nasty[] = {
    "plain",
    "with space",
    "\"quoted\"",
    "'single'",
    "a: b",
    "a:b",
    "key:",
    ": a",
    "- x",
    "-x",
    "?x",
    "# hash",
    "a #b",
    "a#b",
    "true",
    "True",
    "false",
    "yes",
    "on",
    "n",
    "null",
    "~",
    "",
    " ",
    " lead",
    "trail ",
    "1.14",
    "12",
    "0x1F",
    "1e5",
    ".inf",
    ".nan",
    "*x",
    "&x",
    "!tag",
    "%dir",
    "@at",
    "`tick",
    "[a]",
    "{a}",
    "a, b",
    "a]",
    "|",
    ">",
    "...",
    "---",
    "--- x",
    "line\nbreak",
    "tab\there",
    "back\\slash",
    "caf\xc3\xa9",
    "\xe2\x80\xa8sep",
    "\xef\xbb\xbf"
    "bom",
    "emoji \xf0\x9f\x98\x80",
    "\x7f"
    "del",
    "ctl\x01",
    "\xc2\x85"
    "nel",
    "<<",
    "very long string that keeps going on and on well past any line width a printer might like "
    "to fold at, with words and spaces, so that a folding printer would break it somewhere",
};

static struct mesh_node *nasty_tree(void)
{
    struct mesh_node *root = mesh_node_map();
    struct mesh_node *list = mesh_node_seq();
    struct mesh_node *by_key = mesh_node_map();
    for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
        mesh_node_seq_append(list, mesh_node_str(nasty[i]));
        mesh_node_map_set(by_key, nasty[i], mesh_node_str(nasty[i]));
    }
    mesh_node_map_set(root, "strings", list);
    mesh_node_map_set(root, "keys", by_key);
    struct mesh_node *item = mesh_node_map();
    mesh_node_map_set(item, "name", mesh_node_str("x"));
    mesh_node_map_set(item, "n", mesh_node_int(-3));
    mesh_node_map_set(item, "f", mesh_node_float(1.14));
    mesh_node_map_set(item, "b", mesh_node_bool(false));
    mesh_node_map_set(item, "z", mesh_node_scalar(MESH_SCALAR_NULL, "null"));
    mesh_node_map_set(item, "empty_map", mesh_node_map());
    mesh_node_map_set(item, "empty_seq", mesh_node_seq());
    struct mesh_node *nested_seq = mesh_node_seq();
    mesh_node_seq_append(nested_seq, mesh_node_str("inner"));
    struct mesh_node *routes = mesh_node_seq();
    mesh_node_seq_append(routes, item);
    mesh_node_seq_append(routes, nested_seq);
    mesh_node_seq_append(routes, mesh_node_seq());
    mesh_node_map_set(root, "routes", routes);
    return root;
}

static void round_trip(read_fn rd, enum mesh_err (*wr)(const struct mesh_node *, char **),
                       const struct mesh_node *tree)
{
    char *text = NULL;
    assert_int_equal(wr(tree, &text), MESH_OK);
    struct mesh_node_docs docs = read_ok(rd, text);
    assert_int_equal(docs.len, 1);
    if (!mesh_node_equal(tree, docs.items[0].root))
        fail_msg("round trip changed the tree; printed:\n%s", text);
    char *again = NULL;
    assert_int_equal(wr(docs.items[0].root, &again), MESH_OK);
    assert_string_equal(text, again);
    free(again);
    free(text);
    mesh_node_docs_free(&docs);
}

static void test_yaml_round_trip_keeps_nasty_strings(void **state)
{
    (void)state;
    struct mesh_node *tree = nasty_tree();
    round_trip(mesh_yaml_read, mesh_yaml_write, tree);
    mesh_node_free(tree);
}

static void test_json_round_trip_keeps_nasty_strings(void **state)
{
    (void)state;
    struct mesh_node *tree = nasty_tree();
    round_trip(mesh_json_read, mesh_json_write, tree);
    mesh_node_free(tree);
}

static void test_yaml_round_trip_of_parsed_yaml_is_exact(void **state)
{
    (void)state;
    const char *src = "a: 0x1F\nb: +7\nc: .5\nd: TRUE\ne: ~\nf:\ng: -.inf\nh: 2.10\n"
                      "i: [\"1\", '2', x]\n? \"\"\n: empty key\n";
    struct mesh_node_docs docs = read_ok(mesh_yaml_read, src);
    round_trip(mesh_yaml_read, mesh_yaml_write, docs.items[0].root);
    mesh_node_docs_free(&docs);
}

static void test_yaml_write_layout(void **state)
{
    (void)state;
    struct mesh_node_docs docs = read_ok(mesh_yaml_read, "{kind: VirtualService, spec: {hosts: "
                                                         "[a, '1.14'], routes: [{name: x, "
                                                         "matches: [{path: /a}]}, [1, 2]], "
                                                         "m: {}, s: [], z: null, e: }}");
    char *out = NULL;
    assert_int_equal(mesh_yaml_write(docs.items[0].root, &out), MESH_OK);
    assert_string_equal(out, "kind: VirtualService\n"
                             "spec:\n"
                             "  hosts:\n"
                             "    - a\n"
                             "    - \"1.14\"\n"
                             "  routes:\n"
                             "    - name: x\n"
                             "      matches:\n"
                             "        - path: /a\n"
                             "    - - 1\n"
                             "      - 2\n"
                             "  m: {}\n"
                             "  s: []\n"
                             "  z: null\n"
                             "  e:\n");
    /* It appends: two documents in one buffer. */
    assert_int_equal(mesh_yaml_write(docs.items[0].root->pairs[0].value, &out), MESH_OK);
    assert_string_equal(out + strlen(out) - strlen("VirtualService\n"), "VirtualService\n");
    free(out);
    mesh_node_docs_free(&docs);
}

static void test_yaml_write_quotes_and_escapes_only_what_needs_it(void **state)
{
    (void)state;
    struct mesh_node *seq = mesh_node_seq();
    static const char *const in[] = {
        "payment-v1",          "/api/v1/*", "127.0.0.1:18081", "true", "",      "a: b",
        "line\nnext\t\"q\"\\", "café 😀",    "\xe2\x80\xa8",    "yes",  "1.14.2"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        mesh_node_seq_append(seq, mesh_node_str(in[i]));
    char *out = NULL;
    assert_int_equal(mesh_yaml_write(seq, &out), MESH_OK);
    assert_string_equal(out, "- payment-v1\n"
                             "- /api/v1/*\n"
                             "- 127.0.0.1:18081\n"
                             "- \"true\"\n"
                             "- \"\"\n"
                             "- \"a: b\"\n"
                             "- \"line\\nnext\\t\\\"q\\\"\\\\\"\n"
                             "- café 😀\n"
                             "- \"\\L\"\n"
                             "- \"yes\"\n"
                             "- 1.14.2\n");
    free(out);
    mesh_node_free(seq);
}

static void test_yaml_write_long_key_uses_explicit_key(void **state)
{
    (void)state;
    char key[1500];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    struct mesh_node *map = mesh_node_map();
    mesh_node_map_set(map, key, mesh_node_int(1));
    struct mesh_node *inner = mesh_node_map();
    mesh_node_map_set(inner, "a", mesh_node_int(2));
    mesh_node_map_set(map, "next", inner);
    char *out = NULL;
    assert_int_equal(mesh_yaml_write(map, &out), MESH_OK);
    assert_memory_equal(out, "? kkk", 5);
    assert_non_null(strstr(out, "k\n: 1\nnext:\n  a: 2\n"));
    free(out);
    round_trip(mesh_yaml_read, mesh_yaml_write, map);
    mesh_node_free(map);
}

static void test_writers_refuse_invalid_trees(void **state)
{
    (void)state;
    char *out = NULL;
    struct mesh_node *bad_utf8 = mesh_node_str("\xff");
    assert_int_equal(mesh_yaml_write(bad_utf8, &out), MESH_E_INVALID);
    assert_null(out);
    assert_int_equal(mesh_json_write(bad_utf8, &out), MESH_E_INVALID);
    assert_null(out);
    mesh_node_free(bad_utf8);

    struct mesh_node *wrong_kind = mesh_node_scalar(MESH_SCALAR_INT, "abc");
    assert_int_equal(mesh_yaml_write(wrong_kind, &out), MESH_E_INVALID);
    assert_int_equal(mesh_json_write(wrong_kind, &out), MESH_E_INVALID);
    mesh_node_free(wrong_kind);

    /* A failed write leaves what was already in *out untouched. */
    out = strdup("kept\n");
    struct mesh_node *map = mesh_node_map();
    mesh_node_map_set(map, "ok", mesh_node_int(1));
    mesh_node_map_set(map, "bad", mesh_node_str("\xc3"));
    assert_int_equal(mesh_yaml_write(map, &out), MESH_E_INVALID);
    assert_string_equal(out, "kept\n");
    assert_int_equal(mesh_json_write(map, &out), MESH_E_INVALID);
    assert_string_equal(out, "kept\n");
    free(out);
    mesh_node_free(map);
}

static void test_json_write_layout_and_numbers(void **state)
{
    (void)state;
    struct mesh_node_docs docs =
        read_ok(mesh_yaml_read, "a: 12\nb: 0x1F\nc: +7\nd: 1.14\ne: .5\n"
                                "f: 1e5\ng: TRUE\nh: ~\ni: [x, {}]\nj: []\n"
                                "k: 9223372036854775807\n\"l\\\"\": -0\n");
    char *out = NULL;
    assert_int_equal(mesh_json_write(docs.items[0].root, &out), MESH_OK);
    assert_string_equal(out, "{\n"
                             "  \"a\": 12,\n"
                             "  \"b\": 31,\n"
                             "  \"c\": 7,\n"
                             "  \"d\": 1.14,\n"
                             "  \"e\": 0.5,\n"
                             "  \"f\": 1e5,\n"
                             "  \"g\": true,\n"
                             "  \"h\": null,\n"
                             "  \"i\": [\n"
                             "    \"x\",\n"
                             "    {}\n"
                             "  ],\n"
                             "  \"j\": [],\n"
                             "  \"k\": 9223372036854775807,\n"
                             "  \"l\\\"\": -0\n"
                             "}\n");
    free(out);
    mesh_node_docs_free(&docs);

    struct mesh_node *huge = mesh_node_scalar(MESH_SCALAR_INT, "9223372036854775808");
    out = NULL;
    assert_int_equal(mesh_json_write(huge, &out), MESH_E_INVALID);
    mesh_node_free(huge);
    struct mesh_node *inf = mesh_node_scalar(MESH_SCALAR_FLOAT, ".inf");
    assert_int_equal(mesh_json_write(inf, &out), MESH_E_INVALID);
    assert_null(out);
    mesh_node_free(inf);
}

static void test_float_node_has_shortest_text_that_reads_back(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {10.0, "10.0"},
        {1.14, "1.14"},
        {0.1, "0.1"},
        {-2.5, "-2.5"},
        {1e20, "1e+20"},
        {0.0, "0.0"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e-7, "1e-07"},
        {-0.0, "-0.0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mesh_node *n = mesh_node_float(cases[i].v);
        assert_int_equal(n->scalar_kind, MESH_SCALAR_FLOAT);
        assert_string_equal(n->text, cases[i].text);
        assert_true(strtod(n->text, NULL) == cases[i].v);
        assert_int_equal(mesh_node_resolve_plain(n->text), MESH_SCALAR_FLOAT);
        mesh_node_free(n);
    }
    struct mesh_node *inf = mesh_node_float(-1.0 / 0.0);
    assert_string_equal(inf->text, "-.inf");
    mesh_node_free(inf);
}

static void test_node_builders_lookup_and_equality(void **state)
{
    (void)state;
    struct mesh_node *a = mesh_node_map();
    mesh_node_map_set(a, "n", mesh_node_int(-42));
    mesh_node_map_set(a, "b", mesh_node_bool(true));
    mesh_node_map_set(a, "s", mesh_node_str(NULL));
    assert_scalar(mesh_node_map_get(a, "n"), MESH_SCALAR_INT, "-42");
    assert_scalar(mesh_node_map_get(a, "b"), MESH_SCALAR_BOOL, "true");
    assert_scalar(mesh_node_map_get(a, "s"), MESH_SCALAR_STR, "");
    assert_null(mesh_node_map_get(a, "missing"));
    assert_null(mesh_node_map_get(mesh_node_map_get(a, "n"), "x"));
    assert_null(mesh_node_map_get(NULL, "x"));

    struct mesh_node *b = mesh_node_map();
    mesh_node_map_set(b, "n", mesh_node_int(-42));
    mesh_node_map_set(b, "b", mesh_node_bool(true));
    mesh_node_map_set(b, "s", mesh_node_str(""));
    b->line = 9; /* positions do not matter */
    assert_true(mesh_node_equal(a, b));
    mesh_node_free(b->pairs[1].value);
    b->pairs[1].value = mesh_node_str("true"); /* same text, other kind */
    assert_false(mesh_node_equal(a, b));
    assert_false(mesh_node_equal(a, NULL));
    assert_true(mesh_node_equal(NULL, NULL));
    assert_int_equal(mesh_node_map_find_duplicate(a), a->len);
    mesh_node_map_set(a, "b", mesh_node_int(1));
    mesh_node_map_set(a, "n", mesh_node_int(1));
    assert_int_equal(mesh_node_map_find_duplicate(a), 3);
    mesh_node_free(a);
    mesh_node_free(b);
    mesh_node_free(NULL);
    mesh_node_docs_free(NULL);
}

static void test_diag_format_leaves_out_unknown_parts(void **state)
{
    (void)state;
    struct mesh_diags diags = {0};
    mesh_diags_add(&diags, "p.yaml", 14, 9, "spec.http_routes[0].destinations",
                   "weights sum to %d, must be %d", 95, 100);
    mesh_diags_add(&diags, NULL, 0, 0, "metadata.name", "missing");
    mesh_diags_add(&diags, "f.json", 3, 7, "", "bad");
    mesh_diags_add(&diags, "f.json", 3, 0, NULL, "no column");
    static const char *const want[] = {
        "p.yaml:14:9: spec.http_routes[0].destinations: weights sum to 95, must be 100",
        "<input>: metadata.name: missing",
        "f.json:3:7: bad",
        "f.json:3: no column",
    };
    assert_int_equal(diags.len, 4);
    for (size_t i = 0; i < diags.len; i++) {
        char *s = mesh_diag_format(&diags.items[i]);
        assert_string_equal(s, want[i]);
        free(s);
    }
    mesh_diags_clear(&diags);
    assert_int_equal(diags.len, 0);
    assert_null(diags.items);
    mesh_diags_clear(&diags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_read_records_positions_of_keys_and_values),
        cmocka_unit_test(test_json_read_records_positions_of_keys_and_values),
        cmocka_unit_test(test_yaml_read_splits_documents_and_keeps_empty_ones),
        cmocka_unit_test(test_json_read_top_level_array_is_one_document_per_element),
        cmocka_unit_test(test_json_read_concatenated_values_are_documents),
        cmocka_unit_test(test_scalar_resolution_follows_yaml_core_schema),
        cmocka_unit_test(test_yaml_read_quoted_and_tagged_scalars),
        cmocka_unit_test(test_yaml_read_syntax_errors_name_position_and_problem),
        cmocka_unit_test(test_yaml_read_error_after_good_documents_returns_none),
        cmocka_unit_test(test_json_read_syntax_errors_use_jansson_words_and_source_position),
        cmocka_unit_test(test_readers_refuse_duplicate_keys_at_the_second_key),
        cmocka_unit_test(test_yaml_read_refuses_non_scalar_keys),
        cmocka_unit_test(test_readers_refuse_nesting_over_the_depth_limit),
        cmocka_unit_test(test_yaml_read_expands_aliases),
        cmocka_unit_test(test_yaml_read_refuses_alias_bomb_quickly),
        cmocka_unit_test(test_json_read_refuses_too_many_nodes),
        cmocka_unit_test(test_yaml_round_trip_keeps_nasty_strings),
        cmocka_unit_test(test_json_round_trip_keeps_nasty_strings),
        cmocka_unit_test(test_yaml_round_trip_of_parsed_yaml_is_exact),
        cmocka_unit_test(test_yaml_write_layout),
        cmocka_unit_test(test_yaml_write_quotes_and_escapes_only_what_needs_it),
        cmocka_unit_test(test_yaml_write_long_key_uses_explicit_key),
        cmocka_unit_test(test_writers_refuse_invalid_trees),
        cmocka_unit_test(test_json_write_layout_and_numbers),
        cmocka_unit_test(test_float_node_has_shortest_text_that_reads_back),
        cmocka_unit_test(test_node_builders_lookup_and_equality),
        cmocka_unit_test(test_diag_format_leaves_out_unknown_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
