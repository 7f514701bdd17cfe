/* SPDX-License-Identifier: Apache-2.0 */
/* Publication of a new snapshot (SIGHUP reloads in static mode, configs from meshd) or identity
 * (certificates from meshd) to the workers, and when the old one may be released. */
#include <stdint.h>
#include <time.h>

#include "proxy.h"
#include "trace.h"

#define RETIRE_WAIT_MS 5000 /* a worker stuck longer than this is not waited for any more */

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void mesh_publish_begin(struct mesh_proxy *p, struct mesh_publish *pub)
{
    pthread_mutex_lock(&p->publish_lock);
    pub->n = p->workers ? p->n_workers : 0;
    for (unsigned i = 0; i < pub->n; i++)
        pub->seen[i] = atomic_load(&p->workers[i].epoch);
}

void mesh_publish_finish(struct mesh_proxy *p, struct mesh_publish *pub)
{
    /* Woken, a worker adopts at the top of its next loop turn instead of after its poll
     * timeout, so the old object can go within milliseconds. */
    for (unsigned i = 0; i < pub->n; i++)
        mesh_worker_wake(&p->workers[i]);
    /* A worker loads the pointer and takes its reference either in the loop-top adoption,
     * which moves the epoch afterwards, or inside an event dispatch that the next loop-top
     * move follows. A worker that loaded the old pointer before the swap has therefore
     * referenced it by the time its epoch passes what was seen before the swap; one that loads
     * after the swap gets the new one. */
    for (unsigned i = 0; i < pub->n; i++) {
        uint64_t deadline = monotonic_ms() + RETIRE_WAIT_MS;
        while (atomic_load(&p->workers[i].epoch) <= pub->seen[i] && monotonic_ms() < deadline)
            nanosleep(&(struct timespec){0, 200000}, NULL);
    }
    pthread_mutex_unlock(&p->publish_lock);
}

void mesh_proxy_publish(struct mesh_proxy *p, struct mesh_snapshot *s)
{
    /* Before the swap: the rings a config that turns tracing on needs exist before a worker
     * can see it. */
    mesh_tracer_configure(p->tracer, &s->trace);
    struct mesh_publish pub;
    mesh_publish_begin(p, &pub);
    struct mesh_snapshot *old = atomic_exchange(&p->current, s);
    mesh_publish_finish(p, &pub);
    mesh_snapshot_unref(old);
}
