/* SPDX-License-Identifier: Apache-2.0 */
/* VirtualService: its field tables, the path and header matcher forms, its cross-field rules
 * (a destination per route, weights summing to 100, unique route names) and its constructors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xalloc.h"
#include "kinds.h"
#include "mesh/virtual_service.h"

/* --- path: an exact path, a glob with '*', or {exact|prefix|regex: …} --- */

static const char *const path_keys[] = {"exact", "prefix", "regex"};

static bool path_value_ok(struct mesh_decoder *d, const struct mesh_node *n, const char *path,
                          enum mesh_path_kind kind)
{
    char why[300];
    if (n->type != MESH_NODE_SCALAR || n->scalar_kind == MESH_SCALAR_NULL) {
        mesh_decoder_error(d, n, path, "must be a string");
        return false;
    }
    if (kind == MESH_PATH_REGEX) {
        if (mesh_regex_ok(n->text, why, sizeof(why)))
            return true;
        mesh_decoder_error(d, n, path, "%s", why);
        return false;
    }
    if (n->text[0] != '/') {
        mesh_decoder_error(d, n, path, "path \"%s\" must start with \"/\"", n->text);
        return false;
    }
    return true;
}

static void path_decode_map(struct mesh_decoder *d, const struct mesh_node *n,
                            struct mesh_path_match *pm, const char *path)
{
    if (n->len != 1) {
        mesh_decoder_error(d, n, path, "must have exactly one of exact, prefix, regex");
        return;
    }
    const struct mesh_node_pair *p = &n->pairs[0];
    char cp[MESH_PATH_LEN];
    mesh_path_join(cp, path, p->key->text);
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(p->key->text, path_keys[i]) != 0)
            continue;
        enum mesh_path_kind kind =
            (enum mesh_path_kind[]){MESH_PATH_EXACT, MESH_PATH_PREFIX, MESH_PATH_REGEX}[i];
        if (path_value_ok(d, p->value, cp, kind)) {
            pm->kind = kind;
            pm->value = xstrdup(p->value->text);
        }
        return;
    }
    const char *hint = mesh_did_you_mean(p->key->text, path_keys, 3);
    mesh_decoder_error(
        d, p->key, cp, "unknown path match \"%s\"%s%s%s, must be exact, prefix or regex",
        p->key->text, hint ? " (did you mean \"" : "", hint ? hint : "", hint ? "\"?)" : "");
}

static void path_decode(struct mesh_decoder *d, const struct mesh_node *n, void *base,
                        const struct mesh_field *f, const char *path)
{
    struct mesh_path_match *pm = (struct mesh_path_match *)((char *)base + f->offset);
    if (n->type == MESH_NODE_MAP) {
        path_decode_map(d, n, pm, path);
        return;
    }
    if (n->type != MESH_NODE_SCALAR || n->scalar_kind == MESH_SCALAR_NULL) {
        mesh_decoder_error(d, n, path,
                           "must be a path (\"/a\", \"/api/v1/*\") or {exact|prefix|regex: …}");
        return;
    }
    if (!path_value_ok(d, n, path, MESH_PATH_EXACT))
        return;
    pm->kind = strchr(n->text, '*') ? MESH_PATH_GLOB : MESH_PATH_EXACT;
    pm->value = xstrdup(n->text);
}

static struct mesh_node *path_encode(const void *base, const struct mesh_field *f)
{
    const struct mesh_path_match *pm =
        (const struct mesh_path_match *)((const char *)base + f->offset);
    const char *v = pm->value ? pm->value : "";
    struct mesh_node *map = NULL;
    switch (pm->kind) {
    case MESH_PATH_ANY:
        return NULL;
    case MESH_PATH_GLOB:
        return mesh_node_str(v);
    case MESH_PATH_EXACT:
        if (!strchr(v, '*'))
            return mesh_node_str(v);
        map = mesh_node_map();
        mesh_node_map_set(map, "exact", mesh_node_str(v));
        return map;
    case MESH_PATH_PREFIX:
    case MESH_PATH_REGEX:
        map = mesh_node_map();
        mesh_node_map_set(map, pm->kind == MESH_PATH_PREFIX ? "prefix" : "regex", mesh_node_str(v));
        return map;
    }
    return mesh_node_int((long long)pm->kind); /* out of range: let validation name it */
}

static void path_copy(void *dst, const void *src, const struct mesh_field *f)
{
    struct mesh_path_match *d = (struct mesh_path_match *)((char *)dst + f->offset);
    const struct mesh_path_match *s =
        (const struct mesh_path_match *)((const char *)src + f->offset);
    d->kind = s->kind;
    d->value = xstrdup(s->value);
}

static void path_free(void *base, const struct mesh_field *f)
{
    struct mesh_path_match *pm = (struct mesh_path_match *)((char *)base + f->offset);
    free(pm->value);
    pm->value = NULL;
}

static const struct mesh_codec path_codec = {path_decode, path_encode, path_copy, path_free};

/* --- headers: {name: "exact" | {exact|prefix|regex: v} | {present: true}} --- */

static const char *const header_keys[] = {"exact", "prefix", "regex", "present"};

static bool header_decode_matcher(struct mesh_decoder *d, const struct mesh_node *n,
                                  struct mesh_header_match *hm, const char *path)
{
    if (n->type == MESH_NODE_SCALAR && n->scalar_kind != MESH_SCALAR_NULL) {
        hm->kind = MESH_HEADER_EXACT;
        hm->value = xstrdup(n->text);
        return true;
    }
    if (n->type != MESH_NODE_MAP || n->len != 1) {
        mesh_decoder_error(d, n, path, "must have exactly one of exact, prefix, regex, present");
        return false;
    }
    const struct mesh_node_pair *p = &n->pairs[0];
    const struct mesh_node *v = p->value;
    char cp[MESH_PATH_LEN], why[300];
    mesh_path_join(cp, path, p->key->text);
    size_t k = 0;
    while (k < 4 && strcmp(p->key->text, header_keys[k]) != 0)
        k++;
    if (k == 4) {
        const char *hint = mesh_did_you_mean(p->key->text, header_keys, 4);
        mesh_decoder_error(d, p->key, cp,
                           "unknown header match \"%s\"%s%s%s, must be exact, prefix, regex or "
                           "present",
                           p->key->text, hint ? " (did you mean \"" : "", hint ? hint : "",
                           hint ? "\"?)" : "");
        return false;
    }
    if (k == MESH_HEADER_PRESENT) {
        if (v->type != MESH_NODE_SCALAR || v->scalar_kind != MESH_SCALAR_BOOL ||
            (v->text[0] != 't' && v->text[0] != 'T')) {
            mesh_decoder_error(d, v, cp, "present must be true");
            return false;
        }
        hm->kind = MESH_HEADER_PRESENT;
        return true;
    }
    if (v->type != MESH_NODE_SCALAR || v->scalar_kind == MESH_SCALAR_NULL) {
        mesh_decoder_error(d, v, cp, "must be a string");
        return false;
    }
    if (k == MESH_HEADER_REGEX && !mesh_regex_ok(v->text, why, sizeof(why))) {
        mesh_decoder_error(d, v, cp, "%s", why);
        return false;
    }
    hm->kind = (enum mesh_header_match_kind)k;
    hm->value = xstrdup(v->text);
    return true;
}

static bool header_name_taken(const struct mesh_header_match *hs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(hs[i].name, name) == 0)
            return true;
    return false;
}

static void headers_decode(struct mesh_decoder *d, const struct mesh_node *n, void *base,
                           const struct mesh_field *f, const char *path)
{
    struct mesh_header_match **out = (struct mesh_header_match **)((char *)base + f->offset);
    size_t *count = (size_t *)((char *)base + f->count_offset);
    if (n->type != MESH_NODE_MAP) {
        mesh_decoder_error(d, n, path, "must be a mapping of header name to matcher");
        return;
    }
    *out = xcalloc(n->len ? n->len : 1, sizeof(**out));
    for (size_t i = 0; i < n->len; i++) {
        const struct mesh_node *key = n->pairs[i].key;
        char cp[MESH_PATH_LEN], why[300];
        mesh_path_join(cp, path, key->text);
        if (!mesh_text_ok(MESH_CHECK_HEADER_NAME, key->text, why, sizeof(why))) {
            mesh_decoder_error(d, key, cp, "%s", why);
            continue;
        }
        if (header_name_taken(*out, *count, key->text)) {
            mesh_decoder_error(d, key, cp, "duplicate header \"%s\" (names are case-insensitive)",
                               key->text);
            continue;
        }
        struct mesh_header_match hm = {0};
        if (!header_decode_matcher(d, n->pairs[i].value, &hm, cp))
            continue;
        hm.name = xstrdup(key->text);
        (*out)[(*count)++] = hm;
    }
}

static struct mesh_node *headers_encode(const void *base, const struct mesh_field *f)
{
    const struct mesh_header_match *hs =
        *(struct mesh_header_match *const *)((const char *)base + f->offset);
    size_t n = *(const size_t *)((const char *)base + f->count_offset);
    if (!n || !hs)
        return NULL;
    struct mesh_node *map = mesh_node_map();
    for (size_t i = 0; i < n; i++) {
        struct mesh_node *m = mesh_node_map();
        if (hs[i].kind == MESH_HEADER_PRESENT)
            mesh_node_map_set(m, "present", mesh_node_bool(true));
        else if ((unsigned)hs[i].kind < 4)
            mesh_node_map_set(m, header_keys[hs[i].kind],
                              mesh_node_str(hs[i].value ? hs[i].value : ""));
        else
            mesh_node_map_set(m, "kind", mesh_node_int(hs[i].kind)); /* validation names it */
        mesh_node_map_set(map, hs[i].name ? hs[i].name : "", m);
    }
    return map;
}

static void headers_copy(void *dst, const void *src, const struct mesh_field *f)
{
    const struct mesh_header_match *from =
        *(struct mesh_header_match *const *)((const char *)src + f->offset);
    size_t n = *(const size_t *)((const char *)src + f->count_offset);
    struct mesh_header_match *to = n && from ? xcalloc(n, sizeof(*to)) : NULL;
    for (size_t i = 0; to && i < n; i++) {
        to[i].kind = from[i].kind;
        to[i].name = xstrdup(from[i].name);
        to[i].value = xstrdup(from[i].value);
    }
    *(struct mesh_header_match **)((char *)dst + f->offset) = to;
    *(size_t *)((char *)dst + f->count_offset) = to ? n : 0;
}

static void headers_free(void *base, const struct mesh_field *f)
{
    struct mesh_header_match **hs = (struct mesh_header_match **)((char *)base + f->offset);
    size_t *n = (size_t *)((char *)base + f->count_offset);
    for (size_t i = 0; *hs && i < *n; i++) {
        free((*hs)[i].name);
        free((*hs)[i].value);
    }
    free(*hs);
    *hs = NULL;
    *n = 0;
}

static const struct mesh_codec headers_codec = {headers_decode, headers_encode, headers_copy,
                                                headers_free};

/* --- field tables --- */

static const struct mesh_field destination_fields[] = {
    {.name = "host",
     .type = MESH_F_STRING,
     .offset = offsetof(struct mesh_route_destination, host),
     .check = MESH_CHECK_SERVICE_HOST,
     .required = true},
    {.name = "weight",
     .type = MESH_F_INT_OPT,
     .offset = offsetof(struct mesh_route_destination, weight),
     .min = 0,
     .max = 100},
};

static const struct mesh_schema destination_schema = {sizeof(struct mesh_route_destination),
                                                      MESH_FIELDS(destination_fields), -1, NULL};

static const struct mesh_field match_fields[] = {
    {.name = "path",
     .type = MESH_F_CUSTOM,
     .offset = offsetof(struct mesh_route_match, path),
     .codec = &path_codec},
    {.name = "headers",
     .type = MESH_F_CUSTOM,
     .offset = offsetof(struct mesh_route_match, headers),
     .count_offset = offsetof(struct mesh_route_match, n_headers),
     .codec = &headers_codec},
    {.name = "method",
     .type = MESH_F_STRING,
     .offset = offsetof(struct mesh_route_match, method),
     .check = MESH_CHECK_METHOD},
};

static const struct mesh_schema match_schema = {sizeof(struct mesh_route_match),
                                                MESH_FIELDS(match_fields), -1, NULL};

static const struct mesh_field retry_fields[] = {
    {.name = "attempts",
     .type = MESH_F_UINT,
     .offset = offsetof(struct mesh_retry_policy, attempts),
     .min = 0,
     .max = 100},
    {.name = "per_try_timeout",
     .type = MESH_F_DURATION,
     .offset = offsetof(struct mesh_retry_policy, per_try_timeout_ms)},
    {.name = "retry_on",
     .type = MESH_F_STRINGS,
     .offset = offsetof(struct mesh_retry_policy, retry_on),
     .check = MESH_CHECK_RETRY_ON},
};

static const struct mesh_schema retry_schema = {sizeof(struct mesh_retry_policy),
                                                MESH_FIELDS(retry_fields), -1, NULL};

static void route_validate(struct mesh_decoder *d, const void *obj, const struct mesh_node *node,
                           const char *path)
{
    const struct mesh_http_route *r = obj;
    const struct mesh_node *dests = mesh_node_map_get(node, "destinations");
    char dp[MESH_PATH_LEN];
    mesh_path_join(dp, path, "destinations");
    if (r->n_destinations == 0) {
        mesh_decoder_error(d, dests ? dests : node, dests ? dp : path,
                           "needs at least one destination");
        return;
    }
    if (r->n_destinations == 1 && r->destinations[0].weight == MESH_UNSET)
        return; /* a lone destination takes all the traffic */
    int sum = 0;
    for (size_t i = 0; i < r->n_destinations; i++)
        sum += r->destinations[i].weight == MESH_UNSET ? 0 : r->destinations[i].weight;
    if (sum != 100)
        mesh_decoder_error(d, dests, dp, "weights sum to %d, must be 100", sum);
}

static const struct mesh_field route_fields[] = {
    {.name = "name",
     .type = MESH_F_STRING,
     .offset = offsetof(struct mesh_http_route, name),
     .check = MESH_CHECK_DNS_LABEL},
    {.name = "matches",
     .type = MESH_F_OBJECTS,
     .offset = offsetof(struct mesh_http_route, matches),
     .count_offset = offsetof(struct mesh_http_route, n_matches),
     .schema = &match_schema},
    {.name = "destinations",
     .type = MESH_F_OBJECTS,
     .offset = offsetof(struct mesh_http_route, destinations),
     .count_offset = offsetof(struct mesh_http_route, n_destinations),
     .schema = &destination_schema},
    {.name = "timeout",
     .type = MESH_F_DURATION,
     .offset = offsetof(struct mesh_http_route, timeout_ms)},
    {.name = "retries",
     .type = MESH_F_OBJECT,
     .offset = offsetof(struct mesh_http_route, retries),
     .schema = &retry_schema},
};

static const struct mesh_schema route_schema = {sizeof(struct mesh_http_route),
                                                MESH_FIELDS(route_fields), -1, route_validate};

static void check_unique_route_names(struct mesh_decoder *d, const struct mesh_virtual_service *vs,
                                     const struct mesh_node *routes, const char *path)
{
    for (size_t i = 1; i < vs->n_http_routes; i++) {
        const char *name = vs->http_routes[i].name;
        for (size_t j = 0; name && j < i; j++) {
            if (!vs->http_routes[j].name || strcmp(vs->http_routes[j].name, name) != 0)
                continue;
            const struct mesh_node *item = routes && i < routes->len ? routes->items[i] : NULL;
            const struct mesh_node *at = item ? mesh_node_map_get(item, "name") : NULL;
            char routes_path[MESH_PATH_LEN], item_path[MESH_PATH_LEN], p[MESH_PATH_LEN];
            mesh_path_join(routes_path, path, "http_routes");
            mesh_path_index(item_path, routes_path, i);
            mesh_path_join(p, item_path, "name");
            mesh_decoder_error(d, at, p,
                               "duplicate route name \"%s\" (first at %s.http_routes[%zu])", name,
                               path, j);
            break;
        }
    }
}

static void virtual_service_validate(struct mesh_decoder *d, const void *obj,
                                     const struct mesh_node *node, const char *path)
{
    const struct mesh_virtual_service *vs = obj;
    char p[MESH_PATH_LEN];
    if (vs->hosts.len == 0) {
        const struct mesh_node *hosts = mesh_node_map_get(node, "hosts");
        mesh_path_join(p, path, "hosts");
        mesh_decoder_error(d, hosts ? hosts : node, hosts ? p : path, "needs at least one host");
    }
    const struct mesh_node *routes = mesh_node_map_get(node, "http_routes");
    if (vs->n_http_routes == 0) {
        mesh_path_join(p, path, "http_routes");
        mesh_decoder_error(d, routes ? routes : node, routes ? p : path,
                           "needs at least one route");
    }
    check_unique_route_names(d, vs, routes, path);
}

static const struct mesh_field virtual_service_fields[] = {
    {.name = "hosts",
     .type = MESH_F_STRINGS,
     .offset = offsetof(struct mesh_virtual_service, hosts),
     .check = MESH_CHECK_HOST},
    {.name = "gateways",
     .type = MESH_F_STRINGS,
     .offset = offsetof(struct mesh_virtual_service, gateways),
     .check = MESH_CHECK_GATEWAY_REF},
    {.name = "http_routes",
     .type = MESH_F_OBJECTS,
     .offset = offsetof(struct mesh_virtual_service, http_routes),
     .count_offset = offsetof(struct mesh_virtual_service, n_http_routes),
     .schema = &route_schema},
};

const struct mesh_schema mesh_virtual_service_schema = {sizeof(struct mesh_virtual_service),
                                                        MESH_FIELDS(virtual_service_fields), -1,
                                                        virtual_service_validate};

/* --- constructors --- */

struct mesh_virtual_service *mesh_virtual_service_new(const char *name, const char *ns)
{
    return (struct mesh_virtual_service *)mesh_resource_new(MESH_KIND_VIRTUAL_SERVICE, name, ns);
}

void mesh_virtual_service_free(struct mesh_virtual_service *vs)
{
    mesh_resource_free(vs ? &vs->res : NULL);
}

struct mesh_http_route *mesh_virtual_service_add_route(struct mesh_virtual_service *vs,
                                                       const char *route_name)
{
    struct mesh_http_route *r =
        mesh_schema_append((void **)&vs->http_routes, &vs->n_http_routes, &route_schema);
    if (r && route_name && !(r->name = strdup(route_name))) {
        vs->n_http_routes--;
        return NULL;
    }
    return r;
}

struct mesh_route_match *mesh_http_route_add_match(struct mesh_http_route *route, const char *path)
{
    struct mesh_route_match *m =
        mesh_schema_append((void **)&route->matches, &route->n_matches, &match_schema);
    if (!m || !path)
        return m;
    m->path.kind = strchr(path, '*') ? MESH_PATH_GLOB : MESH_PATH_EXACT;
    if (!(m->path.value = strdup(path))) {
        route->n_matches--;
        return NULL;
    }
    return m;
}

struct mesh_header_match *mesh_route_match_add_header(struct mesh_route_match *match,
                                                      const char *name,
                                                      enum mesh_header_match_kind kind,
                                                      const char *value)
{
    struct mesh_header_match *hs = realloc(match->headers, (match->n_headers + 1) * sizeof(*hs));
    if (!hs)
        return NULL;
    match->headers = hs;
    struct mesh_header_match *h = &hs[match->n_headers];
    h->kind = kind;
    h->name = strdup(name);
    h->value = value ? strdup(value) : NULL;
    if (!h->name || (value && !h->value)) {
        free(h->name);
        free(h->value);
        return NULL;
    }
    match->n_headers++;
    return h;
}

struct mesh_route_destination *mesh_http_route_add_destination(struct mesh_http_route *route,
                                                               const char *host, int weight)
{
    struct mesh_route_destination *dst = mesh_schema_append(
        (void **)&route->destinations, &route->n_destinations, &destination_schema);
    if (!dst)
        return NULL;
    dst->weight = weight;
    if (!(dst->host = strdup(host))) {
        route->n_destinations--;
        return NULL;
    }
    return dst;
}
