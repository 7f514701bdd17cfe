/* SPDX-License-Identifier: Apache-2.0 */
/* First-match route lookup, with a trie over path literals for large route tables, so that a
 * thousand routes cost a request little more than the few whose literal starts its path. */
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "snapshot.h"

#define INDEX_MIN_ROUTES 8
#define MAX_CANDIDATES   256 /* more, and the plain scan is as good */

static uint32_t child(const struct mesh_route_index *ix, uint32_t node, unsigned char byte)
{
    for (uint32_t c = ix->nodes[node].first_child; c; c = ix->nodes[c].next_sibling)
        if (ix->nodes[c].byte == byte)
            return c;
    return 0;
}

static uint32_t add_child(struct mesh_route_index *ix, uint32_t node, unsigned char byte)
{
    xgrow((void **)&ix->nodes, &ix->cap_nodes, ix->n_nodes + 1, sizeof(*ix->nodes));
    uint32_t c = (uint32_t)ix->n_nodes++;
    memset(&ix->nodes[c], 0, sizeof(ix->nodes[c]));
    ix->nodes[c].byte = byte;
    ix->nodes[c].next_sibling = ix->nodes[node].first_child;
    ix->nodes[node].first_child = c;
    return c;
}

static void add_route(uint32_t **list, uint32_t *n, uint32_t route)
{
    if (*n && (*list)[*n - 1] == route)
        return; /* a route with several matches on one literal */
    *list = xrealloc(*list, (*n + 1) * sizeof(**list));
    (*list)[(*n)++] = route;
}

static void insert(struct mesh_route_index *ix, const char *lit, size_t len, bool exact,
                   uint32_t route)
{
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t c = child(ix, node, (unsigned char)lit[i]);
        node = c ? c : add_child(ix, node, (unsigned char)lit[i]);
    }
    struct mesh_route_trie_node *n = &ix->nodes[node];
    if (exact)
        add_route(&n->exact_routes, &n->n_exact, route);
    else
        add_route(&n->prefix_routes, &n->n_prefix, route);
}

/* Routes that some request with no path literal could match go to the always-tried list. */
static bool indexable(const struct mesh_http_route *r)
{
    if (r->n_matches == 0)
        return false;
    for (size_t m = 0; m < r->n_matches; m++) {
        enum mesh_path_kind k = r->matches[m].path.kind;
        if (k != MESH_PATH_EXACT && k != MESH_PATH_PREFIX && k != MESH_PATH_GLOB)
            return false;
    }
    return true;
}

struct mesh_route_index *mesh_route_index_build(const struct mesh_http_route *routes, size_t n)
{
    if (n < INDEX_MIN_ROUTES)
        return NULL;
    struct mesh_route_index *ix = xcalloc(1, sizeof(*ix));
    xgrow((void **)&ix->nodes, &ix->cap_nodes, 1, sizeof(*ix->nodes));
    memset(&ix->nodes[0], 0, sizeof(ix->nodes[0]));
    ix->n_nodes = 1;
    for (uint32_t i = 0; i < n; i++) {
        const struct mesh_http_route *r = &routes[i];
        if (!indexable(r)) {
            add_route(&ix->always, &ix->n_always, i);
            continue;
        }
        for (size_t m = 0; m < r->n_matches; m++) {
            const struct mesh_path_match *pm = &r->matches[m].path;
            size_t len = pm->kind == MESH_PATH_GLOB ? strcspn(pm->value, "*") : strlen(pm->value);
            insert(ix, pm->value, len, pm->kind == MESH_PATH_EXACT, i);
        }
    }
    return ix;
}

void mesh_route_index_free(struct mesh_route_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->n_nodes; i++) {
        free(ix->nodes[i].prefix_routes);
        free(ix->nodes[i].exact_routes);
    }
    free(ix->nodes);
    free(ix->always);
    free(ix);
}

static bool route_matches(const struct mesh_route_rt *rt, const struct mesh_h1_message *m)
{
    if (rt->n_matchers == 0)
        return true;
    for (size_t k = 0; k < rt->n_matchers; k++)
        if (mesh_route_matcher_match(&rt->matchers[k], m->method, m->path, m->headers,
                                     m->n_headers))
            return true;
    return false;
}

static const struct mesh_route_rt *scan(const struct mesh_vhost *vh,
                                        const struct mesh_h1_message *m)
{
    for (size_t r = 0; r < vh->n_routes; r++)
        if (route_matches(&vh->routes[r], m))
            return &vh->routes[r];
    return NULL;
}

static bool collect(uint32_t *out, size_t *n, const uint32_t *routes, uint32_t count)
{
    if (*n + count > MAX_CANDIDATES)
        return false;
    if (count) /* a node with no routes has a NULL list */
        memcpy(out + *n, routes, count * sizeof(*routes));
    *n += count;
    return true;
}

/* The indexed routes whose literal starts path (or is path, for exact ones), unsorted. */
static bool candidates(const struct mesh_route_index *ix, struct mesh_slice path, uint32_t *out,
                       size_t *n)
{
    uint32_t node = 0;
    *n = 0;
    for (size_t i = 0; i < path.len; i++) {
        if (!(node = child(ix, node, (unsigned char)path.p[i])))
            return true;
        const struct mesh_route_trie_node *t = &ix->nodes[node];
        if (!collect(out, n, t->prefix_routes, t->n_prefix))
            return false;
        if (i + 1 == path.len && !collect(out, n, t->exact_routes, t->n_exact))
            return false;
    }
    return true;
}

static void sort_small(uint32_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t v = a[i];
        size_t j = i;
        for (; j > 0 && a[j - 1] > v; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

const struct mesh_route_rt *mesh_vhost_match(const struct mesh_vhost *vh,
                                             const struct mesh_h1_message *m)
{
    const struct mesh_route_index *ix = vh->index;
    uint32_t cand[MAX_CANDIDATES];
    size_t nc = 0;
    if (!ix || !candidates(ix, m->path, cand, &nc))
        return scan(vh, m);
    sort_small(cand, nc);
    /* Merge with the always-tried routes so that declaration order decides. */
    size_t i = 0, j = 0;
    while (i < nc || j < ix->n_always) {
        uint32_t next = (j >= ix->n_always || (i < nc && cand[i] < ix->always[j]))
                            ? cand[i++]
                            : ix->always[j++];
        if (route_matches(&vh->routes[next], m))
            return &vh->routes[next];
    }
    return NULL;
}
