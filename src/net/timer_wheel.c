/* SPDX-License-Identifier: Apache-2.0 */
/* A hashed timer wheel: 4096 one-millisecond slots of doubly linked lists with sentinels. */
#include "net/timer_wheel.h"

#include <stddef.h>

#define SLOT_MASK  ((uint64_t)MESH_TIMER_WHEEL_SLOTS - 1)
#define WORDS      (MESH_TIMER_WHEEL_SLOTS / 64)
#define SCAN_WORDS 8u /* next_ms looks at most this far ahead: 448 to 512 ms */

static void list_init(struct mesh_timer *head)
{
    head->next = head;
    head->prev = head;
}

static bool list_empty(const struct mesh_timer *head)
{
    return head->next == head;
}

static void list_append(struct mesh_timer *head, struct mesh_timer *t)
{
    t->prev = head->prev;
    t->next = head;
    head->prev->next = t;
    head->prev = t;
}

/* Unlinking only touches the neighbours, so it works whichever list t is on: a slot, the
 * pending list, or the local list advance is firing from. */
static void list_unlink(struct mesh_timer *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = NULL;
    t->prev = NULL;
}

/* Moves every timer of src to the (empty) dst, leaving src empty. */
static void list_move(struct mesh_timer *src, struct mesh_timer *dst)
{
    if (list_empty(src)) {
        list_init(dst);
        return;
    }
    dst->next = src->next;
    dst->prev = src->prev;
    dst->next->prev = dst;
    dst->prev->next = dst;
    list_init(src);
}

static void mark_occupied(struct mesh_timer_wheel *w, uint64_t slot)
{
    w->occupied[slot / 64] |= (uint64_t)1 << (slot % 64);
}

/* Clears the slot's bit once its list is empty; called after anything leaves a list. */
static void refresh_occupied(struct mesh_timer_wheel *w, uint64_t slot)
{
    if (list_empty(&w->slots[slot]))
        w->occupied[slot / 64] &= ~((uint64_t)1 << (slot % 64));
}

/* How many slots from slot on are empty, counting no further than the end of slot's bitmap
 * word: 0 when slot itself is busy. Lets the sweeps pass over idle stretches 64 slots at a time. */
static uint64_t empty_run(const struct mesh_timer_wheel *w, uint64_t slot)
{
    uint64_t word = w->occupied[slot / 64] >> (slot % 64);
    if (word == 0)
        return 64 - slot % 64;
    return (uint64_t)__builtin_ctzll(word);
}

/* Links an unarmed t where its expiry says; the armed count is the caller's business. */
static void place(struct mesh_timer_wheel *w, struct mesh_timer *t)
{
    if (t->expires_ms <= w->now_ms) {
        list_append(&w->pending, t);
        return;
    }
    uint64_t slot = t->expires_ms & SLOT_MASK;
    list_append(&w->slots[slot], t);
    mark_occupied(w, slot);
}

void mesh_timer_wheel_init(struct mesh_timer_wheel *w, uint64_t now_ms)
{
    for (size_t i = 0; i < MESH_TIMER_WHEEL_SLOTS; i++)
        list_init(&w->slots[i]);
    list_init(&w->pending);
    for (size_t i = 0; i < WORDS; i++)
        w->occupied[i] = 0;
    w->now_ms = now_ms;
    w->armed = 0;
}

void mesh_timer_init(struct mesh_timer *t, mesh_timer_cb cb, void *data)
{
    t->next = NULL;
    t->prev = NULL;
    t->expires_ms = 0;
    t->cb = cb;
    t->data = data;
}

bool mesh_timer_armed(const struct mesh_timer *t)
{
    return t->next != NULL;
}

void mesh_timer_wheel_cancel(struct mesh_timer_wheel *w, struct mesh_timer *t)
{
    if (!mesh_timer_armed(t))
        return;
    list_unlink(t);
    refresh_occupied(w, t->expires_ms & SLOT_MASK);
    w->armed--;
}

void mesh_timer_wheel_add(struct mesh_timer_wheel *w, struct mesh_timer *t, uint64_t expires_ms)
{
    mesh_timer_wheel_cancel(w, t);
    t->expires_ms = expires_ms;
    place(w, t);
    w->armed++;
}

/* Fires the timers of list (already detached from the wheel) due at or before limit and puts
 * the others back where they belong. Always takes the head: a callback may unlink any timer of
 * the list (cancel, re-add), which only ever shortens what is left to walk. */
static unsigned fire_list(struct mesh_timer_wheel *w, struct mesh_timer *list, uint64_t limit)
{
    unsigned fired = 0;
    while (!list_empty(list)) {
        struct mesh_timer *t = list->next;
        list_unlink(t);
        if (t->expires_ms > limit) {
            place(w, t); /* a later lap: back into its slot */
            continue;
        }
        w->armed--;
        fired++;
        t->cb(t, t->data);
    }
    return fired;
}

unsigned mesh_timer_wheel_advance(struct mesh_timer_wheel *w, uint64_t now_ms)
{
    struct mesh_timer local;
    unsigned fired = 0;

    if (now_ms < w->now_ms)
        now_ms = w->now_ms;

    /* Past-due timers from before this call; ones re-armed from here on wait for the next. */
    list_move(&w->pending, &local);
    fired += fire_list(w, &local, w->now_ms);

    if (now_ms - w->now_ms >= MESH_TIMER_WHEEL_SLOTS) {
        /* A jump of a lap or more: every slot holds due timers, so visit each one once. */
        uint64_t first = w->now_ms + 1;
        w->now_ms = now_ms;
        for (uint64_t i = 0; i < MESH_TIMER_WHEEL_SLOTS;) {
            uint64_t slot = (first + i) & SLOT_MASK;
            uint64_t skip = empty_run(w, slot);
            if (skip > 0) {
                i += skip;
                continue;
            }
            i++;
            list_move(&w->slots[slot], &local);
            refresh_occupied(w, slot);
            fired += fire_list(w, &local, now_ms);
        }
        return fired;
    }

    while (w->now_ms < now_ms) {
        uint64_t slot = (w->now_ms + 1) & SLOT_MASK;
        uint64_t skip = empty_run(w, slot);
        if (skip > 0) {
            if (skip > now_ms - w->now_ms)
                skip = now_ms - w->now_ms;
            w->now_ms += skip;
            continue;
        }
        uint64_t tick = ++w->now_ms;
        list_move(&w->slots[slot], &local);
        refresh_occupied(w, slot);
        fired += fire_list(w, &local, tick);
    }
    return fired;
}

int64_t mesh_timer_wheel_next_ms(const struct mesh_timer_wheel *w)
{
    if (w->armed == 0)
        return -1;
    if (!list_empty(&w->pending))
        return 0;
    /* Scan the bitmap from the slot after now, but only a few words ahead: the loop asks before
     * every epoll_wait, and a busy proxy's nearest timers are request timeouts seconds away, so
     * a whole-wheel scan per wake-up cost more than the rest of the loop. Past the horizon the
     * answer is the horizon itself: an idle loop wakes every half second for nothing, which is
     * the conservative direction. */
    uint64_t start = (w->now_ms + 1) & SLOT_MASK;
    uint64_t word_i = start / 64;
    uint64_t word = w->occupied[word_i] & (~(uint64_t)0 << (start % 64));
    for (uint64_t n = 0; n < SCAN_WORDS; n++) {
        if (word != 0) {
            uint64_t slot = word_i * 64 + (uint64_t)__builtin_ctzll(word);
            return (int64_t)(((slot - start) & SLOT_MASK) + 1);
        }
        word_i = (word_i + 1) % WORDS;
        word = w->occupied[word_i];
    }
    return (int64_t)(((word_i * 64 - start) & SLOT_MASK) + 1);
}
