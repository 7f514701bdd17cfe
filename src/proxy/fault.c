/* SPDX-License-Identifier: Apache-2.0 */
/* Percentage draws for delay and abort faults. */
#include "fault.h"

/* The model's MESH_UNSET is -1; any negative percentage is taken as unset. */
static double final_percentage(double pct)
{
    if (pct < 0.0)
        return 100.0;
    if (pct > 100.0)
        return 100.0;
    if (!(pct >= 0.0)) /* NaN: never */
        return 0.0;
    return pct;
}

void mesh_fault_rt_from_model(struct mesh_fault_rt *rt, const struct mesh_fault *f)
{
    rt->delay_ms = f->delay_ms;
    rt->delay_pct = f->delay_ms > 0 ? final_percentage(f->delay_percentage) : 0.0;
    rt->abort_status = f->abort.http_status;
    rt->abort_pct = f->abort.http_status > 0 ? final_percentage(f->abort.percentage) : 0.0;
}

bool mesh_fault_rt_active(const struct mesh_fault_rt *rt)
{
    return (rt->delay_ms > 0 && rt->delay_pct > 0.0) ||
           (rt->abort_status > 0 && rt->abort_pct > 0.0);
}

bool mesh_fault_decide(const struct mesh_fault_rt *rt, struct mesh_rng *rng,
                       struct mesh_fault_decision *out)
{
    out->delay_ms = 0;
    out->abort_status = 0;
    if (rt->delay_ms > 0 && mesh_rng_percent(rng, rt->delay_pct))
        out->delay_ms = rt->delay_ms;
    if (rt->abort_status > 0 && mesh_rng_percent(rng, rt->abort_pct))
        out->abort_status = rt->abort_status;
    return out->delay_ms > 0 || out->abort_status > 0;
}
