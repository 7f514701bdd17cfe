/* SPDX-License-Identifier: Apache-2.0 */
/* Field tables that describe each kind's spec, and the one generic decoder, encoder, copier and
 * freer that walk them. A kind is a table, not a parser: adding a field is adding a row. */
#ifndef MESH_MODEL_SCHEMA_H
#define MESH_MODEL_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh/document.h"
#include "node.h"

enum mesh_field_type {
    MESH_F_STRING,   /* char * */
    MESH_F_STRINGS,  /* struct mesh_string_list */
    MESH_F_UINT,     /* uint32_t; 0 = unset; set values within [min, max] */
    MESH_F_U64,      /* uint64_t; 0 = unset; set values within [min, max] */
    MESH_F_INT_OPT,  /* int; MESH_UNSET when absent; within [min, max] */
    MESH_F_PERCENT,  /* double; MESH_UNSET when absent; 0..100 */
    MESH_F_DURATION, /* uint64_t milliseconds; 0 = unset; positive, at most max (ms) */
    MESH_F_TRISTATE, /* enum mesh_tristate */
    MESH_F_ENUM,     /* an enum stored as int; names[value]; value 0 = unset */
    MESH_F_OBJECT,   /* an embedded struct described by schema */
    MESH_F_OBJECTS,  /* pointer to an array of schema->size elements + size_t count */
    MESH_F_LABELS,   /* struct mesh_labels */
    MESH_F_CUSTOM,   /* coded by codec */
};

/* Checks on the text of a STRING or of each item of STRINGS. */
enum mesh_text_check {
    MESH_CHECK_NONE = 0,
    MESH_CHECK_DNS_LABEL,    /* RFC 1123 label: names, namespaces */
    MESH_CHECK_HOST,         /* RFC 1123 subdomain, optionally "*." prefixed */
    MESH_CHECK_SERVICE_HOST, /* a Service: name, name.ns, name.ns.svc[.cluster.local] */
    MESH_CHECK_METHOD,       /* an HTTP method */
    MESH_CHECK_URL,          /* http(s)://host[:port][/path] */
    MESH_CHECK_ADDRESS,      /* host:port, [v6]:port */
    MESH_CHECK_AUTHZ_PATH,   /* "/exact", "/prefix*" or "*" */
    MESH_CHECK_IDENTITY,     /* svc.ns[.svc], spiffe://td/ns/NS/sa/SA, or "*" */
    MESH_CHECK_RETRY_ON,     /* 5xx, gateway-error, reset, connect-failure */
    MESH_CHECK_QUANTITY,     /* Kubernetes quantity: 100m, 128Mi, 1.5 */
    MESH_CHECK_PROTOCOL,     /* http, http2, grpc, tcp */
    MESH_CHECK_HEADER_NAME,  /* an HTTP field-name token */
    MESH_CHECK_LB_POLICY,    /* least_request, round_robin, random */
    MESH_CHECK_GATEWAY_REF,  /* a gateway: NAME, or NAMESPACE/NAME */
};

struct mesh_decoder;
struct mesh_field;

/* For values that are one of several shapes (a path given as "/a" or {prefix: "/a"}). */
struct mesh_codec {
    /* Decodes node into the field at base + f->offset; reports problems through d. */
    void (*decode)(struct mesh_decoder *d, const struct mesh_node *node, void *base,
                   const struct mesh_field *f, const char *path);
    /* A new node for the field, or NULL when it is unset (then the key is left out). */
    struct mesh_node *(*encode)(const void *base, const struct mesh_field *f);
    void (*copy)(void *dst_base, const void *src_base, const struct mesh_field *f);
    void (*free)(void *base, const struct mesh_field *f);
};

struct mesh_schema;

struct mesh_field {
    const char *name;
    enum mesh_field_type type;
    size_t offset;
    size_t count_offset;              /* MESH_F_OBJECTS, custom lists: where the count lives */
    const struct mesh_schema *schema; /* MESH_F_OBJECT, MESH_F_OBJECTS */
    long long min, max;               /* MESH_F_UINT, MESH_F_INT_OPT; MESH_F_DURATION: max ms */
    const char *const *names;         /* MESH_F_ENUM: NULL-terminated, names[0] = unset */
    const struct mesh_codec *codec;   /* MESH_F_CUSTOM */
    enum mesh_text_check check;       /* MESH_F_STRING, MESH_F_STRINGS */
    bool required;
    bool presence; /* when this field is unset, the whole object is unset (abort.http_status) */
};

struct mesh_schema {
    size_t size; /* element size, for MESH_F_OBJECTS */
    const struct mesh_field *fields;
    size_t n_fields;
    /* When >= 0, a scalar may stand for the whole object: it sets this field (an endpoint
     * written as "127.0.0.1:8080"); the encoder uses that short form when nothing else is set. */
    int shorthand;
    /* Cross-field rules, run after the object decoded; node is the object's map. */
    void (*validate)(struct mesh_decoder *d, const void *obj, const struct mesh_node *node,
                     const char *path);
};

struct mesh_decoder {
    const char *file;
    struct mesh_diags *diags;
    unsigned errors;
};

/* Reports a problem at node's position (node may be NULL: no position). */
void mesh_decoder_error(struct mesh_decoder *d, const struct mesh_node *node, const char *path,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Decodes map node into the struct at obj (zeroed by the caller), by schema. Unknown keys are
 * errors with a "did you mean" hint. Runs schema->validate when decoding succeeded. */
void mesh_schema_decode(struct mesh_decoder *d, const struct mesh_schema *schema,
                        const struct mesh_node *node, void *obj, const char *path);
/* Sets the fields whose "unset" value is not zero (MESH_UNSET numbers). */
void mesh_schema_init(const struct mesh_schema *schema, void *obj);
/* A map node with every set field, in schema order; an empty map when none is set. */
struct mesh_node *mesh_schema_encode(const struct mesh_schema *schema, const void *obj);
void mesh_schema_copy(const struct mesh_schema *schema, void *dst, const void *src);
void mesh_schema_free(const struct mesh_schema *schema, void *obj);
/* Grows the array *items of *n elements by one zeroed, initialised element and returns it;
 * NULL (nothing changed) on allocation failure. */
void *mesh_schema_append(void **items, size_t *n, const struct mesh_schema *schema);

/* Shared pieces, for codecs and validators. */
/* What a node is, for messages: "a mapping", "a list", "a string", "an integer"... */
const char *mesh_node_type_name(const struct mesh_node *n);
#define MESH_PATH_LEN 512
/* out (MESH_PATH_LEN bytes) = "path.name" ("name" when path is empty), cut to fit. */
void mesh_path_join(char *out, const char *path, const char *name);
/* out (MESH_PATH_LEN bytes) = "path[i]". */
void mesh_path_index(char *out, const char *path, size_t i);
bool mesh_text_ok(enum mesh_text_check check, const char *text, char *why, size_t why_len);
/* The candidate closest to word, or NULL when none is close enough to suggest. */
const char *mesh_did_you_mean(const char *word, const char *const *candidates, size_t n);
/* "100ms", "10s", "1m30s", "1.5s", "2h" → milliseconds. false with why on bad syntax. */
bool mesh_duration_parse(const char *text, unsigned long long *ms, char *why, size_t why_len);
/* The shortest exact form: 90000 → "90s", 120000 → "2m". buf >= 32 bytes. */
void mesh_duration_format(unsigned long long ms, char *buf, size_t len);
/* Whether a POSIX extended regex compiles; why gets regerror's text. */
bool mesh_regex_ok(const char *re, char *why, size_t why_len);

#define MESH_DURATION_MAX_MS (24ULL * 3600 * 1000)

#endif
