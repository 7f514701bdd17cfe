/* SPDX-License-Identifier: Apache-2.0 */
/* The generic document tree: builders, lookup, equality and YAML 1.2 core scalar resolution. */
#include "node.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

static struct mesh_node *node_new(enum mesh_node_type type)
{
    struct mesh_node *n = xcalloc(1, sizeof(*n));
    n->type = type;
    return n;
}

struct mesh_node *mesh_node_scalar(enum mesh_scalar_kind kind, const char *text)
{
    struct mesh_node *n = node_new(MESH_NODE_SCALAR);
    n->scalar_kind = kind;
    n->text = xstrdup(text ? text : "");
    return n;
}

struct mesh_node *mesh_node_str(const char *text)
{
    return mesh_node_scalar(MESH_SCALAR_STR, text);
}

struct mesh_node *mesh_node_int(long long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", v);
    return mesh_node_scalar(MESH_SCALAR_INT, buf);
}

/* YAML spells the special values .inf/.nan; every other double gets the fewest significant digits
 * that read back to the same value, and a ".0" when printf made it look like an integer, so that
 * the text still resolves as a float. */
static void format_double(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, ".nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, "%s", v > 0 ? ".inf" : "-.inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!strpbrk(buf, ".eE"))
        strncat(buf, ".0", size - strlen(buf) - 1);
}

struct mesh_node *mesh_node_float(double v)
{
    char buf[40];
    format_double(v, buf, sizeof(buf));
    return mesh_node_scalar(MESH_SCALAR_FLOAT, buf);
}

struct mesh_node *mesh_node_bool(bool v)
{
    return mesh_node_scalar(MESH_SCALAR_BOOL, v ? "true" : "false");
}

struct mesh_node *mesh_node_seq(void)
{
    return node_new(MESH_NODE_SEQ);
}

struct mesh_node *mesh_node_map(void)
{
    return node_new(MESH_NODE_MAP);
}

void mesh_node_seq_append(struct mesh_node *seq, struct mesh_node *item)
{
    xgrow((void **)&seq->items, &seq->cap, seq->len + 1, sizeof(*seq->items));
    seq->items[seq->len++] = item;
}

void mesh_node_map_set(struct mesh_node *map, const char *key, struct mesh_node *value)
{
    xgrow((void **)&map->pairs, &map->cap, map->len + 1, sizeof(*map->pairs));
    map->pairs[map->len].key = mesh_node_str(key);
    map->pairs[map->len].value = value;
    map->len++;
}

void mesh_node_free(struct mesh_node *node)
{
    if (!node)
        return;
    if (node->type == MESH_NODE_SEQ) {
        for (size_t i = 0; i < node->len; i++)
            mesh_node_free(node->items[i]);
    } else if (node->type == MESH_NODE_MAP) {
        for (size_t i = 0; i < node->len; i++) {
            mesh_node_free(node->pairs[i].key);
            mesh_node_free(node->pairs[i].value);
        }
    }
    free(node->items);
    free(node->pairs);
    free(node->text);
    free(node);
}

struct mesh_node *mesh_node_map_get(const struct mesh_node *map, const char *key)
{
    if (!map || map->type != MESH_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->len; i++) {
        if (strcmp(map->pairs[i].key->text, key) == 0)
            return map->pairs[i].value;
    }
    return NULL;
}

bool mesh_node_equal(const struct mesh_node *a, const struct mesh_node *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type || a->len != b->len)
        return false;
    switch (a->type) {
    case MESH_NODE_SCALAR:
        return a->scalar_kind == b->scalar_kind && strcmp(a->text, b->text) == 0;
    case MESH_NODE_SEQ:
        for (size_t i = 0; i < a->len; i++) {
            if (!mesh_node_equal(a->items[i], b->items[i]))
                return false;
        }
        return true;
    case MESH_NODE_MAP:
        for (size_t i = 0; i < a->len; i++) {
            if (!mesh_node_equal(a->pairs[i].key, b->pairs[i].key) ||
                !mesh_node_equal(a->pairs[i].value, b->pairs[i].value))
                return false;
        }
        return true;
    }
    return false;
}

struct key_ref {
    const char *text;
    size_t index;
};

static int cmp_key_ref(const void *x, const void *y)
{
    const struct key_ref *a = x, *b = y;
    int c = strcmp(a->text, b->text);
    if (c != 0)
        return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Sorting the keys keeps a map of 100000 keys from costing 10^10 comparisons. After the sort,
 * every key equal to its predecessor is a repeat; the smallest such index is the earliest repeat
 * in document order. */
size_t mesh_node_map_find_duplicate(const struct mesh_node *map)
{
    if (!map)
        return 0;
    if (map->type != MESH_NODE_MAP || map->len < 2)
        return map->len;
    struct key_ref *refs = xmalloc(map->len * sizeof(*refs));
    for (size_t i = 0; i < map->len; i++)
        refs[i] = (struct key_ref){map->pairs[i].key->text, i};
    qsort(refs, map->len, sizeof(*refs), cmp_key_ref);
    size_t found = map->len;
    for (size_t i = 1; i < map->len; i++) {
        if (strcmp(refs[i].text, refs[i - 1].text) == 0 && refs[i].index < found)
            found = refs[i].index;
    }
    free(refs);
    return found;
}

void mesh_node_docs_free(struct mesh_node_docs *docs)
{
    if (!docs)
        return;
    for (size_t i = 0; i < docs->len; i++)
        mesh_node_free(docs->items[i].root);
    free(docs->items);
    docs->items = NULL;
    docs->len = 0;
}

static bool is_one_of(const char *text, const char *const *words)
{
    for (; *words; words++) {
        if (strcmp(text, *words) == 0)
            return true;
    }
    return false;
}

static size_t span_digits(const char *s, const char *digits)
{
    return strspn(s, digits);
}

/* [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+ */
static bool is_core_int(const char *s)
{
    if (s[0] == '0' && s[1] == 'o')
        return s[2] && !s[2 + span_digits(s + 2, "01234567")];
    if (s[0] == '0' && s[1] == 'x')
        return s[2] && !s[2 + span_digits(s + 2, "0123456789abcdefABCDEF")];
    if (*s == '-' || *s == '+')
        s++;
    return *s && !s[span_digits(s, "0123456789")];
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? | [-+]?\.inf | \.nan (three spellings) */
static bool is_core_float(const char *s)
{
    static const char *const specials[] = {".nan", ".NaN", ".NAN", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", NULL};
    if (is_one_of(s, specials))
        return true;
    if (*s == '-' || *s == '+')
        s++;
    if (is_one_of(s, infs))
        return true;
    size_t whole = span_digits(s, "0123456789");
    s += whole;
    size_t frac = 0;
    if (*s == '.') {
        s++;
        frac = span_digits(s, "0123456789");
        s += frac;
    } else if (whole == 0) {
        return false;
    }
    if (whole == 0 && frac == 0)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        size_t exp = span_digits(s, "0123456789");
        if (exp == 0)
            return false;
        s += exp;
    }
    return *s == '\0';
}

enum mesh_scalar_kind mesh_node_resolve_plain(const char *text)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE", NULL};
    if (is_one_of(text, nulls))
        return MESH_SCALAR_NULL;
    if (is_one_of(text, bools))
        return MESH_SCALAR_BOOL;
    if (is_core_int(text))
        return MESH_SCALAR_INT;
    if (is_core_float(text))
        return MESH_SCALAR_FLOAT;
    return MESH_SCALAR_STR;
}
