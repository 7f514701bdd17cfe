/* SPDX-License-Identifier: Apache-2.0 */
/* One epoll event loop per worker: edge-triggered I/O callbacks, timers, a cached clock. */
#ifndef MESH_NET_LOOP_H
#define MESH_NET_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "mesh/err.h"
#include "timer_wheel.h"

struct mesh_loop;
struct mesh_io;

/* events: MESH_IO_READ / MESH_IO_WRITE / MESH_IO_HUP / MESH_IO_ERROR bits. */
typedef void (*mesh_io_cb)(struct mesh_loop *loop, struct mesh_io *io, uint32_t events);

#define MESH_IO_READ 0x1u
#define MESH_IO_WRITE 0x2u
#define MESH_IO_HUP 0x4u /* peer closed (EPOLLRDHUP/EPOLLHUP); data may still be readable */
#define MESH_IO_ERROR 0x8u

/* Embedded in its owner. Registered edge-triggered for both directions at once: the owner reads
 * and writes until EAGAIN and remembers readiness itself, so no epoll_ctl on the hot path. */
struct mesh_io {
    int fd;
    mesh_io_cb cb;
    void *data;
};

struct mesh_loop {
    int epfd;
    bool stop;
    uint64_t now_ms; /* CLOCK_MONOTONIC, refreshed once per iteration */
    struct mesh_timer_wheel timers;
};

enum mesh_err mesh_loop_init(struct mesh_loop *loop);
void mesh_loop_close(struct mesh_loop *loop);
/* Registers io->fd (edge-triggered, read + write + hup). */
enum mesh_err mesh_loop_add(struct mesh_loop *loop, struct mesh_io *io);
/* Registers for read only, level-triggered (listeners). */
enum mesh_err mesh_loop_add_listener(struct mesh_loop *loop, struct mesh_io *io);
/* Unregisters; call before close(io->fd). */
void mesh_loop_del(struct mesh_loop *loop, struct mesh_io *io);
/* Waits at most max_wait_ms (or until the next timer), dispatches I/O, then due timers.
 * Returns the number of I/O events dispatched. */
int mesh_loop_run_once(struct mesh_loop *loop, int max_wait_ms);
uint64_t mesh_loop_now_ms(const struct mesh_loop *loop);
/* Refreshes loop->now_ms from the clock (the loop does it each iteration). */
void mesh_loop_update_time(struct mesh_loop *loop);
void mesh_timer_start(struct mesh_loop *loop, struct mesh_timer *t, uint64_t after_ms);
void mesh_timer_stop(struct mesh_loop *loop, struct mesh_timer *t);

#endif
