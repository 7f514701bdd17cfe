/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus' histogram_quantile() over cumulative buckets (promql/quantile.go, bucketQuantile),
 * for meshctl stat: the same estimate PromQL gives for the same buckets. */
#include "quantile.h"

#include <math.h>
#include <stdlib.h>

static int by_bound(const void *a, const void *b)
{
    double x = ((const struct mesh_quantile_bucket *)a)->upper_bound;
    double y = ((const struct mesh_quantile_bucket *)b)->upper_bound;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Merges buckets with equal bounds (summing their counts), as series from several sources with
 * the same `le` are one bucket to PromQL. Returns the new count. b is sorted. */
static size_t coalesce(struct mesh_quantile_bucket *b, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out > 0 && b[out - 1].upper_bound == b[i].upper_bound) {
            b[out - 1].count += b[i].count;
            continue;
        }
        b[out++] = b[i];
    }
    return out;
}

/* Counts must not go down with the bound; a bucket whose count does (a scrape that raced the
 * writer) is raised to the largest count below it, which is how Prometheus repairs it. */
static void force_monotonic(struct mesh_quantile_bucket *b, size_t n)
{
    double max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (b[i].count > max)
            max = b[i].count;
        else if (b[i].count < max)
            b[i].count = max;
    }
}

double mesh_quantile(double q, struct mesh_quantile_bucket *b, size_t n)
{
    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (n == 0)
        return NAN;
    qsort(b, n, sizeof(*b), by_bound);
    if (!isinf(b[n - 1].upper_bound) || b[n - 1].upper_bound < 0)
        return NAN;
    n = coalesce(b, n);
    force_monotonic(b, n);
    if (n < 2)
        return NAN;
    double observations = b[n - 1].count;
    if (observations == 0)
        return NAN;
    double rank = q * observations;
    /* The first bucket, +Inf left out, whose cumulative count reaches the rank (Go's
     * sort.Search over n - 1 buckets: n - 1 when none does). */
    size_t i = 0;
    while (i < n - 1 && !(b[i].count >= rank))
        i++;
    if (i == n - 1)
        return b[n - 2].upper_bound;
    if (i == 0 && b[0].upper_bound <= 0)
        return b[0].upper_bound;
    double start = 0, end = b[i].upper_bound, count = b[i].count;
    if (i > 0) {
        start = b[i - 1].upper_bound;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (end - start) * (rank / count);
}
