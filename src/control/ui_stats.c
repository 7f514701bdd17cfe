/* SPDX-License-Identifier: Apache-2.0 */
/* Reading meshproxy's /stats into per-(service, route) traffic and per-(source, rule)
 * authorization counts, and the figures over two readings (ui_stats.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ui_stats.h"

/* A growable array of either entry type. */
struct vec {
    void *items;
    size_t len, cap, size;
};

static void *vec_push(struct vec *v)
{
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void *items = realloc(v->items, cap * v->size);
        if (!items)
            return NULL;
        v->items = items;
        v->cap = cap;
    }
    void *slot = (char *)v->items + v->len * v->size;
    memset(slot, 0, v->size);
    v->len++;
    return slot;
}

static void traffic_clear(struct mesh_ui_traffic *t)
{
    free(t->service);
    free(t->route);
}

static void authz_clear(struct mesh_ui_authz *a)
{
    free(a->source);
    free(a->rule);
}

void mesh_ui_reading_clear(struct mesh_ui_reading *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_traffic; i++)
        traffic_clear(&r->traffic[i]);
    for (size_t i = 0; i < r->n_authz; i++)
        authz_clear(&r->authz[i]);
    free(r->traffic);
    free(r->authz);
    memset(r, 0, sizeof(*r));
}

static int cmp_pair(const char *a1, const char *a2, const char *b1, const char *b2)
{
    int c = strcmp(a1, b1);
    return c ? c : strcmp(a2, b2);
}

static int cmp_traffic(const void *a, const void *b)
{
    const struct mesh_ui_traffic *x = a, *y = b;
    return cmp_pair(x->service, x->route, y->service, y->route);
}

static int cmp_authz(const void *a, const void *b)
{
    const struct mesh_ui_authz *x = a, *y = b;
    return cmp_pair(x->source, x->rule, y->source, y->rule);
}

const struct mesh_ui_traffic *mesh_ui_reading_find(const struct mesh_ui_reading *r,
                                                   const char *service, const char *route)
{
    struct mesh_ui_traffic key = {.service = (char *)service, .route = (char *)route};
    if (!r->n_traffic)
        return NULL;
    return bsearch(&key, r->traffic, r->n_traffic, sizeof(*r->traffic), cmp_traffic);
}

const struct mesh_ui_authz *mesh_ui_reading_find_authz(const struct mesh_ui_reading *r,
                                                       const char *source, const char *rule)
{
    struct mesh_ui_authz key = {.source = (char *)source, .rule = (char *)rule};
    if (!r->n_authz)
        return NULL;
    return bsearch(&key, r->authz, r->n_authz, sizeof(*r->authz), cmp_authz);
}

/* --- parsing --- */

struct parse {
    struct vec traffic, authz;
    char *errmsg;
};

/* Records "FAMILY[INDEX]: PROBLEM" (the first problem only). */
static enum mesh_err invalid(struct parse *p, const char *family, size_t i, const char *problem)
{
    if (!p->errmsg) {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s[%zu]: %s", family, i, problem);
        p->errmsg = strdup(buf);
    }
    return MESH_E_INVALID;
}

/* The (service, route) entry, created when new. Lookups are linear while parsing: a proxy
 * has a few (service, route) pairs per route, and the result is sorted once at the end. */
static struct mesh_ui_traffic *traffic_entry(struct parse *p, const char *service,
                                             const char *route)
{
    struct mesh_ui_traffic *items = p->traffic.items;
    for (size_t i = p->traffic.len; i-- > 0;)
        if (strcmp(items[i].service, service) == 0 && strcmp(items[i].route, route) == 0)
            return &items[i];
    char *s = strdup(service), *r = strdup(route);
    struct mesh_ui_traffic *t = s && r ? vec_push(&p->traffic) : NULL;
    if (!t) {
        free(s);
        free(r);
        return NULL;
    }
    t->service = s;
    t->route = r;
    return t;
}

static const char *label(json_t *series, const char *name)
{
    return json_string_value(json_object_get(series, name));
}

static bool counter_value(json_t *series, const char *name, uint64_t *out)
{
    json_t *v = json_object_get(series, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* A 5xx, or "000": the client got no answer. */
static bool failed_code(const char *code)
{
    return code[0] == '5' || strcmp(code, "000") == 0;
}

static enum mesh_err parse_requests(struct parse *p, json_t *arr)
{
    size_t i;
    json_t *series;
    json_array_foreach(arr, i, series)
    {
        const char *service = label(series, "service"), *route = label(series, "route");
        const char *code = label(series, "code");
        uint64_t value;
        if (!service || !route || !code || strlen(code) != 3 ||
            !counter_value(series, "value", &value))
            return invalid(p, "requests", i, "needs service, route, code (3 digits) and value");
        struct mesh_ui_traffic *t = traffic_entry(p, service, route);
        if (!t)
            return MESH_E_NOMEM;
        t->requests += value;
        if (failed_code(code))
            t->failures += value;
    }
    return MESH_OK;
}

/* The bucket index of a `le` key, by the proxy's own bounds; -1 when it is not one of them. */
static int bucket_index(const char *le)
{
    if (strcmp(le, "+Inf") == 0)
        return MESH_STATS_BUCKETS - 1;
    char *end = NULL;
    double s = strtod(le, &end);
    if (!end || *end || !(s > 0))
        return -1;
    for (unsigned i = 0; i + 1 < MESH_STATS_BUCKETS; i++) {
        double bound = (double)mesh_stats_bucket_bound_us(i);
        if (fabs(s * 1e6 - bound) < 0.5)
            return (int)i;
    }
    return -1;
}

static enum mesh_err parse_durations(struct parse *p, json_t *arr)
{
    static const char what[] = "request_duration_seconds";
    size_t i;
    json_t *series;
    json_array_foreach(arr, i, series)
    {
        const char *service = label(series, "service"), *route = label(series, "route");
        json_t *buckets = json_object_get(series, "buckets");
        json_t *sum = json_object_get(series, "sum");
        if (!service || !route || !json_is_object(buckets) || !json_is_number(sum))
            return invalid(p, what, i, "needs service, route, sum and buckets");
        uint64_t cumulative[MESH_STATS_BUCKETS];
        bool seen[MESH_STATS_BUCKETS] = {false};
        const char *le;
        json_t *count;
        json_object_foreach(buckets, le, count)
        {
            int b = bucket_index(le);
            if (b < 0 || !json_is_integer(count) || json_integer_value(count) < 0)
                return invalid(p, what, i, "buckets: not meshproxy's (0.0005 .. 10, +Inf)");
            cumulative[b] = (uint64_t)json_integer_value(count);
            seen[b] = true;
        }
        for (unsigned b = 0; b < MESH_STATS_BUCKETS; b++)
            if (!seen[b] || (b && cumulative[b] < cumulative[b - 1]))
                return invalid(p, what, i, "buckets: not meshproxy's cumulative buckets");
        struct mesh_ui_traffic *t = traffic_entry(p, service, route);
        if (!t)
            return MESH_E_NOMEM;
        for (unsigned b = 0; b < MESH_STATS_BUCKETS; b++)
            t->buckets[b] += cumulative[b] - (b ? cumulative[b - 1] : 0);
        t->sum_s += json_number_value(sum);
    }
    return MESH_OK;
}

static enum mesh_err parse_authz(struct parse *p, json_t *arr)
{
    size_t i;
    json_t *series;
    json_array_foreach(arr, i, series)
    {
        const char *source = label(series, "source"), *rule = label(series, "rule");
        const char *result = label(series, "result");
        uint64_t value;
        if (!source || !rule || !result || !counter_value(series, "value", &value))
            return invalid(p, "authz_requests", i, "needs source, rule, result and value");
        struct mesh_ui_authz *items = p->authz.items, *a = NULL;
        for (size_t k = 0; k < p->authz.len && !a; k++)
            if (strcmp(items[k].source, source) == 0 && strcmp(items[k].rule, rule) == 0)
                a = &items[k];
        if (!a) {
            char *s = strdup(source), *r = strdup(rule);
            a = s && r ? vec_push(&p->authz) : NULL;
            if (!a) {
                free(s);
                free(r);
                return MESH_E_NOMEM;
            }
            a->source = s;
            a->rule = r;
        }
        if (strcmp(result, "deny") == 0)
            a->denied += value;
        else
            a->allowed += value;
    }
    return MESH_OK;
}

enum mesh_err mesh_ui_reading_parse(const char *json, size_t len, uint64_t at_ms,
                                    struct mesh_ui_reading *out, char **errmsg)
{
    struct parse p = {.traffic = {.size = sizeof(struct mesh_ui_traffic)},
                      .authz = {.size = sizeof(struct mesh_ui_authz)}};
    json_error_t jerr;
    enum mesh_err err = MESH_E_INVALID;

    mesh_ui_reading_clear(out);
    *errmsg = NULL;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        char buf[300];
        snprintf(buf, sizeof(buf), "not JSON: %d:%d: %s", jerr.line, jerr.column, jerr.text);
        p.errmsg = strdup(buf);
        goto out;
    }
    json_t *requests = json_object_get(root, "requests");
    json_t *durations = json_object_get(root, "request_duration_seconds");
    json_t *authz = json_object_get(root, "authz_requests");
    if (!json_is_array(requests) || (durations && !json_is_array(durations)) ||
        (authz && !json_is_array(authz))) {
        p.errmsg = strdup("not a meshproxy /stats answer: no \"requests\" array");
        goto out;
    }
    err = parse_requests(&p, requests);
    if (err == MESH_OK && durations)
        err = parse_durations(&p, durations);
    if (err == MESH_OK && authz)
        err = parse_authz(&p, authz);
    if (err != MESH_OK)
        goto out;
    if (p.traffic.len > 1)
        qsort(p.traffic.items, p.traffic.len, p.traffic.size, cmp_traffic);
    if (p.authz.len > 1)
        qsort(p.authz.items, p.authz.len, p.authz.size, cmp_authz);
    out->at_ms = at_ms;
    out->traffic = p.traffic.items;
    out->n_traffic = p.traffic.len;
    out->authz = p.authz.items;
    out->n_authz = p.authz.len;
    p.traffic.items = p.authz.items = NULL;
    p.traffic.len = p.authz.len = 0;
out:
    for (size_t i = 0; i < p.traffic.len; i++)
        traffic_clear(&((struct mesh_ui_traffic *)p.traffic.items)[i]);
    for (size_t i = 0; i < p.authz.len; i++)
        authz_clear(&((struct mesh_ui_authz *)p.authz.items)[i]);
    free(p.traffic.items);
    free(p.authz.items);
    json_decref(root);
    if (err == MESH_E_INVALID)
        *errmsg = p.errmsg ? p.errmsg : strdup("not a meshproxy /stats answer");
    else
        free(p.errmsg);
    return err;
}

/* --- figures --- */

bool mesh_ui_reading_restarted(const struct mesh_ui_reading *later,
                               const struct mesh_ui_reading *earlier)
{
    for (size_t i = 0; i < earlier->n_traffic; i++) {
        const struct mesh_ui_traffic *e = &earlier->traffic[i];
        const struct mesh_ui_traffic *l = mesh_ui_reading_find(later, e->service, e->route);
        if (!l || l->requests < e->requests || l->failures < e->failures)
            return true;
        for (unsigned b = 0; b < MESH_STATS_BUCKETS; b++)
            if (l->buckets[b] < e->buckets[b])
                return true;
    }
    for (size_t i = 0; i < earlier->n_authz; i++) {
        const struct mesh_ui_authz *e = &earlier->authz[i];
        const struct mesh_ui_authz *l = mesh_ui_reading_find_authz(later, e->source, e->rule);
        if (!l || l->allowed < e->allowed || l->denied < e->denied)
            return true;
    }
    return false;
}

/* a - b for counters that never go backwards; 0 rather than a wrap should they (a caller that
 * did not check mesh_ui_reading_restarted). */
static uint64_t delta(uint64_t a, uint64_t b)
{
    return a >= b ? a - b : 0;
}

void mesh_ui_figures_add(struct mesh_ui_figures *f, const struct mesh_ui_traffic *now,
                         const struct mesh_ui_traffic *base, uint64_t span_ms)
{
    static const struct mesh_ui_traffic zero;
    const struct mesh_ui_traffic *b = base ? base : &zero;
    uint64_t requests = delta(now->requests, b->requests);
    f->requests += requests;
    f->failures += delta(now->failures, b->failures);
    for (unsigned i = 0; i < MESH_STATS_BUCKETS; i++)
        f->buckets[i] += delta(now->buckets[i], b->buckets[i]);
    f->sum_s += now->sum_s > b->sum_s ? now->sum_s - b->sum_s : 0.0;
    if (span_ms) {
        f->rps += (double)requests * 1000.0 / (double)span_ms;
        f->has_rate = true;
    }
}

double mesh_ui_figures_success_rate(const struct mesh_ui_figures *f)
{
    if (!f->requests)
        return NAN;
    uint64_t failures = f->failures < f->requests ? f->failures : f->requests;
    return (double)(f->requests - failures) / (double)f->requests;
}

double mesh_ui_figures_quantile(const struct mesh_ui_figures *f, double q)
{
    return mesh_stats_quantile(f->buckets, q);
}
