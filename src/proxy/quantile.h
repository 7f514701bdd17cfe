/* SPDX-License-Identifier: Apache-2.0 */
/* Quantiles from cumulative histogram buckets, computed as Prometheus' histogram_quantile(). */
#ifndef MESH_PROXY_QUANTILE_H
#define MESH_PROXY_QUANTILE_H

#include <stddef.h>

/* One bucket as Prometheus exposes it: the count of observations at or below upper_bound
 * (cumulative; the `le` label and the _bucket sample). The +Inf bucket has upper_bound INFINITY. */
struct mesh_quantile_bucket {
    double upper_bound;
    double count;
};

/* The q-quantile (0..1) of buckets[0..n), exactly as PromQL's histogram_quantile(q, ...)
 * answers it: buckets are sorted by bound and buckets with equal bounds merged (so b is
 * reordered and may be rewritten: pass a copy you can spare); counts that go down are raised to
 * the largest count below them (monotonic, as Prometheus forces them). Then the rank q * total is
 * looked for in the first bucket whose cumulative count reaches it and interpolated linearly
 * inside it, from 0 for the first bucket (or answered with its bound when that is <= 0); a rank
 * in the +Inf bucket answers the largest finite bound.
 * Answers NAN for a NAN q, when there are fewer than two buckets, when the highest bound is not
 * +Inf, or when there is no observation; -INFINITY for q < 0 and +INFINITY for q > 1.
 * Pure; any thread. */
double mesh_quantile(double q, struct mesh_quantile_bucket *b, size_t n);

#endif
