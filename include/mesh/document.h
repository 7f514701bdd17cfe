/* SPDX-License-Identifier: Apache-2.0 */
/* Reading, validating and printing resource documents (YAML or JSON, many per file). */
#ifndef MESH_DOCUMENT_H
#define MESH_DOCUMENT_H

#include <stddef.h>

#include "resource.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One validation or syntax problem. line/col are 1-based; 0 when unknown (API-built input). */
struct mesh_diag {
    char *file; /* as given to the parser; "<input>" when none */
    unsigned line;
    unsigned col;
    char *path;    /* field path: spec.http_routes[0].destinations[1].weight; may be "" */
    char *message; /* one sentence, no trailing period */
};

struct mesh_diags {
    struct mesh_diag *items;
    size_t len;
};

void mesh_diags_clear(struct mesh_diags *diags);

/* "file:line:col: path: message" (parts that are unknown are left out). Caller frees. */
char *mesh_diag_format(const struct mesh_diag *diag);

enum mesh_format {
    MESH_FORMAT_YAML = 0,
    MESH_FORMAT_JSON,
};

/* Parses every document of text (YAML, or JSON when the first non-blank byte is '{' or '['),
 * then validates each. On MESH_OK *out holds *n resources (caller frees with
 * mesh_resource_list_free). On MESH_E_INVALID nothing is returned in *out and diags holds every
 * problem found, in document order. file names the input in messages (may be NULL). */
enum mesh_err mesh_parse_documents(const char *text, size_t len, const char *file,
                                   struct mesh_resource ***out, size_t *n,
                                   struct mesh_diags *diags);

/* Validates a resource built in code, as the parser would (messages carry no line/col). */
enum mesh_err mesh_validate_resource(const struct mesh_resource *res, struct mesh_diags *diags);

/* Prints resources as YAML (documents separated by "---") or JSON (one object, or an array when
 * n != 1). *out is NUL-terminated and malloc'ed. */
enum mesh_err mesh_print_documents(const struct mesh_resource *const *res, size_t n,
                                   enum mesh_format format, char **out);

/* Frees a list returned by mesh_parse_documents or mesh_list. NULL is a no-op. */
void mesh_resource_list_free(struct mesh_resource **list, size_t n);

#ifdef __cplusplus
}
#endif
#endif
