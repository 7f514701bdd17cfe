/* SPDX-License-Identifier: Apache-2.0 */
/* How the Linkerd translator (linkerd.c) spells names and regular expressions, shared with its
 * reader (linkerd_read.c) so that what one writes the other reads back by the same rules.
 * Defined in linkerd.c. */
#ifndef MESH_PROVIDER_LINKERD_NAMES_H
#define MESH_PROVIDER_LINKERD_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/strbuf.h"

#define LK_GROUP        "policy.linkerd.io"
#define LK_DEFAULT_PORT 80
/* An HTTPRoute rule's matches at the most (the CRD schema's limit). */
#define LK_MAX_MATCHES 8
/* The characters RE2 and POSIX ERE both read as syntax: escaped to be literal. */
#define LK_REGEX_META "\\.+*?()|[]{}^$"

/* Whether s[0..n) is an RFC 1123 label of lower-case letters, digits and '-' (a Kubernetes
 * name or namespace; part of a Linkerd identity). */
bool mesh_linkerd_label_ok(const char *s, size_t n);

/* Appends s[0..n) to sb with every LK_REGEX_META character escaped. */
void mesh_linkerd_regex_escape(struct mesh_strbuf *sb, const char *s, size_t n);

/* The index of the first c in re[0..n) outside brackets and escapes at parenthesis depth 0,
 * counted after it (so ')' is found where it closes the outermost group); n when there is none.
 * c is '|' (a top-level alternation, which anchoring must enclose) or ')'. */
size_t mesh_linkerd_regex_top(const char *re, size_t n, char c);

/* Whether s[n - 1] is preceded by an odd number of backslashes (is escaped). */
bool mesh_linkerd_escaped_at(const char *s, size_t n);

/* A glob as an anchored regular expression: '^', the literals escaped, each '*' as ".*", and
 * for a prefix (a glob ending in one more '*') a final ".*", then '$'. malloc'ed. */
char *mesh_linkerd_glob_regex(const char *glob, bool prefix);

#endif
