/* SPDX-License-Identifier: Apache-2.0 */
/* Reads YAML streams into node trees with libyaml's event API, keeping every node's position and
 * refusing input over the depth and node limits (aliases are expanded and counted). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/xalloc.h"
#include "node.h"

#define CORE_TAG_PREFIX "tag:yaml.org,2002:"

/* An anchored node of the current document; node is borrowed from the tree being built. */
struct anchor {
    char *name;
    const struct mesh_node *node;
    unsigned height; /* collection levels from node down, 0 for a scalar */
};

struct yaml_reader {
    yaml_parser_t parser;
    const char *text;
    size_t len;
    const char *file;
    struct mesh_diags *diags;
    size_t nodes;    /* made so far in this stream, alias copies included */
    size_t docs_cap; /* of the documents read so far */
    struct anchor *anchors;
    size_t n_anchors;
    size_t cap_anchors;
};

static enum mesh_err read_node(struct yaml_reader *r, const yaml_event_t *ev, unsigned depth,
                               struct mesh_node **out, unsigned *height);

static enum mesh_err fail_at_pos(struct yaml_reader *r, unsigned line, unsigned col,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum mesh_err fail_at_pos(struct yaml_reader *r, unsigned line, unsigned col,
                                 const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mesh_diags_add(r->diags, r->file, line, col, "", "%s", msg);
    return MESH_E_INVALID;
}

#define fail_at(r, mark, ...)                                                                      \
    fail_at_pos((r), (unsigned)(mark).line + 1, (unsigned)(mark).column + 1, __VA_ARGS__)

/* Reader errors (bad UTF-8, control characters) carry a byte offset instead of a mark. */
static void offset_to_pos(const char *text, size_t len, size_t offset, unsigned *line,
                          unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

static enum mesh_err fail_parser(struct yaml_reader *r)
{
    const yaml_parser_t *p = &r->parser;
    const char *problem = p->problem ? p->problem : "cannot parse the input";
    if (p->error == YAML_MEMORY_ERROR) {
        mesh_diags_add(r->diags, r->file, 0, 0, "", "out of memory while parsing");
        return MESH_E_NOMEM;
    }
    if (p->error == YAML_READER_ERROR) {
        unsigned line, col;
        offset_to_pos(r->text, r->len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            return fail_at_pos(r, line, col, "%s (#x%02X)", problem, (unsigned)p->problem_value);
        return fail_at_pos(r, line, col, "%s", problem);
    }
    if (p->context)
        return fail_at(r, p->problem_mark, "%s %s", problem, p->context);
    return fail_at(r, p->problem_mark, "%s", problem);
}

static enum mesh_err next_event(struct yaml_reader *r, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&r->parser, ev))
        return fail_parser(r);
    return MESH_OK;
}

static enum mesh_err count_node(struct yaml_reader *r, yaml_mark_t mark)
{
    if (++r->nodes > MESH_NODE_MAX_NODES)
        return fail_at(r, mark, "more than %d nodes (aliases expanded); refusing the input",
                       MESH_NODE_MAX_NODES);
    return MESH_OK;
}

static enum mesh_err check_depth(struct yaml_reader *r, yaml_mark_t mark, unsigned depth)
{
    if (depth > MESH_NODE_MAX_DEPTH)
        return fail_at(r, mark, "nesting deeper than %d levels", MESH_NODE_MAX_DEPTH);
    return MESH_OK;
}

static void set_pos(struct mesh_node *node, yaml_mark_t mark)
{
    node->line = (unsigned)mark.line + 1;
    node->col = (unsigned)mark.column + 1;
}

static void add_anchor(struct yaml_reader *r, const yaml_char_t *name, const struct mesh_node *node,
                       unsigned height)
{
    if (!name)
        return;
    xgrow((void **)&r->anchors, &r->cap_anchors, r->n_anchors + 1, sizeof(*r->anchors));
    r->anchors[r->n_anchors++] = (struct anchor){xstrdup((const char *)name), node, height};
}

/* Anchors are scoped to one document, and a later anchor of the same name wins. */
static const struct anchor *find_anchor(const struct yaml_reader *r, const char *name)
{
    for (size_t i = r->n_anchors; i > 0; i--) {
        if (strcmp(r->anchors[i - 1].name, name) == 0)
            return &r->anchors[i - 1];
    }
    return NULL;
}

static void clear_anchors(struct yaml_reader *r)
{
    for (size_t i = 0; i < r->n_anchors; i++)
        free(r->anchors[i].name);
    r->n_anchors = 0;
}

/* A standard tag is honoured when the text fits it (!!str always does); other tags are ignored,
 * so the scalar resolves as if untagged. */
static enum mesh_err scalar_kind(struct yaml_reader *r, const yaml_event_t *ev,
                                 enum mesh_scalar_kind *kind)
{
    static const struct {
        const char *name;
        enum mesh_scalar_kind kind;
    } core[] = {{"int", MESH_SCALAR_INT},
                {"float", MESH_SCALAR_FLOAT},
                {"bool", MESH_SCALAR_BOOL},
                {"null", MESH_SCALAR_NULL}};
    const char *tag = (const char *)ev->data.scalar.tag;
    const char *text = (const char *)ev->data.scalar.value;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    *kind = plain ? mesh_node_resolve_plain(text) : MESH_SCALAR_STR;
    if (!tag)
        return MESH_OK;
    if (strcmp(tag, "!") == 0 || strcmp(tag, CORE_TAG_PREFIX "str") == 0) {
        *kind = MESH_SCALAR_STR;
        return MESH_OK;
    }
    if (strncmp(tag, CORE_TAG_PREFIX, strlen(CORE_TAG_PREFIX)) != 0)
        return MESH_OK;
    const char *suffix = tag + strlen(CORE_TAG_PREFIX);
    for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++) {
        if (strcmp(suffix, core[i].name) != 0)
            continue;
        if (mesh_node_resolve_plain(text) != core[i].kind)
            return fail_at(r, ev->start_mark, "value \"%s\" does not match tag !!%s", text,
                           core[i].name);
        *kind = core[i].kind;
    }
    return MESH_OK;
}

static enum mesh_err read_scalar(struct yaml_reader *r, const yaml_event_t *ev,
                                 struct mesh_node **out)
{
    enum mesh_scalar_kind kind;
    enum mesh_err err = count_node(r, ev->start_mark);
    if (err != MESH_OK)
        return err;
    /* Node texts are C strings: a "\0" escape cannot be kept, so it is refused, not cut. */
    if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
        return fail_at(r, ev->start_mark, "strings must not contain NUL characters");
    err = scalar_kind(r, ev, &kind);
    if (err != MESH_OK)
        return err;
    *out = mesh_node_scalar(kind, (const char *)ev->data.scalar.value);
    set_pos(*out, ev->start_mark);
    add_anchor(r, ev->data.scalar.anchor, *out, 0);
    return MESH_OK;
}

static enum mesh_err copy_node(struct yaml_reader *r, const struct mesh_node *src, yaml_mark_t mark,
                               struct mesh_node **out);

static enum mesh_err copy_children(struct yaml_reader *r, const struct mesh_node *src,
                                   yaml_mark_t mark, struct mesh_node *copy)
{
    struct mesh_node *key = NULL, *value = NULL;
    enum mesh_err err = MESH_OK;
    for (size_t i = 0; i < src->len; i++) {
        if (src->type == MESH_NODE_SEQ) {
            err = copy_node(r, src->items[i], mark, &value);
            if (err != MESH_OK)
                goto out;
            mesh_node_seq_append(copy, value);
            value = NULL;
            continue;
        }
        err = copy_node(r, src->pairs[i].key, mark, &key);
        if (err == MESH_OK)
            err = copy_node(r, src->pairs[i].value, mark, &value);
        if (err != MESH_OK)
            goto out;
        xgrow((void **)&copy->pairs, &copy->cap, copy->len + 1, sizeof(*copy->pairs));
        copy->pairs[copy->len++] = (struct mesh_node_pair){key, value};
        key = value = NULL;
    }
out:
    mesh_node_free(key);
    mesh_node_free(value);
    return err;
}

static enum mesh_err copy_node(struct yaml_reader *r, const struct mesh_node *src, yaml_mark_t mark,
                               struct mesh_node **out)
{
    struct mesh_node *copy = NULL;
    enum mesh_err err = count_node(r, mark);
    if (err != MESH_OK)
        goto out;
    if (src->type == MESH_NODE_SCALAR)
        copy = mesh_node_scalar(src->scalar_kind, src->text);
    else
        copy = src->type == MESH_NODE_SEQ ? mesh_node_seq() : mesh_node_map();
    copy->line = src->line;
    copy->col = src->col;
    err = copy_children(r, src, mark, copy);
    if (err != MESH_OK)
        goto out;
    *out = copy;
    copy = NULL;
out:
    mesh_node_free(copy);
    return err;
}

/* Aliases are expanded into copies so that consumers see a plain tree; the copies count against
 * the node limit, which is what stops a "billion laughs" input after MESH_NODE_MAX_NODES. */
static enum mesh_err read_alias(struct yaml_reader *r, const yaml_event_t *ev, unsigned depth,
                                struct mesh_node **out, unsigned *height)
{
    const char *name = (const char *)ev->data.alias.anchor;
    const struct anchor *a = find_anchor(r, name);
    if (!a)
        return fail_at(r, ev->start_mark, "undefined alias \"%s\"", name);
    enum mesh_err err = check_depth(r, ev->start_mark, depth + a->height);
    if (err != MESH_OK)
        return err;
    err = copy_node(r, a->node, ev->start_mark, out);
    if (err != MESH_OK)
        return err;
    set_pos(*out, ev->start_mark);
    *height = a->height;
    return MESH_OK;
}

static enum mesh_err read_seq(struct yaml_reader *r, const yaml_event_t *ev, unsigned depth,
                              struct mesh_node **out, unsigned *height)
{
    struct mesh_node *seq = NULL, *item = NULL;
    yaml_event_t child;
    unsigned max_height = 0, h = 0;
    enum mesh_err err = check_depth(r, ev->start_mark, depth + 1);
    if (err == MESH_OK)
        err = count_node(r, ev->start_mark);
    if (err != MESH_OK)
        return err;
    seq = mesh_node_seq();
    set_pos(seq, ev->start_mark);
    for (;;) {
        err = next_event(r, &child);
        if (err == MESH_OK && child.type != YAML_SEQUENCE_END_EVENT)
            err = read_node(r, &child, depth + 1, &item, &h);
        bool end = child.type == YAML_SEQUENCE_END_EVENT;
        yaml_event_delete(&child);
        if (err != MESH_OK)
            goto out;
        if (end)
            break;
        mesh_node_seq_append(seq, item);
        item = NULL;
        max_height = h > max_height ? h : max_height;
    }
    *height = max_height + 1;
    add_anchor(r, ev->data.sequence_start.anchor, seq, *height);
    *out = seq;
    seq = NULL;
out:
    mesh_node_free(seq);
    return err;
}

static enum mesh_err read_key(struct yaml_reader *r, const yaml_event_t *ev, unsigned depth,
                              struct mesh_node **out)
{
    unsigned h;
    if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT)
        return fail_at(r, ev->start_mark, "mapping keys must be scalars");
    enum mesh_err err = read_node(r, ev, depth, out, &h);
    if (err == MESH_OK && (*out)->type != MESH_NODE_SCALAR) {
        mesh_node_free(*out);
        *out = NULL;
        return fail_at(r, ev->start_mark, "mapping keys must be scalars");
    }
    return err;
}

/* Reads one key/value pair whose key event is kev; appends it to map. */
static enum mesh_err read_pair(struct yaml_reader *r, const yaml_event_t *kev, unsigned depth,
                               struct mesh_node *map, unsigned *height)
{
    struct mesh_node *key = NULL, *value = NULL;
    yaml_event_t vev;
    enum mesh_err err = read_key(r, kev, depth, &key);
    if (err != MESH_OK)
        goto out;
    err = next_event(r, &vev);
    if (err == MESH_OK)
        err = read_node(r, &vev, depth, &value, height);
    yaml_event_delete(&vev);
    if (err != MESH_OK)
        goto out;
    xgrow((void **)&map->pairs, &map->cap, map->len + 1, sizeof(*map->pairs));
    map->pairs[map->len++] = (struct mesh_node_pair){key, value};
    key = NULL;
out:
    mesh_node_free(key);
    return err;
}

static enum mesh_err read_map(struct yaml_reader *r, const yaml_event_t *ev, unsigned depth,
                              struct mesh_node **out, unsigned *height)
{
    struct mesh_node *map = NULL;
    yaml_event_t kev;
    unsigned max_height = 0, h = 0;
    enum mesh_err err = check_depth(r, ev->start_mark, depth + 1);
    if (err == MESH_OK)
        err = count_node(r, ev->start_mark);
    if (err != MESH_OK)
        return err;
    map = mesh_node_map();
    set_pos(map, ev->start_mark);
    for (;;) {
        err = next_event(r, &kev);
        if (err == MESH_OK && kev.type != YAML_MAPPING_END_EVENT)
            err = read_pair(r, &kev, depth + 1, map, &h);
        bool end = kev.type == YAML_MAPPING_END_EVENT;
        yaml_event_delete(&kev);
        if (err != MESH_OK)
            goto out;
        if (end)
            break;
        max_height = h > max_height ? h : max_height;
    }
    size_t dup = mesh_node_map_find_duplicate(map);
    if (dup < map->len) {
        const struct mesh_node *k = map->pairs[dup].key;
        err = fail_at_pos(r, k->line, k->col, "duplicate key \"%s\"", k->text);
        goto out;
    }
    *height = max_height + 1;
    add_anchor(r, ev->data.mapping_start.anchor, map, *height);
    *out = map;
    map = NULL;
out:
    mesh_node_free(map);
    return err;
}

static enum mesh_err read_node(struct yaml_reader *r, const yaml_event_t *ev, unsigned depth,
                               struct mesh_node **out, unsigned *height)
{
    *height = 0;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return read_scalar(r, ev, out);
    case YAML_ALIAS_EVENT:
        return read_alias(r, ev, depth, out, height);
    case YAML_SEQUENCE_START_EVENT:
        return read_seq(r, ev, depth, out, height);
    case YAML_MAPPING_START_EVENT:
        return read_map(r, ev, depth, out, height);
    default:
        return fail_at(r, ev->start_mark, "unexpected YAML event %d", (int)ev->type);
    }
}

/* libyaml reports an empty document as an empty plain scalar; the tree says "no root". A root
 * that is an empty null in any spelling ("--- !!null") gets the same answer, because an empty
 * document body is the only way the writer can print it. */
static void drop_empty_root(struct mesh_node **root)
{
    struct mesh_node *r = *root;
    if (r && r->type == MESH_NODE_SCALAR && r->scalar_kind == MESH_SCALAR_NULL && !r->text[0]) {
        mesh_node_free(r);
        *root = NULL;
    }
}

/* Reads the document whose DOCUMENT-START event has been consumed, through its DOCUMENT-END. */
static enum mesh_err read_document(struct yaml_reader *r, struct mesh_node **root)
{
    yaml_event_t ev;
    unsigned h;
    *root = NULL;
    enum mesh_err err = next_event(r, &ev);
    if (err == MESH_OK)
        err = read_node(r, &ev, 0, root, &h);
    yaml_event_delete(&ev);
    if (err == MESH_OK)
        drop_empty_root(root);
    if (err == MESH_OK)
        err = next_event(r, &ev); /* DOCUMENT-END */
    yaml_event_delete(&ev);
    clear_anchors(r);
    if (err != MESH_OK) {
        mesh_node_free(*root);
        *root = NULL;
    }
    return err;
}

static void docs_append(struct yaml_reader *r, struct mesh_node_docs *docs, struct mesh_node *root,
                        unsigned line)
{
    xgrow((void **)&docs->items, &r->docs_cap, docs->len + 1, sizeof(*docs->items));
    docs->items[docs->len++] = (struct mesh_node_doc){root, line};
}

static enum mesh_err read_stream(struct yaml_reader *r, struct mesh_node_docs *docs)
{
    yaml_event_t ev;
    struct mesh_node *root = NULL;
    enum mesh_err err = next_event(r, &ev); /* STREAM-START */
    yaml_event_delete(&ev);
    while (err == MESH_OK) {
        err = next_event(r, &ev);
        bool end = ev.type == YAML_STREAM_END_EVENT;
        unsigned line = (unsigned)ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (err != MESH_OK || end)
            break;
        err = read_document(r, &root);
        if (err == MESH_OK)
            docs_append(r, docs, root, line);
        root = NULL;
    }
    return err;
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

enum mesh_err mesh_yaml_read(const char *text, size_t len, const char *file,
                             struct mesh_node_docs *docs, struct mesh_diags *diags)
{
    struct yaml_reader r = {.text = text, .len = len, .file = file, .diags = diags};
    struct mesh_node_docs got = {0};
    enum mesh_err err = MESH_OK;
    if (!yaml_parser_initialize(&r.parser))
        return MESH_E_NOMEM;
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
    err = read_stream(&r, &got);
    if (err != MESH_OK)
        goto out;
    docs_move(docs, &got);
out:
    mesh_node_docs_free(&got);
    clear_anchors(&r);
    free(r.anchors);
    yaml_parser_delete(&r.parser);
    return err;
}
