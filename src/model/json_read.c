/* SPDX-License-Identifier: Apache-2.0 */
/* Reads JSON into node trees: Jansson decides what is valid JSON (and words the syntax errors),
 * then a small scanner walks the same bytes to build the tree with each node's line:col, which
 * Jansson does not keep. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "node.h"

/* The scanner only runs over text Jansson accepted, so it checks structure no further than
 * needed to stay in bounds. */
struct json_reader {
    const char *p;
    const char *end;
    unsigned line, col; /* of *p; col counts UTF-8 characters like Jansson and libyaml */
    size_t nodes;
    size_t docs_cap; /* of the documents read so far */
    const char *file;
    struct mesh_diags *diags;
};

static enum mesh_err read_value(struct json_reader *r, unsigned depth, struct mesh_node **out);

static enum mesh_err fail_at(struct json_reader *r, unsigned line, unsigned col, const char *fmt,
                             ...) __attribute__((format(printf, 4, 5)));

static enum mesh_err fail_at(struct json_reader *r, unsigned line, unsigned col, const char *fmt,
                             ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mesh_diags_add(r->diags, r->file, line, col, "", "%s", msg);
    return MESH_E_INVALID;
}

static void advance(struct json_reader *r, size_t n)
{
    for (; n > 0 && r->p < r->end; n--, r->p++) {
        if (*r->p == '\n') {
            r->line++;
            r->col = 1;
        } else if (((unsigned char)*r->p & 0xC0) != 0x80) {
            r->col++;
        }
    }
}

static void skip_ws(struct json_reader *r)
{
    while (r->p < r->end && strchr(" \t\r\n", *r->p) && *r->p)
        advance(r, 1);
}

static int peek(const struct json_reader *r)
{
    return r->p < r->end ? (unsigned char)*r->p : -1;
}

static enum mesh_err expect(struct json_reader *r, char c)
{
    skip_ws(r);
    if (peek(r) != (unsigned char)c)
        return fail_at(r, r->line, r->col, "expected '%c'", c);
    advance(r, 1);
    return MESH_OK;
}

static struct mesh_node *new_scalar(const struct json_reader *r, enum mesh_scalar_kind kind,
                                    const char *text)
{
    struct mesh_node *n = mesh_node_scalar(kind, text);
    n->line = r->line;
    n->col = r->col;
    return n;
}

static enum mesh_err count_node(struct json_reader *r)
{
    if (++r->nodes > MESH_NODE_MAX_NODES)
        return fail_at(r, r->line, r->col, "more than %d nodes; refusing the input",
                       MESH_NODE_MAX_NODES);
    return MESH_OK;
}

static unsigned hex4(const char *s)
{
    char buf[5] = {s[0], s[1], s[2], s[3], '\0'};
    return (unsigned)strtoul(buf, NULL, 16);
}

static void put_utf8(struct mesh_strbuf *sb, unsigned cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18);
        b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    mesh_strbuf_append(sb, b, n);
}

/* Decodes \uXXXX (joining a surrogate pair, which Jansson has checked) at r->p, past the 'u'. */
static void read_unicode_escape(struct json_reader *r, struct mesh_strbuf *sb)
{
    if (r->end - r->p < 4)
        return;
    unsigned cp = hex4(r->p);
    advance(r, 4);
    if (cp >= 0xD800 && cp < 0xDC00 && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u') {
        unsigned lo = hex4(r->p + 2);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        advance(r, 6);
    }
    put_utf8(sb, cp);
}

static void read_escape(struct json_reader *r, struct mesh_strbuf *sb)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    int c = peek(r);
    advance(r, 1);
    if (c == 'u') {
        read_unicode_escape(r, sb);
        return;
    }
    const char *at = c > 0 ? strchr(from, c) : NULL;
    if (at)
        mesh_strbuf_append(sb, &to[at - from], 1);
}

/* r->p is at the opening quote; returns the unescaped text (malloc'ed). */
static char *read_string(struct json_reader *r)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    advance(r, 1);
    while (peek(r) != '"' && peek(r) != -1) {
        if (peek(r) == '\\') {
            advance(r, 1);
            read_escape(r, &sb);
            continue;
        }
        const char *run = r->p;
        while (r->p < r->end && *r->p != '"' && *r->p != '\\')
            advance(r, 1);
        mesh_strbuf_append(&sb, run, (size_t)(r->p - run));
    }
    advance(r, 1);
    return mesh_strbuf_take(&sb);
}

/* A string scalar positioned at its opening quote. */
static struct mesh_node *read_string_node(struct json_reader *r)
{
    struct mesh_node *n = new_scalar(r, MESH_SCALAR_STR, "");
    free(n->text);
    n->text = read_string(r);
    return n;
}

static size_t span_of(const char *s, size_t len, const char *set)
{
    size_t n = 0;
    while (n < len && s[n] && strchr(set, s[n]))
        n++;
    return n;
}

static enum mesh_err read_number(struct json_reader *r, struct mesh_node **out)
{
    /* Exactly the JSON number grammar: Jansson ends a top-level number where it does ("1e5e" is
     * the number 1e5, then a bad token), so this scanner must not read further. */
    size_t n = 0, avail = (size_t)(r->end - r->p);
    n += n < avail && r->p[n] == '-';
    n += span_of(r->p + n, avail - n, "0123456789");
    if (n < avail && r->p[n] == '.')
        n += 1 + span_of(r->p + n + 1, avail - n - 1, "0123456789");
    if (n < avail && (r->p[n] == 'e' || r->p[n] == 'E')) {
        n++;
        n += n < avail && (r->p[n] == '+' || r->p[n] == '-');
        n += span_of(r->p + n, avail - n, "0123456789");
    }
    if (n == 0)
        return fail_at(r, r->line, r->col, "expected a JSON value");
    char *text = xstrndup(r->p, n);
    bool real = strpbrk(text, ".eE") != NULL;
    *out = new_scalar(r, real ? MESH_SCALAR_FLOAT : MESH_SCALAR_INT, text);
    free(text);
    advance(r, n);
    return MESH_OK;
}

static enum mesh_err read_literal(struct json_reader *r, struct mesh_node **out)
{
    static const struct {
        const char *word;
        enum mesh_scalar_kind kind;
    } words[] = {
        {"true", MESH_SCALAR_BOOL}, {"false", MESH_SCALAR_BOOL}, {"null", MESH_SCALAR_NULL}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t n = strlen(words[i].word);
        if ((size_t)(r->end - r->p) >= n && memcmp(r->p, words[i].word, n) == 0) {
            *out = new_scalar(r, words[i].kind, words[i].word);
            advance(r, n);
            return MESH_OK;
        }
    }
    return read_number(r, out);
}

static enum mesh_err check_depth(struct json_reader *r, unsigned depth)
{
    if (depth > MESH_NODE_MAX_DEPTH)
        return fail_at(r, r->line, r->col, "nesting deeper than %d levels", MESH_NODE_MAX_DEPTH);
    return MESH_OK;
}

/* r->p is at '[' or '{'; reads up to the matching close. */
static enum mesh_err read_items(struct json_reader *r, unsigned depth, struct mesh_node *coll)
{
    struct mesh_node *key = NULL, *value = NULL;
    char close = coll->type == MESH_NODE_SEQ ? ']' : '}';
    enum mesh_err err = MESH_OK;
    advance(r, 1);
    skip_ws(r);
    for (bool first = true; peek(r) != close; first = false) {
        if ((!first || peek(r) == -1) && (err = expect(r, ',')) != MESH_OK)
            goto out;
        skip_ws(r);
        if (coll->type == MESH_NODE_MAP) {
            if ((err = count_node(r)) != MESH_OK)
                goto out;
            key = read_string_node(r);
            if ((err = expect(r, ':')) != MESH_OK)
                goto out;
            skip_ws(r);
        }
        if ((err = read_value(r, depth, &value)) != MESH_OK)
            goto out;
        if (coll->type == MESH_NODE_SEQ) {
            mesh_node_seq_append(coll, value);
        } else {
            xgrow((void **)&coll->pairs, &coll->cap, coll->len + 1, sizeof(*coll->pairs));
            coll->pairs[coll->len++] = (struct mesh_node_pair){key, value};
        }
        key = value = NULL;
        skip_ws(r);
    }
    advance(r, 1);
out:
    mesh_node_free(key);
    mesh_node_free(value);
    return err;
}

static enum mesh_err read_collection(struct json_reader *r, unsigned depth, struct mesh_node **out)
{
    struct mesh_node *coll = NULL;
    enum mesh_err err = check_depth(r, depth + 1);
    if (err != MESH_OK)
        return err;
    coll = peek(r) == '[' ? mesh_node_seq() : mesh_node_map();
    coll->line = r->line;
    coll->col = r->col;
    err = read_items(r, depth + 1, coll);
    if (err != MESH_OK)
        goto out;
    size_t dup = mesh_node_map_find_duplicate(coll);
    if (dup < coll->len) {
        const struct mesh_node *k = coll->pairs[dup].key;
        err = fail_at(r, k->line, k->col, "duplicate key \"%s\"", k->text);
        goto out;
    }
    *out = coll;
    coll = NULL;
out:
    mesh_node_free(coll);
    return err;
}

static enum mesh_err read_value(struct json_reader *r, unsigned depth, struct mesh_node **out)
{
    enum mesh_err err = count_node(r);
    if (err != MESH_OK)
        return err;
    switch (peek(r)) {
    case '{':
    case '[':
        return read_collection(r, depth, out);
    case '"':
        *out = read_string_node(r);
        return MESH_OK;
    default:
        return read_literal(r, out);
    }
}

/* Jansson counts lines and columns from the start of the buffer it was given, which is where
 * this top-level value starts, not where the source starts. */
static enum mesh_err fail_jansson(struct json_reader *r, const json_error_t *je)
{
    unsigned line = r->line, col = r->col;
    if (je->line > 1) {
        line += (unsigned)je->line - 1;
        col = (unsigned)(je->column > 0 ? je->column : 1);
    } else if (je->column > 1) {
        col += (unsigned)je->column - 1;
    }
    /* Jansson's word for this one names its own flag; say it as the YAML reader does. */
    if (strncmp(je->text, "\\u0000 is not allowed", strlen("\\u0000 is not allowed")) == 0)
        return fail_at(r, line, col, "strings must not contain NUL characters (\\u0000)");
    return fail_at(r, line, col, "%s", je->text);
}

static void docs_append(struct json_reader *r, struct mesh_node_docs *docs, struct mesh_node *root)
{
    xgrow((void **)&docs->items, &r->docs_cap, docs->len + 1, sizeof(*docs->items));
    docs->items[docs->len++] = (struct mesh_node_doc){root, root->line};
}

/* A top-level array is a list of documents; any other value is one document. */
static void add_documents(struct json_reader *r, struct mesh_node_docs *docs,
                          struct mesh_node *value)
{
    if (value->type != MESH_NODE_SEQ) {
        docs_append(r, docs, value);
        return;
    }
    for (size_t i = 0; i < value->len; i++)
        docs_append(r, docs, value->items[i]);
    value->len = 0;
    mesh_node_free(value);
}

static enum mesh_err read_top_level(struct json_reader *r, struct mesh_node_docs *docs)
{
    const size_t flags = JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY;
    struct mesh_node *value = NULL;
    enum mesh_err err = MESH_OK;
    for (skip_ws(r); r->p < r->end; skip_ws(r)) {
        json_error_t je;
        json_t *checked = json_loadb(r->p, (size_t)(r->end - r->p), flags, &je);
        if (!checked)
            return fail_jansson(r, &je);
        json_decref(checked);
        err = read_value(r, 0, &value);
        if (err != MESH_OK)
            return err;
        add_documents(r, docs, value);
        value = NULL;
    }
    return MESH_OK;
}

/* Hands every document of from over to the end of to; from is left empty. */
static void docs_move(struct mesh_node_docs *to, struct mesh_node_docs *from)
{
    if (from->len > 0) {
        to->items = xrealloc(to->items, (to->len + from->len) * sizeof(*to->items));
        memcpy(to->items + to->len, from->items, from->len * sizeof(*from->items));
        to->len += from->len;
    }
    free(from->items);
    *from = (struct mesh_node_docs){0};
}

enum mesh_err mesh_json_read(const char *text, size_t len, const char *file,
                             struct mesh_node_docs *docs, struct mesh_diags *diags)
{
    struct json_reader r = {
        .p = text, .end = text + len, .line = 1, .col = 1, .file = file, .diags = diags};
    struct mesh_node_docs got = {0};
    enum mesh_err err = read_top_level(&r, &got);
    if (err != MESH_OK)
        goto out;
    docs_move(docs, &got);
out:
    mesh_node_docs_free(&got);
    return err;
}
