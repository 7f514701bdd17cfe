/* SPDX-License-Identifier: Apache-2.0 */
/* Compiled request matchers (path, headers, method) and Host pattern matching for routing. */
#ifndef MESH_PROXY_ROUTE_MATCH_H
#define MESH_PROXY_ROUTE_MATCH_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/slice.h"
#include "http/h1_parse.h"
#include "mesh/err.h"
#include "mesh/virtual_service.h"

/* Longest path or header value a regex is tried on: it is copied to a stack buffer (regexec
 * wants a NUL-terminated string); anything longer does not match. */
#define MESH_ROUTE_REGEX_MAX_SUBJECT 8192

struct mesh_header_matcher {
    char *name; /* compared case-insensitively */
    size_t name_len;
    enum mesh_header_match_kind kind;
    char *value; /* MESH_HEADER_EXACT / _PREFIX; NULL otherwise */
    size_t value_len;
    bool has_re; /* MESH_HEADER_REGEX: re is compiled */
    regex_t re;
};

/* One `match` entry of a route, compiled once by the main thread and then read-only: any number
 * of workers may match against it at once. It owns its strings and regexes (free with
 * mesh_route_matcher_free); it may be moved bytewise, never duplicated (both copies would own the
 * same memory). Note
 * that glibc's regexec serialises callers of one regex_t on an internal lock, so a regex
 * condition costs more under load than the other kinds. */
struct mesh_route_matcher {
    enum mesh_path_kind path_kind;
    char *path; /* exact / prefix / glob pattern; NULL for MESH_PATH_ANY and _REGEX */
    size_t path_len;
    size_t glob_first_star, glob_last_star; /* MESH_PATH_GLOB: offsets of the first/last '*' */
    bool has_path_re;                       /* MESH_PATH_REGEX: path_re is compiled */
    regex_t path_re;
    struct mesh_header_matcher *headers; /* all must match */
    size_t n_headers;
    char *method; /* NULL = any method */
    size_t method_len;
};

/* Compiles src (borrowed) into *out (caller storage, overwritten). Regexes are POSIX extended
 * and anchored at both ends: the pattern is wrapped as ^(...)$. Returns MESH_OK; MESH_E_INVALID
 * (a regex that does not compile, a condition without its value); MESH_E_NOMEM. On error errbuf
 * (may be NULL) holds a message naming the condition and *out holds nothing to free. Main
 * thread (allocates). */
enum mesh_err mesh_route_matcher_compile(const struct mesh_route_match *src,
                                         struct mesh_route_matcher *out, char *errbuf,
                                         size_t errlen);

/* Frees what m owns and zeroes it; a zeroed matcher is fine, m itself is the caller's. No
 * worker may still use it. */
void mesh_route_matcher_free(struct mesh_route_matcher *m);

/* Whether a request matches every condition of m. method: as sent (compared exactly, methods
 * are case-sensitive). path: the request path; anything from the first '?' on is ignored.
 * headers: the request's header lines (borrowed); names compare case-insensitively and, when a
 * name repeats, any one of its values may match. Glob '*' matches any run of characters,
 * '/' included. Any thread; no allocation; linear time in path length for globs. */
bool mesh_route_matcher_match(const struct mesh_route_matcher *m, struct mesh_slice method,
                              struct mesh_slice path, const struct mesh_h1_header *headers,
                              size_t n_headers);

/* Whether host (port already stripped) matches a VirtualService host pattern: "*" matches any
 * host; "*.example.com" any subdomain at any depth ("a.example.com", "a.b.example.com") but not
 * "example.com" itself; anything else is compared exactly. ASCII case-insensitive. pattern is a
 * NUL-terminated string, borrowed. Any thread; no allocation. */
bool mesh_host_matches(const char *pattern, struct mesh_slice host);

/* host without its ":port" ("a.example.com:8080" -> "a.example.com"; "[::1]:80" -> "[::1]",
 * brackets kept as in the Host header). A value without a port, or whose text after the last
 * ':' is not all digits, or an unbracketed IPv6 address, comes back unchanged. The result
 * borrows host's bytes. */
struct mesh_slice mesh_host_strip_port(struct mesh_slice host);

#endif
