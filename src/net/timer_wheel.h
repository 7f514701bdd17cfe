/* SPDX-License-Identifier: Apache-2.0 */
/* A hashed timer wheel with millisecond resolution: O(1) add and cancel, no allocation. */
#ifndef MESH_NET_TIMER_WHEEL_H
#define MESH_NET_TIMER_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

struct mesh_timer;
typedef void (*mesh_timer_cb)(struct mesh_timer *timer, void *data);

/* Embedded in its owner (a connection, a stream); zero it, then mesh_timer_init. */
struct mesh_timer {
    struct mesh_timer *next, *prev; /* slot list; both NULL when not armed */
    uint64_t expires_ms;
    mesh_timer_cb cb;
    void *data;
};

#define MESH_TIMER_WHEEL_SLOTS 4096 /* power of two; a lap is 4.096 s at 1 ms per slot */

/* A timer sits in slot (expires_ms % SLOTS) whatever its distance: one further than a lap stays
 * there and is passed over until its lap comes. One added for a time already swept goes to the
 * pending list instead, which the next advance fires first. `occupied` has bit i set exactly
 * when slot i is non-empty, so next_ms finds the next busy slot with a few word scans. */
struct mesh_timer_wheel {
    struct mesh_timer slots[MESH_TIMER_WHEEL_SLOTS]; /* list heads (sentinels) */
    struct mesh_timer pending;                       /* list head: due at the next advance */
    uint64_t occupied[MESH_TIMER_WHEEL_SLOTS / 64];
    uint64_t now_ms; /* last time advanced to */
    uint64_t armed;  /* number of armed timers */
};

/* The wheel is single-threaded: every function below runs on the thread that owns it. */
void mesh_timer_wheel_init(struct mesh_timer_wheel *w, uint64_t now_ms);
void mesh_timer_init(struct mesh_timer *t, mesh_timer_cb cb, void *data);
/* Arms (or re-arms) t to fire at expires_ms (absolute; a past time fires on the next advance). */
void mesh_timer_wheel_add(struct mesh_timer_wheel *w, struct mesh_timer *t, uint64_t expires_ms);
/* Disarms t; a no-op when it is not armed. Safe from within a callback. */
void mesh_timer_wheel_cancel(struct mesh_timer_wheel *w, struct mesh_timer *t);
bool mesh_timer_armed(const struct mesh_timer *t);
/* Fires every timer due at or before now_ms, in expiry order within a slot sweep (timers due at
 * the same millisecond fire in the order they were armed). A jump of a lap or more scans every
 * slot once instead, so the order across that jump is by slot, not by expiry. A now_ms before
 * the wheel's time counts as the wheel's time. Callbacks may add and cancel timers (including
 * the one firing); one re-armed for a time at or before the tick being swept fires on the next
 * advance, never in this one, so a callback cannot keep advance looping. Returns the number
 * fired. */
unsigned mesh_timer_wheel_advance(struct mesh_timer_wheel *w, uint64_t now_ms);
/* Milliseconds until the next timer is due (0 if overdue), or -1 when none is armed.
 * May be conservative (earlier than the true next expiry), never later: it answers the distance
 * to the next non-empty slot, whose timers may be a lap or more further away. */
int64_t mesh_timer_wheel_next_ms(const struct mesh_timer_wheel *w);

#endif
