/* SPDX-License-Identifier: Apache-2.0 */
/* A string-keyed hash map with chaining (FNV-1a), for meshd's per-proxy and per-peer state. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/xalloc.h"

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct mesh_api_map_entry **find(const struct mesh_api_map *m, const char *key)
{
    if (!m->n_slots)
        return NULL;
    struct mesh_api_map_entry **pp = &m->slots[hash(key) & (m->n_slots - 1)];
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->key, key) == 0)
            return pp;
    return pp;
}

/* Doubles the slots when the map is as full as it is wide, so chains stay short. */
static void grow(struct mesh_api_map *m)
{
    size_t n = m->n_slots ? m->n_slots * 2 : 16;
    struct mesh_api_map_entry **slots = xcalloc(n, sizeof(*slots));
    for (size_t i = 0; i < m->n_slots; i++) {
        struct mesh_api_map_entry *e = m->slots[i];
        while (e) {
            struct mesh_api_map_entry *next = e->next;
            size_t at = hash(e->key) & (n - 1);
            e->next = slots[at];
            slots[at] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->n_slots = n;
}

void *mesh_api_map_get(const struct mesh_api_map *m, const char *key)
{
    struct mesh_api_map_entry **pp = find(m, key);
    return pp && *pp ? (*pp)->value : NULL;
}

void *mesh_api_map_put(struct mesh_api_map *m, const char *key, void *value)
{
    struct mesh_api_map_entry **pp = find(m, key);
    if (pp && *pp) {
        void *old = (*pp)->value;
        (*pp)->value = value;
        return old;
    }
    if (m->len + 1 > m->n_slots) {
        grow(m);
        pp = find(m, key);
    }
    struct mesh_api_map_entry *e = xcalloc(1, sizeof(*e));
    e->key = xstrdup(key);
    e->value = value;
    *pp = e;
    m->len++;
    return NULL;
}

void *mesh_api_map_remove(struct mesh_api_map *m, const char *key)
{
    struct mesh_api_map_entry **pp = find(m, key);
    if (!pp || !*pp)
        return NULL;
    struct mesh_api_map_entry *e = *pp;
    void *value = e->value;
    *pp = e->next;
    free(e->key);
    free(e);
    m->len--;
    return value;
}

void mesh_api_map_sweep(struct mesh_api_map *m, bool (*fn)(const char *key, void *value, void *arg),
                        void *arg)
{
    for (size_t i = 0; i < m->n_slots; i++) {
        struct mesh_api_map_entry **pp = &m->slots[i];
        while (*pp) {
            struct mesh_api_map_entry *e = *pp;
            if (fn(e->key, e->value, arg)) {
                *pp = e->next;
                free(e->key);
                free(e);
                m->len--;
            } else {
                pp = &e->next;
            }
        }
    }
}

void mesh_api_map_clear(struct mesh_api_map *m, void (*free_value)(void *value))
{
    for (size_t i = 0; i < m->n_slots; i++) {
        struct mesh_api_map_entry *e = m->slots[i];
        while (e) {
            struct mesh_api_map_entry *next = e->next;
            if (free_value)
                free_value(e->value);
            free(e->key);
            free(e);
            e = next;
        }
    }
    free(m->slots);
    m->slots = NULL;
    m->n_slots = m->len = 0;
}
