/* SPDX-License-Identifier: Apache-2.0 */
/* The generic decoder, encoder, copier and freer that walk the field tables of schema.h. */
#include "schema.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "mesh/resource.h"

#define FIELD(base, f, type)  ((type *)((char *)(base) + (f)->offset))
#define CFIELD(base, f, type) ((const type *)((const char *)(base) + (f)->offset))

void mesh_decoder_error(struct mesh_decoder *d, const struct mesh_node *node, const char *path,
                        const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mesh_diags_add(d->diags, d->file, node ? node->line : 0, node ? node->col : 0, path, "%s", msg);
    d->errors++;
}

void mesh_path_join(char *out, const char *path, const char *name)
{
    snprintf(out, MESH_PATH_LEN, "%s%s%s", path, *path ? "." : "", name);
}

void mesh_path_index(char *out, const char *path, size_t i)
{
    snprintf(out, MESH_PATH_LEN, "%s[%zu]", path, i);
}

const char *mesh_node_type_name(const struct mesh_node *n)
{
    if (n->type == MESH_NODE_MAP)
        return "a mapping";
    if (n->type == MESH_NODE_SEQ)
        return "a list";
    switch (n->scalar_kind) {
    case MESH_SCALAR_STR:
        return "a string";
    case MESH_SCALAR_INT:
        return "an integer";
    case MESH_SCALAR_FLOAT:
        return "a number";
    case MESH_SCALAR_BOOL:
        return "a boolean";
    case MESH_SCALAR_NULL:
        return "null";
    }
    return "a value";
}

/* --- decoding of each field type --- */

static bool want_scalar(struct mesh_decoder *d, const struct mesh_node *n, const char *path,
                        const char *what)
{
    if (n->type == MESH_NODE_SCALAR && n->scalar_kind != MESH_SCALAR_NULL)
        return true;
    mesh_decoder_error(d, n, path, "must be %s, got %s", what, mesh_node_type_name(n));
    return false;
}

static bool decode_text(struct mesh_decoder *d, const struct mesh_node *n, const char *path,
                        enum mesh_text_check check, char **out)
{
    if (!want_scalar(d, n, path, "a string"))
        return false;
    char why[256];
    if (!mesh_text_ok(check, n->text, why, sizeof(why))) {
        mesh_decoder_error(d, n, path, "%s", why);
        return false;
    }
    *out = xstrdup(n->text);
    return true;
}

static void decode_strings(struct mesh_decoder *d, const struct mesh_node *n, const char *path,
                           enum mesh_text_check check, struct mesh_string_list *out)
{
    if (n->type != MESH_NODE_SEQ) {
        mesh_decoder_error(d, n, path, "must be a list of strings, got %s", mesh_node_type_name(n));
        return;
    }
    for (size_t i = 0; i < n->len; i++) {
        char p[MESH_PATH_LEN];
        char *text = NULL;
        mesh_path_index(p, path, i);
        if (!decode_text(d, n->items[i], p, check, &text))
            continue;
        mesh_string_list_add(out, text);
        free(text);
    }
}

/* The value of an integer scalar as YAML 1.2 core reads it: decimal with optional sign ("0503" is
 * 503, where strtoll's base 0 would read octal 323), "0o17" octal, "0x1F" hex. false when it
 * does not fit a long long. */
static bool parse_core_int(const char *text, long long *v)
{
    const char *digits = text;
    int base = 10;
    if (text[0] == '0' && (text[1] == 'o' || text[1] == 'x')) {
        base = text[1] == 'o' ? 8 : 16;
        digits = text + 2;
    }
    errno = 0;
    char *end = NULL;
    *v = strtoll(digits, &end, base);
    return errno == 0 && end != digits && *end == '\0';
}

static bool decode_integer(struct mesh_decoder *d, const struct mesh_node *n, const char *path,
                           const struct mesh_field *f, long long *out)
{
    if (n->type != MESH_NODE_SCALAR || n->scalar_kind != MESH_SCALAR_INT) {
        mesh_decoder_error(d, n, path, "must be an integer, got %s", mesh_node_type_name(n));
        return false;
    }
    long long v = 0;
    if (!parse_core_int(n->text, &v)) {
        mesh_decoder_error(d, n, path, "integer %s is out of range", n->text);
        return false;
    }
    if (v < f->min || v > f->max) {
        /* "positive" only for a value below 1: 3000000000 is positive, just too large */
        if (v < f->min && f->min == 1 && f->max >= INT32_MAX)
            mesh_decoder_error(d, n, path, "must be positive, got %lld", v);
        else
            mesh_decoder_error(d, n, path, "must be between %lld and %lld, got %lld", f->min,
                               f->max, v);
        return false;
    }
    *out = v;
    return true;
}

static void decode_percent(struct mesh_decoder *d, const struct mesh_node *n, const char *path,
                           double *out)
{
    if (n->type != MESH_NODE_SCALAR ||
        (n->scalar_kind != MESH_SCALAR_INT && n->scalar_kind != MESH_SCALAR_FLOAT)) {
        mesh_decoder_error(d, n, path, "must be a percentage between 0 and 100, got %s",
                           mesh_node_type_name(n));
        return;
    }
    double v = NAN;
    long long i = 0;
    if (n->scalar_kind == MESH_SCALAR_INT) {
        if (parse_core_int(n->text, &i))
            v = (double)i;
    } else {
        /* .nan and .inf are YAML floats that strtod does not read (it would give 0): refused */
        char *end = NULL;
        v = strtod(n->text, &end);
        if (end == n->text || *end)
            v = NAN;
    }
    if (!(v >= 0.0 && v <= 100.0)) {
        mesh_decoder_error(d, n, path, "percentage must be between 0 and 100, got %s", n->text);
        return;
    }
    *out = v;
}

static void decode_duration(struct mesh_decoder *d, const struct mesh_node *n, const char *path,
                            const struct mesh_field *f, uint64_t *out)
{
    if (n->type == MESH_NODE_SCALAR &&
        (n->scalar_kind == MESH_SCALAR_INT || n->scalar_kind == MESH_SCALAR_FLOAT)) {
        mesh_decoder_error(d, n, path, "duration %s needs a unit, like %sms or %ss", n->text,
                           n->text, n->text);
        return;
    }
    if (!want_scalar(d, n, path, "a duration like 100ms, 10s or 1m"))
        return;
    unsigned long long ms = 0;
    char why[256];
    if (!mesh_duration_parse(n->text, &ms, why, sizeof(why))) {
        mesh_decoder_error(d, n, path, "%s", why);
        return;
    }
    unsigned long long max = f->max > 0 ? (unsigned long long)f->max : MESH_DURATION_MAX_MS;
    if (ms == 0) {
        mesh_decoder_error(d, n, path, "duration must be positive, got %s", n->text);
        return;
    }
    if (ms > max) {
        char lim[32];
        mesh_duration_format(max, lim, sizeof(lim));
        mesh_decoder_error(d, n, path, "duration %s is too long, at most %s", n->text, lim);
        return;
    }
    *out = ms;
}

static void decode_tristate(struct mesh_decoder *d, const struct mesh_node *n, const char *path,
                            enum mesh_tristate *out)
{
    if (n->type != MESH_NODE_SCALAR || n->scalar_kind != MESH_SCALAR_BOOL) {
        mesh_decoder_error(d, n, path, "must be true or false, got %s", mesh_node_type_name(n));
        return;
    }
    *out = (n->text[0] == 't' || n->text[0] == 'T') ? MESH_TRI_TRUE : MESH_TRI_FALSE;
}

static size_t names_count(const char *const *names)
{
    size_t n = 0;
    while (names[n])
        n++;
    return n;
}

static void decode_enum(struct mesh_decoder *d, const struct mesh_node *n, const char *path,
                        const char *const *names, int *out)
{
    size_t count = names_count(names);
    char list[256] = "";
    for (size_t i = 1; i < count; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i > 1 ? ", " : "",
                 names[i]);
    if (!want_scalar(d, n, path, "a string"))
        return;
    for (size_t i = 1; i < count; i++) {
        if (strcasecmp(n->text, names[i]) == 0) {
            *out = (int)i;
            return;
        }
    }
    const char *hint = mesh_did_you_mean(n->text, names + 1, count - 1);
    if (hint)
        mesh_decoder_error(d, n, path,
                           "unknown value \"%s\" (did you mean \"%s\"?), must be one "
                           "of %s",
                           n->text, hint, list);
    else
        mesh_decoder_error(d, n, path, "unknown value \"%s\", must be one of %s", n->text, list);
}

static void decode_labels(struct mesh_decoder *d, const struct mesh_node *n, const char *path,
                          struct mesh_labels *out)
{
    if (n->type != MESH_NODE_MAP) {
        mesh_decoder_error(d, n, path, "must be a mapping of strings, got %s",
                           mesh_node_type_name(n));
        return;
    }
    for (size_t i = 0; i < n->len; i++) {
        const struct mesh_node_pair *p = &n->pairs[i];
        char cp[MESH_PATH_LEN];
        mesh_path_join(cp, path, p->key->text);
        if (p->key->text[0] == '\0' || strlen(p->key->text) > 253) {
            mesh_decoder_error(d, p->key, cp, "label keys must be 1 to 253 characters");
            continue;
        }
        if (want_scalar(d, p->value, cp, "a string"))
            mesh_labels_set(out, p->key->text, p->value->text);
    }
}

static void decode_objects(struct mesh_decoder *d, const struct mesh_field *f,
                           const struct mesh_node *n, void *base, const char *path)
{
    if (n->type != MESH_NODE_SEQ) {
        mesh_decoder_error(d, n, path, "must be a list, got %s", mesh_node_type_name(n));
        return;
    }
    const struct mesh_schema *s = f->schema;
    char *items = xcalloc(n->len ? n->len : 1, s->size);
    for (size_t i = 0; i < n->len; i++) {
        char p[MESH_PATH_LEN];
        mesh_path_index(p, path, i);
        mesh_schema_init(s, items + i * s->size);
        mesh_schema_decode(d, s, n->items[i], items + i * s->size, p);
    }
    *FIELD(base, f, void *) = items;
    *(size_t *)((char *)base + f->count_offset) = n->len;
}

static void decode_field(struct mesh_decoder *d, const struct mesh_field *f,
                         const struct mesh_node *n, void *base, const char *path)
{
    long long v = 0;
    switch (f->type) {
    case MESH_F_STRING:
        decode_text(d, n, path, f->check, FIELD(base, f, char *));
        break;
    case MESH_F_STRINGS:
        decode_strings(d, n, path, f->check, FIELD(base, f, struct mesh_string_list));
        break;
    case MESH_F_UINT:
        if (decode_integer(d, n, path, f, &v))
            *FIELD(base, f, uint32_t) = (uint32_t)v;
        break;
    case MESH_F_U64:
        if (decode_integer(d, n, path, f, &v))
            *FIELD(base, f, uint64_t) = (uint64_t)v;
        break;
    case MESH_F_INT_OPT:
        if (decode_integer(d, n, path, f, &v))
            *FIELD(base, f, int) = (int)v;
        break;
    case MESH_F_PERCENT:
        decode_percent(d, n, path, FIELD(base, f, double));
        break;
    case MESH_F_DURATION:
        decode_duration(d, n, path, f, FIELD(base, f, uint64_t));
        break;
    case MESH_F_TRISTATE:
        decode_tristate(d, n, path, FIELD(base, f, enum mesh_tristate));
        break;
    case MESH_F_ENUM:
        decode_enum(d, n, path, f->names, FIELD(base, f, int));
        break;
    case MESH_F_OBJECT:
        mesh_schema_decode(d, f->schema, n, FIELD(base, f, char), path);
        break;
    case MESH_F_OBJECTS:
        decode_objects(d, f, n, base, path);
        break;
    case MESH_F_LABELS:
        decode_labels(d, n, path, FIELD(base, f, struct mesh_labels));
        break;
    case MESH_F_CUSTOM:
        f->codec->decode(d, n, base, f, path);
        break;
    }
}

static const struct mesh_field *find_field(const struct mesh_schema *s, const char *name)
{
    for (size_t i = 0; i < s->n_fields; i++)
        if (strcmp(s->fields[i].name, name) == 0)
            return &s->fields[i];
    return NULL;
}

static void unknown_field(struct mesh_decoder *d, const struct mesh_schema *s,
                          const struct mesh_node *key, const char *path)
{
    const char *names[64];
    size_t n = 0;
    for (size_t i = 0; i < s->n_fields && n < 64; i++)
        names[n++] = s->fields[i].name;
    const char *hint = mesh_did_you_mean(key->text, names, n);
    char cp[MESH_PATH_LEN];
    mesh_path_join(cp, path, key->text);
    if (hint)
        mesh_decoder_error(d, key, cp, "unknown field \"%s\" (did you mean \"%s\"?)", key->text,
                           hint);
    else
        mesh_decoder_error(d, key, cp, "unknown field \"%s\"", key->text);
}

static void decode_shorthand(struct mesh_decoder *d, const struct mesh_schema *s,
                             const struct mesh_node *node, void *obj, const char *path)
{
    decode_field(d, &s->fields[s->shorthand], node, obj, path);
}

static void check_required(struct mesh_decoder *d, const struct mesh_schema *s,
                           const struct mesh_node *node, const char *path)
{
    for (size_t i = 0; i < s->n_fields; i++) {
        if (s->fields[i].required && !mesh_node_map_get(node, s->fields[i].name))
            mesh_decoder_error(d, node, path, "missing required field \"%s\"", s->fields[i].name);
    }
}

void mesh_schema_decode(struct mesh_decoder *d, const struct mesh_schema *s,
                        const struct mesh_node *node, void *obj, const char *path)
{
    unsigned before = d->errors;
    if (node->type == MESH_NODE_SCALAR && s->shorthand >= 0 &&
        node->scalar_kind != MESH_SCALAR_NULL) {
        decode_shorthand(d, s, node, obj, path);
        return;
    }
    if (node->type != MESH_NODE_MAP) {
        mesh_decoder_error(d, node, path, "must be a mapping, got %s", mesh_node_type_name(node));
        return;
    }
    for (size_t i = 0; i < node->len; i++) {
        const struct mesh_node_pair *p = &node->pairs[i];
        const struct mesh_field *f = find_field(s, p->key->text);
        if (!f) {
            unknown_field(d, s, p->key, path);
            continue;
        }
        char cp[MESH_PATH_LEN];
        mesh_path_join(cp, path, f->name);
        if (p->value->type == MESH_NODE_SCALAR && p->value->scalar_kind == MESH_SCALAR_NULL &&
            !f->required)
            continue; /* `field:` with no value is the same as leaving it out */
        decode_field(d, f, p->value, obj, cp);
    }
    check_required(d, s, node, path);
    if (d->errors == before && s->validate)
        s->validate(d, obj, node, path);
}

void mesh_schema_init(const struct mesh_schema *s, void *obj)
{
    for (size_t i = 0; i < s->n_fields; i++) {
        const struct mesh_field *f = &s->fields[i];
        if (f->type == MESH_F_INT_OPT)
            *FIELD(obj, f, int) = MESH_UNSET;
        else if (f->type == MESH_F_PERCENT)
            *FIELD(obj, f, double) = MESH_UNSET;
        else if (f->type == MESH_F_OBJECT)
            mesh_schema_init(f->schema, FIELD(obj, f, char));
    }
}

/* --- encoding --- */

static struct mesh_node *encode_strings(const struct mesh_string_list *l)
{
    if (l->len == 0)
        return NULL;
    struct mesh_node *seq = mesh_node_seq();
    for (size_t i = 0; i < l->len; i++)
        mesh_node_seq_append(seq, mesh_node_str(l->items[i] ? l->items[i] : ""));
    return seq;
}

static struct mesh_node *encode_labels(const struct mesh_labels *l)
{
    if (l->len == 0)
        return NULL;
    struct mesh_node *map = mesh_node_map();
    for (size_t i = 0; i < l->len; i++)
        mesh_node_map_set(map, l->items[i].key ? l->items[i].key : "",
                          mesh_node_str(l->items[i].value ? l->items[i].value : ""));
    return map;
}

static struct mesh_node *encode_enum(int v, const char *const *names)
{
    if (v == 0)
        return NULL;
    /* An out-of-range value (set in code) is kept as a number so that validation names it. */
    if (v < 0 || (size_t)v >= names_count(names))
        return mesh_node_int(v);
    return mesh_node_str(names[v]);
}

static struct mesh_node *encode_objects(const struct mesh_field *f, const void *base)
{
    const char *items = *CFIELD(base, f, char *);
    size_t n = *(const size_t *)((const char *)base + f->count_offset);
    if (n == 0 || !items)
        return NULL;
    struct mesh_node *seq = mesh_node_seq();
    for (size_t i = 0; i < n; i++)
        mesh_node_seq_append(seq, mesh_schema_encode(f->schema, items + i * f->schema->size));
    return seq;
}

static struct mesh_node *encode_duration(uint64_t ms)
{
    if (ms == 0)
        return NULL;
    char buf[32];
    mesh_duration_format(ms, buf, sizeof(buf));
    return mesh_node_str(buf);
}

static struct mesh_node *encode_object(const struct mesh_schema *s, const void *obj)
{
    struct mesh_node *map = mesh_schema_encode(s, obj);
    if (map->len == 0) {
        mesh_node_free(map);
        return NULL;
    }
    return map;
}

static struct mesh_node *encode_field(const struct mesh_field *f, const void *base)
{
    switch (f->type) {
    case MESH_F_STRING: {
        const char *s = *CFIELD(base, f, char *);
        return s ? mesh_node_str(s) : NULL;
    }
    case MESH_F_STRINGS:
        return encode_strings(CFIELD(base, f, struct mesh_string_list));
    case MESH_F_UINT: {
        uint32_t v = *CFIELD(base, f, uint32_t);
        return v ? mesh_node_int(v) : NULL;
    }
    case MESH_F_U64: {
        uint64_t v = *CFIELD(base, f, uint64_t);
        return v ? mesh_node_int((long long)v) : NULL;
    }
    case MESH_F_INT_OPT: {
        int v = *CFIELD(base, f, int);
        return v != MESH_UNSET ? mesh_node_int(v) : NULL;
    }
    case MESH_F_PERCENT: {
        double v = *CFIELD(base, f, double);
        if (v == MESH_UNSET)
            return NULL;
        return v == floor(v) && fabs(v) < 1e15 ? mesh_node_int((long long)v) : mesh_node_float(v);
    }
    case MESH_F_DURATION:
        return encode_duration(*CFIELD(base, f, uint64_t));
    case MESH_F_TRISTATE: {
        enum mesh_tristate t = *CFIELD(base, f, enum mesh_tristate);
        return t == MESH_TRI_UNSET ? NULL : mesh_node_bool(t == MESH_TRI_TRUE);
    }
    case MESH_F_ENUM:
        return encode_enum(*CFIELD(base, f, int), f->names);
    case MESH_F_OBJECT:
        return encode_object(f->schema, CFIELD(base, f, char));
    case MESH_F_OBJECTS:
        return encode_objects(f, base);
    case MESH_F_LABELS:
        return encode_labels(CFIELD(base, f, struct mesh_labels));
    case MESH_F_CUSTOM:
        return f->codec->encode(base, f);
    }
    return NULL;
}

struct mesh_node *mesh_schema_encode(const struct mesh_schema *s, const void *obj)
{
    struct mesh_node *map = mesh_node_map();
    for (size_t i = 0; i < s->n_fields; i++) {
        struct mesh_node *v = encode_field(&s->fields[i], obj);
        if (v) {
            mesh_node_map_set(map, s->fields[i].name, v);
        } else if (s->fields[i].presence) {
            mesh_node_free(map);
            return mesh_node_map(); /* encode_object turns the empty map into "unset" */
        }
    }
    /* The short form ("127.0.0.1:8080") when only the shorthand field is set. */
    if (s->shorthand >= 0 && map->len == 1 &&
        strcmp(map->pairs[0].key->text, s->fields[s->shorthand].name) == 0 &&
        map->pairs[0].value->type == MESH_NODE_SCALAR) {
        struct mesh_node *scalar = map->pairs[0].value;
        map->pairs[0].value = NULL;
        mesh_node_free(map);
        return scalar;
    }
    return map;
}

/* --- copying and freeing --- */

static void copy_strings(struct mesh_string_list *dst, const struct mesh_string_list *src)
{
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; i < src->len; i++)
        mesh_string_list_add(dst, src->items[i] ? src->items[i] : "");
}

static void copy_labels(struct mesh_labels *dst, const struct mesh_labels *src)
{
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; i < src->len; i++)
        mesh_labels_set(dst, src->items[i].key, src->items[i].value);
}

static void copy_objects(const struct mesh_field *f, void *dst, const void *src)
{
    const char *from = *CFIELD(src, f, char *);
    size_t n = *(const size_t *)((const char *)src + f->count_offset);
    char *to = NULL;
    if (n && from) {
        to = xcalloc(n, f->schema->size);
        for (size_t i = 0; i < n; i++)
            mesh_schema_copy(f->schema, to + i * f->schema->size, from + i * f->schema->size);
    }
    *FIELD(dst, f, char *) = to;
    *(size_t *)((char *)dst + f->count_offset) = to ? n : 0;
}

/* dst starts as a bitwise copy of src; this replaces every owned pointer with a deep copy. */
static void copy_owned(const struct mesh_schema *s, void *dst, const void *src)
{
    for (size_t i = 0; i < s->n_fields; i++) {
        const struct mesh_field *f = &s->fields[i];
        switch (f->type) {
        case MESH_F_STRING:
            *FIELD(dst, f, char *) = xstrdup(*CFIELD(src, f, char *));
            break;
        case MESH_F_STRINGS:
            copy_strings(FIELD(dst, f, struct mesh_string_list),
                         CFIELD(src, f, struct mesh_string_list));
            break;
        case MESH_F_LABELS:
            copy_labels(FIELD(dst, f, struct mesh_labels), CFIELD(src, f, struct mesh_labels));
            break;
        case MESH_F_OBJECT:
            copy_owned(f->schema, FIELD(dst, f, char), CFIELD(src, f, char));
            break;
        case MESH_F_OBJECTS:
            copy_objects(f, dst, src);
            break;
        case MESH_F_CUSTOM:
            f->codec->copy(dst, src, f);
            break;
        default:
            break;
        }
    }
}

void mesh_schema_copy(const struct mesh_schema *s, void *dst, const void *src)
{
    memcpy(dst, src, s->size);
    copy_owned(s, dst, src);
}

void mesh_schema_free(const struct mesh_schema *s, void *obj)
{
    for (size_t i = 0; i < s->n_fields; i++) {
        const struct mesh_field *f = &s->fields[i];
        switch (f->type) {
        case MESH_F_STRING:
            free(*FIELD(obj, f, char *));
            *FIELD(obj, f, char *) = NULL;
            break;
        case MESH_F_STRINGS:
            mesh_string_list_clear(FIELD(obj, f, struct mesh_string_list));
            break;
        case MESH_F_LABELS:
            mesh_labels_clear(FIELD(obj, f, struct mesh_labels));
            break;
        case MESH_F_OBJECT:
            mesh_schema_free(f->schema, FIELD(obj, f, char));
            break;
        case MESH_F_OBJECTS: {
            char *items = *FIELD(obj, f, char *);
            size_t *n = (size_t *)((char *)obj + f->count_offset);
            for (size_t k = 0; items && k < *n; k++)
                mesh_schema_free(f->schema, items + k * f->schema->size);
            free(items);
            *FIELD(obj, f, char *) = NULL;
            *n = 0;
            break;
        }
        case MESH_F_CUSTOM:
            f->codec->free(obj, f);
            break;
        default:
            break;
        }
    }
}

void *mesh_schema_append(void **items, size_t *n, const struct mesh_schema *s)
{
    char *grown = realloc(*items, (*n + 1) * s->size);
    if (!grown)
        return NULL;
    *items = grown;
    char *item = grown + (*n)++ * s->size;
    memset(item, 0, s->size);
    mesh_schema_init(s, item);
    return item;
}
