/* SPDX-License-Identifier: Apache-2.0 */
/* Prints a node tree as JSON in Jansson's JSON_INDENT(2) layout, keeping each number's text.
 * The layout is ours and the strings are Jansson's: json_dumps would print every real with 17
 * digits (1.14 as 1.1399999999999999), which breaks text-preserving round trips. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "node.h"

#define INDENT_STEP 2

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? ; with !real only the integer part. */
static bool is_json_number(const char *s, bool real)
{
    size_t n;
    if (*s == '-')
        s++;
    n = strspn(s, "0123456789");
    if (n == 0 || (s[0] == '0' && n > 1))
        return false;
    s += n;
    if (!real)
        return *s == '\0';
    if (*s == '.') {
        n = strspn(++s, "0123456789");
        if (n == 0)
            return false;
        s += n;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        n = strspn(s, "0123456789");
        if (n == 0)
            return false;
        s += n;
    }
    return *s == '\0';
}

/* YAML spellings (+1, 007, 0x1F, 0o17) become plain decimal; the JSON spelling is kept as is. */
static enum mesh_err put_int(struct mesh_strbuf *sb, const char *text)
{
    const char *digits = text;
    int base = 10;
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'o')) {
        base = text[1] == 'x' ? 16 : 8;
        digits = text + 2;
    }
    char *end;
    errno = 0;
    json_int_t v = strtoll(digits, &end, base);
    if (errno != 0 || *end != '\0' || end == digits)
        return MESH_E_INVALID; /* out of json_int_t range: refused rather than rounded */
    if (is_json_number(text, false))
        return mesh_strbuf_puts(sb, text);
    return mesh_strbuf_printf(sb, "%" JSON_INTEGER_FORMAT, v);
}

/* JSON has no .inf or .nan; YAML-only spellings (.5, 1., +2.0) get the shortest JSON text. */
static enum mesh_err put_float(struct mesh_strbuf *sb, const char *text)
{
    char *end;
    double v = strtod(text, &end);
    if (*end != '\0' || end == text || !isfinite(v))
        return MESH_E_INVALID;
    if (is_json_number(text, true) && strpbrk(text, ".eE"))
        return mesh_strbuf_puts(sb, text);
    struct mesh_node *shortest = mesh_node_float(v);
    enum mesh_err err = mesh_strbuf_puts(sb, shortest->text);
    mesh_node_free(shortest);
    return err;
}

/* Jansson escapes the string and refuses text that is not UTF-8. */
static enum mesh_err put_string(struct mesh_strbuf *sb, const char *text)
{
    json_t *js = json_string(text);
    char *encoded = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
    enum mesh_err err = encoded ? mesh_strbuf_puts(sb, encoded) : MESH_E_INVALID;
    free(encoded);
    json_decref(js);
    return err;
}

static enum mesh_err put_scalar(struct mesh_strbuf *sb, const struct mesh_node *node)
{
    if (node->scalar_kind == MESH_SCALAR_STR)
        return put_string(sb, node->text);
    if (mesh_node_resolve_plain(node->text) != node->scalar_kind)
        return MESH_E_INVALID;
    switch (node->scalar_kind) {
    case MESH_SCALAR_INT:
        return put_int(sb, node->text);
    case MESH_SCALAR_FLOAT:
        return put_float(sb, node->text);
    case MESH_SCALAR_BOOL:
        return mesh_strbuf_puts(sb, strchr("tT", node->text[0]) ? "true" : "false");
    default:
        return mesh_strbuf_puts(sb, "null");
    }
}

static void put_indent(struct mesh_strbuf *sb, unsigned indent)
{
    for (unsigned i = 0; i < indent; i++)
        mesh_strbuf_append(sb, " ", 1);
}

static enum mesh_err put_value(struct mesh_strbuf *sb, const struct mesh_node *node,
                               unsigned indent)
{
    if (node->type == MESH_NODE_SCALAR)
        return put_scalar(sb, node);
    bool seq = node->type == MESH_NODE_SEQ;
    if (node->len == 0)
        return mesh_strbuf_puts(sb, seq ? "[]" : "{}");
    enum mesh_err err = MESH_OK;
    mesh_strbuf_puts(sb, seq ? "[\n" : "{\n");
    for (size_t i = 0; i < node->len && err == MESH_OK; i++) {
        put_indent(sb, indent + INDENT_STEP);
        if (!seq) {
            err = put_string(sb, node->pairs[i].key->text);
            mesh_strbuf_puts(sb, ": ");
        }
        if (err == MESH_OK)
            err = put_value(sb, seq ? node->items[i] : node->pairs[i].value, indent + INDENT_STEP);
        mesh_strbuf_puts(sb, i + 1 < node->len ? ",\n" : "\n");
    }
    put_indent(sb, indent);
    mesh_strbuf_puts(sb, seq ? "]" : "}");
    return err;
}

enum mesh_err mesh_json_write(const struct mesh_node *root, char **out)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    enum mesh_err err = root ? put_value(&sb, root, 0) : mesh_strbuf_puts(&sb, "null");
    if (err == MESH_OK)
        err = mesh_strbuf_puts(&sb, "\n");
    if (err != MESH_OK)
        goto out;
    size_t old_len = *out ? strlen(*out) : 0;
    char *joined = malloc(old_len + sb.len + 1);
    if (!joined) {
        err = MESH_E_NOMEM;
        goto out;
    }
    memcpy(joined, *out ? *out : "", old_len);
    memcpy(joined + old_len, sb.data, sb.len + 1);
    free(*out);
    *out = joined;
out:
    mesh_strbuf_free(&sb);
    return err;
}
