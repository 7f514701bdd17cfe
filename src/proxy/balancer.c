/* SPDX-License-Identifier: Apache-2.0 */
/* Least-request (power of two choices), round robin and random endpoint pickers. */
#include "balancer.h"

#define NO_INDEX ((size_t)-1)

const char *mesh_lb_policy_str(enum mesh_lb_policy policy)
{
    switch (policy) {
    case MESH_LB_LEAST_REQUEST:
        return "least_request";
    case MESH_LB_ROUND_ROBIN:
        return "round_robin";
    case MESH_LB_RANDOM:
        return "random";
    }
    return "unknown";
}

void mesh_lb_state_init(struct mesh_lb_state *st, uint64_t seed)
{
    mesh_rng_seed(&st->rng, seed);
    st->rr_next = (size_t)mesh_rng_next(&st->rng);
}

static bool is_usable(mesh_lb_usable_fn usable, void *ctx, size_t i)
{
    return usable == NULL || usable(ctx, i);
}

/* A uniform index in [0, n) other than skip (NO_INDEX skips nothing). */
static size_t random_index(struct mesh_rng *rng, size_t n, size_t skip)
{
    if (skip >= n)
        return mesh_rng_below(rng, (uint32_t)n);
    size_t i = mesh_rng_below(rng, (uint32_t)(n - 1));
    return i >= skip ? i + 1 : i;
}

/* The k-th usable index other than skip, or the last usable one seen when fewer than k+1 are
 * usable now (the set changed since it was counted), or NO_INDEX. */
static size_t nth_usable(size_t n, size_t skip, size_t k, mesh_lb_usable_fn usable, void *ctx)
{
    size_t last = NO_INDEX;
    for (size_t i = 0; i < n; i++) {
        if (i == skip || !is_usable(usable, ctx, i))
            continue;
        if (k-- == 0)
            return i;
        last = i;
    }
    return last;
}

/* Uniform over the usable endpoints other than skip. The common case (the first draw is
 * usable) costs one draw and one check; otherwise count and choose among those usable, which
 * stays uniform where probing the next index would favour an ejected endpoint's neighbour. */
static size_t random_usable(struct mesh_rng *rng, size_t n, size_t skip, mesh_lb_usable_fn usable,
                            void *ctx)
{
    if (n == 0 || (n == 1 && skip == 0))
        return NO_INDEX;
    size_t i = random_index(rng, n, skip);
    if (is_usable(usable, ctx, i))
        return i;
    size_t count = 0;
    for (size_t j = 0; j < n; j++)
        if (j != skip && is_usable(usable, ctx, j))
            count++;
    if (count == 0)
        return NO_INDEX;
    return nth_usable(n, skip, mesh_rng_below(rng, (uint32_t)count), usable, ctx);
}

static size_t pick_least_request(struct mesh_lb_state *st, const uint32_t *active, size_t n,
                                 mesh_lb_usable_fn usable, void *ctx)
{
    size_t a = random_usable(&st->rng, n, NO_INDEX, usable, ctx);
    if (a == NO_INDEX)
        return NO_INDEX;
    size_t b = random_usable(&st->rng, n, a, usable, ctx);
    if (b == NO_INDEX)
        return a;
    if (active[a] != active[b])
        return active[a] < active[b] ? a : b;
    return (mesh_rng_next(&st->rng) >> 63) ? a : b;
}

static size_t pick_round_robin(struct mesh_lb_state *st, size_t n, mesh_lb_usable_fn usable,
                               void *ctx)
{
    size_t start = st->rr_next % n;
    for (size_t k = 0; k < n; k++) {
        size_t i = start + k < n ? start + k : start + k - n;
        if (is_usable(usable, ctx, i)) {
            st->rr_next = i + 1;
            return i;
        }
    }
    return NO_INDEX;
}

int mesh_lb_pick(enum mesh_lb_policy policy, struct mesh_lb_state *st, const uint32_t *active,
                 size_t n, mesh_lb_usable_fn usable, void *ctx)
{
    if (n == 0)
        return -1;
    size_t i;
    switch (policy) {
    case MESH_LB_ROUND_ROBIN:
        i = pick_round_robin(st, n, usable, ctx);
        break;
    case MESH_LB_RANDOM:
        i = random_usable(&st->rng, n, NO_INDEX, usable, ctx);
        break;
    case MESH_LB_LEAST_REQUEST:
    default:
        i = pick_least_request(st, active, n, usable, ctx);
        break;
    }
    return i == NO_INDEX ? -1 : (int)i;
}
