/* SPDX-License-Identifier: Apache-2.0 */
/* Prints a node tree as block-style YAML that mesh_yaml_read reads back to an equal tree:
 * strings are quoted exactly when a plain scalar would change kind or meaning, never folded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "node.h"

#define INDENT_STEP 2
/* libyaml refuses simple (implicit) keys over 1024 characters; longer keys use "? key". */
#define MAX_SIMPLE_KEY 1000

/* Length of the UTF-8 sequence at s (at most n bytes) and its code point, or 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (len == 0 || len > n || s[0] > 0xF4)
        return 0;
    uint32_t v = len == 1 ? s[0] : s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Characters YAML may not hold unescaped, or that it reads as line breaks or a byte-order mark. */
static bool needs_escape(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF;
}

static bool is_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        uint32_t cp;
        size_t len = utf8_decode(p, n, &cp);
        if (len == 0)
            return false;
        p += len;
        n -= len;
    }
    return true;
}

/* YAML 1.1 readers (PyYAML, go-yaml v2, so kubectl) take these as booleans: quote them too. */
static bool is_yaml11_bool(const char *s)
{
    static const char *const words[] = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no",
                                        "No", "NO", "on",  "On",  "ON",  "off", "Off", "OFF"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(s, words[i]) == 0)
            return true;
    }
    return false;
}

/* A string may be written plain when it reads back as the same string in block context. The
 * rules are stricter than YAML needs: quoting a safe string costs two characters, printing an
 * unsafe one plain changes the document. */
static bool plain_safe(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || mesh_node_resolve_plain(s) != MESH_SCALAR_STR || is_yaml11_bool(s))
        return false;
    if (strcmp(s, "<<") == 0) /* the YAML 1.1 merge key */
        return false;
    if (strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]) || s[n - 1] == ' ' || s[n - 1] == ':')
        return false;
    if (strncmp(s, "...", 3) == 0 || strstr(s, ": ") || strstr(s, " #"))
        return false;
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0) {
        uint32_t cp;
        size_t len = utf8_decode(p, n, &cp);
        if (len == 0 || needs_escape(cp))
            return false;
        p += len;
        n -= len;
    }
    return true;
}

static void put_escape(struct mesh_strbuf *sb, uint32_t cp)
{
    static const char named_from[] = "\0\a\b\t\n\v\f\r\x1b";
    static const char named_to[] = "0abtnvfre";
    const char *at = cp < 0x20 ? memchr(named_from, (int)cp, sizeof(named_from) - 1) : NULL;
    if (at)
        mesh_strbuf_printf(sb, "\\%c", named_to[at - named_from]);
    else if (cp == 0x2028 || cp == 0x2029)
        mesh_strbuf_puts(sb, cp == 0x2028 ? "\\L" : "\\P");
    else if (cp <= 0xFF)
        mesh_strbuf_printf(sb, "\\x%02X", (unsigned)cp);
    else
        mesh_strbuf_printf(sb, "\\u%04X", (unsigned)cp);
}

/* A double-quoted scalar on one line: breaks are escaped, so nothing is ever folded. */
static void put_quoted(struct mesh_strbuf *sb, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    mesh_strbuf_append(sb, "\"", 1);
    while (n > 0) {
        uint32_t cp = 0;
        size_t len = utf8_decode(p, n, &cp);
        if (len == 0)
            len = 1; /* unreachable: the caller checked the text is UTF-8 */
        if (cp == '"' || cp == '\\')
            mesh_strbuf_printf(sb, "\\%c", (char)cp);
        else if (needs_escape(cp))
            put_escape(sb, cp);
        else
            mesh_strbuf_append(sb, p, len);
        p += len;
        n -= len;
    }
    mesh_strbuf_append(sb, "\"", 1);
}

/* Non-strings are printed as written, which only works while the text resolves to its kind. */
static enum mesh_err put_scalar(struct mesh_strbuf *sb, const struct mesh_node *node)
{
    const char *text = node->text;
    if (!is_utf8(text))
        return MESH_E_INVALID;
    if (node->scalar_kind == MESH_SCALAR_STR) {
        if (plain_safe(text))
            mesh_strbuf_puts(sb, text);
        else
            put_quoted(sb, text);
        return MESH_OK;
    }
    if (mesh_node_resolve_plain(text) != node->scalar_kind)
        return MESH_E_INVALID;
    mesh_strbuf_puts(sb, text);
    return MESH_OK;
}

static bool is_inline(const struct mesh_node *node)
{
    return node->type == MESH_NODE_SCALAR || node->len == 0;
}

static enum mesh_err put_inline(struct mesh_strbuf *sb, const struct mesh_node *node)
{
    if (node->type == MESH_NODE_SEQ)
        return mesh_strbuf_puts(sb, "[]");
    if (node->type == MESH_NODE_MAP)
        return mesh_strbuf_puts(sb, "{}");
    return put_scalar(sb, node);
}

static void put_indent(struct mesh_strbuf *sb, unsigned indent)
{
    for (unsigned i = 0; i < indent; i++)
        mesh_strbuf_append(sb, " ", 1);
}

static enum mesh_err put_block(struct mesh_strbuf *sb, const struct mesh_node *node,
                               unsigned indent, bool first_inline);

/* After "key:" or "? key\n:": an inline value on the same line, a collection below it. */
static enum mesh_err put_map_value(struct mesh_strbuf *sb, const struct mesh_node *value,
                                   unsigned indent)
{
    if (value->type == MESH_NODE_SCALAR && value->text[0] == '\0' &&
        value->scalar_kind == MESH_SCALAR_NULL)
        return mesh_strbuf_puts(sb, "\n");
    if (!is_inline(value)) {
        mesh_strbuf_puts(sb, "\n");
        return put_block(sb, value, indent + INDENT_STEP, false);
    }
    mesh_strbuf_puts(sb, " ");
    enum mesh_err err = put_inline(sb, value);
    mesh_strbuf_puts(sb, "\n");
    return err;
}

static enum mesh_err put_pair(struct mesh_strbuf *sb, const struct mesh_node_pair *pair,
                              unsigned indent)
{
    struct mesh_strbuf key;
    mesh_strbuf_init(&key, 0);
    enum mesh_err err = put_scalar(&key, pair->key);
    if (err != MESH_OK)
        goto out;
    /* An empty key cannot be a simple key, and libyaml refuses very long ones: both take the
     * explicit "? key" form. */
    if (key.len == 0 || key.len > MAX_SIMPLE_KEY) {
        mesh_strbuf_puts(sb, key.len ? "? " : "?");
        if (key.len)
            mesh_strbuf_append(sb, key.data, key.len);
        mesh_strbuf_puts(sb, "\n");
        put_indent(sb, indent);
    } else {
        mesh_strbuf_append(sb, key.data, key.len);
    }
    mesh_strbuf_puts(sb, ":");
    err = put_map_value(sb, pair->value, indent);
out:
    mesh_strbuf_free(&key);
    return err;
}

static enum mesh_err put_item(struct mesh_strbuf *sb, const struct mesh_node *item, unsigned indent)
{
    if (item->type == MESH_NODE_SCALAR && item->text[0] == '\0' &&
        item->scalar_kind == MESH_SCALAR_NULL)
        return mesh_strbuf_puts(sb, "-\n");
    mesh_strbuf_puts(sb, "- ");
    if (!is_inline(item))
        return put_block(sb, item, indent + INDENT_STEP, true);
    enum mesh_err err = put_inline(sb, item);
    mesh_strbuf_puts(sb, "\n");
    return err;
}

/* Writes a non-empty collection whose entries sit at indent. With first_inline the cursor is
 * already after "- ", where the first entry goes ("- name: x" rather than "-\n  name: x"). */
static enum mesh_err put_block(struct mesh_strbuf *sb, const struct mesh_node *node,
                               unsigned indent, bool first_inline)
{
    enum mesh_err err = MESH_OK;
    for (size_t i = 0; i < node->len && err == MESH_OK; i++) {
        if (i > 0 || !first_inline)
            put_indent(sb, indent);
        if (node->type == MESH_NODE_SEQ)
            err = put_item(sb, node->items[i], indent);
        else
            err = put_pair(sb, &node->pairs[i], indent);
    }
    return err;
}

static enum mesh_err put_root(struct mesh_strbuf *sb, const struct mesh_node *root)
{
    /* No root, or an empty null, is an empty document body. */
    if (!root || (root->type == MESH_NODE_SCALAR && root->scalar_kind == MESH_SCALAR_NULL &&
                  root->text[0] == '\0'))
        return MESH_OK;
    if (!is_inline(root))
        return put_block(sb, root, 0, false);
    enum mesh_err err = put_inline(sb, root);
    mesh_strbuf_puts(sb, "\n");
    return err;
}

enum mesh_err mesh_yaml_write(const struct mesh_node *root, char **out)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    size_t old_len = *out ? strlen(*out) : 0;
    if (*out) {
        sb.data = *out;
        sb.len = old_len;
        sb.cap = old_len + 1;
    }
    enum mesh_err err = put_root(&sb, root);
    if (err != MESH_OK && sb.data) {
        /* Leave *out as it came in: nothing of a half-written tree. */
        sb.len = old_len;
        sb.data[old_len] = '\0';
    }
    if (err != MESH_OK && !*out) {
        mesh_strbuf_free(&sb);
        return err;
    }
    *out = mesh_strbuf_take(&sb);
    return err;
}
