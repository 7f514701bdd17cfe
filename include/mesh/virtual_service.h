/* SPDX-License-Identifier: Apache-2.0 */
/* VirtualService: hosts, gateways and HTTP routes that split traffic by weight. */
#ifndef MESH_VIRTUAL_SERVICE_H
#define MESH_VIRTUAL_SERVICE_H

#include <stdint.h>

#include "resource.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mesh_path_kind {
    MESH_PATH_ANY = 0, /* no path condition */
    MESH_PATH_EXACT,   /* "/a" or {exact: "/a"} */
    MESH_PATH_PREFIX,  /* {prefix: "/a/"} */
    MESH_PATH_GLOB,    /* a path with '*' wildcards, each matching any run of characters */
    MESH_PATH_REGEX,   /* {regex: "^/v[0-9]+/"}: POSIX extended, anchored at both ends */
};

struct mesh_path_match {
    enum mesh_path_kind kind;
    char *value;
};

enum mesh_header_match_kind {
    MESH_HEADER_EXACT = 0,
    MESH_HEADER_PREFIX,
    MESH_HEADER_REGEX,
    MESH_HEADER_PRESENT,
};

struct mesh_header_match {
    char *name; /* header name, matched case-insensitively */
    enum mesh_header_match_kind kind;
    char *value; /* NULL for MESH_HEADER_PRESENT */
};

struct mesh_route_match {
    struct mesh_path_match path;
    struct mesh_header_match *headers; /* all must match */
    size_t n_headers;
    char *method; /* NULL = any method */
};

struct mesh_route_destination {
    char *host; /* a Service: name, name.namespace or name.namespace.svc */
    int weight; /* 0..100, or MESH_UNSET (100 when it is the only destination) */
};

struct mesh_retry_policy {
    uint32_t attempts;                /* 0 = no retries */
    uint64_t per_try_timeout_ms;      /* 0 = unset */
    struct mesh_string_list retry_on; /* 5xx, gateway-error, reset, connect-failure */
};

struct mesh_http_route {
    char *name;                       /* optional; unique within the VirtualService */
    struct mesh_route_match *matches; /* any may match; none = match everything */
    size_t n_matches;
    struct mesh_route_destination *destinations; /* at least one */
    size_t n_destinations;
    uint64_t timeout_ms; /* 0 = unset */
    struct mesh_retry_policy retries;
};

struct mesh_virtual_service {
    struct mesh_resource res; /* kind MESH_KIND_VIRTUAL_SERVICE */
    struct mesh_string_list hosts;
    struct mesh_string_list gateways;
    struct mesh_http_route *http_routes;
    size_t n_http_routes;
};

/* Constructors: copies of the strings are taken; NULL only on allocation failure.
 * The returned element is owned by its parent; the pointer stays valid until the next add to
 * the same parent (the array may move). */
struct mesh_virtual_service *mesh_virtual_service_new(const char *name, const char *ns);
void mesh_virtual_service_free(struct mesh_virtual_service *vs);
struct mesh_http_route *mesh_virtual_service_add_route(struct mesh_virtual_service *vs,
                                                       const char *route_name);
/* path: exact, or a glob when it holds a '*'; NULL = any path. */
struct mesh_route_match *mesh_http_route_add_match(struct mesh_http_route *route, const char *path);
struct mesh_header_match *mesh_route_match_add_header(struct mesh_route_match *match,
                                                      const char *name,
                                                      enum mesh_header_match_kind kind,
                                                      const char *value);
struct mesh_route_destination *mesh_http_route_add_destination(struct mesh_http_route *route,
                                                               const char *host, int weight);

#ifdef __cplusplus
}
#endif
#endif
