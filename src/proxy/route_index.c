/* SPDX-License-Identifier: Apache-2.0 */
/* First-match route lookup, with an index by first path segment for large route tables so that
 * a thousand routes cost a request no more than a handful. */
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "snapshot.h"

#define INDEX_MIN_ROUTES 8

/* The complete first segment ("/api") a matcher's paths all start with, or 0 when there is none:
 * regex, no path, or a literal prefix that stops inside its first segment ("/ap*"). */
static size_t literal_segment(const struct mesh_path_match *pm, const char **seg)
{
    const char *v = pm->value;
    size_t literal = 0;
    switch (pm->kind) {
    case MESH_PATH_EXACT: literal = strlen(v); break;
    case MESH_PATH_PREFIX: literal = strlen(v); break;
    case MESH_PATH_GLOB: literal = strcspn(v, "*"); break;
    default: return 0;
    }
    if (literal < 2 || v[0] != '/')
        return 0;
    const char *slash = memchr(v + 1, '/', literal - 1);
    *seg = v;
    if (slash)
        return (size_t)(slash - v);
    return pm->kind == MESH_PATH_EXACT ? literal : 0; /* "/api" exact is a whole segment */
}

static struct mesh_slice request_segment(struct mesh_slice path)
{
    if (path.len < 2 || path.p[0] != '/')
        return path;
    const char *slash = memchr(path.p + 1, '/', path.len - 1);
    return mesh_slice_make(path.p, slash ? (size_t)(slash - path.p) : path.len);
}

static uint64_t segment_hash(const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static struct mesh_route_bucket *bucket_for(struct mesh_route_index *ix, const char *seg,
                                            size_t len, bool create)
{
    size_t slot = segment_hash(seg, len) & (ix->cap - 1);
    for (; ix->buckets[slot].segment; slot = (slot + 1) & (ix->cap - 1)) {
        struct mesh_route_bucket *b = &ix->buckets[slot];
        if (b->len == len && memcmp(b->segment, seg, len) == 0)
            return b;
    }
    if (!create)
        return NULL;
    ix->buckets[slot].segment = xstrndup(seg, len);
    ix->buckets[slot].len = len;
    return &ix->buckets[slot];
}

static void bucket_add(struct mesh_route_bucket *b, uint32_t route)
{
    if (b->n && b->routes[b->n - 1] == route)
        return; /* a route with several matchers on one segment */
    b->routes = xrealloc(b->routes, (b->n + 1) * sizeof(*b->routes));
    b->routes[b->n++] = route;
}

/* Indexes route i of a VirtualService by the first segments of its matches. */
static void index_route(struct mesh_route_index *ix, const struct mesh_http_route *r, uint32_t i)
{
    const char *segs[64];
    size_t lens[64];
    bool indexable = r->n_matches > 0 && r->n_matches <= 64;
    for (size_t m = 0; indexable && m < r->n_matches; m++)
        indexable = (lens[m] = literal_segment(&r->matches[m].path, &segs[m])) > 0;
    if (!indexable) {
        ix->always = xrealloc(ix->always, (ix->n_always + 1) * sizeof(*ix->always));
        ix->always[ix->n_always++] = i;
        return;
    }
    for (size_t m = 0; m < r->n_matches; m++)
        bucket_add(bucket_for(ix, segs[m], lens[m], true), i);
}

struct mesh_route_index *mesh_route_index_build(const struct mesh_http_route *routes, size_t n)
{
    if (n < INDEX_MIN_ROUTES)
        return NULL;
    struct mesh_route_index *ix = xcalloc(1, sizeof(*ix));
    ix->cap = 16;
    while (ix->cap < n * 2)
        ix->cap *= 2;
    ix->buckets = xcalloc(ix->cap, sizeof(*ix->buckets));
    for (size_t i = 0; i < n; i++)
        index_route(ix, &routes[i], (uint32_t)i);
    return ix;
}

void mesh_route_index_free(struct mesh_route_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->cap; i++) {
        free(ix->buckets[i].segment);
        free(ix->buckets[i].routes);
    }
    free(ix->buckets);
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

const struct mesh_route_rt *mesh_vhost_match(const struct mesh_vhost *vh,
                                             const struct mesh_h1_message *m)
{
    const struct mesh_route_index *ix = vh->index;
    if (!ix) {
        for (size_t r = 0; r < vh->n_routes; r++)
            if (route_matches(&vh->routes[r], m))
                return &vh->routes[r];
        return NULL;
    }
    struct mesh_slice seg = request_segment(m->path);
    const struct mesh_route_bucket *b =
        bucket_for((struct mesh_route_index *)ix, seg.p, seg.len, false);
    size_t i = 0, j = 0, nb = b ? b->n : 0;
    /* Merge the two ascending lists so that declaration order decides. */
    while (i < nb || j < ix->n_always) {
        uint32_t next = (j >= ix->n_always || (i < nb && b->routes[i] < ix->always[j]))
                            ? b->routes[i++]
                            : ix->always[j++];
        if (route_matches(&vh->routes[next], m))
            return &vh->routes[next];
    }
    return NULL;
}
