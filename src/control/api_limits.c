/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's request limits: the admin bearer token and a token bucket per peer address. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/xalloc.h"

struct mesh_api_bucket {
    double tokens;
    uint64_t last_ms;
};

/* Compares without an early exit, so the time taken says nothing about how much matched. */
static bool same_secret(const char *a, size_t a_len, const char *b, size_t b_len)
{
    unsigned char diff = a_len != b_len;
    for (size_t i = 0; i < a_len && i < b_len; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

bool mesh_api_token_ok(const struct mesh_api *api, const struct mesh_httpd_req *req)
{
    struct mesh_slice v = mesh_httpd_header(req, "authorization");
    static const char scheme[] = "bearer";
    size_t sl = sizeof(scheme) - 1;
    if (v.len <= sl || !mesh_slice_eq_cstr_nocase(mesh_slice_make(v.p, sl), scheme) ||
        (v.p[sl] != ' ' && v.p[sl] != '\t'))
        return false;
    size_t i = sl;
    while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t'))
        i++;
    return same_secret(v.p + i, v.len - i, api->token, strlen(api->token));
}

static void refill(const struct mesh_api *api, struct mesh_api_bucket *b, uint64_t now)
{
    if (now > b->last_ms) {
        b->tokens += (double)(now - b->last_ms) * api->opt.rate / 1000.0;
        if (b->tokens > api->opt.burst)
            b->tokens = api->opt.burst;
    }
    b->last_ms = now;
}

bool mesh_api_rate_take(struct mesh_api *api, const char *peer, uint64_t *retry_after_s)
{
    if (api->opt.rate <= 0)
        return true;
    uint64_t now = mesh_loop_now_ms(api->loop);
    struct mesh_api_bucket *b = mesh_api_map_get(&api->buckets, peer);
    if (!b) {
        b = xcalloc(1, sizeof(*b));
        b->tokens = api->opt.burst;
        b->last_ms = now;
        mesh_api_map_put(&api->buckets, peer, b);
    }
    refill(api, b, now);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    double wait_s = (1.0 - b->tokens) / api->opt.rate;
    *retry_after_s = (uint64_t)ceil(wait_s);
    if (*retry_after_s < 1)
        *retry_after_s = 1;
    return false;
}

static bool bucket_full(const char *key, void *value, void *arg)
{
    struct mesh_api *api = arg;
    struct mesh_api_bucket *b = value;
    (void)key;
    refill(api, b, mesh_loop_now_ms(api->loop));
    if (b->tokens < api->opt.burst)
        return false;
    free(b); /* a full bucket is what a new peer gets: nothing to remember */
    return true;
}

void mesh_api_rate_sweep(struct mesh_api *api)
{
    mesh_api_map_sweep(&api->buckets, bucket_full, api);
}
