/* SPDX-License-Identifier: Apache-2.0 */
/* Fault injection at request time: a fixed delay and/or an abort, each for a share of
 * requests. */
#ifndef MESH_PROXY_FAULT_H
#define MESH_PROXY_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "mesh/fault_injection.h"
#include "rng.h"

/* Immutable, part of a snapshot. Percentages are final (0..100): unset already reads as 100,
 * and a fault that is off (no delay, no status) has percentage 0. */
struct mesh_fault_rt {
    uint64_t delay_ms;
    double delay_pct;
    uint32_t abort_status; /* 0 = no abort */
    double abort_pct;
};

/* Compiles the model's fault (borrowed): MESH_UNSET percentages mean 100, out-of-range ones are
 * clamped to 0..100. */
void mesh_fault_rt_from_model(struct mesh_fault_rt *rt, const struct mesh_fault *f);

/* Whether rt can ever inject anything (lets the caller skip the draws). */
bool mesh_fault_rt_active(const struct mesh_fault_rt *rt);

struct mesh_fault_decision {
    uint64_t delay_ms;     /* 0 = no delay */
    uint32_t abort_status; /* 0 = no abort; otherwise answer with it, never reaching upstream */
};

/* Decides the fault for one request: delay and abort are drawn independently, so a request may
 * get both (delay first, then the abort). Fills *out and returns true when it holds either.
 * rng is the calling worker's; no allocation. */
bool mesh_fault_decide(const struct mesh_fault_rt *rt, struct mesh_rng *rng,
                       struct mesh_fault_decision *out);

#endif
